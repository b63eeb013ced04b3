"""The CRM and billing sandboxes agree with the ERP, read through the system API as the flows will read them.

Order-to-cash joins the three sources by business code: a CRM account, a billing
customer and an ERP party are the same customer when their codes match, and a
line sells the same product when its product code does. So each source's
customers, read through its own connector, must be the ERP's, code for code and
name for name, and every product and legal entity they name must exist in the ERP.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pytest

from system_apis.app import create_app
from tests.integration.test_billing_api import SOURCE as BILLING
from tests.integration.test_billing_api import billing_source
from tests.integration.test_crm_api import SOURCE as CRM
from tests.integration.test_crm_api import crm_source
from tests.integration.test_erp_api import A, sources
from tests.support import in_process

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from shared.settings import Settings
    from tests.billing_fixtures import BillingSandbox
    from tests.crm_fixtures import CrmSandbox
    from tests.erp_fixtures import Erp

pytestmark = pytest.mark.slow


async def every(client: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every item of a paged list route, following ``next_cursor``."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
        response = await client.get(path, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_crm_and_billing_customers_and_products_are_the_erps(
    make_settings: Callable[..., Settings], erp: Erp, crm: CrmSandbox, billing: BillingSandbox
) -> None:
    settings = make_settings(
        auth={"enabled": False},
        rate_limit={"enabled": False},
        sources={A: sources(erp)[A], **crm_source(crm), **billing_source(billing)},
    )
    async with in_process(create_app(settings)) as client:
        erp_customers = {c["code"]: c["name"] for c in await every(client, f"/v1/erp/{A}/customers")}
        erp_products = {p["code"] for p in await every(client, f"/v1/erp/{A}/products")}
        entities = {e["code"] for e in (await client.get(f"/v1/erp/{A}/legal-entities")).json()["items"]}
        crm_customers = {c["code"]: c["name"] for c in await every(client, f"/v1/crm/{CRM}/customers")}
        billing_customers = await every(client, f"/v1/billing/{BILLING}/customers")
        bookings = await every(client, f"/v1/crm/{CRM}/bookings")
        invoices = await every(client, f"/v1/billing/{BILLING}/invoices")

    # The ERP's seeded customers (other tests add their own to the shared ERP).
    seeded = {code: name for code, name in erp_customers.items() if re.fullmatch(r"C-[0-9]{3}", code)}
    assert len(seeded) == 12
    assert crm_customers == seeded
    assert {c["code"]: c["name"] for c in billing_customers} == seeded
    # Each ERP company bills in its own currency: FS-US in USD, FS-EU in EUR.
    assert {c["currency"] for c in billing_customers} == {"USD", "EUR"}

    assert bookings, "the CRM seed has deals"
    assert {b["entity"] for b in bookings} <= entities
    # A customer buys from one company, in its currency, in the CRM as in billing: a won deal can be billed.
    billed_in = {c["code"]: c["currency"] for c in billing_customers}
    assert {(b["customer"], b["currency"]) for b in bookings} == set(billed_in.items())
    assert {b["customer"] for b in bookings} <= set(seeded)
    booked = {line["product"] for b in bookings for line in b["lines"]}
    assert booked
    assert booked <= erp_products

    assert len(invoices) >= 120
    assert {i["customer"] for i in invoices} <= set(seeded)
    assert {i["entity"] for i in invoices} <= entities
    billed = {line["product"] for i in invoices for line in i["lines"] if line["product"] is not None}
    assert billed
    assert billed <= erp_products
