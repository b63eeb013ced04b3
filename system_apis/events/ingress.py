"""What every push route shares: appending its events before it answers, counting, and reading its secrets.

A push is answered only after :meth:`Ingress.persist` returns, so the source
sees its acknowledgement only for events already on the stream. A push turned
away under back-pressure raises :class:`~shared.errors.ServiceUnavailableError`
(503 with ``Retry-After``): Stripe retries anything but a 2xx, Salesforce
anything but an ``Ack``, and the catch-up sweep recovers what they give up on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from shared.errors import ServiceUnavailableError, SettingsError
from system_apis.events.stream import Appended, EventStream, Outcome

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    import redis.asyncio as aioredis

    from shared.events import SourceEvent
    from shared.settings import EventSettings
    from system_apis.events.metrics import IngressMetrics, Reason

__all__ = ("Ingress", "read_secrets")

logger = logging.getLogger("finsync.ingress")


def read_secrets(values: Iterable[str | None], files: Iterable[str | None]) -> list[str]:
    """The secrets given inline and in files (one per file, surrounding whitespace dropped), non-empty ones.

    Raises:
        SettingsError: a configured file cannot be read.
    """
    found = [value for value in values if value]
    for name in files:
        if not name:
            continue
        try:
            secret = Path(name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(f"cannot read the secret file {name}: {exc.strerror}") from exc
        if secret:
            found.append(secret)
    return found


class Ingress:
    """The streams and counters of the push routes; one per app, on ``app.state.ingress``."""

    def __init__(self, redis: aioredis.Redis, settings: EventSettings, metrics: IngressMetrics) -> None:
        self.stream = EventStream(redis, settings)
        """The published streams."""
        self.metrics = metrics
        """What was accepted, repeated, rejected and turned away (made once per app: a lifespan may run
        again, and a registry refuses a counter twice)."""
        self.settings = settings
        """Backlog bound, dedupe window, ``Retry-After``."""

    async def persist(self, source: str, kind: str, events: Sequence[SourceEvent]) -> Appended:
        """Append ``events`` of one push from ``source`` and count the push.

        Raises:
            ServiceUnavailableError: the stream's backlog is over its bound; nothing was appended.
        """
        appended = await self.stream.append(kind, events)
        added = sum(1 for entry in appended.entries if entry is not None)
        self.metrics.outcome(source, kind, appended.outcome.value, added)
        if appended.outcome is Outcome.TURNED_AWAY:
            logger.warning(
                "push from %s turned away: the %s stream holds %d entries or more",
                source,
                kind,
                self.settings.max_backlog,
            )
            raise ServiceUnavailableError(
                f"the {kind} event stream is over its backlog bound; retry later",
                retry_after=self.settings.retry_after,
            )
        return appended

    def reject(self, source: str, kind: str, reason: Reason, detail: str) -> None:
        """Log and count a push refused for ``reason`` (nothing of it was appended); ``ignored_type`` is
        acknowledged, not refused, and logged at debug level only."""
        self.metrics.rejected(source, kind, reason)
        if reason == "ignored_type":
            logger.debug("push from %s dropped: %s", source, detail)
            return
        logger.warning("push from %s refused (%s): %s", source, reason, detail)
