"""``/v1/flows``: the flows this layer offers."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, get
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, Parameter

from process_apis.flows.catalog import FLOWS, Flow, FlowPage
from shared.auth.middleware import AUTH_ERRORS, requires
from shared.pagination import DEFAULT_LIMIT, CursorParam, LimitParam, paginate
from shared.problems import problem_responses

__all__ = ("FlowsController",)

FlowIdPath = Annotated[str, Parameter(pattern=r"^[a-z][a-z0-9-]{0,62}$", description="Flow id.")]


class FlowsController(Controller):
    """The finance flows."""

    path = "/v1/flows"
    tags = ["flows"]  # noqa: RUF012 - Litestar reads a plain class attribute

    @get(
        operation_id="ListFlows",
        summary="List the flows this layer offers",
        responses=problem_responses(400, *AUTH_ERRORS),
        **requires("flows:read"),
        sync_to_thread=False,
    )
    def list_flows(
        self,
        limit: LimitParam = DEFAULT_LIMIT,
        cursor: CursorParam = None,
        status: Annotated[
            Literal["available", "planned"] | None, Parameter(description="Only flows in this status.")
        ] = None,
    ) -> FlowPage:
        """Every flow, in id order, with the source kinds it needs and whether it runs yet."""
        flows = [flow for flow in FLOWS if status is None or flow.status == status]
        return paginate(flows, key=lambda flow: flow.id, limit=limit, cursor=cursor, page_type=FlowPage)

    @get(
        "/{flow_id:str}",
        operation_id="GetFlow",
        summary="Get one flow",
        responses=problem_responses(400, 404, *AUTH_ERRORS),
        **requires("flows:read"),
        sync_to_thread=False,
    )
    def get_flow(self, flow_id: FromPath[FlowIdPath]) -> Flow:
        """One flow by id."""
        for flow in FLOWS:
            if flow.id == flow_id:
                return flow
        raise NotFoundException(f"no flow with id {flow_id!r}")
