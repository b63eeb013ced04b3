"""The Anaplan Integration API v2 answers the connector reads, as msgspec Structs (vendor field names).

Only the fields the connector uses are declared; the rest of each envelope is
ignored, so an answer with more fields still decodes.
"""

from __future__ import annotations

import msgspec

__all__ = (
    "Chunk",
    "ChunksAnswer",
    "Export",
    "ExportsAnswer",
    "Import",
    "ImportsAnswer",
    "ListItem",
    "ListItemsAnswer",
    "ListsAnswer",
    "Meta",
    "ModelCalendar",
    "ModelCalendarAnswer",
    "NamedList",
    "Paging",
    "Task",
    "TaskAnswer",
    "TaskDetail",
    "TaskResult",
    "TasksAnswer",
    "TokenAnswer",
    "TokenInfo",
    "Version",
    "VersionsAnswer",
    "counts",
)


class _Wire(msgspec.Struct, rename="camel", kw_only=True):
    """Base of the vendor's shapes: camelCase names, unknown fields ignored (the vendor may add some)."""


class TokenInfo(_Wire):
    """``tokenInfo`` of ``/token/authenticate`` and ``/token/refresh``."""

    token_value: str
    """The value sent as ``Authorization: AnaplanAuthToken {value}``."""
    expires_at: int
    """Expiry, epoch milliseconds."""


class TokenAnswer(_Wire):
    """The answer of ``/token/authenticate`` and ``/token/refresh``."""

    token_info: TokenInfo


class Paging(_Wire):
    """``meta.paging`` of a list answer."""

    current_page_size: int
    total_size: int
    offset: int


class Meta(_Wire):
    """``meta`` of an answer; lists carry their paging."""

    paging: Paging | None = None


class Version(_Wire):
    """An item of ``versionMetadata``."""

    id: str
    name: str
    is_actual: bool = False
    is_current: bool = False


class VersionsAnswer(_Wire):
    """``GET /models/{m}/versions``."""

    version_metadata: list[Version]


class FiscalYear(_Wire):
    """``modelCalendar.fiscalYear``."""

    year: str
    start_date: str
    end_date: str


class ModelCalendar(_Wire):
    """``modelCalendar``."""

    calendar_type: str
    fiscal_year: FiscalYear


class ModelCalendarAnswer(_Wire):
    """``GET /models/{m}/modelCalendar``."""

    model_calendar: ModelCalendar


class NamedList(_Wire):
    """An item of ``lists``."""

    id: str
    name: str


class ListsAnswer(_Wire):
    """``GET …/lists``."""

    lists: list[NamedList] = msgspec.field(default_factory=list)
    meta: Meta = msgspec.field(default_factory=Meta)

    @property
    def items(self) -> list[NamedList]:
        """This page's lists."""
        return self.lists


class ListItem(_Wire):
    """An item of ``listItems``."""

    id: str
    name: str
    code: str | None = None
    parent: str | None = None


class ListItemsAnswer(_Wire):
    """``GET …/lists/{id}/items``."""

    list_items: list[ListItem] = msgspec.field(default_factory=list)
    meta: Meta = msgspec.field(default_factory=Meta)

    @property
    def items(self) -> list[ListItem]:
        """This page's members."""
        return self.list_items


class Import(_Wire):
    """An item of ``imports``."""

    id: str
    name: str
    import_data_source_id: str | None = None


class ImportsAnswer(_Wire):
    """``GET …/imports``."""

    imports: list[Import] = msgspec.field(default_factory=list)


class Export(_Wire):
    """An item of ``exports``."""

    id: str
    name: str


class ExportsAnswer(_Wire):
    """``GET …/exports``."""

    exports: list[Export] = msgspec.field(default_factory=list)


class TaskDetail(_Wire):
    """An item of ``result.details``."""

    local_message_text: str = ""
    type: str = ""
    values: list[str] = msgspec.field(default_factory=list)


class TaskResult(_Wire):
    """``task.result``, once the task ended."""

    successful: bool
    failure_dump_available: bool = False
    details: list[TaskDetail] = msgspec.field(default_factory=list)


class Task(_Wire):
    """``task`` of an import or export task."""

    task_id: str
    task_state: str
    progress: float = 0.0
    current_step: str | None = None
    result: TaskResult | None = None


class TaskAnswer(_Wire):
    """``POST …/tasks`` and ``GET …/tasks/{id}``."""

    task: Task


class TasksAnswer(_Wire):
    """``GET …/tasks``."""

    tasks: list[Task] = msgspec.field(default_factory=list)


class Chunk(_Wire):
    """An item of ``chunks``."""

    id: str


class ChunksAnswer(_Wire):
    """``GET …/files/{id}/chunks``."""

    chunks: list[Chunk] = msgspec.field(default_factory=list)


def counts(result: TaskResult) -> dict[str, int]:
    """The row counts of a task result: ``details[].values`` alternate names and values, summed over details."""
    totals: dict[str, int] = {}
    for detail in result.details:
        pairs = zip(detail.values[0::2], detail.values[1::2], strict=False)
        for name, value in pairs:
            try:
                totals[name] = totals.get(name, 0) + int(value)
            except ValueError:
                continue  # a value that is not a count (a message) is not ours to add up
    return totals
