"""The list envelopes of the ERP system API: one named page type per resource, for the OpenAPI spec."""

from __future__ import annotations

from shared.canonical import (
    Account,
    Balance,
    CostCenter,
    Customer,
    FiscalPeriod,
    Invoice,
    JournalEntry,
    LegalEntity,
    Product,
    Supplier,
)
from shared.pagination import Page

__all__ = (
    "AccountPage",
    "BalancePage",
    "CostCenterPage",
    "CustomerPage",
    "FiscalPeriodPage",
    "InvoicePage",
    "JournalEntryPage",
    "LegalEntityPage",
    "ProductPage",
    "SupplierPage",
)


class LegalEntityPage(Page[LegalEntity], kw_only=True):
    """A page of legal entities."""


class AccountPage(Page[Account], kw_only=True):
    """A page of accounts."""


class CostCenterPage(Page[CostCenter], kw_only=True):
    """A page of cost centres."""


class CustomerPage(Page[Customer], kw_only=True):
    """A page of customers."""


class SupplierPage(Page[Supplier], kw_only=True):
    """A page of suppliers."""


class ProductPage(Page[Product], kw_only=True):
    """A page of products."""


class FiscalPeriodPage(Page[FiscalPeriod], kw_only=True):
    """A page of fiscal periods."""


class BalancePage(Page[Balance], kw_only=True):
    """A page of balances (actuals)."""


class InvoicePage(Page[Invoice], kw_only=True):
    """A page of receivable invoices."""


class JournalEntryPage(Page[JournalEntry], kw_only=True):
    """A page of an incremental read of journal entries."""

    sync_cursor: str | None = None
    """Set on the last page of a read: pass it as `cursor` later to get only what changed since
    (late commits included, nothing returned twice)."""
