"""The canonical finance model: the one shape every connector maps to and every layer speaks.

- :mod:`~shared.canonical.records`: the Struct base and the fields every record has.
- :mod:`~shared.canonical.fields`: constrained field types (codes, references, UTC times).
- :mod:`~shared.canonical.money` and :mod:`~shared.canonical.currencies`: Decimal
  amounts as strings, ISO 4217 codes and their minor units.
- :mod:`~shared.canonical.master`: legal entities, accounts, dimensions, parties, taxes, periods.
- :mod:`~shared.canonical.transactions`: journal entries, invoices, bills, payments.
- :mod:`~shared.canonical.balances`: actuals.
- :mod:`~shared.canonical.validation`: business rules for create payloads.
- :mod:`~shared.canonical.codec`: JSON, with money decoded only from strings.

Its errors are in :mod:`shared.errors`, with the rest of the tree.
"""

from __future__ import annotations

from shared.canonical.balances import (
    UNALLOCATED,
    Balance,
    BalanceKind,
    balance_kind_for,
    split_by_cost_center,
)
from shared.canonical.codec import Decoder, decode, encode
from shared.canonical.currencies import MINOR_UNITS, minor_units
from shared.canonical.fields import (
    CODE_PATTERN,
    Code,
    CostCenterOrUnallocated,
    CountryCode,
    Description,
    DocumentNumber,
    ExternalRef,
    MappingVersion,
    Name,
    PeriodCode,
    RecordId,
    SourceId,
    SourceRef,
    TaxId,
    TimeZone,
    UtcDateTime,
)
from shared.canonical.master import (
    Account,
    AccountType,
    CostCenter,
    Customer,
    CustomerCreate,
    Department,
    FiscalPeriod,
    LegalEntity,
    NormalBalance,
    PeriodState,
    Product,
    ProductKind,
    Project,
    Supplier,
    SupplierCreate,
    TaxCode,
)
from shared.canonical.money import (
    DECIMAL_PATTERN,
    MAX_DECIMAL_LENGTH,
    Amount,
    CurrencyCode,
    Quantity,
    Rate,
    check_amount,
    decimal_places,
    minor_unit,
)
from shared.canonical.records import CanonicalStruct, CreatePayload, Record
from shared.canonical.transactions import (
    MAX_INVOICE_LINES,
    MAX_JOURNAL_LINES,
    MAX_UNIT_PRICE_DECIMALS,
    Bill,
    DocumentKind,
    DocumentRef,
    DocumentState,
    EntryState,
    Invoice,
    InvoiceCreate,
    InvoiceLine,
    InvoiceLineCreate,
    JournalEntry,
    JournalEntryCreate,
    JournalLine,
    Payment,
    PaymentCreate,
)
from shared.canonical.validation import (
    validate_invoice,
    validate_journal_entry,
    validate_party,
    validate_payment,
)

__all__ = (
    "CODE_PATTERN",
    "DECIMAL_PATTERN",
    "MAX_DECIMAL_LENGTH",
    "MAX_INVOICE_LINES",
    "MAX_JOURNAL_LINES",
    "MAX_UNIT_PRICE_DECIMALS",
    "MINOR_UNITS",
    "UNALLOCATED",
    "Account",
    "AccountType",
    "Amount",
    "Balance",
    "BalanceKind",
    "Bill",
    "CanonicalStruct",
    "Code",
    "CostCenter",
    "CostCenterOrUnallocated",
    "CountryCode",
    "CreatePayload",
    "CurrencyCode",
    "Customer",
    "CustomerCreate",
    "Decoder",
    "Department",
    "Description",
    "DocumentKind",
    "DocumentNumber",
    "DocumentRef",
    "DocumentState",
    "EntryState",
    "ExternalRef",
    "FiscalPeriod",
    "Invoice",
    "InvoiceCreate",
    "InvoiceLine",
    "InvoiceLineCreate",
    "JournalEntry",
    "JournalEntryCreate",
    "JournalLine",
    "LegalEntity",
    "MappingVersion",
    "Name",
    "NormalBalance",
    "Payment",
    "PaymentCreate",
    "PeriodCode",
    "PeriodState",
    "Product",
    "ProductKind",
    "Project",
    "Quantity",
    "Rate",
    "Record",
    "RecordId",
    "SourceId",
    "SourceRef",
    "Supplier",
    "SupplierCreate",
    "TaxCode",
    "TaxId",
    "TimeZone",
    "UtcDateTime",
    "balance_kind_for",
    "check_amount",
    "decimal_places",
    "decode",
    "encode",
    "minor_unit",
    "minor_units",
    "split_by_cost_center",
    "validate_invoice",
    "validate_journal_entry",
    "validate_party",
    "validate_payment",
)
