"""The one error tree of finsync.

Domain errors know nothing of HTTP; :mod:`shared.problems` maps each class to a
status and an RFC 9457 ``type`` in one table.

::

    FinsyncError
    ├── SettingsError              configuration is invalid (start-up only)
    ├── ClientError                the caller sent something we cannot accept
    │   ├── BadRequestError
    │   │   ├── IdempotencyKeyMissingError   a write that requires Idempotency-Key came without one
    │   │   └── IdempotencyKeyInvalidError   the Idempotency-Key is empty, too long or not ASCII
    │   ├── AuthenticationError
    │   ├── PermissionDeniedError
    │   ├── NotFoundError
    │   ├── ConflictError
    │   │   └── IdempotencyKeyInUseError     the first request with this key is still running
    │   ├── IdempotencyKeyReusedError        the key was used before with another request
    │   ├── PayloadTooLargeError
    │   ├── UnsupportedMediaTypeError
    │   └── BusinessRuleError
    │       └── InvalidEntryError        a create payload broke business rules; ``violations`` names each line
    │           ├── OversizedEntryError      more lines than the documented limit
    │           ├── UnknownCurrencyError     not an active ISO 4217 code with minor units
    │           ├── InvalidAmountError       negative, both sides, all zero, or finer than the currency allows
    │           └── UnbalancedJournalError   debits differ from credits in at least one currency
    ├── RateLimitedError           the caller is over a limit
    ├── ServiceUnavailableError    this service's own state store (Redis) cannot be reached
    └── UpstreamError              a system below us failed
        ├── UpstreamTimeoutError
        ├── UpstreamUnavailableError
        ├── UpstreamRejectedError
        └── UpstreamContractError
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = (
    "AuthenticationError",
    "BadRequestError",
    "BusinessRuleError",
    "ClientError",
    "ConflictError",
    "CurrencyImbalance",
    "DuplicateCellError",
    "FinsyncError",
    "IdempotencyKeyInUseError",
    "IdempotencyKeyInvalidError",
    "IdempotencyKeyMissingError",
    "IdempotencyKeyReusedError",
    "InvalidAmountError",
    "InvalidEntryError",
    "NotFoundError",
    "OversizedEntryError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServiceUnavailableError",
    "SettingsError",
    "SourceRejectedError",
    "UnbalancedJournalError",
    "UnknownCurrencyError",
    "UnknownMemberError",
    "UnsupportedMediaTypeError",
    "UpstreamContractError",
    "UpstreamError",
    "UpstreamRejectedError",
    "UpstreamTimeoutError",
    "UpstreamUnavailableError",
    "Violation",
)


class FinsyncError(Exception):
    """Base of every error finsync raises on purpose."""

    code: str = "internal-error"
    """Stable slug; the problem ``type`` is ``/problems/{code}``."""
    title: str = "Internal error"
    """Short, human summary that does not change between occurrences."""

    def __init__(self, detail: str = "", *, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra = extra
        """Extra problem members, such as the offending field."""
        self.headers = dict(headers or {})
        """Response headers the answer must carry, such as ``WWW-Authenticate``."""


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


class IdempotencyKeyMissingError(BadRequestError):
    """This write requires an ``Idempotency-Key`` header, and the request had none."""

    code = "idempotency-key-missing"
    title = "Idempotency-Key required"


class IdempotencyKeyInvalidError(BadRequestError):
    """The ``Idempotency-Key`` header is empty, longer than 255 characters or not printable ASCII."""

    code = "idempotency-key-invalid"
    title = "Invalid Idempotency-Key"


class IdempotencyKeyInUseError(ConflictError):
    """The first request with this ``Idempotency-Key`` is still running; retry after it finishes."""

    code = "idempotency-key-in-use"
    title = "Idempotency-Key in use"


class IdempotencyKeyReusedError(ClientError):
    """This ``Idempotency-Key`` was already used with a different request (method, path or body)."""

    code = "idempotency-key-reused"
    title = "Idempotency-Key reused"


class Violation(msgspec.Struct, frozen=True, kw_only=True):
    """One reason a payload was refused: which line, which field, and why."""

    reason: str
    """Stable slug of the rule, such as ``negative-amount`` or ``unbalanced``."""
    message: str
    """What is wrong, for a person."""
    line: int | None = None
    """Index (from 0) of the offending line in the payload's ``lines``; null when the whole payload is at fault."""
    field: str | None = None
    """The offending field, such as ``debit``, ``currency`` or ``lines``."""


class CurrencyImbalance(msgspec.Struct, frozen=True, kw_only=True):
    """The debit and credit totals of one currency of a journal entry that do not agree."""

    currency: str
    """ISO 4217 code of the lines concerned."""
    debit: Decimal
    """Sum of the debits in this currency."""
    credit: Decimal
    """Sum of the credits in this currency."""
    difference: Decimal
    """``debit - credit``; positive when debits exceed credits."""
    lines: tuple[int, ...]
    """Indexes (from 0) of the lines in this currency."""


class InvalidEntryError(BusinessRuleError):
    """A journal entry, invoice, payment or party broke business rules; ``violations`` names each offending line and the reason."""

    code = "invalid-entry"
    title = "Invalid entry"

    def __init__(
        self,
        detail: str = "",
        *,
        violations: Sequence[Violation] = (),
        imbalances: Sequence[CurrencyImbalance] = (),
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        # Problem members must be plain JSON (money as decimal strings), whoever encodes the answer.
        super().__init__(
            detail,
            headers=headers,
            violations=msgspec.to_builtins(tuple(violations)),
            **({"imbalances": msgspec.to_builtins(tuple(imbalances))} if imbalances else {}),
            **extra,
        )
        self.violations = tuple(violations)
        """Every offending line and field, with the rule it broke."""
        self.imbalances = tuple(imbalances)
        """Per currency, the totals that do not balance (journal entries only)."""


class OversizedEntryError(InvalidEntryError):
    """The payload has more lines than the documented limit (1,000 for a journal entry); split it."""

    code = "oversized-entry"
    title = "Oversized entry"


class UnknownCurrencyError(InvalidEntryError):
    """A currency is not an active ISO 4217 code with minor units (such as ``USD`` or ``JPY``)."""

    code = "unknown-currency"
    title = "Unknown currency"


class InvalidAmountError(InvalidEntryError):
    """An amount is negative, on both the debit and the credit side, all zero, or has more decimals than its currency's minor unit allows."""

    code = "invalid-amount"
    title = "Invalid amount"


class UnbalancedJournalError(InvalidEntryError):
    """A journal entry's debits do not equal its credits in at least one currency; ``imbalances`` gives each currency's totals and difference."""

    code = "unbalanced-journal"
    title = "Unbalanced journal entry"


class UnknownMemberError(InvalidEntryError):
    """A load's rows name values that map to no member of the planning model under the mapping rules; ``violations`` names each row and dimension. Nothing was loaded."""

    code = "unknown-member"
    title = "Unknown planning member"


class DuplicateCellError(InvalidEntryError):
    """Two or more rows of a load map to the same planning cell; the platform would keep only the last, silently. ``violations`` names each repeated row. Aggregate to one row per cell; nothing was loaded."""

    code = "duplicate-cell"
    title = "Duplicate planning cell"


class SourceRejectedError(BusinessRuleError):
    """The source system refused the write under its own rules (a closed period, an unbalanced move, an unknown account); nothing was written there. ``source_message`` is what the source said."""

    code = "source-rejected"
    title = "Source rejected the write"


class RateLimitedError(FinsyncError):
    """The caller is over its rate limit."""

    code = "rate-limited"
    title = "Too many requests"

    def __init__(
        self, detail: str = "", *, retry_after: int = 1, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail, headers={**(headers or {}), "Retry-After": str(retry_after)}, **extra)
        self.retry_after = retry_after


class ServiceUnavailableError(FinsyncError):
    """This service cannot answer right now because its own state store (Redis) is unreachable."""

    code = "service-unavailable"
    title = "Service unavailable"

    def __init__(
        self, detail: str = "", *, retry_after: int = 1, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail, headers={**(headers or {}), "Retry-After": str(retry_after)}, **extra)
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
