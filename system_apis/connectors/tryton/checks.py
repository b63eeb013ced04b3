"""Checks the connector's writes share: a date the entity can post to, and text the ERP can store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.canonical import PeriodState
from shared.errors import Violation

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import date

    from shared.canonical import FiscalPeriod

__all__ = ("period_violation", "text_violations")


def period_violation(periods: list[FiscalPeriod], day: date, entity: str, field: str) -> Violation | None:
    """Why ``day`` cannot be posted to in ``periods`` (closed, or in no period); ``None`` when it can."""
    period = next((p for p in periods if p.start_date <= day <= p.end_date), None)
    if period is None:
        return Violation(
            reason="no-period", message=f"{entity} has no fiscal period for {day.isoformat()}", field=field
        )
    if period.state is not PeriodState.OPEN:
        return Violation(
            reason="closed-period", message=f"period {period.code} of {entity} is closed", field=field
        )
    return None


def text_violations(texts: Mapping[str, str | None], line: int | None = None) -> list[Violation]:
    """A violation for each of ``texts`` (field name: value) with a NUL character, which PostgreSQL cannot store.

    JSON can carry one (``"\\u0000"``) and the schema allows it; Tryton would fail on it, not refuse it.
    """
    where = f"line {line}: " if line is not None else ""
    return [
        Violation(
            reason="invalid-text",
            message=f"{where}{field} contains a NUL character, which the ERP cannot store",
            line=line,
            field=field,
        )
        for field, text in texts.items()
        if text is not None and "\x00" in text
    ]
