"""Fault injection, set through ``PUT /sandbox/faults``, the counters of what happened, and the API usage limit.

Faults are drawn from ``random.Random(seed)``, so a test that sets a seed
sees the same faults on every run. An injected 5xx or
``REQUEST_LIMIT_EXCEEDED`` is decided before a REST request does anything
(before its token is even looked at), so a faulted request has no effect, does
not count against the API limit, and is always safe to retry. Duplicated and
reordered outbound deliveries are faults too. Every injected fault is counted.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from system_apis.connectors.sandbox_faults import SandboxFaults

__all__ = ("SERVER_ERRORS", "ApiUsage", "Counters", "FaultConfig", "Faults")

SERVER_ERRORS = (500, 503)
"""Statuses an injected 5xx answers with, one drawn per fault."""

Share = Annotated[float, Meta(ge=0, le=1)]


class FaultConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What to break. ``PUT /sandbox/faults`` replaces the whole configuration: a field left out is off.

    ``forbid_unknown_fields`` so a misspelt fault fails loudly instead of silently doing nothing.
    """

    rate_5xx: Share = 0.0
    """Share of REST requests answered 500 ``UNKNOWN_EXCEPTION`` or 503 ``SERVER_UNAVAILABLE``."""
    rate_limit_exceeded: Share = 0.0
    """Share of REST requests answered 403 ``REQUEST_LIMIT_EXCEEDED`` although the limit is not reached."""
    duplicate_notifications: Share = 0.0
    """Share of acknowledged notifications delivered once more, with the same notification ``Id``."""
    reorder_notifications: bool = False
    """Deliver the pending notifications newest first instead of oldest first."""
    seed: int = 0
    """Seed of the random draws."""

    def __post_init__(self) -> None:
        """Refuse rates that cannot both hold."""
        if self.rate_5xx + self.rate_limit_exceeded > 1:
            raise ValueError("rate_5xx + rate_limit_exceeded is at most 1")


class Counters(msgspec.Struct, kw_only=True):
    """Counts of what happened since start or the last reset. Mutable: the sandbox adds to it as it goes."""

    tokens_issued: dict[str, int] = msgspec.field(
        default_factory=lambda: {"client_credentials": 0, "jwt_bearer": 0}
    )
    """Access tokens issued, by grant."""
    token_failures: int = 0
    """Token requests refused."""
    unauthorized: int = 0
    """REST requests answered 401 ``INVALID_SESSION_ID``."""
    requests: int = 0
    """REST requests (``/services/data/vXX.X/...``), faulted and refused ones included."""
    limit_exceeded: int = 0
    """REST requests answered 403 ``REQUEST_LIMIT_EXCEEDED`` because the daily limit was reached (not injected)."""
    queries: int = 0
    """``/query?q=`` requests answered 200."""
    query_more: int = 0
    """``nextRecordsUrl`` pages answered 200."""
    notifications_queued: int = 0
    """Outbound notifications created (one per opportunity change)."""
    deliveries: int = 0
    """``notifications`` calls POSTed to the listener."""
    notifications_acked: int = 0
    """Notifications in calls the listener acknowledged (a duplicate counts again)."""
    deliveries_failed: int = 0
    """Calls without ``<Ack>true</Ack>``: an error status, no or false Ack, timeout, refused connection."""
    retries: int = 0
    """Notifications scheduled again after a failed call."""
    dropped: int = 0
    """Notifications given up after the retry lifetime."""
    rate_5xx: int = msgspec.field(default=0, name="5xx")
    """Injected 5xx."""
    rate_limit_exceeded: int = msgspec.field(default=0, name="REQUEST_LIMIT_EXCEEDED")
    """Injected 403 ``REQUEST_LIMIT_EXCEEDED``."""
    duplicates: int = 0
    """Notifications delivered again by the ``duplicate_notifications`` fault."""
    reordered: int = 0
    """Notifications sent while an older one was still pending, by the ``reorder_notifications`` fault."""

    def faults(self) -> dict[str, int]:
        """The injected-fault counters alone, as ``GET /sandbox/faults`` shows them."""
        return {
            "5xx": self.rate_5xx,
            "REQUEST_LIMIT_EXCEEDED": self.rate_limit_exceeded,
            "duplicates": self.duplicates,
            "reordered": self.reordered,
        }


class Faults(SandboxFaults[FaultConfig, Counters]):
    """The current fault configuration, its random draws, and the counters faults add to."""

    def __init__(self, counters: Counters) -> None:
        """No faults; injected ones are counted in ``counters``."""
        super().__init__(counters, FaultConfig())

    def request_fault(self) -> int | None:
        """The status to answer a REST request with instead of serving it (counted), or ``None``.

        403 means an injected ``REQUEST_LIMIT_EXCEEDED``; 500 and 503 are server errors.
        """
        config = self.config
        if not config.rate_5xx and not config.rate_limit_exceeded:
            return None
        draw = self._random.random()
        if draw < config.rate_limit_exceeded:
            self.counters.rate_limit_exceeded += 1
            return 403
        if draw < config.rate_limit_exceeded + config.rate_5xx:
            self.counters.rate_5xx += 1
            return self._random.choice(SERVER_ERRORS)
        return None

    def duplicate(self) -> bool:
        """Whether to deliver one acknowledged notification again (counted when so)."""
        rate = self.config.duplicate_notifications
        if rate and self._random.random() < rate:
            self.counters.duplicates += 1
            return True
        return False


class ApiUsage:
    """The org's daily API request count against its limit, as ``Sforce-Limit-Info: api-usage=used/limit`` says.

    Salesforce counts over a rolling 24 hours; the sandbox never forgets a
    request on its own: usage drops only through the control API or a reset.
    """

    def __init__(self, limit: int) -> None:
        """Nothing used of ``limit`` requests."""
        self.used = 0
        """Requests counted."""
        self.limit = limit
        """Requests allowed."""

    def take(self) -> bool:
        """Count one request; False (and nothing counted) when the limit is reached."""
        if self.used >= self.limit:
            return False
        self.used += 1
        return True

    def header(self) -> str:
        """The ``Sforce-Limit-Info`` value."""
        return f"api-usage={self.used}/{self.limit}"
