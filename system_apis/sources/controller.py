"""``/v1/sources``: the configured sources, with their kind and live health."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from litestar import Controller, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, Parameter

from shared.auth.middleware import AUTH_ERRORS, requires
from shared.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, paginate
from shared.problems import problem_responses
from shared.settings import SourceKind
from system_apis.sources.schemas import Source, SourcePage

if TYPE_CHECKING:
    from litestar.datastructures import State

    from system_apis.sources.health import SourceRegistry

__all__ = ("SourcesController",)

SourceIdPath = Annotated[str, Parameter(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="Source id.")]


class SourcesController(Controller):
    """The sources this system layer connects to."""

    path = "/v1/sources"
    tags = ["sources"]  # noqa: RUF012 - Litestar reads a plain class attribute

    @get(
        operation_id="ListSources",
        summary="List sources with their live health",
        responses=problem_responses(400, *AUTH_ERRORS),
        **requires("sources:read"),
    )
    async def list_sources(
        self,
        state: State,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
        kind: Annotated[SourceKind | None, Parameter(description="Only sources of this kind.")] = None,
        status: Annotated[
            Literal["up", "down"] | None, Parameter(description="Only sources in this health status.")
        ] = None,
    ) -> SourcePage:
        """Sources declared in the configuration, in id order, each probed live (results reused for 2 s)."""
        registry: SourceRegistry = state.sources
        ids = [
            source_id
            for source_id, cfg in registry.configs.items()
            if kind is None or cfg.__struct_config__.tag == kind
        ]
        sources = await registry.describe(ids)
        if status is not None:
            sources = [source for source in sources if source.health.status == status]
        return paginate(
            sources, key=lambda source: source.id, limit=limit, cursor=cursor, page_type=SourcePage
        )

    @get(
        "/{source_id:str}",
        operation_id="GetSource",
        summary="Get one source with its live health",
        responses=problem_responses(400, 404, *AUTH_ERRORS),
        **requires("sources:read"),
    )
    async def get_source(self, state: State, source_id: FromPath[SourceIdPath]) -> Source:
        """One source, probed live."""
        registry: SourceRegistry = state.sources
        if source_id not in registry.configs:
            raise NotFoundException(f"no source with id {source_id!r}")
        return (await registry.describe([source_id]))[0]
