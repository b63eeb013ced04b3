"""What the connector reads from Tryton: one Struct per query, decoded straight from the JSON-RPC answer.

Each row type lists the ``search_read`` fields it needs in ``FIELDS``. A dotted
field such as ``account.code`` comes back nested under ``"account."``, which the
row renames to ``account_``. Money, dates and times are Tryton's wire objects
(:mod:`.wire`); the mapping turns them into canonical values.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from system_apis.connectors.tryton.wire import WireDate, WireDateTime, WireDecimal

__all__ = (
    "AccountRow",
    "AccountTypeRow",
    "AddressRow",
    "AnalyticAccountRow",
    "AnalyticLineRow",
    "AnalyticSplitRow",
    "BalanceRow",
    "CompanyRow",
    "IdentifierRow",
    "InvoiceLineRow",
    "InvoiceMoveLineRow",
    "InvoiceRow",
    "JournalRow",
    "MoveLineAccount",
    "MoveLineRow",
    "MoveRow",
    "PartyRow",
    "PaymentMethodRow",
    "PeriodRow",
    "ProductRow",
    "ProductUnitRow",
    "Ref",
    "TaxRow",
    "TrialBalanceRow",
    "UnitDigits",
)


class _Row(msgspec.Struct, kw_only=True, gc=False, frozen=True):
    """Base of the rows; unknown fields (Tryton adds ``_timestamp`` and the like) are ignored."""

    FIELDS: ClassVar[tuple[str, ...]] = ()


class Ref(msgspec.Struct, kw_only=True, gc=False, frozen=True):
    """The far end of a dotted field: its id and the one field read through it."""

    id: int
    code: str | None = None
    name: str | None = None
    state: str | None = None


class CompanyRow(_Row, kw_only=True, frozen=True, rename={"party_": "party.", "currency_": "currency."}):
    FIELDS = ("id", "party.code", "party.name", "currency.code", "timezone", "write_date", "create_date")
    id: int
    party_: Ref
    currency_: Ref
    timezone: str | None = None
    write_date: WireDateTime | None = None
    create_date: WireDateTime


class AccountTypeRow(_Row, kw_only=True, frozen=True):
    FIELDS = (
        "id", "name", "parent", "statement", "assets", "receivable", "payable", "debt", "revenue", "expense", "stock",
    )  # fmt: skip
    id: int
    name: str = ""
    parent: int | None = None
    statement: str | None = None
    assets: bool = False
    receivable: bool = False
    payable: bool = False
    debt: bool = False
    revenue: bool = False
    expense: bool = False
    stock: bool = False


class AccountRow(_Row, kw_only=True, frozen=True, rename={"parent_": "parent."}):
    FIELDS = (
        "id", "code", "name", "type", "parent.code", "childs", "closed", "active", "party_required", "company",
        "write_date", "create_date",
    )  # fmt: skip
    id: int
    code: str | None = None
    name: str
    type: int | None = None
    parent_: Ref | None = None
    childs: list[int] = []
    closed: bool = False
    active: bool = True
    party_required: bool = False
    company: int
    write_date: WireDateTime | None = None
    create_date: WireDateTime


class AnalyticAccountRow(_Row, kw_only=True, frozen=True, rename={"root_": "root.", "parent_": "parent."}):
    FIELDS = (
        "id",
        "code",
        "name",
        "type",
        "root.code",
        "parent.code",
        "company",
        "write_date",
        "create_date",
    )
    id: int
    code: str | None = None
    name: str
    type: str
    root_: Ref | None = None
    parent_: Ref | None = None
    company: int
    write_date: WireDateTime | None = None
    create_date: WireDateTime


class PartyRow(_Row, kw_only=True, frozen=True):
    FIELDS = ("id", "code", "name", "categories", "external_ref", "write_date", "create_date", "active")
    id: int
    code: str | None = None
    name: str
    categories: list[int] = []
    external_ref: str | None = None
    active: bool = True
    write_date: WireDateTime | None = None
    create_date: WireDateTime


class ProductRow(_Row, kw_only=True, frozen=True, rename={"uom_": "default_uom."}):
    FIELDS = ("id", "code", "name", "type", "default_uom.name", "write_date", "create_date", "active")
    id: int
    code: str | None = None
    name: str
    type: str
    uom_: Ref | None = None
    active: bool = True
    write_date: WireDateTime | None = None
    create_date: WireDateTime


class PeriodRow(_Row, kw_only=True, frozen=True, rename={"fiscalyear_": "fiscalyear."}):
    FIELDS = (
        "id", "name", "start_date", "end_date", "state", "type", "company", "fiscalyear.name",
        "write_date", "create_date",
    )  # fmt: skip
    id: int
    name: str
    start_date: WireDate
    end_date: WireDate
    state: str
    type: str
    company: int
    fiscalyear_: Ref
    write_date: WireDateTime | None = None
    create_date: WireDateTime


class MoveRow(_Row, kw_only=True, frozen=True, rename={"journal_": "journal.", "period_": "period."}):
    FIELDS = (
        "id", "number", "date", "period.name", "journal.code", "state", "description", "company",
        "external_ref", "origin", "write_date", "create_date",
    )  # fmt: skip
    id: int
    number: str | None = None
    date: WireDate
    period_: Ref | None = None
    journal_: Ref | None = None
    state: str
    description: str | None = None
    company: int
    external_ref: str | None = None
    origin: str | None = None
    write_date: WireDateTime | None = None
    create_date: WireDateTime


class MoveLineRow(_Row, kw_only=True, frozen=True, rename={"account_": "account.", "party_": "party."}):
    FIELDS = ("id", "move", "account.code", "debit", "credit", "party.code", "description")
    id: int
    move: int
    account_: Ref
    debit: WireDecimal
    credit: WireDecimal
    party_: Ref | None = None
    description: str | None = None


class AnalyticLineRow(_Row, kw_only=True, frozen=True, rename={"account_": "account."}):
    FIELDS = ("id", "move_line", "account.code", "debit", "credit")
    id: int
    move_line: int
    account_: Ref
    debit: WireDecimal
    credit: WireDecimal


class TrialBalanceRow(_Row, kw_only=True, frozen=True):
    FIELDS = ("id", "code", "debit", "credit", "balance")
    id: int
    code: str | None = None
    debit: WireDecimal
    credit: WireDecimal
    balance: WireDecimal


class InvoiceLineRow(
    _Row, kw_only=True, frozen=True, rename={"account_": "account.", "product_": "product."}
):
    FIELDS = (
        "id", "invoice", "sequence", "type", "description", "quantity", "unit_price", "amount", "account.code",
        "product.code", "taxes",
    )  # fmt: skip
    id: int
    invoice: int | None = None
    sequence: int | None = None
    type: str
    description: str | None = None
    quantity: float | None = None
    unit_price: WireDecimal | None = None
    amount: WireDecimal | None = None
    account_: Ref | None = None
    product_: Ref | None = None
    taxes: list[int] = []


class InvoiceRow(_Row, kw_only=True, frozen=True, rename={"party_": "party.", "currency_": "currency."}):
    FIELDS = (
        "id", "type", "number", "party.code", "invoice_date", "currency.code", "state", "untaxed_amount",
        "tax_amount", "total_amount", "amount_to_pay", "description", "company", "external_ref", "move",
        "write_date", "create_date",
    )  # fmt: skip
    id: int
    type: str
    number: str | None = None
    party_: Ref
    invoice_date: WireDate | None = None
    currency_: Ref
    state: str
    untaxed_amount: WireDecimal
    tax_amount: WireDecimal
    total_amount: WireDecimal
    amount_to_pay: WireDecimal | None = None
    description: str | None = None
    company: int
    external_ref: str | None = None
    move: int | None = None
    write_date: WireDateTime | None = None
    create_date: WireDateTime


class InvoiceMoveLineRow(_Row, kw_only=True, frozen=True):
    FIELDS = ("id", "move", "origin", "maturity_date")
    id: int
    move: int
    origin: str | None = None
    maturity_date: WireDate | None = None


class TaxRow(_Row, kw_only=True, frozen=True):
    FIELDS = ("id", "name", "company")
    id: int
    name: str
    company: int | None = None


class UnitDigits(msgspec.Struct, kw_only=True, gc=False, frozen=True):
    """A product's default unit seen through the product: its id and how many decimals a quantity may have."""

    id: int
    digits: int | None = None


class ProductUnitRow(_Row, kw_only=True, frozen=True, rename={"uom_": "default_uom."}):
    FIELDS = ("id", "code", "default_uom.digits")
    id: int
    code: str | None = None
    uom_: UnitDigits


class PaymentMethodRow(_Row, kw_only=True, frozen=True, rename={"journal_": "journal."}):
    FIELDS = ("id", "name", "company", "journal.code")
    id: int
    name: str
    company: int
    journal_: Ref


class IdentifierRow(_Row, kw_only=True, frozen=True):
    FIELDS = ("id", "party", "code")
    id: int
    party: int
    code: str


class AddressRow(_Row, kw_only=True, frozen=True, rename={"country_": "country."}):
    FIELDS = ("id", "party", "country.code")
    id: int
    party: int
    country_: Ref | None = None


class MoveLineAccount(msgspec.Struct, kw_only=True, gc=False, frozen=True):
    """A move line seen through an analytic line: its id and its account's id."""

    id: int
    account: int


class AnalyticSplitRow(
    _Row, kw_only=True, frozen=True, rename={"account_": "account.", "move_line_": "move_line."}
):
    FIELDS = ("id", "account.code", "move_line.account", "debit", "credit")
    id: int
    account_: Ref
    move_line_: MoveLineAccount
    debit: WireDecimal
    credit: WireDecimal


class JournalRow(_Row, kw_only=True, frozen=True):
    FIELDS = ("id", "code")
    id: int
    code: str | None = None


class BalanceRow(_Row, kw_only=True, frozen=True):
    FIELDS = ("id", "balance")
    id: int
    balance: WireDecimal
