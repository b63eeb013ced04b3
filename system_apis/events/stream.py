"""Appending pushed events to their published stream: de-duplicated, bounded, and before the source is answered.

One Lua script does the whole append, because Redis runs a script alone and
whole: for each event, unless its dedupe marker exists, ``SET marker NX EX
window`` and ``XADD`` the entry. A marker therefore never exists without its
entry (a crash between the two would lose the event for the marker's whole
window), and an entry is never added twice while its marker lives.

Back-pressure is judged by ``XLEN``: the process layer deletes the entries it
has acknowledged (``XACK`` then ``XDEL``), so the length of the stream is its
backlog, whether or not a consumer group exists yet, without scanning the
group's pending list. When the backlog is at ``max_backlog`` or past it, a push
that brings anything new is turned away whole (nothing is written); one that
only repeats known events is still acknowledged, as it costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Final

import msgspec

from shared.events import FIELD, STREAMS, SourceEvent

if TYPE_CHECKING:
    from collections.abc import Sequence

    import redis.asyncio as aioredis

    from shared.settings import EventSettings

__all__ = ("DEDUPE_PREFIX", "Appended", "EventStream", "Outcome")

DEDUPE_PREFIX: Final = "finsync:events:seen:"
"""Key prefix of the dedupe markers: ``{prefix}{dedupe_key}``."""

# KEYS[1] stream, KEYS[2..n+1] dedupe markers; ARGV[1] marker lifetime (s), ARGV[2] bound of the backlog,
# ARGV[3] entry field, ARGV[4..n+3] encoded events. Answers one value per event: the new entry's id, or 0
# for a duplicate; or -1 alone when something is new and the backlog is full (then nothing is written).
_APPEND: Final = """
local new = 0
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then new = new + 1 end
end
if new > 0 and redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[2]) then
  return {-1}
end
local answers = {}
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'EX', ARGV[1]) then
    answers[#answers + 1] = redis.call('XADD', KEYS[1], '*', ARGV[3], ARGV[i + 2])
  else
    answers[#answers + 1] = 0
  end
end
return answers
"""

_ENCODER = msgspec.json.Encoder()


class Outcome(StrEnum):
    """What became of one push."""

    ACCEPTED = "accepted"
    """At least one of its events is new, and was appended."""
    DUPLICATE = "duplicate"
    """Every event of it was appended before (a retry, or a duplicated delivery)."""
    TURNED_AWAY = "turned_away"
    """The stream's backlog is over its bound: nothing was appended; the source retries later."""


@dataclass(frozen=True)
class Appended:
    """The answer of one append."""

    outcome: Outcome
    """Accepted, duplicate or turned away."""
    entries: tuple[str | None, ...] = ()
    """Per event, the id of its new stream entry, or ``None`` when it was a duplicate."""


class EventStream:
    """The published streams, as the ingress writes them."""

    def __init__(self, redis: aioredis.Redis, settings: EventSettings) -> None:
        self.settings = settings
        """Backlog bound, dedupe window, ``Retry-After``."""
        self._append = redis.register_script(_APPEND)

    async def append(self, kind: str, events: Sequence[SourceEvent]) -> Appended:
        """Append the new ones of ``events`` (all of source kind ``kind``) to ``STREAMS[kind]``, in order."""
        if not events:
            return Appended(Outcome.DUPLICATE)
        keys = [STREAMS[kind], *(DEDUPE_PREFIX + event.dedupe_key for event in events)]
        args: list[str | bytes | int] = [
            self.settings.dedupe_window,
            self.settings.max_backlog,
            FIELD,
            *(_ENCODER.encode(event) for event in events),
        ]
        answers = await self._append(keys=keys, args=args)
        if answers == [-1]:
            return Appended(Outcome.TURNED_AWAY)
        entries = tuple(None if answer == 0 else _text(answer) for answer in answers)
        outcome = Outcome.ACCEPTED if any(entry is not None for entry in entries) else Outcome.DUPLICATE
        return Appended(outcome, entries)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
