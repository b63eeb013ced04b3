"""Five-field cron expressions, as Vixie cron reads them, evaluated in UTC.

``minute hour day-of-month month day-of-week``. Each field is ``*``, a value,
a range ``1-5``, a step ``*/15``, ``1-30/10`` or ``5/15`` (from 5 to the end),
or a comma list of these. Months and weekdays also take English abbreviations
(``jan``, ``mon``); weekday 0 and 7 are both Sunday. ``@yearly``,
``@annually``, ``@monthly``, ``@weekly``, ``@daily``, ``@midnight`` and
``@hourly`` stand for their usual expressions.

Day of month and day of week follow cron's rule: when both are restricted
(neither starts with ``*``), a day matches when *either* does
(``0 0 1 * mon`` fires on the 1st and on every Monday); otherwise both must.

No library is used: ``croniter`` is not among the project's dependencies, and
this is the small part of it the scheduler needs.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

__all__ = ("CronExpression", "next_fire", "parse_cron")

_NICKNAMES: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS: Final = {name.lower(): number for number, name in enumerate(calendar.month_abbr) if name}
_WEEKDAYS: Final = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_SEARCH_YEARS: Final = 50
"""Every expression that can fire does so within this many years (Feb 29 on a given weekday is the rarest)."""


@dataclass(frozen=True, slots=True)
class _Field:
    """One field's bounds and the names it accepts."""

    name: str
    low: int
    high: int
    names: dict[str, int]


_FIELDS: Final = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day of month", 1, 31, {}),
    _Field("month", 1, 12, _MONTHS),
    _Field("day of week", 0, 7, _WEEKDAYS),
)


@dataclass(frozen=True, slots=True)
class CronExpression:
    """A parsed expression: the values each field allows."""

    minutes: frozenset[int]
    """Minutes 0-59."""
    hours: frozenset[int]
    """Hours 0-23."""
    days: frozenset[int]
    """Days of month 1-31."""
    months: frozenset[int]
    """Months 1-12."""
    weekdays: frozenset[int]
    """Days of week 0-6, Sunday is 0."""
    days_restricted: bool
    """The day-of-month field does not start with ``*``."""
    weekdays_restricted: bool
    """The day-of-week field does not start with ``*``."""

    def _day_matches(self, at: datetime) -> bool:
        """The day rule: either day field when both are restricted, else both."""
        day = at.day in self.days
        weekday = (at.weekday() + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day or weekday
        return day and weekday

    def matches(self, at: datetime) -> bool:
        """Whether the expression fires at ``at`` (taken in UTC, to the minute)."""
        at = _utc(at)
        return (
            at.minute in self.minutes
            and at.hour in self.hours
            and at.month in self.months
            and self._day_matches(at)
        )

    def next_after(self, after: datetime) -> datetime:
        """The first fire time strictly after ``after``, in UTC, whole minutes."""
        at = _utc(after).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = at.year + _SEARCH_YEARS
        while at.year <= limit:
            if at.month not in self.months:
                at = (at.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0)
            elif not self._day_matches(at):
                at = (at + timedelta(days=1)).replace(hour=0, minute=0)
            elif at.hour not in self.hours:
                at = (at + timedelta(hours=1)).replace(minute=0)
            elif at.minute not in self.minutes:
                at += timedelta(minutes=1)
            else:
                return at
        raise ValueError("cron expression never fires")  # parse_cron rules this out; kept as a guard


def _utc(at: datetime) -> datetime:
    """``at`` in UTC; a naive time is refused rather than guessed."""
    if at.tzinfo is None:
        raise ValueError("a cron time must be timezone-aware")
    return at.astimezone(UTC)


def _number(text: str, field: _Field) -> int:
    """One value of ``field``: a number or a name, within bounds."""
    value = field.names.get(text.lower())
    if value is None:
        if not (text.isascii() and text.isdigit()):
            raise ValueError(f"cron {field.name}: {text!r} is not a number")
        value = int(text)
    if not field.low <= value <= field.high:
        raise ValueError(f"cron {field.name}: {value} is outside {field.low}-{field.high}")
    return value


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    """The values a field allows: a comma list of ``*``, values and ranges, each with an optional step."""
    values: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not (step_text.isascii() and step_text.isdigit()) or int(step_text) == 0:
                raise ValueError(f"cron {field.name}: bad step in {part!r}")
            step = int(step_text)
        if span == "*":
            low, high = field.low, field.high
        elif "-" in span:
            first, _, last = span.partition("-")
            low, high = _number(first, field), _number(last, field)
            if low > high:
                raise ValueError(f"cron {field.name}: range {span!r} runs backwards")
        else:
            low = _number(span, field)
            # "5/15" runs from 5 to the end of the field; a bare "5" is 5 alone.
            high = field.high if step_text else low
        values.update(range(low, high + 1, step))
    return frozenset(values)


def parse_cron(expr: str) -> CronExpression:
    """Parse a five-field cron expression or an ``@`` nickname.

    Raises:
        ValueError: The expression is malformed, or names a date that never exists (``0 0 30 2 *``).
    """
    text = _NICKNAMES.get(expr.strip().lower(), expr)
    parts = text.split()
    if len(parts) != len(_FIELDS):
        raise ValueError(f"cron expression {expr!r} has {len(parts)} fields, not 5")
    minutes, hours, days, months, weekdays = (
        _parse_field(part, field) for part, field in zip(parts, _FIELDS, strict=True)
    )
    parsed = CronExpression(
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=frozenset(day % 7 for day in weekdays),
        days_restricted=not parts[2].startswith("*"),
        weekdays_restricted=not parts[4].startswith("*"),
    )
    # With the weekday restricted too, any weekday makes a day match; otherwise some allowed day of month
    # must exist in some allowed month (Feb counts 29 days: it fires in leap years).
    days_per_month = {month: calendar.monthrange(2000, month)[1] for month in months}
    if not (parsed.days_restricted and parsed.weekdays_restricted) and not any(
        min(days) <= days_per_month[month] for month in months
    ):
        raise ValueError(f"cron expression {expr!r} names a day that never exists")
    return parsed


def next_fire(expr: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` at which ``expr`` fires, in UTC.

    Raises:
        ValueError: ``expr`` is not a valid cron expression, or ``after`` is naive.
    """
    return parse_cron(expr).next_after(after)
