"""The org's clock: what ``CreatedDate``, ``LastModifiedDate`` and ``SystemModstamp`` are stamped with.

It runs with the wall clock, in whole seconds (Salesforce's system stamps
carry ``.000`` milliseconds, so several changes in one second share a stamp:
a client's cursor must break ties by ``Id``). It never runs behind the
seed's last stamp, and the control API can move it forward, never back, so
a later change always has a later or equal stamp.
"""

from __future__ import annotations

import datetime as dt

__all__ = ("Clock", "utc_now")


def utc_now() -> dt.datetime:
    """The wall clock, UTC."""
    return dt.datetime.now(dt.UTC)


class Clock:
    """The wall clock plus an offset that only grows."""

    def __init__(self, floor: dt.datetime) -> None:
        """A clock that reads at least ``floor`` from now on."""
        self._offset = max(dt.timedelta(0), floor - utc_now())

    def now(self) -> dt.datetime:
        """Now, UTC, truncated to the second."""
        return (utc_now() + self._offset).replace(microsecond=0)

    @property
    def offset(self) -> float:
        """Seconds the clock runs ahead of the wall clock."""
        return self._offset.total_seconds()

    def set(self, when: dt.datetime) -> None:
        """Jump forward to ``when`` (timezone-aware).

        Raises:
            ValueError: ``when`` is earlier than now on this clock.
        """
        if when < self.now():
            raise ValueError(
                f"the sandbox clock only moves forward; it reads {self.now().isoformat()} already"
            )
        self._offset = when - utc_now()

    def advance(self, seconds: float) -> None:
        """Jump forward by ``seconds`` (at least 0)."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self._offset += dt.timedelta(seconds=seconds)
