"""Fault injection, set through ``PUT /sandbox/faults``, and the counters of what happened.

Faults are drawn from ``random.Random(seed)``, so a test that sets a seed
sees the same faults on every run. An injected 429 or 5xx is decided before a
``/2/0`` request does anything, so a faulted request has no effect and a retry
is always safe. Every injected fault is counted; so is what the sandbox did
(authentications, requests, tasks, chunks, polls that came too fast).
"""

from __future__ import annotations

import time
from typing import Annotated

import msgspec
from msgspec import Meta

from system_apis.connectors.sandbox_faults import SandboxFaults

__all__ = ("SERVER_ERRORS", "Counters", "FaultConfig", "Faults")

SERVER_ERRORS = (500, 502, 503)
"""Statuses an injected 5xx answers with, one drawn per fault."""

Share = Annotated[float, Meta(ge=0, le=1)]


class FaultConfig(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """What to break. ``PUT /sandbox/faults`` replaces the whole configuration: a field left out is off.

    ``forbid_unknown_fields`` so a misspelt fault fails loudly instead of silently doing nothing.
    """

    rate_429: Share = 0.0
    """Share of ``/2/0`` requests answered 429 with ``Retry-After``."""
    rate_5xx: Share = 0.0
    """Share of ``/2/0`` requests answered 500, 502 or 503."""
    retry_after: Annotated[int, Meta(ge=0, le=3600)] = 1
    """Seconds in the ``Retry-After`` of an injected 429."""
    busy_seconds: Annotated[float, Meta(ge=0, le=3600)] = 0.0
    """For this long from now, the model answers 409 to task starts and to model status."""
    task_delay: Annotated[float, Meta(ge=0, le=600)] = 0.0
    """Extra seconds each task takes (slow tasks), spread over its progress."""
    failed_rows: Share = 0.0
    """Share of otherwise valid import rows that fail with an injected error."""
    seed: int = 0
    """Seed of the random draws."""

    def __post_init__(self) -> None:
        """Refuse rates that cannot both hold."""
        if self.rate_429 + self.rate_5xx > 1:
            raise ValueError("rate_429 + rate_5xx is at most 1")


class Counters(msgspec.Struct, kw_only=True):
    """Counts of what happened since start or the last reset. Mutable: the sandbox adds to it as it goes."""

    authentications: int = 0
    """Successful ``/token/authenticate`` calls."""
    authentication_failures: int = 0
    """``/token/authenticate`` calls with wrong or missing credentials."""
    refreshes: int = 0
    """Successful ``/token/refresh`` calls."""
    logouts: int = 0
    """Successful ``/token/logout`` calls."""
    unauthorized: int = 0
    """``/2/0`` requests answered 401 (no token, unknown or expired)."""
    requests: int = 0
    """``/2/0`` requests, faulted ones included."""
    tasks_started: dict[str, int] = msgspec.field(default_factory=lambda: {"imports": 0, "exports": 0})
    """Tasks started, by kind."""
    chunks_uploaded: int = 0
    """Chunks accepted by ``PUT …/chunks/{n}`` (a replaced chunk counts again)."""
    polls_too_fast: int = 0
    """Task polls answered 429 because they came closer than the minimum poll interval."""
    model_busy: int = 0
    """409s answered because a task was running on the model (not injected)."""
    rate_429: int = msgspec.field(default=0, name="429")
    """Injected 429s."""
    rate_5xx: int = msgspec.field(default=0, name="5xx")
    """Injected 5xx."""
    busy: int = 0
    """Injected 409s (the busy fault)."""
    slow_tasks: int = 0
    """Tasks slowed by the ``task_delay`` fault."""
    failed_rows: int = 0
    """Import rows failed by the ``failed_rows`` fault."""

    def faults(self) -> dict[str, int]:
        """The injected-fault counters alone, as ``GET /sandbox/faults`` shows them."""
        return {
            "429": self.rate_429,
            "5xx": self.rate_5xx,
            "busy": self.busy,
            "slow_tasks": self.slow_tasks,
            "failed_rows": self.failed_rows,
        }


class Faults(SandboxFaults[FaultConfig, Counters]):
    """The current fault configuration, its random draws, and the counters faults add to."""

    def __init__(self, counters: Counters) -> None:
        """No faults; injected ones are counted in ``counters``."""
        super().__init__(counters, FaultConfig())
        self._busy_until = 0.0

    def configure(self, config: FaultConfig) -> None:
        """Replace the configuration and reseed the draws; the busy window starts now."""
        super().configure(config)
        self._busy_until = time.monotonic() + config.busy_seconds if config.busy_seconds else 0.0

    def request_fault(self) -> int | None:
        """The status to answer a ``/2/0`` request with instead of serving it (counted), or ``None``."""
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

    def busy(self) -> bool:
        """Whether the busy fault holds the model now (counted when it does)."""
        if time.monotonic() < self._busy_until:
            self.counters.busy += 1
            return True
        return False

    def fail_row(self) -> bool:
        """Whether to fail one otherwise valid import row (counted when so)."""
        rate = self.config.failed_rows
        if rate and self._random.random() < rate:
            self.counters.failed_rows += 1
            return True
        return False

    def task_delay(self) -> float:
        """Extra seconds the next task takes (counted as a slow task when more than zero)."""
        delay = self.config.task_delay
        if delay:
            self.counters.slow_tasks += 1
        return delay
