"""Master data: legal entities, the chart of accounts, dimensions, parties, products, taxes and fiscal periods."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from shared.canonical.fields import Code, CountryCode, Name, PeriodCode, TaxId, TimeZone
from shared.canonical.money import CurrencyCode, Rate
from shared.canonical.records import CreatePayload, Record

__all__ = (
    "Account",
    "AccountType",
    "CostCenter",
    "Customer",
    "CustomerCreate",
    "Department",
    "FiscalPeriod",
    "LegalEntity",
    "NormalBalance",
    "PeriodState",
    "Product",
    "ProductKind",
    "Project",
    "Supplier",
    "SupplierCreate",
    "TaxCode",
)


class NormalBalance(StrEnum):
    """The side on which an account's balance normally sits."""

    DEBIT = "debit"
    CREDIT = "credit"


class AccountType(StrEnum):
    """The five classes of account; they decide the normal balance and what "actuals" means."""

    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    REVENUE = "revenue"
    EXPENSE = "expense"

    @property
    def is_profit_and_loss(self) -> bool:
        """Revenue and expense: their actuals are the period's movement, not a balance carried forward."""
        return self in {AccountType.REVENUE, AccountType.EXPENSE}

    @property
    def normal_balance(self) -> NormalBalance:
        """Debit for assets and expenses; credit for liabilities, equity and revenue."""
        if self in {AccountType.ASSET, AccountType.EXPENSE}:
            return NormalBalance.DEBIT
        return NormalBalance.CREDIT


class PeriodState(StrEnum):
    """Whether a fiscal period still takes postings."""

    OPEN = "open"
    CLOSED = "closed"


class ProductKind(StrEnum):
    """What a product is."""

    GOODS = "goods"
    SERVICE = "service"


class LegalEntity(Record, kw_only=True, frozen=True):
    """A company that keeps its own books: the ERP's company."""

    code: Code
    """Short code, used by every record that belongs to the entity."""
    name: Name
    """Registered or display name."""
    currency: CurrencyCode
    """Functional (company) currency."""
    time_zone: TimeZone
    """IANA time zone; reconciliation by day cuts days in it."""


class Account(Record, kw_only=True, frozen=True):
    """An account of a legal entity's chart of accounts."""

    code: Code
    """Account code; journal lines and balances refer to it."""
    name: Name
    """Account name."""
    type: AccountType
    """Asset, liability, equity, revenue or expense."""
    normal_balance: NormalBalance
    """The side its balance normally sits on; usually ``type.normal_balance``."""
    parent_code: Code | None = None
    """Code of the parent account; null at the top of the chart."""
    is_leaf: bool
    """True when no account has this one as parent. Only leaf accounts take postings and carry actuals."""
    entity: Code
    """Code of the legal entity whose chart it belongs to."""


class CostCenter(Record, kw_only=True, frozen=True):
    """A cost centre (in Tryton, an analytic account)."""

    code: Code
    """Cost centre code."""
    name: Name
    """Cost centre name."""
    entity: Code
    """Code of the legal entity."""
    parent_code: Code | None = None
    """Code of the parent cost centre; null at the top."""


class Department(Record, kw_only=True, frozen=True):
    """An organisational unit, such as Finance or Sales."""

    code: Code
    """Department code."""
    name: Name
    """Department name."""
    entity: Code
    """Code of the legal entity."""
    parent_code: Code | None = None
    """Code of the parent department; null at the top."""


class Project(Record, kw_only=True, frozen=True):
    """A project that costs and revenue can be booked to."""

    code: Code
    """Project code."""
    name: Name
    """Project name."""
    entity: Code
    """Code of the legal entity."""
    start_date: date | None = None
    """First day of the project, when known."""
    end_date: date | None = None
    """Last day of the project (inclusive), when known."""


class Product(Record, kw_only=True, frozen=True):
    """Something sold or bought: goods or a service."""

    code: Code
    """Product code (SKU)."""
    name: Name
    """Product name."""
    kind: ProductKind
    """Goods or service."""
    unit: Code | None = None
    """Code of the unit of measure, such as ``u`` or ``h``."""


class Customer(Record, kw_only=True, frozen=True):
    """A party that the entity invoices (a receivable party)."""

    code: Code
    """Party code; journal lines, invoices and payments refer to it."""
    name: Name
    """Party name."""
    tax_id: TaxId | None = None
    """Tax identifier, such as a VAT number."""
    country: CountryCode | None = None
    """Country of the main address."""
    currency: CurrencyCode | None = None
    """Currency invoices are usually in."""


class Supplier(Record, kw_only=True, frozen=True):
    """A party that bills the entity (a payable party)."""

    code: Code
    """Party code; journal lines, bills and payments refer to it."""
    name: Name
    """Party name."""
    tax_id: TaxId | None = None
    """Tax identifier, such as a VAT number."""
    country: CountryCode | None = None
    """Country of the main address."""
    currency: CurrencyCode | None = None
    """Currency bills usually come in."""


class TaxCode(Record, kw_only=True, frozen=True):
    """A tax that lines can carry, such as a sales tax or VAT rate."""

    code: Code
    """Tax code."""
    name: Name
    """Tax name."""
    entity: Code
    """Code of the legal entity."""
    rate: Rate
    """Rate as a fraction: ``"0.2"`` is 20%."""


class FiscalPeriod(Record, kw_only=True, frozen=True):
    """A fiscal period (a month) of a legal entity's fiscal year."""

    entity: Code
    """Code of the legal entity."""
    fiscal_year: Code
    """Code of the fiscal year, such as ``2026``."""
    code: PeriodCode
    """Period code: ``YYYY-MM`` of the month it starts in."""
    start_date: date
    """First day of the period."""
    end_date: date
    """Last day of the period (inclusive)."""
    state: PeriodState
    """Open periods take postings; closed ones refuse them."""


class CustomerCreate(CreatePayload, kw_only=True, frozen=True):
    """Create a customer by its external reference; creating it again returns the same customer."""

    name: Name
    """Party name."""
    code: Code | None = None
    """Party code; null lets the source assign one."""
    tax_id: TaxId | None = None
    """Tax identifier, such as a VAT number."""
    country: CountryCode | None = None
    """Country of the main address."""
    currency: CurrencyCode | None = None
    """Currency invoices are usually in; an active ISO 4217 code."""


class SupplierCreate(CreatePayload, kw_only=True, frozen=True):
    """Create a supplier by its external reference; creating it again returns the same supplier."""

    name: Name
    """Party name."""
    code: Code | None = None
    """Party code; null lets the source assign one."""
    tax_id: TaxId | None = None
    """Tax identifier, such as a VAT number."""
    country: CountryCode | None = None
    """Country of the main address."""
    currency: CurrencyCode | None = None
    """Currency bills usually come in; an active ISO 4217 code."""
