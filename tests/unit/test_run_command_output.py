"""What ``finsync run`` draws and prints, without a stack: the progress bar, the summary, the default range."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from typing import Any

import pytest

from shared.progress import ProgressBar
from shared.run_command import default_range
from shared.run_summary import money, write_summary


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_on_a_terminal_the_bar_is_redrawn_in_place() -> None:
    stream, clock = io.StringIO(), _Clock()
    bar = ProgressBar(stream, "sync", width=10, tty=True, clock=clock)
    bar.update("extract", 0.0)
    clock.now = 3.0
    bar.update("load", 0.5)
    bar.close()
    drawn = stream.getvalue()
    assert drawn.count("\n") == 1  # one line, ended once
    assert drawn.endswith("\n")
    assert drawn.split("\r")[1:] == [
        "sync extract    ----------   0%     0s\x1b[K",
        "sync load       #####-----  50%     3s\x1b[K\n",
    ]


def test_elsewhere_it_writes_one_line_per_step() -> None:
    stream, clock = io.StringIO(), _Clock()
    bar = ProgressBar(stream, "sync", tty=False, clock=clock)
    for now, step, share in ((0, "extract", 0.0), (1, "extract", 0.0), (2, "map", 0.2), (9, "load", 0.5)):
        clock.now = now
        bar.update(step, share)
    bar.close()
    assert stream.getvalue().splitlines() == [
        "sync: extract 0% (0s)",
        "sync: map 20% (2s)",
        "sync: load 50% (9s)",
    ]


@pytest.mark.parametrize(
    ("months_back", "today", "expected"),
    [
        (2, dt.date(2026, 11, 27), ("2026-09", "2026-11")),
        (2, dt.date(2026, 1, 5), ("2025-11", "2026-01")),
        (0, dt.date(2026, 12, 31), ("2026-12", "2026-12")),
        (12, dt.date(2026, 12, 1), ("2025-12", "2026-12")),
    ],
)
def test_the_default_range_is_this_month_and_months_back_before_it(
    months_back: int, today: dt.date, expected: tuple[str, str]
) -> None:
    assert default_range(months_back, today) == expected


def test_money_is_shown_to_the_cent_and_never_rounded() -> None:
    assert money(Decimal("1234567.8")) == "1,234,567.80"
    assert money(Decimal("-0.5")) == "-0.50"
    assert money(Decimal("10.005")) == "10.005"  # a sub-cent difference stays visible


def _line(entity: str, period: str, account: str | None, erp: str, plan: str, **extra: Any) -> dict[str, Any]:
    return {
        "entity": entity,
        "period": period,
        "account": account,
        "erp_count": 1,
        "erp_total": erp,
        "planning_count": 1,
        "planning_total": plan,
        "status": "matched" if erp == plan else "mismatched",
        **extra,
    }


def test_the_summary_has_one_row_per_entity_and_period_then_the_mismatches() -> None:
    run = {
        "status": "succeeded",
        "params": {"source": "erp", "planning": "planning"},
        "result": {
            "dry_run": False,
            "slices": {
                "erp:FS-US:2026-02": {"period_state": "open"},
                "erp:FS-US:2026-01": {"period_state": "closed"},
            },
        },
    }
    lines = [
        _line("FS-US", "2026-01", "6.1", "100.00", "100.00"),
        _line("FS-US", "2026-01", None, "100.00", "100.00"),
        _line("FS-US", "2026-02", "6.1", "2500.10", "2500.00"),
        _line("FS-US", "2026-02", "6.2", "7.00", "7.00"),
        _line("FS-US", "2026-02", None, "2507.10", "2507.00"),
    ]
    out = io.StringIO()
    write_summary(run, lines, out)
    printed = out.getvalue().splitlines()
    assert printed[0].startswith("reconciliation, ERP erp against planning planning")
    assert printed[1].split() == [
        "entity", "period", "state", "accounts", "matched", "mismatched", "ERP", "total", "planning", "total", "difference"
    ]  # fmt: skip
    assert printed[2].split() == ["FS-US", "2026-01", "closed", "1", "1", "0", "100.00", "100.00", "0.00"]
    assert printed[3].split() == [
        "FS-US",
        "2026-02",
        "open",
        "2",
        "1",
        "1",
        "2,507.10",
        "2,507.00",
        "-0.10",
        "MISMATCH",
    ]
    assert printed[4:] == [
        "  mismatch: FS-US 2026-02 account 6.1: ERP 2,500.10 in 1 cell(s), planning 2,500.00 in 1 cell(s)",
        "  mismatch: FS-US 2026-02 account (total): ERP 2,507.10 in 1 cell(s), planning 2,507.00 in 1 cell(s)",
    ]
