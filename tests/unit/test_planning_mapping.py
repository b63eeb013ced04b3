"""The Anaplan connector's mapping rules: members by code or by explicit table, months, and the checks on load."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.canonical import LoadRow, PlanningDimension
from shared.errors import SettingsError
from system_apis.connectors.anaplan.connector import MappedLoad, _failures
from system_apis.connectors.anaplan.mapping import MemberIndex, load_mapping
from system_apis.connectors.anaplan.wire import ListItem, TaskDetail, TaskResult, counts

V1 = load_mapping("anaplan/v1")
CENTRES = MemberIndex(
    items=(
        ListItem(id="1", name="Sales", code="CC-100"),
        ListItem(id="2", name="Unallocated", code="UNALLOCATED"),
    )
)


def test_months_are_named_as_anaplan_shows_them_whatever_the_locale() -> None:
    assert V1.month("2026-01") == "Jan 26"
    assert V1.month("2026-12") == "Dec 26"
    assert V1.periods(["2026-03"]) == {"Mar 26": "2026-03"}


def test_a_code_finds_its_member_and_the_unallocated_remainder_its_own() -> None:
    sales = V1.member(PlanningDimension.COST_CENTER, "CC-100", CENTRES)
    unallocated = V1.member(PlanningDimension.COST_CENTER, "", CENTRES)
    assert sales is not None
    assert sales.name == "Sales"
    assert unallocated is not None
    assert unallocated.code == "UNALLOCATED"
    assert V1.member(PlanningDimension.COST_CENTER, "CC-999", CENTRES) is None


def test_members_map_back_to_their_canonical_values() -> None:
    assert V1.canonical(PlanningDimension.COST_CENTER, CENTRES.items[0]) == "CC-100"
    assert V1.canonical(PlanningDimension.COST_CENTER, CENTRES.items[1]) == ""


def test_the_month_is_not_a_list() -> None:
    with pytest.raises(ValueError, match="time dimension"):
        V1.rule(PlanningDimension.MONTH)


def test_unknown_rules_version_stops_start_up() -> None:
    with pytest.raises(SettingsError, match="no planning mapping rules"):
        load_mapping("anaplan/v999")


def test_the_import_file_is_csv_with_its_header() -> None:
    mapped = MappedLoad(lines=[("FS-US", "4.1.1", "UNALLOCATED", "Jan 26", "1250.10")])
    assert (
        mapped.file(V1.columns)
        == b"Entity,Account,Cost Centre,Time,Amount\nFS-US,4.1.1,UNALLOCATED,Jan 26,1250.10\n"
    )


def test_task_counts_read_the_alternating_values() -> None:
    result = TaskResult(
        successful=True,
        details=[
            TaskDetail(
                values=["successRowCount", "3", "failedCount", "1", "ignoredCount", "0", "totalRowCount", "4"]
            )
        ],
    )
    assert counts(result) == {"successRowCount": 3, "failedCount": 1, "ignoredCount": 0, "totalRowCount": 4}


def test_failed_rows_are_traced_to_the_rows_that_sent_them() -> None:
    mapped = MappedLoad(
        lines=[
            ("FS-US", "4.1.1", "UNALLOCATED", "Jan 26", "1.00"),
            ("FS-US", "5.2.2", "CC-100", "Jan 26", "2.00"),
        ]
    )
    dump = (
        b"Entity,Account,Cost Centre,Time,Amount,_Error_1_\nFS-US,5.2.2,CC-100,Jan 26,2.00,Injected failure\n"
    )
    (failure,) = _failures(dump, mapped)
    assert failure.row == 1
    assert failure.reason == "Injected failure"
    assert failure.amount == "2.00"


def test_load_rows_keep_decimal_amounts() -> None:
    row = LoadRow(entity="FS-US", account_code="4.1.1", period="2026-01", amount=Decimal("0.10"))
    assert format(row.amount, "f") == "0.10"
