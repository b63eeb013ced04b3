"""The list envelopes of the planning system API: one named page type per resource, for the OpenAPI spec."""

from __future__ import annotations

from shared.canonical import Load, PlanningCell, PlanningMember, PlanningVersion
from shared.pagination import Page

__all__ = ("LoadPage", "PlanningCellPage", "PlanningMemberPage", "PlanningVersionPage")


class PlanningVersionPage(Page[PlanningVersion], kw_only=True):
    """A page of planning versions."""


class PlanningMemberPage(Page[PlanningMember], kw_only=True):
    """A page of dimension members."""


class PlanningCellPage(Page[PlanningCell], kw_only=True):
    """A page of planning cells."""


class LoadPage(Page[Load], kw_only=True):
    """A page of loads, newest first."""
