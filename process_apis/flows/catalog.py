"""The catalogue of flows this layer offers, and which of them run yet.

A flow is ``available`` once its package under ``process_apis/flows/`` runs it;
until then it is listed as ``planned`` so that planners see the road ahead.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from shared.pagination import Page

__all__ = ("FLOWS", "Flow", "FlowPage")


class Flow(msgspec.Struct, kw_only=True, frozen=True):
    """A cross-system finance flow."""

    id: str
    """Stable id, used in paths such as ``/v1/flows/{id}/runs``."""
    name: str
    """Name finance teams use for it."""
    description: str
    """What it moves, from where to where."""
    source_kinds: list[str]
    """Kinds of source system it reads or writes."""
    sync_model: str
    """How it is triggered."""
    status: Literal["available", "planned"]
    """``available`` when this deployment can run it."""


class FlowPage(Page[Flow], kw_only=True):
    """A page of flows."""


FLOWS: tuple[Flow, ...] = (
    Flow(
        id="actuals-to-plan",
        name="Actuals to plan",
        description="Posted ERP actuals by entity, account, cost centre and month, loaded into the planning platform and reconciled.",
        source_kinds=["erp", "planning"],
        sync_model="scheduled and on demand, with reconciliation",
        status="available",
    ),
    Flow(
        id="order-to-cash",
        name="Order to cash",
        description="Closed-won deals to billing invoices to ERP receivables and payments, reconciled daily.",
        source_kinds=["crm", "billing", "erp"],
        sync_model="events, with a daily reconciliation and a catch-up sweep",
        status="available",
    ),
    Flow(
        id="procure-to-pay",
        name="Procure to pay",
        description="Approved purchases to ERP payables, driven by approval-status events.",
        source_kinds=["procurement", "erp"],
        sync_model="API orchestration and approval-status events",
        status="planned",
    ),
    Flow(
        id="hire-to-retire",
        name="Hire to retire",
        description="HR records and the payroll GL file to the ERP journal and planning headcount.",
        source_kinds=["hr", "payroll", "erp", "planning"],
        sync_model="scheduled file batch",
        status="planned",
    ),
    Flow(
        id="manufacture-to-report",
        name="Manufacture to report",
        description="Warehouse and production events to ERP inventory and cost of goods sold.",
        source_kinds=["warehouse", "erp"],
        sync_model="asynchronous events with exception handling",
        status="planned",
    ),
    Flow(
        id="master-data-propagation",
        name="Master data propagation",
        description="Accounts and cost centres from the system of record to planning members, after approval.",
        source_kinds=["erp", "planning"],
        sync_model="scheduled, with an approval step",
        status="planned",
    ),
)
