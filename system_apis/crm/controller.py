"""``/v1/crm/{source}/...`` (being built)."""

from __future__ import annotations

from litestar import Controller

__all__ = ("CrmController",)


class CrmController(Controller):
    """One crm source in canonical terms."""

    path = "/v1/crm/{source:str}"
    tags = ["crm"]  # noqa: RUF012 - Litestar reads a plain class attribute
