"""A progress bar for long work watched from a terminal, with no dependency.

On a terminal it redraws one line in place (step, bar, percentage, elapsed
seconds); anywhere else (a pipe, a log file, CI) it writes one line per change
of step, so a log reads as a short history instead of a thousand redraws.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

__all__ = ("ProgressBar",)

_CLEAR_TO_END = "\x1b[K"


class ProgressBar:
    """One line of progress on ``stream``: redrawn on a TTY, one line per step otherwise."""

    def __init__(
        self,
        stream: TextIO,
        label: str,
        *,
        width: int = 30,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Args:
        stream: Where to draw (stderr, usually).
        label: What the work is, shown first on every line.
        width: Characters of the bar on a TTY.
        tty: Redraw in place; default: whether ``stream`` is a terminal.
        clock: Seconds, for the elapsed time.
        """
        self.stream = stream
        self.label = label
        self.width = width
        self.tty = stream.isatty() if tty is None else tty
        self._clock = clock
        self._started = clock()
        self._last: tuple[str, int] | None = None
        self._drawn = False
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        self._marks = ("█", "░") if encoding == "utf8" else ("#", "-")

    @property
    def elapsed(self) -> float:
        """Seconds since the bar was created."""
        return self._clock() - self._started

    def update(self, step: str, share: float) -> None:
        """Show ``step`` at ``share`` (0..1) done."""
        share = min(max(share, 0.0), 1.0)
        percent = round(share * 100)
        if self.tty:
            done = round(share * self.width)
            bar = self._marks[0] * done + self._marks[1] * (self.width - done)
            line = f"{self.label} {step:<10} {bar} {percent:3d}%  {self.elapsed:4.0f}s"
            self.stream.write(f"\r{line}{_CLEAR_TO_END}")
            self._drawn = True
        elif self._last is None or self._last[0] != step:
            self.stream.write(f"{self.label}: {step} {percent}% ({self.elapsed:.0f}s)\n")
        self._last = (step, percent)
        self.stream.flush()

    def close(self) -> None:
        """End the line drawn on a TTY, so what follows starts on a line of its own."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
