"""The deterministic seed of a finsync ERP database: two companies and a year of posted books.

Run in its own process against a database that has the finsync modules
activated (:mod:`system_apis.connectors.tryton.database` does that)::

    TRYTOND_CONFIG=trytond.conf python -m system_apis.connectors.tryton.seed DATABASE --lines 2000 --variant 1

It seeds in-process, through trytond itself: the chart, company and fiscal-year
wizards through proteus, then every move and invoice in batches (one ``create``
and one ``post`` per company), which is far faster than JSON-RPC.

The structure is fixed and documented by the constants below: the companies,
the accounts used (codes of Tryton's universal chart), the cost centres, the
fiscal year and its closed months, the parties and products. Planning sandboxes
seed members that must agree with these codes. The ``variant`` changes only
the content: amounts, references, party names and dates are drawn from
``random.Random(variant)``, so two databases with different variants hold
different books of the same shape, and the same variant always gives the same
books.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import functools
import random
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = (
    "ACCOUNTS",
    "CLOSED_MONTHS",
    "COMPANIES",
    "COST_CENTRES",
    "COST_CENTRE_ROOT",
    "CUSTOMERS",
    "DRAFT_MONTH",
    "FISCAL_YEAR",
    "PARTY_CATEGORIES",
    "PAYMENT_METHOD",
    "PRODUCTS",
    "PRODUCT_CATEGORIES",
    "SERVICE_GROUPS",
    "SERVICE_LOGIN",
    "SUPPLIERS",
    "CompanySeed",
    "ProductSeed",
    "SeedSummary",
    "seed",
)

_T = TypeVar("_T")

FISCAL_YEAR = 2026
"""Every company has one fiscal year, calendar 2026, with twelve monthly periods."""
CLOSED_MONTHS = (1, 2, 3)
"""Months whose periods the seed closes after posting: January to March 2026."""
DRAFT_MONTH = 6
"""Month of the one draft (unposted) move each company keeps."""


@dataclass(frozen=True)
class CompanySeed:
    """A legal entity of the seed."""

    code: str
    """Its party's code: the stable key of the legal entity."""
    name: str
    """Its name."""
    currency: str
    """ISO 4217 code of its currency."""


COMPANIES = (
    CompanySeed("FS-US", "Finsync US Inc.", "USD"),
    CompanySeed("FS-EU", "Finsync Europe GmbH", "EUR"),
)
"""The two companies, the first in USD and the second in EUR."""

ACCOUNTS = {
    "cash": "1.1.1",
    "receivable": "1.2.1",
    "prepaid": "1.4.1",
    "payable": "2.1.1",
    "accrued": "2.2.1",
    "deferred_revenue": "2.2.2",
    "revenue_goods": "4.1.1",
    "revenue_services": "4.1.2",
    "materials": "5.1.1",
    "services": "5.1.3",
    "rent_depreciation": "5.1.4",
    "sga": "5.2.2",
}
"""The leaf accounts the seed posts to, by role, as codes of Tryton's universal chart (same in each company)."""

EXPENSE_ROLES = ("materials", "services", "rent_depreciation", "sga")
"""Profit-and-loss expense accounts; their move lines carry the cost-centre split."""
REVENUE_ROLES = ("revenue_goods", "revenue_services")
"""Revenue accounts."""

COST_CENTRE_ROOT = ("CC", "Cost Centres")
"""Code and name of each company's analytic root."""
COST_CENTRES = (
    ("CC-100", "Sales"),
    ("CC-200", "Marketing"),
    ("CC-300", "Research and Development"),
    ("CC-400", "Operations"),
    ("CC-500", "Finance and Administration"),
)
"""Codes and names of the leaf cost centres, under the root, in each company."""

CUSTOMERS = 12
"""Customers, coded ``C-001`` to ``C-012``, shared by both companies."""
SUPPLIERS = 8
"""Suppliers, coded ``S-001`` to ``S-008``, shared by both companies."""
PARTY_CATEGORIES = ("Customers", "Suppliers")
"""Party categories of the customers and of the suppliers (the connector's mapping names them)."""


PAYMENT_METHOD = ("Cash", "CASH", "cash")
"""Each company's invoice payment method: its name, its journal's code and the role (in :data:`ACCOUNTS`) of
the account it debits and credits."""


PRODUCT_CATEGORIES = {
    "Services": ("revenue_services", "services"),
    "Goods": ("revenue_goods", "materials"),
}
"""Accounting categories of the products: the roles (in :data:`ACCOUNTS`) of their revenue and expense accounts."""


@dataclass(frozen=True)
class ProductSeed:
    """A product of the seed."""

    code: str
    """Its stable code."""
    name: str
    """Its name."""
    type: str
    """Tryton product type: ``goods`` or ``service``."""
    category: str
    """Its accounting category, a key of :data:`PRODUCT_CATEGORIES`."""


PRODUCTS = (
    ProductSeed("P-100", "Consulting hour", "service", "Services"),
    ProductSeed("P-200", "Support plan", "service", "Services"),
    ProductSeed("P-300", "Training day", "service", "Services"),
    ProductSeed("P-400", "Sensor kit", "goods", "Goods"),
    ProductSeed("P-500", "Gateway appliance", "goods", "Goods"),
    ProductSeed("P-600", "Spare parts pack", "goods", "Goods"),
)
"""The products, sold on customer invoices and bought on supplier invoices."""

SERVICE_GROUPS = ("account.group_account",)
"""Groups (XML ids) of the service user: Accounting reads and writes moves, invoices and reconciliations."""
SERVICE_LOGIN = "finsync"
"""Login of the connector's service user, which the seed creates without a password (the caller sets it)."""
SERVICE_NAME = "finsync service user"
"""Its name."""

_LOCKED_TABLES = (
    "ir_sequence",
    "ir_sequence_strict",
    "account_journal_period",
    "account_move",
    "account_period",
)
"""Tables each seeding transaction locks from the start: posting and closing ask for these locks, and asking
up front spares the restart Tryton otherwise needs to take each one (the seed is the only writer)."""
_BATCH = 100
"""Documents created and posted per transaction: bigger batches only grow Tryton's per-transaction caches."""
_INVOICE_SHARE = 0.2
"""About this share of the journal lines comes from posted invoices, the rest from manual moves."""

_NAME_FIRST = (
    "Acme", "Blue", "Cedar", "Delta", "Ember", "Falcon", "Granite", "Harbor", "Iris", "Juniper",
    "Kestrel", "Lumen", "Maple", "Nimbus", "Orchid", "Pioneer", "Quartz", "Riverside", "Summit", "Tidal",
)  # fmt: skip
_NAME_SECOND = (
    "Analytics", "Builders", "Components", "Dynamics", "Electric", "Foods", "Logistics", "Media",
    "Networks", "Partners", "Robotics", "Systems", "Textiles", "Ventures", "Works",
)  # fmt: skip
_NAME_SUFFIX = ("Ltd", "LLC", "Inc.", "GmbH", "S.A.", "B.V.")


@dataclass
class SeedSummary:
    """What a seed run created, printed at its end."""

    variant: int
    """The variant seeded."""
    companies: dict[str, int] = field(default_factory=dict)
    """Company id by company code."""
    moves: int = 0
    """Posted manual moves."""
    invoices: int = 0
    """Posted invoices."""
    lines: int = 0
    """Posted journal lines (manual moves plus the moves of invoices)."""
    analytic_lines: int = 0
    """Analytic lines (cost-centre allocations)."""
    drafts: int = 0
    """Draft moves left unposted."""
    seconds: float = 0.0
    """Time the run took."""

    def describe(self) -> str:
        """A few lines for a person."""
        companies = ", ".join(f"{code} (id {ident})" for code, ident in self.companies.items())
        closed = ", ".join(dt.date(FISCAL_YEAR, month, 1).strftime("%b") for month in CLOSED_MONTHS)
        return "\n".join(
            (
                f"seed variant {self.variant}: {self.lines} posted journal lines in {self.seconds:.1f}s",
                f"  companies      {companies}",
                f"  fiscal year    {FISCAL_YEAR}, monthly periods, closed: {closed}",
                f"  posted         {self.moves} manual moves, {self.invoices} invoices",
                f"  analytic lines {self.analytic_lines} over {len(COST_CENTRES)} cost centres",
                f"  drafts         {self.drafts} unposted move(s) in {dt.date(FISCAL_YEAR, DRAFT_MONTH, 1):%B}",
                f"  parties        {CUSTOMERS} customers, {SUPPLIERS} suppliers; {len(PRODUCTS)} products",
            )
        )


@dataclass
class _Books:
    """Ids the bulk part of one company's seed needs."""

    company: int
    code: str
    currency: int
    accounts: dict[str, int]
    cost_centres: list[int]
    periods: dict[int, int]
    journals: dict[str, int]


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    """An amount with cents, drawn uniformly."""
    return Decimal(rng.randint(low * 100, high * 100)) / 100


def _date(rng: random.Random, month: int) -> dt.date:
    return dt.date(FISCAL_YEAR, month, rng.randint(1, 28))


def _split(
    rng: random.Random, amount: Decimal, cost_centres: list[int], *, full: bool
) -> list[tuple[int, Decimal]]:
    """Allocate ``amount`` over two or three cost centres: all of it, or (``full=False``) only part."""
    chosen = rng.sample(cost_centres, rng.randint(2, 3))
    allocated = amount if full else (amount * Decimal(rng.randint(30, 80)) / 100).quantize(Decimal("0.01"))
    shares: list[tuple[int, Decimal]] = []
    remaining = allocated
    for centre in chosen[:-1]:
        share = (allocated * Decimal(rng.randint(20, 50)) / 100).quantize(Decimal("0.01"))
        shares.append((centre, share))
        remaining -= share
    shares.append((chosen[-1], remaining))
    return [(centre, share) for centre, share in shares if share]


class _Seeder:
    """Seeds one database; everything runs inside trytond in this process."""

    def __init__(self, database: str, lines: int, variant: int) -> None:
        self.database = database
        self.lines = lines
        self.variant = variant
        self.rng = random.Random(variant)  # noqa: S311 - reproducible content, not secrets
        self.summary = SeedSummary(variant=variant)
        self.categories: dict[str, int] = {}

    # -- setup through Tryton's own wizards (proteus) ---------------------------------------------

    def setup(self) -> list[_Books]:
        """Companies, charts, fiscal years, cost centres, parties, products and the service user."""
        from proteus import Model  # noqa: PLC0415 - needs the trytond config set first
        from proteus.config import get_config  # noqa: PLC0415
        from trytond.modules.account.tests.tools import (  # noqa: PLC0415
            create_chart,
            create_fiscalyear,
        )
        from trytond.modules.account_invoice.tests.tools import (  # noqa: PLC0415
            set_fiscalyear_invoice_sequences,
        )
        from trytond.modules.company.tests.tools import create_company  # noqa: PLC0415

        config = get_config()
        user_model = Model.get("res.user")
        party_model = Model.get("party.party")
        company_model = Model.get("company.company")
        account_model = Model.get("account.account")
        journal_model = Model.get("account.journal")
        analytic_model = Model.get("analytic_account.account")
        books: list[_Books] = []
        for spec in COMPANIES:
            party = party_model(name=spec.name, code=spec.code)
            party.save()
            create_company(party, spec.currency)
            (company,) = company_model.find([("party", "=", party.id)])
            # The wizard gives the new company only to users that have none: make it admin's current one.
            _transact(self.database, functools.partial(_make_current, config.user, company.id))
            config._context = user_model.get_preferences(True, {})  # noqa: SLF001 - as Tryton's own tools do
            create_chart(company)
            fiscalyear = set_fiscalyear_invoice_sequences(
                create_fiscalyear(company, (dt.date(FISCAL_YEAR, 1, 1), dt.date(FISCAL_YEAR, 12, 31)))
            )
            fiscalyear.click("create_period")
            accounts = {
                role: account_model.find([("company", "=", company.id), ("code", "=", code)])[0].id
                for role, code in ACCOUNTS.items()
            }
            root = analytic_model(
                name=COST_CENTRE_ROOT[1], code=COST_CENTRE_ROOT[0], type="root", company=company
            )
            root.save()
            centres = [
                analytic_model(name=name, code=code, type="normal", root=root, parent=root, company=company)
                for code, name in COST_CENTRES
            ]
            analytic_model.save(centres)
            books.append(
                _Books(
                    company=company.id,
                    code=spec.code,
                    currency=company.currency.id,
                    accounts=accounts,
                    cost_centres=[centre.id for centre in centres],
                    periods={period.start_date.month: period.id for period in fiscalyear.periods},
                    journals={journal.code: journal.id for journal in journal_model.find([])},
                )
            )
            self.summary.companies[spec.code] = company.id
        return books

    # -- bulk content, straight through trytond ----------------------------------------------------

    def masters(self) -> tuple[list[int], list[int], dict[str, tuple[int, int]], dict[int, int]]:
        """Customers, suppliers (names by variant), product categories and products.

        Returns:
            Customer ids, supplier ids, ``(product id, unit id)`` by product code, and each party's address id.
        """
        names = self.rng.sample(
            [
                f"{first} {second} {suffix}"
                for first in _NAME_FIRST
                for second in _NAME_SECOND
                for suffix in _NAME_SUFFIX
            ],
            CUSTOMERS + SUPPLIERS,
        )
        parties = [
            {
                "name": names[index],
                "code": f"C-{index + 1:03d}" if index < CUSTOMERS else f"S-{index - CUSTOMERS + 1:03d}",
                "addresses": [("create", [{"street": f"{index + 1} Main Street", "city": "Springfield"}])],
            }
            for index in range(CUSTOMERS + SUPPLIERS)
        ]

        def create(pool: Any) -> tuple[list[int], dict[int, int], dict[str, tuple[int, int]]]:
            customers, suppliers = pool.get("party.category").create(
                [{"name": name} for name in PARTY_CATEGORIES]
            )
            values = copy.deepcopy(parties)
            for index, party in enumerate(values):
                party["categories"] = [("add", [(customers if index < CUSTOMERS else suppliers).id])]
            created = pool.get("party.party").create(values)
            (unit,) = pool.get("product.uom").search([("symbol", "=", "u")], limit=1)
            categories = pool.get("product.category").create(
                [{"name": name, "accounting": True} for name in PRODUCT_CATEGORIES]
            )
            self.categories = {category.name: category.id for category in categories}
            templates = pool.get("product.template").create(
                [
                    {
                        "name": product.name,
                        "code": product.code,
                        "type": product.type,
                        "default_uom": unit.id,
                        "account_category": self.categories[product.category],
                        "products": [("create", [{}])],
                    }
                    for product in PRODUCTS
                ]
            )
            products = {
                spec.code: (template.products[0].id, unit.id)
                for spec, template in zip(PRODUCTS, templates, strict=True)
            }
            return (
                [party.id for party in created],
                {party.id: party.addresses[0].id for party in created},
                products,
            )

        ids, addresses, products = _transact(self.database, create)
        return ids[:CUSTOMERS], ids[CUSTOMERS:], products, addresses

    def service_user(self) -> None:
        """The connector's user: Accounting groups, both companies; its password is set by the caller."""
        companies = list(self.summary.companies.values())

        def create(pool: Any) -> None:
            model_data = pool.get("ir.model.data")
            pool.get("res.user").create(
                [
                    {
                        "login": SERVICE_LOGIN,
                        "name": SERVICE_NAME,
                        "groups": [
                            ("add", [model_data.get_id(*group.split(".")) for group in SERVICE_GROUPS])
                        ],
                        "companies": [("add", companies)],
                        "company": companies[0],
                        # Record rules then cover every company of the user; each call names its company.
                        "company_filter": "all",
                    }
                ]
            )

        _transact(self.database, create)

    def _move(self, books: _Books, month: int, number: int, suppliers: list[int]) -> dict[str, Any]:
        """One manual move of two to four lines, expenses split (fully, partly or not) over cost centres."""
        rng = self.rng
        date = _date(rng, month)
        kind = rng.choice(("accrual", "payroll", "cash_sale", "prepaid", "supplier_accrual"))
        debits: list[tuple[str, Decimal]] = []
        credit_role = "accrued"
        party: int | None = None
        if kind == "cash_sale":
            amount = _money(rng, 200, 9000)
            lines = [self._line(books, "cash", amount, Decimal(0), date)]
            lines.append(self._line(books, "revenue_services", Decimal(0), amount, date, analytic=True))
            return self._move_values(books, date, number, "Cash sale", lines)
        count = rng.randint(1, 3)
        roles = rng.sample(EXPENSE_ROLES, count)
        debits = [(role, _money(rng, 100, 6000)) for role in roles]
        if kind == "payroll":
            credit_role = "cash"
        elif kind == "prepaid":
            credit_role = "prepaid"
        elif kind == "supplier_accrual":
            credit_role = "payable"
            party = rng.choice(suppliers)
        lines = [self._line(books, role, amount, Decimal(0), date, analytic=True) for role, amount in debits]
        total = sum((amount for _role, amount in debits), Decimal(0))
        lines.append(self._line(books, credit_role, Decimal(0), total, date, party=party))
        return self._move_values(books, date, number, kind.replace("_", " ").capitalize(), lines)

    def _line(
        self,
        books: _Books,
        role: str,
        debit: Decimal,
        credit: Decimal,
        date: dt.date,
        *,
        analytic: bool = False,
        party: int | None = None,
    ) -> dict[str, Any]:
        values: dict[str, Any] = {"account": books.accounts[role], "debit": debit, "credit": credit}
        if party is not None:
            values["party"] = party
        if analytic:
            # About half fully allocated, a quarter partly, a quarter not at all.
            draw = self.rng.random()
            if draw < 0.75:
                shares = _split(self.rng, debit or credit, books.cost_centres, full=draw < 0.5)
                values["analytic_lines"] = [
                    (
                        "create",
                        [
                            {
                                "account": centre,
                                "debit": share if debit else Decimal(0),
                                "credit": share if credit else Decimal(0),
                                "date": date,
                            }
                            for centre, share in shares
                        ],
                    )
                ]
                self.summary.analytic_lines += len(shares)
        return values

    def _move_values(
        self, books: _Books, date: dt.date, number: int, description: str, lines: list[dict[str, Any]]
    ) -> dict[str, Any]:
        return {
            "company": books.company,
            "journal": books.journals["MISC"],
            "period": books.periods[date.month],
            "date": date,
            "description": description,
            "external_ref": f"seed-v{self.variant}-{books.code}-JE-{number:05d}",
            "lines": [("create", lines)],
        }

    def _invoice(
        self,
        books: _Books,
        month: int,
        number: int,
        customers: list[int],
        suppliers: list[int],
        products: dict[str, tuple[int, int]],
        addresses: dict[int, int],
    ) -> dict[str, Any]:
        """One customer or supplier invoice of one to three lines."""
        rng = self.rng
        date = _date(rng, month)
        outgoing = rng.random() < 0.6
        party = rng.choice(customers if outgoing else suppliers)
        lines = []
        for spec in rng.sample(PRODUCTS, rng.randint(1, 3)):
            product, unit = products[spec.code]
            lines.append(
                {
                    "type": "line",
                    "product": product,
                    "description": spec.name,
                    "quantity": float(rng.randint(1, 20)),
                    "unit": unit,
                    "unit_price": _money(rng, 20, 800).quantize(Decimal("0.0001")),
                    "account": books.accounts[PRODUCT_CATEGORIES[spec.category][0 if outgoing else 1]],
                    "currency": books.currency,
                    "company": books.company,
                }
            )
        return {
            "company": books.company,
            "type": "out" if outgoing else "in",
            "party": party,
            "invoice_address": addresses[party],
            "currency": books.currency,
            "journal": books.journals["REV" if outgoing else "EXP"],
            "account": books.accounts["receivable" if outgoing else "payable"],
            "invoice_date": date,
            "reference": f"{'SO' if outgoing else 'PO'}-{self.variant}{number:05d}",
            "description": "Sale" if outgoing else "Purchase",
            "external_ref": f"seed-v{self.variant}-{books.code}-INV-{number:05d}",
            "lines": [("create", lines)],
        }

    def books(
        self,
        books: _Books,
        lines: int,
        customers: list[int],
        suppliers: list[int],
        products: dict[str, tuple[int, int]],
        addresses: dict[int, int],
    ) -> None:
        """Post about ``lines`` journal lines over the twelve months, keep one draft, close the first months."""
        invoices: list[dict[str, Any]] = []
        counted = 0
        while counted < lines * _INVOICE_SHARE:
            values = self._invoice(
                books, len(invoices) % 12 + 1, len(invoices) + 1, customers, suppliers, products, addresses
            )
            invoices.append(values)
            counted += len(values["lines"][0][1]) + 1  # the invoice's lines plus its receivable or payable
        moves: list[dict[str, Any]] = []
        while counted < lines:
            values = self._move(books, len(moves) % 12 + 1, len(moves) + 1, suppliers)
            moves.append(values)
            counted += len(values["lines"][0][1])
        draft = self._move(books, DRAFT_MONTH, len(moves) + 1, suppliers)
        draft["external_ref"] = f"seed-v{self.variant}-{books.code}-DRAFT-00001"

        def categories(pool: Any) -> None:
            category_model = pool.get("product.category")
            for name, (revenue, expense) in PRODUCT_CATEGORIES.items():
                category_model.write(
                    category_model.browse([self.categories[name]]),
                    {"account_revenue": books.accounts[revenue], "account_expense": books.accounts[expense]},
                )

        def payment_method(pool: Any) -> None:
            name, journal, role = PAYMENT_METHOD
            pool.get("account.invoice.payment.method").create(
                [
                    {
                        "name": name,
                        "company": books.company,
                        "journal": books.journals[journal],
                        "debit_account": books.accounts[role],
                        "credit_account": books.accounts[role],
                    }
                ]
            )

        def post(model: str, batch: list[dict[str, Any]], pool: Any) -> None:
            klass = pool.get(model)
            klass.post(klass.create(copy.deepcopy(batch)))

        def finish(pool: Any) -> None:
            # Posting invoices queues their printing; nothing here runs that queue, so leave none behind.
            queue_model = pool.get("ir.queue")
            queue_model.delete(queue_model.search([]))
            pool.get("account.move").create(copy.deepcopy([draft]))
            period_model = pool.get("account.period")
            period_model.close(period_model.browse([books.periods[month] for month in CLOSED_MONTHS]))

        context = {"company": books.company}
        _transact(self.database, categories, context)
        _transact(self.database, payment_method, context)
        # Invoice numbers must follow invoice dates: post in date order.
        invoices.sort(key=lambda values: values["invoice_date"])
        moves.sort(key=lambda values: values["date"])
        for model, documents in (("account.invoice", invoices), ("account.move", moves)):
            for start in range(0, len(documents), _BATCH):
                _transact(
                    self.database, functools.partial(post, model, documents[start : start + _BATCH]), context
                )
        _transact(self.database, finish, context)
        self.summary.moves += len(moves)
        self.summary.invoices += len(invoices)
        self.summary.lines += counted
        self.summary.drafts += 1

    def run(self) -> SeedSummary:
        """Seed everything; the summary says what."""
        started = time.perf_counter()
        all_books = self.setup()
        customers, suppliers, products, addresses = self.masters()
        self.service_user()
        per_company = self.lines // len(all_books)
        for books in all_books:
            self.books(books, per_company, customers, suppliers, products, addresses)
        self.summary.seconds = time.perf_counter() - started
        return self.summary


def _transact(database: str, work: Callable[[Any], _T], context: dict[str, Any] | None = None) -> _T:
    """Run ``work(pool)`` in one transaction as Tryton's root user and commit it.

    Tryton asks for the locks a transaction needs by raising a ``TransactionError``
    that names them; like its own dispatcher, start again holding them.
    """
    from trytond.pool import Pool  # noqa: PLC0415
    from trytond.transaction import Transaction, TransactionError  # noqa: PLC0415

    extras: dict[str, Any] = {"_lock_tables": list(_LOCKED_TABLES)}
    while True:
        try:
            with Transaction().start(database, 0, context=context or {}, **extras) as transaction:
                result = work(Pool())
                transaction.commit()
                return result
        except TransactionError as exc:
            exc.fix(extras)


def _make_current(user: int, company: int, pool: Any) -> None:
    """Add ``company`` to ``user``'s companies and make it the current one."""
    user_model = pool.get("res.user")
    user_model.write(user_model.browse([user]), {"companies": [("add", [company])], "company": company})


def _admin_with_every_group(database: str) -> None:
    """Give ``admin`` every group, so the wizards the seed drives as admin may run."""

    def grant(pool: Any) -> None:
        user_model = pool.get("res.user")
        groups = [group.id for group in pool.get("res.group").search([])]
        user_model.write(user_model.search([("login", "=", "admin")]), {"groups": [("add", groups)]})

    _transact(database, grant)


def seed(database: str, *, lines: int, variant: int) -> SeedSummary:
    """Seed ``database`` (modules activated, nothing else) with about ``lines`` posted journal lines.

    The trytond configuration (``TRYTOND_CONFIG``) must name the database server.
    """
    from proteus import config  # noqa: PLC0415
    from trytond.pool import Pool  # noqa: PLC0415

    Pool.start()
    Pool(database).init()
    _admin_with_every_group(database)
    config.set_trytond(database, user="admin")
    return _Seeder(database, lines, variant).run()


def main(argv: list[str] | None = None) -> int:
    """``python -m system_apis.connectors.tryton.seed DATABASE --lines N --variant V``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("database")
    parser.add_argument("--lines", type=int, default=10_000, help="about how many journal lines to post")
    parser.add_argument(
        "--variant", type=int, default=1, help="which content to draw (same variant, same books)"
    )
    args = parser.parse_args(argv)
    print(seed(args.database, lines=args.lines, variant=args.variant).describe(), flush=True)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
