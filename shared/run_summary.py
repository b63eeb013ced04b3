"""The reconciliation summary a finished run ends with: per entity and period, totals to the cent.

It reads what the process layer answers (the run, and its ``/v1/reconciliations``
lines) as plain JSON: ``account`` null is a slice's total line, the others are
its accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import TextIO

__all__ = ("money", "write_summary")

SHOWN_MISMATCHES = 20
"""Mismatched lines printed under the summary; the rest are counted."""
CENT = Decimal("0.01")


def money(value: Decimal) -> str:
    """To the cent, with thousands separators; every digit when there are more than two decimals."""
    return f"{value:,.2f}" if value == value.quantize(CENT) else f"{value:,}"


@dataclass
class _SliceSummary:
    """The reconciliation of one entity and period."""

    state: str = ""
    accounts: int = 0
    matched: int = 0
    mismatched: int = 0
    erp_total: Decimal = Decimal(0)
    planning_total: Decimal = Decimal(0)
    total_matched: bool = True


def _summarise(run: dict[str, Any], lines: list[dict[str, Any]]) -> dict[tuple[str, str], _SliceSummary]:
    """Per (entity, period): the run's slices, with their account lines counted and their total line's sums."""
    summary: dict[tuple[str, str], _SliceSummary] = {}
    for key, detail in ((run.get("result") or {}).get("slices") or {}).items():
        _source, entity, period = key.rsplit(":", 2)
        summary[entity, period] = _SliceSummary(state=str(detail.get("period_state") or ""))
    for line in lines:
        item = summary.setdefault((line["entity"], line["period"]), _SliceSummary())
        matched = line["status"] == "matched"
        if line.get("account") is None:
            item.erp_total = Decimal(line["erp_total"])
            item.planning_total = Decimal(line["planning_total"])
            item.total_matched = matched
        else:
            item.accounts += 1
            item.matched += matched
            item.mismatched += not matched
    return dict(sorted(summary.items()))


def write_summary(run: dict[str, Any], lines: list[dict[str, Any]], out: TextIO) -> None:
    """The reconciliation per entity and period, then the mismatched lines (at most a screenful)."""
    if run["status"] != "succeeded":
        return
    summary = _summarise(run, lines)
    params = run.get("params") or {}
    if not summary:
        out.write(
            f"no slices: the ERP has no period from {params.get('period_from')} to {params.get('period_to')}\n"
        )
        out.flush()
        return
    if (run.get("result") or {}).get("dry_run"):
        counts = run.get("counts") or {}
        out.write(
            f"dry run over {len(summary)} slice(s): {counts.get('cells', 0)} cell(s) would be loaded, "
            f"{counts.get('unmapped', 0)} unmapped amount(s), {counts.get('slices_refused', 0)} slice(s) refused\n"
        )
        out.flush()
        return
    out.write(
        f"reconciliation, ERP {params.get('source', '?')} against planning {params.get('planning', '?')} "
        "(per entity and period; totals to the cent):\n"
    )
    header = (
        "entity",
        "period",
        "state",
        "accounts",
        "matched",
        "mismatched",
        "ERP total",
        "planning total",
        "difference",
    )
    rows = [
        (
            entity,
            period,
            item.state,
            str(item.accounts),
            str(item.matched),
            str(item.mismatched),
            money(item.erp_total),
            money(item.planning_total),
            money(item.planning_total - item.erp_total) + ("" if item.total_matched else "  MISMATCH"),
        )
        for (entity, period), item in summary.items()
    ]
    widths = [max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        cells = [
            cell.ljust(width) if i < 3 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=False))
        ]
        out.write("  " + "  ".join(cells) + "  " + row[-1] + "\n")
    mismatched = [line for line in lines if line["status"] != "matched"]
    for line in mismatched[:SHOWN_MISMATCHES]:
        out.write(
            f"  mismatch: {line['entity']} {line['period']} account {line.get('account') or '(total)'}: "
            f"ERP {money(Decimal(line['erp_total']))} in {line['erp_count']} cell(s), planning "
            f"{money(Decimal(line['planning_total']))} in {line['planning_count']} cell(s)\n"
        )
    if len(mismatched) > SHOWN_MISMATCHES:
        out.write(f"  ... and {len(mismatched) - SHOWN_MISMATCHES} more mismatched line(s)\n")
    out.flush()
