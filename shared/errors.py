"""The one error tree of finsync.

Domain errors know nothing of HTTP; :mod:`shared.problems` maps each class to a
status and an RFC 9457 ``type`` in one table.

::

    FinsyncError
    ├── SettingsError              configuration is invalid (start-up only)
    ├── ClientError                the caller sent something we cannot accept
    │   ├── BadRequestError
    │   ├── AuthenticationError
    │   ├── PermissionDeniedError
    │   ├── NotFoundError
    │   ├── ConflictError
    │   ├── PayloadTooLargeError
    │   ├── UnsupportedMediaTypeError
    │   └── BusinessRuleError
    ├── RateLimitedError           the caller is over a limit
    └── UpstreamError              a system below us failed
        ├── UpstreamTimeoutError
        ├── UpstreamUnavailableError
        ├── UpstreamRejectedError
        └── UpstreamContractError
"""

from __future__ import annotations

from typing import Any

__all__ = (
    "AuthenticationError",
    "BadRequestError",
    "BusinessRuleError",
    "ClientError",
    "ConflictError",
    "FinsyncError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitedError",
    "SettingsError",
    "UnsupportedMediaTypeError",
    "UpstreamContractError",
    "UpstreamError",
    "UpstreamRejectedError",
    "UpstreamTimeoutError",
    "UpstreamUnavailableError",
)


class FinsyncError(Exception):
    """Base of every error finsync raises on purpose."""

    code: str = "internal-error"
    """Stable slug; the problem ``type`` is ``/problems/{code}``."""
    title: str = "Internal error"
    """Short, human summary that does not change between occurrences."""

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra
        """Extra problem members, such as the offending field."""


class SettingsError(FinsyncError):
    """A setting is unknown, malformed or missing; raised at start-up."""

    code = "invalid-settings"
    title = "Invalid settings"


class ClientError(FinsyncError):
    """The request cannot be accepted as sent."""

    code = "bad-request"
    title = "Bad request"


class BadRequestError(ClientError):
    """Malformed syntax, wrong types, unknown fields or bad query values."""


class AuthenticationError(ClientError):
    """No credentials, or credentials that do not verify."""

    code = "unauthenticated"
    title = "Authentication required"


class PermissionDeniedError(ClientError):
    """Valid credentials without the right to this operation."""

    code = "forbidden"
    title = "Forbidden"


class NotFoundError(ClientError):
    """The resource does not exist."""

    code = "not-found"
    title = "Not found"


class ConflictError(ClientError):
    """The request conflicts with the current state."""

    code = "conflict"
    title = "Conflict"


class PayloadTooLargeError(ClientError):
    """The request body is over the configured limit."""

    code = "payload-too-large"
    title = "Payload too large"


class UnsupportedMediaTypeError(ClientError):
    """The request body is not in a media type the operation accepts."""

    code = "unsupported-media-type"
    title = "Unsupported media type"


class BusinessRuleError(ClientError):
    """Valid by the schema, refused by a business rule (unbalanced journal, closed period)."""

    code = "business-rule-violated"
    title = "Business rule violated"


class RateLimitedError(FinsyncError):
    """The caller is over its rate limit."""

    code = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str = "", *, retry_after: int = 1, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class UpstreamError(FinsyncError):
    """A system or layer below failed."""

    code = "upstream-error"
    title = "Upstream error"


class UpstreamTimeoutError(UpstreamError):
    """The system below did not answer in time."""

    code = "upstream-timeout"
    title = "Upstream timeout"


class UpstreamUnavailableError(UpstreamError):
    """The system below cannot be reached or says it is unavailable."""

    code = "upstream-unavailable"
    title = "Upstream unavailable"


class UpstreamRejectedError(UpstreamError):
    """The system below refused the request."""

    code = "upstream-rejected"
    title = "Upstream rejected the request"


class UpstreamContractError(UpstreamError):
    """The system below answered something its contract does not allow."""

    code = "upstream-contract-violated"
    title = "Upstream broke its contract"
