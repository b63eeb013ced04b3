"""The seeded org: the ERP seed's customers as accounts, its products in the standard price book, and a year of
opportunities with line items.

Coherent with :mod:`system_apis.connectors.tryton.seed`:

- **Accounts** are the ERP's customers ``C-001`` … ``C-012``: ``AccountNumber`` is the ERP party code, the
  name is the one the ERP seed drew for the same ``variant`` (:func:`erp_customers`).
- **Products** are the ERP's six: ``ProductCode`` is the ERP code, ``Family`` its accounting category. The
  standard price book holds each in USD and EUR (:data:`LIST_PRICES`).
- **Opportunities** belong to the ERP company that sells to their account (custom field ``Legal_Entity__c``:
  ``FS-US`` for ``C-001`` … ``C-006``, ``FS-EU`` for the rest, as the billing sandbox bills them:
  :func:`~system_apis.connectors.seeded_customers.home_company`) and are in its currency. Close dates fall in the ERP's fiscal year; about two in three of those
  closed by the seed's horizon are won.

Deterministic: the same ``variant`` and size always give the same records,
ids and stamps (the draws come from ``random.Random`` seeded with a string,
which does not depend on Python's hash salt). Every seeded stamp is at or
before :data:`SEED_HORIZON`, and the org's clock never reads earlier, so a
change made later is always stamped later.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from system_apis.connectors.salesforce.sandbox.org import CENT, Org
from system_apis.connectors.salesforce.sandbox.schema import STAGES
from system_apis.connectors.seeded_customers import home_company
from system_apis.connectors.tryton.seed import (
    # Private to the ERP seed, which draws its customer names from them: mirrored here, see erp_customers.
    _NAME_FIRST,
    _NAME_SECOND,
    _NAME_SUFFIX,
    CUSTOMERS,
    FISCAL_YEAR,
    PRODUCTS,
    SUPPLIERS,
)

__all__ = (
    "DEFAULT_OPPORTUNITIES",
    "LIST_PRICES",
    "SEED_HORIZON",
    "erp_customers",
    "seed_org",
)

DEFAULT_OPPORTUNITIES = 2_400
"""Seeded opportunities: more than one query batch (2,000), and their line items (about 2 each) even more."""
SEED_HORIZON = dt.datetime(FISCAL_YEAR, 10, 31, 18, 0, tzinfo=dt.UTC)
"""No seeded stamp is later; opportunities closing after it are still open."""
LIST_PRICES: dict[str, dict[str, Decimal]] = {
    "P-100": {"USD": Decimal("150.00"), "EUR": Decimal("140.00")},
    "P-200": {"USD": Decimal("1200.00"), "EUR": Decimal("1100.00")},
    "P-300": {"USD": Decimal("900.00"), "EUR": Decimal("830.00")},
    "P-400": {"USD": Decimal("249.00"), "EUR": Decimal("229.00")},
    "P-500": {"USD": Decimal("1890.00"), "EUR": Decimal("1750.00")},
    "P-600": {"USD": Decimal("79.00"), "EUR": Decimal("73.00")},
}
"""The standard price book: list price of each ERP product (by code) in each currency."""
_OPEN_STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
)
_INDUSTRIES = ("Technology", "Manufacturing", "Retail", "Transportation", "Healthcare", "Energy")
_CITIES = {
    "USD": (("Springfield", "United States"), ("Austin", "United States")),
    "EUR": (("Berlin", "Germany"), ("Lyon", "France")),
}
"""Where an account is, by the currency of the company that sells to it."""


def erp_customers(variant: int) -> list[tuple[str, str]]:
    """``(code, name)`` of each ERP customer, as the ERP seed of ``variant`` creates them.

    This repeats the ERP seed's own draw: its first use of
    ``random.Random(variant)`` samples the names of all its parties, customers
    first (``_Seeder.masters``). If that seed changes how it names parties,
    change this too; the integration test of the sandbox checks the codes, and
    the names stay a pure function of ``variant``.
    """
    names = random.Random(variant).sample(  # noqa: S311 - the ERP seed's reproducible draw, not a secret
        [
            f"{first} {second} {suffix}"
            for first in _NAME_FIRST
            for second in _NAME_SECOND
            for suffix in _NAME_SUFFIX
        ],
        CUSTOMERS + SUPPLIERS,
    )
    return [(f"C-{index + 1:03d}", names[index]) for index in range(CUSTOMERS)]


def _stamp(rng: random.Random, day: dt.date) -> dt.datetime:
    """A time during working hours on ``day``, UTC, whole seconds."""
    seconds = rng.randint(8 * 3600, 18 * 3600)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)


def seed_org(org: Org, *, variant: int, opportunities: int = DEFAULT_OPPORTUNITIES) -> None:
    """Fill an empty ``org`` with accounts, products, price book entries and ``opportunities`` opportunities."""
    rng = random.Random(f"finsync-crm-sandbox:{variant}")  # noqa: S311 - reproducible content, not secrets
    created = dt.datetime(FISCAL_YEAR - 1, 12, 1, 9, 0, tzinfo=dt.UTC)
    accounts = []
    for index, (code, name) in enumerate(erp_customers(variant)):
        currency = home_company(code).currency
        city, country = _CITIES[currency][index % len(_CITIES[currency])]
        accounts.append(
            org.insert(
                "Account",
                {
                    "Name": name,
                    "AccountNumber": code,
                    "Type": "Customer - Direct",
                    "Industry": _INDUSTRIES[index % len(_INDUSTRIES)],
                    "BillingStreet": f"{index + 1} Main Street",
                    "BillingCity": city,
                    "BillingCountry": country,
                    "CurrencyIsoCode": currency,
                },
                stamp=created,
            )
        )
    for product in PRODUCTS:
        record = org.insert(
            "Product2",
            {
                "Name": product.name,
                "ProductCode": product.code,
                "Family": product.category,
                "IsActive": True,
                "Description": f"ERP product {product.code} ({product.type})",
            },
            stamp=created,
        )
        for currency, price in LIST_PRICES[product.code].items():
            org.add_price(record["Id"], currency, price, stamp=created)
    horizon = SEED_HORIZON.date()
    for number in range(1, opportunities + 1):
        account = accounts[rng.randrange(len(accounts))]
        company = home_company(account["AccountNumber"])
        close = dt.date(FISCAL_YEAR, 1, 1) + dt.timedelta(days=rng.randrange(365))
        opened = close - dt.timedelta(days=rng.randint(14, 120))
        if close <= horizon:
            draw = rng.random()
            stage = "Closed Won" if draw < 0.65 else "Closed Lost" if draw < 0.85 else "Negotiation/Review"
        else:
            stage = _OPEN_STAGES[rng.randrange(len(_OPEN_STAGES))]
        products = rng.sample(PRODUCTS, rng.randint(1, 3))
        lines = []
        for product in products:
            list_price = LIST_PRICES[product.code][company.currency]
            discount = Decimal(rng.choice((0, 0, 0, 5, 10, 15))) / 100
            lines.append(
                {
                    "ProductCode": product.code,
                    "Quantity": Decimal(rng.randint(1, 40 if product.type == "service" else 12)),
                    "UnitPrice": (list_price * (1 - discount)).quantize(CENT),
                    "ServiceDate": close.isoformat(),
                }
            )
        stamp = min(_stamp(rng, max(opened, created.date())), SEED_HORIZON)
        record = org.create_opportunity(
            {
                "Name": f"{account['Name']} - {products[0].name} #{number:05d}",
                "AccountId": account["Id"],
                "StageName": stage,
                "CloseDate": close.isoformat(),
                "Type": "New Customer" if rng.random() < 0.3 else "Existing Customer - Upgrade",
                "Legal_Entity__c": company.code,
            },
            lines,
            stamp=stamp,
        )
        # The last edit: on the close date for closed deals, some days after opening for open ones.
        last = close if STAGES[stage].closed else opened + dt.timedelta(days=rng.randint(0, 10))
        modified = max(stamp, min(_stamp(rng, last), SEED_HORIZON))
        record.update(LastModifiedDate=modified, SystemModstamp=modified)
