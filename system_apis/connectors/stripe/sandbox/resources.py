"""Customers, the catalogue (products and prices), payments, events and webhook endpoints: their ``/v1`` routes.

Invoices and invoice items, which carry the state machine, are in
:mod:`~.invoicing`. Every list is newest first and paged by
:func:`~.store.page`; every write records its events through
:meth:`~.state.Sandbox.emit`.
"""

from __future__ import annotations

import re
import secrets
import string
from typing import TYPE_CHECKING, Any

from system_apis.connectors.stripe.sandbox.config import API_VERSION
from system_apis.connectors.stripe.sandbox.errors import InvalidRequestError, ResourceMissingError
from system_apis.connectors.stripe.sandbox.forms import (
    LIST_PARAMS,
    Bool,
    Currency,
    Enum,
    Metadata,
    Obj,
    Param,
    Range,
    Str,
    StrList,
)
from system_apis.connectors.stripe.sandbox.objects import (
    Charge,
    Customer,
    Event,
    InvoicePayment,
    PaymentIntent,
    Price,
    Product,
    Record,
    WebhookEndpoint,
)
from system_apis.connectors.stripe.sandbox.routing import route
from system_apis.connectors.stripe.sandbox.search import (
    CHARGE_FIELDS,
    CUSTOMER_FIELDS,
    PAYMENT_INTENT_FIELDS,
    search,
)
from system_apis.connectors.stripe.sandbox.state import EVENT_RETENTION
from system_apis.connectors.stripe.sandbox.store import in_range, new_id, page

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from system_apis.connectors.stripe.sandbox.routing import Call
    from system_apis.connectors.stripe.sandbox.state import Sandbox

__all__ = (
    "ID",
    "SEARCH_PARAMS",
    "apply_metadata",
    "changes",
    "listed",
    "new_metadata",
    "searched",
)

ID = Str(nullable=False, max_length=255)
"""An object id in a parameter."""
SEARCH_PARAMS: dict[str, Param] = {
    "query": Param(Str(nullable=False), required=True),
    "limit": LIST_PARAMS["limit"],
    "page": Param(Str(nullable=False)),
}
"""Parameters of every ``…/search`` endpoint."""
_PREFIX = re.compile(r"^[A-Z0-9]{3,12}$")


def new_metadata(params: Mapping[str, Any]) -> dict[str, str]:
    """Metadata of a new object: the keys given with a non-empty value."""
    return {key: value for key, value in params.get("metadata", {}).items() if key and value}


def apply_metadata(record: Record, params: Mapping[str, Any]) -> None:
    """Update ``record.metadata``: ``metadata=`` clears it, ``metadata[k]=`` removes ``k``, others are set."""
    given: dict[str, str] | None = params.get("metadata")
    if given is None:
        return
    if given.get("") == "":
        record.metadata.clear()
    for key, value in given.items():
        if not key:
            continue
        if value:
            record.metadata[key] = value
        else:
            record.metadata.pop(key, None)


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """``previous_attributes`` of an ``*.updated`` event: the old value of each top-level field that changed."""
    return {key: value for key, value in before.items() if after.get(key) != value}


def listed(
    sandbox: Sandbox, call: Call, records: Iterable[Record], url: str, created: str = "created"
) -> dict[str, Any]:
    """A page of ``records`` filtered by the ``created`` range parameter (if the call has one)."""
    bounds = call.params.get(created)
    chosen = [record for record in records if in_range(record.created, bounds)]
    return page(sandbox.store, chosen, call.params, url, sandbox.render)


def searched(
    sandbox: Sandbox, call: Call, kind: type[Record], fields: Mapping[str, str], resource: str
) -> dict[str, Any]:
    """A ``…/search`` answer over every ``kind`` object."""

    def hidden(count: int) -> None:
        sandbox.counters.search_lagged += count

    return search(
        sandbox.store,
        sandbox.store.newest_first(kind),
        {**call.params, "expand": call.expand},
        fields=fields,
        resource=resource,
        render=sandbox.render,
        on_hidden=hidden,
    )


# Customers

_CUSTOMER_FIELDS: dict[str, Param] = {
    "name": Param(Str(max_length=256)),
    "email": Param(Str(max_length=512)),
    "description": Param(Str()),
    "phone": Param(Str(max_length=20)),
    "metadata": Param(Metadata()),
    "invoice_prefix": Param(Str(pattern=_PREFIX.pattern)),
    "invoice_settings": Param(Obj({"default_payment_method": Param(ID)})),
}


def _invoice_prefix(sandbox: Sandbox) -> str:
    taken = {record.invoice_prefix for record in sandbox.store.newest_first(Customer)}
    while True:
        prefix = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(8))
        if prefix not in taken:
            return prefix


@route("POST", "/v1/customers", _CUSTOMER_FIELDS)
def create_customer(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Create a customer; ``customer.created``."""
    params = call.params
    customer = sandbox.store.add(
        Customer(
            id=new_id("cus"),
            created=sandbox.clock.now(),
            name=params.get("name"),
            email=params.get("email"),
            description=params.get("description"),
            phone=params.get("phone"),
            invoice_prefix=params.get("invoice_prefix") or _invoice_prefix(sandbox),
            default_payment_method=params.get("invoice_settings", {}).get("default_payment_method"),
            metadata=new_metadata(params),
        )
    )
    sandbox.saved(customer)
    sandbox.emit("customer.created", customer, call)
    return sandbox.render(customer)


@route("GET", "/v1/customers/search", SEARCH_PARAMS)
def search_customers(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Search customers (``email``, ``name``, ``phone``, ``metadata['key']``, ``created``)."""
    return searched(sandbox, call, Customer, CUSTOMER_FIELDS, "customers")


@route("GET", "/v1/customers/{customer}")
def retrieve_customer(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """A customer; a deleted one answers ``{"deleted": true}``."""
    return sandbox.render(sandbox.store.get(Customer, call.path["customer"], allow_deleted=True))


@route("POST", "/v1/customers/{customer}", _CUSTOMER_FIELDS)
def update_customer(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Update a customer; ``customer.updated`` with ``previous_attributes``."""
    customer = sandbox.store.get(Customer, call.path["customer"])
    before = sandbox.render(customer)
    params = call.params
    for name in ("name", "email", "description", "phone"):
        if name in params:
            setattr(customer, name, params[name])
    if params.get("invoice_prefix"):
        customer.invoice_prefix = params["invoice_prefix"]
    if "invoice_settings" in params and "default_payment_method" in params["invoice_settings"]:
        customer.default_payment_method = params["invoice_settings"]["default_payment_method"]
    apply_metadata(customer, params)
    after = sandbox.render(customer)
    if previous := changes(before, after):
        sandbox.saved(customer)
        sandbox.emit("customer.updated", customer, call, previous=previous)
    return after


@route("DELETE", "/v1/customers/{customer}")
def delete_customer(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Delete a customer; ``customer.deleted`` (with the customer as it was)."""
    customer = sandbox.store.get(Customer, call.path["customer"])
    snapshot = sandbox.render(customer)
    customer.deleted = True
    sandbox.emit("customer.deleted", customer, call, snapshot=snapshot)
    return customer.render_deleted()


@route(
    "GET", "/v1/customers", {**LIST_PARAMS, "email": Param(Str(max_length=512)), "created": Param(Range())}
)
def list_customers(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Customers, newest first; ``email`` matches exactly (case-sensitive, as Stripe's list filter)."""
    email = call.params.get("email")
    customers = [c for c in sandbox.store.newest_first(Customer) if email is None or c.email == email]
    return listed(sandbox, call, customers, "/v1/customers")


# Catalogue


@route("GET", "/v1/products/{product}")
def retrieve_product(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """A product."""
    return sandbox.render(sandbox.store.get(Product, call.path["product"]))


@route(
    "GET",
    "/v1/products",
    {**LIST_PARAMS, "active": Param(Bool()), "ids": Param(StrList()), "created": Param(Range())},
)
def list_products(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Products, newest first."""
    active, ids = call.params.get("active"), call.params.get("ids")
    products = [
        product
        for product in sandbox.store.newest_first(Product)
        if (active is None or product.active == active) and (ids is None or product.id in ids)
    ]
    return listed(sandbox, call, products, "/v1/products")


@route("GET", "/v1/prices/{price}")
def retrieve_price(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """A price."""
    return sandbox.render(sandbox.store.get(Price, call.path["price"]))


@route(
    "GET",
    "/v1/prices",
    {
        **LIST_PARAMS,
        "active": Param(Bool()),
        "currency": Param(Currency()),
        "product": Param(ID),
        "lookup_keys": Param(StrList(max_items=10)),
        "type": Param(Enum(("one_time", "recurring"))),
        "created": Param(Range()),
    },
)
def list_prices(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Prices, newest first; ``lookup_keys[]`` finds a price by ``{ERP code}:{currency}``."""
    params = call.params
    prices = [
        price
        for price in sandbox.store.newest_first(Price)
        if (params.get("active") is None or price.active == params["active"])
        and (params.get("currency") is None or price.currency == params["currency"])
        and (params.get("product") is None or price.product == params["product"])
        and (params.get("lookup_keys") is None or price.lookup_key in params["lookup_keys"])
        and params.get("type") in (None, "one_time")
    ]
    return listed(sandbox, call, prices, "/v1/prices")


# Payments (created by paying invoices)


@route("GET", "/v1/payment_intents/search", SEARCH_PARAMS)
def search_payment_intents(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Search payment intents."""
    return searched(sandbox, call, PaymentIntent, PAYMENT_INTENT_FIELDS, "payment_intents")


@route("GET", "/v1/payment_intents/{intent}")
def retrieve_payment_intent(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """A payment intent."""
    return sandbox.render(sandbox.store.get(PaymentIntent, call.path["intent"]))


@route("GET", "/v1/payment_intents", {**LIST_PARAMS, "customer": Param(ID), "created": Param(Range())})
def list_payment_intents(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Payment intents, newest first."""
    customer = call.params.get("customer")
    intents = [
        p for p in sandbox.store.newest_first(PaymentIntent) if customer is None or p.customer == customer
    ]
    return listed(sandbox, call, intents, "/v1/payment_intents")


@route("GET", "/v1/charges/search", SEARCH_PARAMS)
def search_charges(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Search charges."""
    return searched(sandbox, call, Charge, CHARGE_FIELDS, "charges")


@route("GET", "/v1/charges/{charge}")
def retrieve_charge(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """A charge."""
    return sandbox.render(sandbox.store.get(Charge, call.path["charge"]))


@route(
    "GET",
    "/v1/charges",
    {**LIST_PARAMS, "customer": Param(ID), "payment_intent": Param(ID), "created": Param(Range())},
)
def list_charges(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Charges, newest first."""
    params = call.params
    charges = [
        charge
        for charge in sandbox.store.newest_first(Charge)
        if params.get("customer") in (None, charge.customer)
        and params.get("payment_intent") in (None, charge.payment_intent)
    ]
    return listed(sandbox, call, charges, "/v1/charges")


@route("GET", "/v1/invoice_payments/{payment}")
def retrieve_invoice_payment(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """An invoice payment."""
    return sandbox.render(sandbox.store.get(InvoicePayment, call.path["payment"]))


@route(
    "GET",
    "/v1/invoice_payments",
    {
        **LIST_PARAMS,
        "invoice": Param(ID),
        "status": Param(Enum(("canceled", "open", "paid"))),
        "payment": Param(Obj({"type": Param(Enum(("payment_intent",))), "payment_intent": Param(ID)})),
    },
)
def list_invoice_payments(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Invoice payments, newest first; ``invoice`` gives one invoice's payments."""
    params = call.params
    intent = params.get("payment", {}).get("payment_intent")
    payments = [
        payment
        for payment in sandbox.store.newest_first(InvoicePayment)
        if params.get("invoice") in (None, payment.invoice)
        and params.get("status") in (None, payment.status)
        and intent in (None, payment.payment_intent)
    ]
    return listed(sandbox, call, payments, "/v1/invoice_payments")


# Events

_MAX_TYPES = 20


@route("GET", "/v1/events/{event}")
def retrieve_event(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """An event of the last 30 days."""
    event = sandbox.store.get(Event, call.path["event"])
    if event.created < sandbox.clock.now() - EVENT_RETENTION:  # pruned: as if it never existed
        raise ResourceMissingError("event", event.id)
    return sandbox.render(event)


def _type_matches(pattern: str, event_type: str) -> bool:
    if "*" not in pattern:
        return pattern == event_type
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), event_type) is not None


@route(
    "GET",
    "/v1/events",
    {
        **LIST_PARAMS,
        "type": Param(Str(nullable=False)),
        "types": Param(StrList(max_items=_MAX_TYPES)),
        "created": Param(Range()),
        "delivery_success": Param(Bool()),
    },
)
def list_events(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Events of the last 30 days, newest first; ``type`` takes ``*`` wildcards (``invoice.*``), ``types[]``
    up to 20 exact types, ``delivery_success`` whether every endpoint has acknowledged the event."""
    params = call.params
    if "type" in params and "types" in params:
        raise InvalidRequestError(
            "You may only specify one of these parameters: type, types.",
            code="parameters_exclusive",
            param="types",
        )
    pattern, types, delivered = params.get("type"), params.get("types"), params.get("delivery_success")
    events = [
        event
        for event in sandbox.live_events()
        if (pattern is None or _type_matches(pattern, event.type))
        and (types is None or event.type in types)
        and (delivered is None or (event.pending_webhooks == 0) == delivered)
    ]
    return listed(sandbox, call, events, "/v1/events")


# Webhook endpoints

_ENDPOINT_FIELDS: dict[str, Param] = {
    "url": Param(Str(nullable=False, pattern=r"https?://\S+")),
    "enabled_events": Param(StrList(max_items=500)),
    "description": Param(Str()),
    "metadata": Param(Metadata()),
    "api_version": Param(Str(nullable=False)),
    "disabled": Param(Bool()),
}


@route(
    "POST",
    "/v1/webhook_endpoints",
    {
        **{key: value for key, value in _ENDPOINT_FIELDS.items() if key != "disabled"},
        "url": Param(_ENDPOINT_FIELDS["url"].spec, required=True),
        "enabled_events": Param(StrList(max_items=500), required=True),
    },
)
def create_webhook_endpoint(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Create an endpoint; the answer is the only one that shows its ``secret``."""
    params = call.params
    _check_version(params)
    endpoint = sandbox.store.add(
        WebhookEndpoint(
            id=new_id("we"),
            created=sandbox.clock.now(),
            url=params["url"],
            secret=f"whsec_{secrets.token_urlsafe(24)}",
            enabled_events=params["enabled_events"],
            description=params.get("description"),
            metadata=new_metadata(params),
        )
    )
    return {**sandbox.render(endpoint), "secret": endpoint.secret}


def _check_version(params: Mapping[str, Any]) -> None:
    if params.get("api_version") not in (None, API_VERSION):
        raise InvalidRequestError(
            f"This sandbox only speaks Stripe API version {API_VERSION}; it cannot send events as "
            f"{params['api_version']}.",
            param="api_version",
        )


@route("GET", "/v1/webhook_endpoints/{endpoint}")
def retrieve_webhook_endpoint(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """An endpoint (without its secret)."""
    return sandbox.render(sandbox.store.get(WebhookEndpoint, call.path["endpoint"]))


@route("POST", "/v1/webhook_endpoints/{endpoint}", _ENDPOINT_FIELDS)
def update_webhook_endpoint(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Change an endpoint's URL, events, description or metadata, or disable it (no more deliveries)."""
    endpoint = sandbox.store.get(WebhookEndpoint, call.path["endpoint"])
    params = call.params
    _check_version(params)
    endpoint.url = params.get("url", endpoint.url)
    endpoint.enabled_events = params.get("enabled_events", endpoint.enabled_events)
    if "description" in params:
        endpoint.description = params["description"]
    if "disabled" in params:
        endpoint.status = "disabled" if params["disabled"] else "enabled"
    apply_metadata(endpoint, params)
    return sandbox.render(endpoint)


@route("DELETE", "/v1/webhook_endpoints/{endpoint}")
def delete_webhook_endpoint(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Delete an endpoint: its pending deliveries stop."""
    endpoint = sandbox.store.get(WebhookEndpoint, call.path["endpoint"])
    endpoint.deleted = True
    return endpoint.render_deleted()


@route("GET", "/v1/webhook_endpoints", dict(LIST_PARAMS))
def list_webhook_endpoints(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Endpoints, newest first."""
    return listed(sandbox, call, sandbox.store.newest_first(WebhookEndpoint), "/v1/webhook_endpoints")
