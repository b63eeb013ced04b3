"""The planning platform in canonical terms: versions, dimension members, cells and loads.

A planning model holds cells: one amount per version, legal entity, account,
cost centre and month. finsync speaks of them with the ERP's codes (``FS-US``,
``4.1.1``, ``CC-100``, ``2026-01``); the planning connector's versioned mapping
rules turn those into the model's members and back. Amounts follow the planning
model's own sign convention, which the flow that loads them applies.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from msgspec import Meta

from shared.canonical.balances import UNALLOCATED
from shared.canonical.fields import Code, CostCenterOrUnallocated, MappingVersion, PeriodCode, SourceId
from shared.canonical.money import Amount
from shared.canonical.records import CanonicalStruct

__all__ = (
    "MAX_LOAD_ROWS",
    "Load",
    "LoadCounts",
    "LoadCreate",
    "LoadFailure",
    "LoadRow",
    "LoadStatus",
    "PlanningCell",
    "PlanningDimension",
    "PlanningMember",
    "PlanningVersion",
    "VersionName",
)

MAX_LOAD_ROWS = 1_000_000
"""Most rows one load takes; the request body limit usually binds first."""

VersionName = Annotated[
    str,
    Meta(min_length=1, max_length=60, pattern=r"^[^\x00-\x1f]+$", description="A planning version's name."),
]
"""The name of a planning version, such as ``Actual``, ``Budget`` or ``Forecast``."""


class PlanningDimension(StrEnum):
    """The dimensions of a planning cell besides its version."""

    ENTITY = "entity"
    """Legal entities."""
    ACCOUNT = "account"
    """Accounts."""
    COST_CENTER = "cost_center"
    """Cost centres, with one member for the unallocated remainder."""
    MONTH = "month"
    """Months of the model's calendar."""


class PlanningVersion(CanonicalStruct, kw_only=True, frozen=True):
    """A version of the planning model: actuals, a budget, a forecast."""

    name: VersionName
    """Its name; loads and cell reads name the version by it."""
    id: str
    """The planning platform's id of the version."""
    is_actual: bool
    """The version that holds actuals."""
    is_current: bool
    """The version the model treats as current."""


class PlanningMember(CanonicalStruct, kw_only=True, frozen=True):
    """A member of one dimension of the planning model."""

    dimension: PlanningDimension
    """Its dimension."""
    id: str
    """The planning platform's id of the member."""
    name: str
    """Its name in the model (months: as the model shows them, such as ``Jan 26``)."""
    code: str | None
    """Its code in the model, when it has one."""
    parent: str | None
    """The name of its parent member, when it has one."""
    canonical: str | None
    """The canonical value the mapping rules map to this member (``FS-US``, ``2026-01``; ``""`` for the
    unallocated cost centre); null when no canonical value maps to it."""


class PlanningCell(CanonicalStruct, kw_only=True, frozen=True):
    """One cell of the planning model, in canonical terms."""

    version: VersionName
    """The version it belongs to."""
    entity: Code
    """Code of the legal entity."""
    account_code: Code
    """Code of the account."""
    cost_center: CostCenterOrUnallocated = UNALLOCATED
    """Code of the cost centre; ``""`` for the unallocated remainder."""
    period: PeriodCode
    """The month, ``YYYY-MM``."""
    amount: Amount
    """The cell's value, in the planning model's sign convention."""


class LoadRow(CanonicalStruct, kw_only=True, frozen=True):
    """One cell to write: where, and the amount."""

    entity: Code
    """Code of the legal entity."""
    account_code: Code
    """Code of the account."""
    cost_center: CostCenterOrUnallocated = UNALLOCATED
    """Code of the cost centre; ``""`` for the unallocated remainder."""
    period: PeriodCode
    """The month, ``YYYY-MM``."""
    amount: Amount
    """The amount, in the planning model's sign convention."""


class LoadCreate(CanonicalStruct, kw_only=True, frozen=True):
    """Rows to load into one version: exactly one row per cell."""

    version: VersionName
    """The version to write, such as ``Actual``."""
    rows: Annotated[tuple[LoadRow, ...], Meta(min_length=1, max_length=MAX_LOAD_ROWS)]
    """The cells to write. Two rows for the same cell are refused: the planning platform would keep only the
    last, silently."""


class LoadStatus(StrEnum):
    """Where a load is."""

    QUEUED = "queued"
    """Accepted, waiting for the model (one load at a time per source)."""
    UPLOADING = "uploading"
    """Its file is being uploaded in chunks."""
    IMPORTING = "importing"
    """The platform's import task runs."""
    COMPLETE = "complete"
    """The import finished; ``counts`` says how many rows landed and ``failures`` which did not."""
    FAILED = "failed"
    """It could not be done; ``detail`` says why. Nothing is known to be written."""
    INTERRUPTED = "interrupted"
    """The process running it stopped before it ended; check the cells, then load again."""

    @property
    def finished(self) -> bool:
        """The load will not change any more."""
        return self in (LoadStatus.COMPLETE, LoadStatus.FAILED, LoadStatus.INTERRUPTED)


class LoadCounts(CanonicalStruct, kw_only=True, frozen=True):
    """The row counts of the import, as the planning platform reports them."""

    total_rows: int
    """Rows in the file."""
    success_rows: int
    """Rows written."""
    failed_rows: int
    """Rows refused; each is in ``failures``."""
    ignored_rows: int
    """Rows skipped."""
    created: int
    """Cells that had no value before."""
    updated: int
    """Cells whose value was replaced."""


class LoadFailure(CanonicalStruct, kw_only=True, frozen=True):
    """A row the planning platform refused."""

    row: int | None
    """Index (from 0) of the row in the load's ``rows``; null when it cannot be told."""
    entity: str
    """The row's entity member, as uploaded."""
    account: str
    """Its account member, as uploaded."""
    cost_center: str
    """Its cost-centre member, as uploaded."""
    month: str
    """Its month member, as uploaded."""
    amount: str
    """Its amount, as uploaded."""
    reason: str
    """What the planning platform said."""


class Load(CanonicalStruct, kw_only=True, frozen=True):
    """A load of rows into one planning version, and how far it got."""

    id: str
    """finsync's id of the load."""
    source: SourceId
    """The planning source."""
    version: VersionName
    """The version written."""
    status: LoadStatus
    """Where the load is."""
    rows: int
    """Rows submitted."""
    mapping_version: MappingVersion
    """The mapping rules that turned the rows into members."""
    progress: float
    """From 0 to 1: the upload, then the platform's import task."""
    task_id: str | None
    """The platform's import task, once started."""
    counts: LoadCounts | None
    """The import's row counts, once it finished."""
    failures: tuple[LoadFailure, ...]
    """Every refused row, from the platform's failure dump."""
    detail: str | None
    """Why the load failed or was interrupted."""
    created_at: datetime
    """When it was accepted (UTC)."""
    updated_at: datetime
    """When its status last changed (UTC)."""
