"""``/v1/billing/{source}/...`` (being built)."""

from __future__ import annotations

from litestar import Controller

__all__ = ("BillingController",)


class BillingController(Controller):
    """One billing source in canonical terms."""

    path = "/v1/billing/{source:str}"
    tags = ["billing"]  # noqa: RUF012 - Litestar reads a plain class attribute
