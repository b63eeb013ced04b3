"""``Idempotency-Key`` on ``POST``, the way Stripe documents it for API v1.

- The first request with a key runs; once the endpoint has begun executing,
  its status and body are saved, errors (a 400 for an invoice in the wrong
  state, a 402 decline, a 500) included.
- A later request with the same key and the same parameters gets the saved
  answer again, marked ``Idempotent-Replayed: true`` and with the first
  request's id in ``Original-Request``; nothing runs a second time.
- The same key with other parameters, or on another endpoint, is a 400
  ``idempotency_error``; while the first request still runs, a second one gets
  409 ``idempotency_key_in_use``. Neither is saved.
- Requests refused before the endpoint began (an injected 429 or 5xx, a 401,
  a parameter that fails validation) save nothing: a retry runs afresh.
- Keys are at most 255 characters, and are pruned once they are 24 hours old
  by the sandbox's clock (:meth:`IdempotencyStore.expire` prunes on demand).
- ``GET`` and ``DELETE`` ignore the header, as Stripe does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

from system_apis.connectors.stripe.sandbox.errors import (
    IdempotencyError,
    IdempotencyKeyInUseError,
    InvalidRequestError,
)

if TYPE_CHECKING:
    from system_apis.connectors.stripe.sandbox.faults import Counters
    from system_apis.connectors.stripe.sandbox.store import Clock

__all__ = ("MAX_KEY_LENGTH", "RETENTION", "IdempotencyStore", "SavedResult")

MAX_KEY_LENGTH = 255
"""Longest key Stripe takes."""
RETENTION = 24 * 3600
"""Seconds a key is kept (Stripe: keys may be pruned once they are at least 24 hours old)."""
_encoder = msgspec.json.Encoder(order="sorted")


@dataclass(kw_only=True)
class SavedResult:
    """What one key stands for: the request it came with and, once answered, the answer."""

    endpoint: str
    """``METHOD /path`` of the first request."""
    fingerprint: bytes
    """Its parameters, canonically encoded."""
    created: int
    """When the first request came (the sandbox's clock)."""
    request_id: str
    """The first request's id."""
    status: int | None = None
    """The saved status; None while the first request runs."""
    body: bytes = field(default=b"", repr=False)
    """The saved body."""
    running: bool = True
    """Whether the first request has not answered yet."""


class IdempotencyStore:
    """Saved results by key."""

    def __init__(self, clock: Clock, counters: Counters) -> None:
        """No keys."""
        self.clock = clock
        self.counters = counters
        self.results: dict[str, SavedResult] = {}
        """Saved results by key."""

    def expire(self, older_than: int | None = None) -> int:
        """Prune keys at least ``older_than`` seconds old (every finished key when None); answers how many."""
        now = self.clock.now()
        doomed = [
            key
            for key, saved in self.results.items()
            if not saved.running and (older_than is None or now - saved.created >= older_than)
        ]
        for key in doomed:
            del self.results[key]
        self.counters.idempotency_keys_expired += len(doomed)
        return len(doomed)

    def begin(self, key: str, endpoint: str, params: dict[str, Any], request_id: str) -> SavedResult | None:
        """The saved result to replay for ``key``, or None after marking ``key`` as running for this request.

        Raises:
            InvalidRequestError: the key is empty or longer than 255 characters.
            IdempotencyKeyInUseError: the first request with the key is still running.
            IdempotencyError: the key came with other parameters or on another endpoint.
        """
        if not key or len(key) > MAX_KEY_LENGTH:
            raise InvalidRequestError(
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters long", param="Idempotency-Key"
            )
        self.expire(RETENTION)
        fingerprint = _encoder.encode(params)
        saved = self.results.get(key)
        if saved is None:
            self.results[key] = SavedResult(
                endpoint=endpoint, fingerprint=fingerprint, created=self.clock.now(), request_id=request_id
            )
            return None
        if saved.running:
            self.counters.idempotency_conflicts += 1
            raise IdempotencyKeyInUseError(
                "There is currently another in-progress request using this Idempotent Key (that probably means "
                f"you submitted twice, and the other request is still going through): {key}. Please try again "
                "later.",
                code="idempotency_key_in_use",
            )
        if saved.endpoint != endpoint:
            self.counters.idempotency_mismatches += 1
            raise IdempotencyError(
                "Keys for idempotent requests can only be used for the same endpoint they were first used for "
                f"({saved.endpoint!r} vs {endpoint!r}). Try using a key other than '{key}' if you meant to "
                "execute a different request."
            )
        if saved.fingerprint != fingerprint:
            self.counters.idempotency_mismatches += 1
            raise IdempotencyError(
                "Keys for idempotent requests can only be used with the same parameters they were first used "
                f"with. Try using a key other than '{key}' if you meant to execute a different request."
            )
        self.counters.idempotent_replays += 1
        return saved

    def save(self, key: str, status: int, body: bytes) -> None:
        """Save the answer of the request that runs under ``key`` (it still counts as running)."""
        saved = self.results[key]
        saved.status, saved.body = status, body

    def finish(self, key: str) -> None:
        """The request under ``key`` has answered: replays may start; a key with no saved answer is dropped."""
        saved = self.results.get(key)
        if saved is None:
            return
        if saved.status is None:
            del self.results[key]
        else:
            saved.running = False

    def view(self) -> list[dict[str, Any]]:
        """``GET /sandbox/idempotency``: each key, its endpoint, age and state."""
        now = self.clock.now()
        return [
            {
                "key": key,
                "endpoint": saved.endpoint,
                "age": now - saved.created,
                "status": saved.status,
                "running": saved.running,
            }
            for key, saved in self.results.items()
        ]
