"""Idempotent writes: the call that makes one, retried while the ERP is busy, and its outcome.

Every finsync write to Tryton carries an external reference that the ERP holds
unique, so running it again can never write twice: a replay whose first run
committed is refused by the unique constraint, and the caller answers with the
record already written. That makes a write safe to retry when Tryton answers
"busy", which it does by design: it takes its locks without waiting (numbering
a customer invoice locks its strict sequence ``NOWAIT``), so two invoices posted
at once make one of them fail with 503 "could not obtain lock", having written
nothing.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from shared.errors import UpstreamUnavailableError

if TYPE_CHECKING:
    from system_apis.connectors.tryton.rpc import TrytonRPC

__all__ = ("WRITE_ATTEMPTS", "Written", "call_write")

T = TypeVar("T")

WRITE_ATTEMPTS: Final = 8
"""Tries of a write that Tryton answered as busy or unavailable (the first included)."""
_BACKOFF: Final = 0.1
"""Base of the exponential backoff between tries, in seconds; full jitter, at most :data:`_MAX_WAIT`."""
_MAX_WAIT: Final = 2.0


@dataclass(frozen=True, slots=True)
class Written(Generic[T]):
    """What a create answers: 201 when ``created``, 200 when the same record was already there."""

    record: T
    """The record as the ERP holds it now."""
    created: bool
    """True when this call wrote it; False when it existed under the same external reference."""


async def call_write(rpc: TrytonRPC, method: str, *params: Any) -> Any:
    """Call the write ``method``, whose effect carries a unique external reference, retrying while Tryton is busy.

    Raises:
        UpstreamUnavailableError: Tryton stayed busy or unreachable for :data:`WRITE_ATTEMPTS` tries.
        TrytonUserError, UpstreamTimeoutError, UpstreamError: as :meth:`TrytonRPC.call`, never retried.
    """
    attempt = 1
    while True:
        try:
            return await rpc.call(method, *params, read=False)
        except UpstreamUnavailableError:
            if attempt == WRITE_ATTEMPTS:
                raise
        await asyncio.sleep(random.uniform(0, min(_MAX_WAIT, _BACKOFF * 2**attempt)))  # noqa: S311 - jitter
        attempt += 1
