"""Period ranges of the workbench's reads: defaults, order and bounds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from process_apis.flows.actuals_to_plan.job import months
from shared.errors import BadRequestError

if TYPE_CHECKING:
    from datetime import date

__all__ = ("MAX_PERIODS", "PERIOD_PATTERN", "period_range")

PERIOD_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
"""A period, ``YYYY-MM``."""
MAX_PERIODS = 24
"""Most months one read covers (as one actuals-to-plan run)."""


def period_range(period_from: str | None, period_to: str | None, today: date) -> list[str]:
    """The months from ``period_from`` to ``period_to``, both included.

    A missing bound is taken from the calendar year of the other one (``from=2026-04`` alone runs to
    ``2026-12``; ``to=2026-03`` alone starts at ``2026-01``); with neither, the current calendar year.

    Raises:
        BadRequestError: ``from`` is after ``to``, or the range is longer than :data:`MAX_PERIODS` months.
    """
    if period_from is None and period_to is None:
        period_from, period_to = f"{today.year:04d}-01", f"{today.year:04d}-12"
    elif period_from is None:
        assert period_to is not None
        period_from = f"{period_to[:4]}-01"
    elif period_to is None:
        period_to = f"{period_from[:4]}-12"
    if period_from > period_to:
        raise BadRequestError(f"from ({period_from}) is after to ({period_to})", field="from")
    covered = months(period_from, period_to, most=MAX_PERIODS)
    if len(covered) > MAX_PERIODS:
        raise BadRequestError(
            f"{period_from}..{period_to} is longer than {MAX_PERIODS} months; ask for less", field="to"
        )
    return covered
