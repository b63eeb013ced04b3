"""Stripe's errors, as the sandbox answers them: one base, small subclasses that differ by status and ``type``.

::

    StripeError                        500 api_error
    ├── InvalidRequestError            400 invalid_request_error
    │   ├── AuthenticationError        401 invalid_request_error (missing or wrong secret key)
    │   ├── ResourceMissingError       404 resource_missing (400 when the id came in a parameter)
    │   └── UnrecognizedUrlError       404 (no such route or method)
    ├── CardError                      402 card_error (a declined payment)
    ├── IdempotencyError               400 idempotency_error (a key reused with other parameters or endpoint)
    │   └── IdempotencyKeyInUseError   409 idempotency_error, code idempotency_key_in_use
    ├── RateLimitError                 429 invalid_request_error, code rate_limit (an injected fault)
    └── ApiError                       500, 502 or 503 api_error (an injected fault, or a sandbox bug)

Each one renders Stripe's body ``{"error": {"type", "code", "message", "param", "doc_url", ...}}``;
members without a value are left out, as Stripe does.
"""

from __future__ import annotations

from typing import Any

__all__ = (
    "ApiError",
    "AuthenticationError",
    "CardError",
    "IdempotencyError",
    "IdempotencyKeyInUseError",
    "InvalidRequestError",
    "RateLimitError",
    "ResourceMissingError",
    "StripeError",
    "UnrecognizedUrlError",
)

DOC_URL = "https://stripe.com/docs/error-codes/{}"
"""Where Stripe documents an error code; ``doc_url`` points there when the error has a code."""


class StripeError(Exception):
    """Base of the sandbox's errors: a status, Stripe's error ``type``, a message and optional members."""

    status_code: int = 500
    """The HTTP status it answers with."""
    error_type: str = "api_error"
    """Stripe's ``error.type``."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        status_code: int | None = None,
        **extra: Any,
    ) -> None:
        """Keep the members of ``error``; ``extra`` adds members such as ``decline_code`` or ``payment_intent``."""
        super().__init__(message)
        self.message = message
        """``error.message``."""
        self.code = code
        """``error.code``, for errors a program can react to."""
        self.param = param
        """``error.param``: the parameter at fault."""
        self.extra = extra
        """More members of ``error``."""
        if status_code is not None:
            self.status_code = status_code

    def body(self) -> dict[str, Any]:
        """``{"error": {...}}`` with the members that have a value."""
        error: dict[str, Any] = {"type": self.error_type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = DOC_URL.format(self.code.replace("_", "-"))
        if self.param is not None:
            error["param"] = self.param
        error.update({key: value for key, value in self.extra.items() if value is not None})
        return {"error": error}


class InvalidRequestError(StripeError):
    """The request has invalid parameters, or asks for something the object's state does not allow."""

    status_code = 400
    error_type = "invalid_request_error"


class AuthenticationError(InvalidRequestError):
    """No secret key, or not the sandbox's."""

    status_code = 401


class ResourceMissingError(InvalidRequestError):
    """An id names nothing: 404 when it is the object the path names, 400 when it came in a parameter."""

    status_code = 404

    def __init__(self, kind: str, object_id: str, *, param: str | None = None) -> None:
        """``No such {kind}: '{object_id}'``."""
        super().__init__(
            f"No such {kind}: '{object_id}'",
            code="resource_missing",
            param=param or "id",
            status_code=400 if param else 404,
        )


class UnrecognizedUrlError(InvalidRequestError):
    """No route answers this method and path."""

    status_code = 404

    def __init__(self, method: str, path: str) -> None:
        """Stripe's wording for an unknown URL."""
        super().__init__(
            f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs or we can help "
            "at https://support.stripe.com/. (This is a Stripe-shaped sandbox, not Stripe.)"
        )


class CardError(StripeError):
    """The payment method was declined."""

    status_code = 402
    error_type = "card_error"


class IdempotencyError(StripeError):
    """An ``Idempotency-Key`` came back with other parameters, or on another endpoint."""

    status_code = 400
    error_type = "idempotency_error"


class IdempotencyKeyInUseError(IdempotencyError):
    """The first request with this key is still running."""

    status_code = 409


class RateLimitError(StripeError):
    """Too many requests (the sandbox's ``rate_429`` fault)."""

    status_code = 429
    error_type = "invalid_request_error"


class ApiError(StripeError):
    """Something went wrong on the server side (the ``rate_5xx`` fault, or a bug in the sandbox)."""

    status_code = 500
    error_type = "api_error"
