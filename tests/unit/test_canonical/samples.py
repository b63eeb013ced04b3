"""One valid instance of every canonical type, for round trips and rule tests."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from shared import canonical as c

RECORD: dict[str, Any] = {
    "source": "erp-us",
    "modified_at": datetime(2026, 3, 31, 17, 45, 12, 345000, tzinfo=UTC),
    "mapping_version": "tryton/v1",
}


def record(kind: str, ref: str = "42") -> dict[str, Any]:
    """The fields every record has, for a record of ``kind``."""
    return {"id": f"erp-us:{kind}:{ref}", "source_ref": ref, **RECORD}


def line(
    account: str, *, debit: str = "0", credit: str = "0", currency: str = "USD", **extra: Any
) -> c.JournalLine:
    return c.JournalLine(
        account_code=account, debit=Decimal(debit), credit=Decimal(credit), currency=currency, **extra
    )


def entry(*lines: c.JournalLine, external_ref: str = "test:entry:1") -> c.JournalEntryCreate:
    return c.JournalEntryCreate(
        external_ref=external_ref, entity="US", posting_date=date(2026, 3, 15), lines=tuple(lines)
    )


BALANCED_USD = entry(
    line("6100", debit="1250.00", cost_center="CC-100", description="Rent", party="SUP-1"),
    line("2000", credit="1250.00"),
)

INVOICE_LINES = (
    c.InvoiceLine(
        description="Consulting, March",
        quantity=Decimal("12.5"),
        unit_price=Decimal("150.0000"),
        amount=Decimal("1875.00"),
        product="SVC-CONSULT",
        account_code="4000",
        tax_codes=("VAT20",),
        cost_center="CC-100",
    ),
)

LOAD_ROW = c.LoadRow(
    entity="FS-US", account_code="4.1.1", cost_center="", period="2026-03", amount=Decimal("-0.10")
)
"""A row of a planning load (nested in :class:`~shared.canonical.LoadCreate`)."""


def every_type() -> list[Any]:
    """One instance of each canonical Struct."""
    return [
        c.LegalEntity(
            **record("entity"),
            code="US",
            name="Finsync US Inc.",
            currency="USD",
            time_zone="America/New_York",
        ),
        c.Account(
            **record("account"),
            code="6100",
            name="Rent",
            type=c.AccountType.EXPENSE,
            normal_balance=c.NormalBalance.DEBIT,
            parent_code="6",
            is_leaf=True,
            entity="US",
        ),
        c.CostCenter(**record("cost-center"), code="CC-100", name="Sales", entity="US", parent_code=None),
        c.Department(**record("department"), code="FIN", name="Finance", entity="US"),
        c.Project(
            **record("project"),
            code="P-7",
            name="Launch",
            entity="US",
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
        ),
        c.Product(
            **record("product"), code="SVC-CONSULT", name="Consulting", kind=c.ProductKind.SERVICE, unit="h"
        ),
        c.Customer(
            **record("customer"),
            code="CUS-1",
            name="Acme",
            tax_id="US12-3456789",
            country="US",
            currency="USD",
        ),
        c.Supplier(**record("supplier"), code="SUP-1", name="Landlord LLC", country="US"),
        c.TaxCode(**record("tax"), code="VAT20", name="VAT 20%", entity="US", rate=Decimal("0.2")),
        c.FiscalPeriod(
            **record("period"),
            entity="US",
            fiscal_year="2026",
            code="2026-03",
            start_date=date(2026, 3, 1),
            end_date=date(2026, 3, 31),
            state=c.PeriodState.OPEN,
        ),
        c.JournalEntry(
            **record("move"),
            external_ref="test:entry:1",
            entity="US",
            posting_date=date(2026, 3, 15),
            period="2026-03",
            journal="MISC",
            description="March rent",
            state=c.EntryState.POSTED,
            lines=BALANCED_USD.lines,
        ),
        BALANCED_USD,
        c.Invoice(
            **record("invoice"),
            external_ref="crm:opp-1:invoice",
            entity="US",
            customer="CUS-1",
            number="INV-2026-0001",
            invoice_date=date(2026, 3, 20),
            due_date=date(2026, 4, 19),
            currency="USD",
            lines=INVOICE_LINES,
            untaxed_amount=Decimal("1875.00"),
            tax_amount=Decimal("375.00"),
            total_amount=Decimal("2250.00"),
            amount_due=Decimal("2250.00"),
            state=c.DocumentState.POSTED,
        ),
        c.InvoiceCreate(
            external_ref="crm:opp-1:invoice",
            entity="US",
            customer="CUS-1",
            invoice_date=date(2026, 3, 20),
            due_date=date(2026, 4, 19),
            currency="USD",
            lines=(
                c.InvoiceLineCreate(
                    description="Consulting, March",
                    quantity=Decimal("12.5"),
                    unit_price=Decimal("150.0000"),
                    product="SVC-CONSULT",
                    tax_codes=("VAT20",),
                ),
            ),
        ),
        c.Bill(
            **record("bill"),
            entity="US",
            supplier="SUP-1",
            supplier_reference="LL-77",
            bill_date=date(2026, 3, 1),
            currency="USD",
            lines=INVOICE_LINES,
            untaxed_amount=Decimal("1875.00"),
            tax_amount=Decimal("0.00"),
            total_amount=Decimal("1875.00"),
            amount_due=Decimal("0.00"),
            state=c.DocumentState.PAID,
        ),
        c.Payment(
            **record("payment"),
            entity="US",
            settles=c.DocumentRef(kind=c.DocumentKind.INVOICE, external_ref="crm:opp-1:invoice"),
            party="CUS-1",
            amount=Decimal("2250.00"),
            currency="USD",
            payment_date=date(2026, 4, 2),
        ),
        c.PaymentCreate(
            external_ref="stripe:pi_123",
            entity="US",
            settles=c.DocumentRef(kind=c.DocumentKind.INVOICE, id="erp-us:invoice:42"),
            amount=Decimal("2250.00"),
            currency="USD",
            payment_date=date(2026, 4, 2),
        ),
        c.CustomerCreate(external_ref="crm:account:001", name="Acme", country="US", currency="USD"),
        c.SupplierCreate(external_ref="procurement:vendor:9", name="Landlord LLC", code="SUP-1"),
        c.Balance(
            **record("balance", "US/2026-03/6100/CC-100"),
            entity="US",
            period="2026-03",
            account_code="6100",
            account_type=c.AccountType.EXPENSE,
            cost_center="CC-100",
            amount=Decimal("1250.00"),
            currency="USD",
            kind=c.BalanceKind.MOVEMENT,
        ),
        c.Balance(
            **record("balance", "US/2026-03/2000/"),
            entity="US",
            period="2026-03",
            account_code="2000",
            account_type=c.AccountType.LIABILITY,
            cost_center=c.UNALLOCATED,
            amount=Decimal("-1250.00"),
            currency="USD",
            kind=c.BalanceKind.CLOSING,
        ),
        c.PlanningVersion(name="Budget", id="107000000002", is_actual=False, is_current=True),
        c.PlanningMember(
            dimension=c.PlanningDimension.COST_CENTER,
            id="103000000006",
            name="Unallocated",
            code="UNALLOCATED",
            parent=None,
            canonical=c.UNALLOCATED,
        ),
        c.PlanningCell(
            version="Budget",
            entity="FS-US",
            account_code="5.2.2",
            period="2026-03",
            amount=Decimal("18487.52"),
        ),
        c.LoadCreate(version="Actual", rows=(LOAD_ROW,)),
        c.Load(
            id="019a6f2e4c1b3f9d2a7e5c10",
            source="planning",
            version="Actual",
            status=c.LoadStatus.COMPLETE,
            rows=2,
            mapping_version="anaplan/v1",
            progress=1.0,
            task_id="4F1E2D3C4B5A69788796A5B4C3D2E1F0",
            counts=c.LoadCounts(
                total_rows=2, success_rows=1, failed_rows=1, ignored_rows=0, created=1, updated=0
            ),
            failures=(
                c.LoadFailure(
                    row=1,
                    entity="FS-US",
                    account="5.2.2",
                    cost_center="CC-999",
                    month="Mar 26",
                    amount="10.00",
                    reason="Item not found in C1 Cost Centres: CC-999",
                ),
            ),
            detail=None,
            created_at=datetime(2026, 3, 31, 17, 45, 12, tzinfo=UTC),
            updated_at=datetime(2026, 3, 31, 17, 45, 19, tzinfo=UTC),
        ),
        c.Booking(
            **record("booking", "006Sb00000A1b2CIAR"),
            name="Acme Corp: renewal 2026",
            entity="FS-US",
            customer="C-001",
            customer_ref="001Sb00000A1b2CIAR",
            status=c.BookingStatus.WON,
            stage="Closed Won",
            close_date=date(2026, 3, 31),
            currency="USD",
            amount=Decimal("2700.00"),
            probability=Decimal("1"),
            lines=(
                c.BookingLine(
                    source_ref="00kSb00000A1b2CIAR",
                    product="P-100",
                    description="Implementation",
                    quantity=Decimal("18"),
                    unit_price=Decimal("150.00"),
                    discount=None,
                    amount=Decimal("2700.00"),
                    service_date=date(2026, 4, 1),
                ),
            ),
        ),
        c.BillingInvoice(
            **record("invoice", "in_1Q2w3E4r5T6y7U8i"),
            entity="FS-US",
            customer="C-001",
            customer_ref="cus_Q2w3E4r5T6y7U8",
            booking_ref="006Sb00000A1b2CIAR",
            number="FS1A2B3C-0001",
            status=c.BillingInvoiceStatus.PAID,
            currency="USD",
            total=Decimal("2700.00"),
            amount_due=Decimal("2700.00"),
            amount_paid=Decimal("2700.00"),
            amount_remaining=Decimal("0.00"),
            created_at=datetime(2026, 3, 31, 17, 0, tzinfo=UTC),
            finalized_at=datetime(2026, 3, 31, 17, 1, tzinfo=UTC),
            paid_at=datetime(2026, 3, 31, 17, 2, tzinfo=UTC),
            lines=(
                c.BillingInvoiceLine(
                    source_ref="il_1Q2w3E4r5T6y7U8i",
                    description="Implementation",
                    product="P-100",
                    quantity=Decimal("18"),
                    unit_price=Decimal("150.00"),
                    amount=Decimal("2700.00"),
                ),
            ),
        ),
        c.BillingInvoiceCreate(
            external_ref="crm:opportunity:006Sb00000A1b2CIAR",
            customer="C-001",
            entity="FS-US",
            currency="USD",
            booking_ref="006Sb00000A1b2CIAR",
            lines=(
                c.BillingInvoiceLineCreate(
                    description="Implementation", quantity=18, unit_price=Decimal("150.00"), product="P-100"
                ),
            ),
        ),
        c.BillingPayment(
            **record("payment", "inpay_1Q2w3E4r5T6y7U8i"),
            invoice_ref="in_1Q2w3E4r5T6y7U8i",
            customer="C-001",
            entity="FS-US",
            booking_ref="006Sb00000A1b2CIAR",
            status=c.BillingPaymentStatus.PAID,
            amount=Decimal("2700.00"),
            currency="USD",
            paid_at=datetime(2026, 3, 31, 17, 2, tzinfo=UTC),
            created_at=datetime(2026, 3, 31, 17, 2, tzinfo=UTC),
        ),
    ]
