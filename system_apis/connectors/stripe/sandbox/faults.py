"""Fault injection, set through ``PUT /sandbox/faults``, and the counters of what happened.

Faults are drawn from ``random.Random(seed)``, so a test that sets a seed sees
the same faults on every run. An injected 429 or 5xx is decided before a
``/v1`` request does anything (before authentication, before the idempotency
layer), so a faulted request has no effect, is never saved under its
``Idempotency-Key``, and a retry is always safe. Every injected fault is
counted; so is what the sandbox did (requests, replays, events, deliveries).
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from system_apis.connectors.sandbox_faults import SandboxFaults

__all__ = ("SERVER_ERRORS", "Counters", "FaultConfig", "Faults")

SERVER_ERRORS = (500, 502, 503)
"""Statuses an injected 5xx answers with, one drawn per fault."""

Share = Annotated[float, Meta(ge=0, le=1)]
Seconds = Annotated[float, Meta(ge=0, le=3600)]


class FaultConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What to break. ``PUT /sandbox/faults`` replaces the whole configuration: a field left out is off.

    ``forbid_unknown_fields`` so a misspelt fault fails loudly instead of silently doing nothing.
    """

    rate_429: Share = 0.0
    """Share of ``/v1`` requests answered 429 (``rate_limit``) with ``Stripe-Should-Retry: true``."""
    rate_5xx: Share = 0.0
    """Share of ``/v1`` requests answered 500, 502 or 503 (``api_error``) with ``Stripe-Should-Retry: true``."""
    retry_after: Annotated[int, Meta(ge=0, le=3600)] | None = None
    """Seconds in the ``Retry-After`` of an injected 429; none by default (Stripe sends it only at times)."""
    write_delay: Seconds = 0.0
    """Seconds every ``POST`` waits after doing its work and before answering: a client that times out has
    lost the answer of a write that happened, and a retry meanwhile meets ``idempotency_key_in_use``."""
    search_lag: Seconds = 0.0
    """Seconds before a created or changed object shows in ``…/search`` (Stripe: usually under a minute)."""
    webhook_duplicates: Share = 0.0
    """Share of successful webhook deliveries sent a second time."""
    webhook_reorder_window: Seconds = 0.0
    """Each new delivery waits a random 0 to this many seconds first, so deliveries arrive out of order."""
    seed: int = 0
    """Seed of the random draws."""

    def __post_init__(self) -> None:
        """Refuse rates that cannot both hold."""
        if self.rate_429 + self.rate_5xx > 1:
            raise ValueError("rate_429 + rate_5xx is at most 1")


class Counters(msgspec.Struct, kw_only=True):
    """Counts of what happened since start or the last reset. Mutable: the sandbox adds to it as it goes."""

    requests: int = 0
    """``/v1`` requests, faulted ones included."""
    unauthorized: int = 0
    """``/v1`` requests answered 401."""
    writes: int = 0
    """``POST`` and ``DELETE`` requests that ran (replays and refused ones excluded)."""
    idempotent_replays: int = 0
    """Answers replayed from a saved ``Idempotency-Key`` result (``Idempotent-Replayed: true``)."""
    idempotency_mismatches: int = 0
    """Keys reused with other parameters or on another endpoint (400 ``idempotency_error``)."""
    idempotency_conflicts: int = 0
    """Keys reused while their first request still ran (409 ``idempotency_key_in_use``)."""
    idempotency_keys_expired: int = 0
    """Saved keys pruned, at 24 hours of age or through the control API."""
    events: int = 0
    """Events created."""
    webhook_attempts: int = 0
    """Delivery attempts, duplicates included."""
    webhook_delivered: int = 0
    """Attempts answered 2xx."""
    webhook_failed_attempts: int = 0
    """Attempts answered otherwise, or not at all (connection refused, timeout)."""
    webhook_retries: int = 0
    """Attempts that were retries of a failed one."""
    webhook_abandoned: int = 0
    """Deliveries given up after the retry horizon."""
    rate_429: int = msgspec.field(default=0, name="429")
    """Injected 429s."""
    rate_5xx: int = msgspec.field(default=0, name="5xx")
    """Injected 5xx."""
    slow_writes: int = 0
    """Writes held back by the ``write_delay`` fault."""
    search_lagged: int = 0
    """Objects a search left out because the ``search_lag`` fault hid them."""
    webhook_duplicates: int = 0
    """Deliveries sent twice by the ``webhook_duplicates`` fault."""
    webhook_reordered: int = 0
    """Deliveries held back by the ``webhook_reorder_window`` fault."""

    def faults(self) -> dict[str, int]:
        """The injected-fault counters alone, as ``GET /sandbox/faults`` shows them."""
        return {
            "429": self.rate_429,
            "5xx": self.rate_5xx,
            "slow_writes": self.slow_writes,
            "search_lagged": self.search_lagged,
            "webhook_duplicates": self.webhook_duplicates,
            "webhook_reordered": self.webhook_reordered,
        }


class Faults(SandboxFaults[FaultConfig, Counters]):
    """The current fault configuration, its random draws, and the counters faults add to."""

    def __init__(self, counters: Counters) -> None:
        """No faults; injected ones are counted in ``counters``."""
        super().__init__(counters, FaultConfig())

    def request_fault(self) -> int | None:
        """The status to answer a ``/v1`` request with instead of serving it (counted), or ``None``."""
        config = self.config
        if not config.rate_429 and not config.rate_5xx:
            return None
        draw = self._random.random()
        if draw < config.rate_429:
            self.counters.rate_429 += 1
            return 429
        if draw < config.rate_429 + config.rate_5xx:
            self.counters.rate_5xx += 1
            return self._random.choice(SERVER_ERRORS)
        return None

    def write_delay(self) -> float:
        """Seconds the current write holds its answer back (counted when more than zero)."""
        delay = self.config.write_delay
        if delay:
            self.counters.slow_writes += 1
        return delay

    def duplicate(self) -> bool:
        """Whether to send a delivered event once more (counted when so)."""
        rate = self.config.webhook_duplicates
        if rate and self._random.random() < rate:
            self.counters.webhook_duplicates += 1
            return True
        return False

    def reorder_delay(self) -> float:
        """Seconds a new delivery waits before its first attempt (counted when more than zero)."""
        window = self.config.webhook_reorder_window
        if not window:
            return 0.0
        self.counters.webhook_reordered += 1
        return self._random.uniform(0, window)
