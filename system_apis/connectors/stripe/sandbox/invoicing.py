"""Invoice items and invoices: their ``/v1`` routes and the invoice state machine.

::

    draft ──finalize──▶ open ──pay──▶ paid
      │                  │  └──mark_uncollectible──▶ uncollectible ──pay──▶ paid
      │                  └──void──▶ void ◀──void──────────┘
      └── (items can be added, changed and removed only while draft)

- ``finalize`` numbers the invoice (``{customer prefix}-{sequence:04d}``),
  sets ``status_transitions.finalized_at`` and emits ``invoice.finalized``; an
  invoice with nothing due is paid at once (``invoice.paid``).
- ``pay`` charges the payment method (the ``payment_method`` parameter, the
  invoice's default, else the customer's ``invoice_settings``). Stripe's test
  payment methods decide the outcome: ``pm_card_visa`` succeeds,
  ``pm_card_chargeDeclined`` and friends decline with 402 ``card_error``.
  Success creates a payment intent (``pi_``), its charge (``ch_``) and the
  invoice payment (``inpay_``) and emits ``payment_intent.created``,
  ``charge.succeeded``, ``payment_intent.succeeded``, ``invoice_payment.paid``,
  ``invoice.paid`` and ``invoice.payment_succeeded``; a decline emits
  ``charge.failed``, ``payment_intent.payment_failed`` and
  ``invoice.payment_failed`` and leaves the invoice open.
  ``paid_out_of_band=true`` marks it paid with no payment objects
  (``invoice.paid`` only).
- ``void`` (open or uncollectible) emits ``invoice.voided``;
  ``mark_uncollectible`` (open) emits ``invoice.marked_uncollectible``.
- ``amount_due`` is the total (never below zero), ``amount_paid`` what was
  paid, ``amount_remaining`` the difference.
- Pending invoice items (no ``invoice``) join a new invoice only with
  ``pending_invoice_items_behavior=include``; the default is ``exclude``, as in
  every Stripe API version since 2022-08-01.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from system_apis.connectors.stripe.sandbox.errors import CardError, InvalidRequestError, ResourceMissingError
from system_apis.connectors.stripe.sandbox.forms import (
    LIST_PARAMS,
    Bool,
    Currency,
    Decimal12,
    Enum,
    Int,
    Metadata,
    Obj,
    Param,
    Range,
    Str,
)
from system_apis.connectors.stripe.sandbox.objects import (
    Charge,
    Customer,
    Invoice,
    InvoiceItem,
    InvoicePayment,
    PaymentIntent,
    Price,
    Product,
    amount_of,
)
from system_apis.connectors.stripe.sandbox.resources import (
    ID,
    SEARCH_PARAMS,
    apply_metadata,
    changes,
    listed,
    new_metadata,
    searched,
)
from system_apis.connectors.stripe.sandbox.routing import route
from system_apis.connectors.stripe.sandbox.search import INVOICE_FIELDS
from system_apis.connectors.stripe.sandbox.store import in_range, new_id

if TYPE_CHECKING:
    from collections.abc import Mapping

    from system_apis.connectors.stripe.sandbox.routing import Call
    from system_apis.connectors.stripe.sandbox.state import Sandbox

__all__ = ("DECLINES", "SUCCEEDING_CARDS")

SUCCEEDING_CARDS = frozenset({"pm_card_visa", "pm_card_mastercard", "pm_card_amex", "pm_card_us"})
"""Stripe's test payment methods that always succeed."""
DECLINES: dict[str, tuple[str, str | None, str]] = {
    "pm_card_chargeDeclined": ("card_declined", "generic_decline", "Your card was declined."),
    "pm_card_chargeCustomerFail": ("card_declined", "generic_decline", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": (
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", None, "Your card has expired."),
}
"""Stripe's test payment methods that decline: ``code``, ``decline_code`` and message of the card error."""
_AMOUNT = Int(-99_999_999, 99_999_999)
_DAY = 86400


def _not_editable(what: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"{what} can no longer be edited. Instead, consider creating additional invoice items that will be "
        "applied to the next invoice.",
        code="invoice_not_editable",
    )


# Invoice items

_ITEM_FIELDS: dict[str, Param] = {
    "amount": Param(_AMOUNT),
    "description": Param(Str()),
    "discountable": Param(Bool()),
    "metadata": Param(Metadata()),
    "period": Param(Obj({"start": Param(Int(0), required=True), "end": Param(Int(0), required=True)})),
    "pricing": Param(Obj({"price": Param(ID, required=True)})),
    "price_data": Param(
        Obj(
            {
                "currency": Param(Currency(), required=True),
                "product": Param(ID, required=True),
                "unit_amount": Param(Int(0, 99_999_999)),
                "unit_amount_decimal": Param(Decimal12()),
                "tax_behavior": Param(Enum(("exclusive", "inclusive", "unspecified"))),
            }
        )
    ),
    "quantity": Param(Int(0, 1_000_000)),
    "unit_amount_decimal": Param(Decimal12()),
}
_PRICING = ("amount", "pricing", "price_data", "unit_amount_decimal")


def _price_of(
    sandbox: Sandbox, params: Mapping[str, Any], customer: Customer, currency: str | None
) -> tuple[str, Decimal, str | None, str | None, bool]:
    """Currency, unit amount, price, product, and whether ``amount`` (a whole amount) was given."""
    given = [name for name in _PRICING if name in params]
    if len(given) > 1:
        raise InvalidRequestError(
            f"You may only specify one of these parameters: {', '.join(given)}.",
            code="parameters_exclusive",
            param=given[1],
        )
    if not given:
        raise InvalidRequestError(
            "Missing required param: amount. Give one of amount, pricing[price], price_data or "
            "unit_amount_decimal.",
            code="parameter_missing",
            param="amount",
        )
    if "pricing" in params:
        price = sandbox.store.get(Price, params["pricing"]["price"], param="pricing[price]")
        if currency not in (None, price.currency):
            raise InvalidRequestError(
                f"The price's currency ({price.currency}) differs from currency ({currency}).",
                param="currency",
            )
        return price.currency, Decimal(price.unit_amount), price.id, price.product, False
    if "price_data" in params:
        data = params["price_data"]
        product = sandbox.store.get(Product, data["product"], param="price_data[product]")
        units = [name for name in ("unit_amount", "unit_amount_decimal") if name in data]
        if len(units) != 1:
            raise InvalidRequestError(
                "Give exactly one of price_data[unit_amount] and price_data[unit_amount_decimal].",
                param="price_data[unit_amount]",
            )
        unit = Decimal(data[units[0]])
        inline = sandbox.store.add(
            Price(
                id=new_id("price"),
                created=sandbox.clock.now(),
                product=product.id,
                currency=data["currency"],
                unit_amount=int(unit),
                unit_amount_decimal=unit,
                active=False,
            )
        )
        return inline.currency, unit, inline.id, product.id, False
    currency = currency or customer.currency
    if currency is None:
        raise InvalidRequestError(
            "Missing required param: currency.", code="parameter_missing", param="currency"
        )
    if "amount" in params:
        return currency, Decimal(params["amount"]), None, None, True
    return currency, params["unit_amount_decimal"], None, None, False


def _draft_invoice(sandbox: Sandbox, invoice_id: str, customer: Customer, currency: str) -> Invoice:
    invoice = sandbox.store.get(Invoice, invoice_id, param="invoice")
    if invoice.status != "draft":
        raise InvalidRequestError(
            f"You can only add invoice items to draft invoices; {invoice.id} is {invoice.status}.",
            code="invoice_not_editable",
            param="invoice",
        )
    if invoice.customer != customer.id:
        raise InvalidRequestError(
            f"The invoice {invoice.id} belongs to another customer than {customer.id}.", param="invoice"
        )
    if invoice.currency != currency:
        raise InvalidRequestError(
            f"The invoice item's currency ({currency}) differs from its invoice's ({invoice.currency}).",
            param="currency",
        )
    return invoice


@route(
    "POST",
    "/v1/invoiceitems",
    {
        **_ITEM_FIELDS,
        "customer": Param(ID, required=True),
        "invoice": Param(ID),
        "currency": Param(Currency()),
    },
)
def create_invoice_item(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Create an invoice item on a draft invoice, or pending for the customer; ``invoiceitem.created``."""
    params = call.params
    customer = sandbox.store.get(Customer, params["customer"], param="customer")
    currency, unit, price, product, whole = _price_of(sandbox, params, customer, params.get("currency"))
    quantity = params.get("quantity", 1)
    if whole and quantity != 1:
        raise InvalidRequestError(
            "amount is the item's whole amount: give quantity with unit_amount_decimal or a price instead.",
            param="quantity",
        )
    invoice = (
        _draft_invoice(sandbox, params["invoice"], customer, currency) if params.get("invoice") else None
    )
    now = sandbox.clock.now()
    period = params.get("period") or {"start": now, "end": now}
    item = sandbox.store.add(
        InvoiceItem(
            id=new_id("ii"),
            created=now,
            customer=customer.id,
            currency=currency,
            amount=amount_of(unit, quantity),
            quantity=quantity,
            unit_amount_decimal=unit,
            price=price,
            product=product,
            description=params.get("description"),
            invoice=invoice.id if invoice else None,
            period_start=period["start"],
            period_end=period["end"],
            line_id=new_id("il"),
            discountable=params.get("discountable", True),
            metadata=new_metadata(params),
        )
    )
    customer.currency = customer.currency or currency
    if invoice is not None:
        invoice.items.append(item.id)
        sandbox.saved(invoice)
    sandbox.emit("invoiceitem.created", item, call)
    return sandbox.render(item)


def _editable_item(sandbox: Sandbox, item_id: str) -> InvoiceItem:
    item = sandbox.store.get(InvoiceItem, item_id)
    if item.invoice is not None and sandbox.store.get(Invoice, item.invoice).status != "draft":
        raise _not_editable(f"The invoice item {item.id} is on a finalized invoice and")
    return item


@route("GET", "/v1/invoiceitems/{item}")
def retrieve_invoice_item(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """An invoice item."""
    return sandbox.render(sandbox.store.get(InvoiceItem, call.path["item"], allow_deleted=True))


@route("POST", "/v1/invoiceitems/{item}", _ITEM_FIELDS)
def update_invoice_item(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Change a pending item or one on a draft invoice; ``invoiceitem.updated``."""
    item = _editable_item(sandbox, call.path["item"])
    params = call.params
    before = sandbox.render(item)
    if any(name in params for name in _PRICING):
        customer = sandbox.store.get(Customer, item.customer, allow_deleted=True)
        currency, unit, item.price, item.product, whole = _price_of(sandbox, params, customer, item.currency)
        if currency != item.currency:
            raise InvalidRequestError("An invoice item's currency cannot change.", param="currency")
        item.unit_amount_decimal = unit
        if whole:
            item.quantity = 1
    item.quantity = params.get("quantity", item.quantity)
    item.amount = amount_of(item.unit_amount_decimal, item.quantity)
    for name in ("description", "discountable"):
        if name in params:
            setattr(item, name, params[name])
    if "period" in params:
        item.period_start, item.period_end = params["period"]["start"], params["period"]["end"]
    apply_metadata(item, params)
    after = sandbox.render(item)
    if item.invoice is not None:
        sandbox.saved(sandbox.store.get(Invoice, item.invoice))
    if previous := changes(before, after):
        sandbox.emit("invoiceitem.updated", item, call, previous=previous)
    return after


@route("DELETE", "/v1/invoiceitems/{item}")
def delete_invoice_item(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Delete a pending item or take it off its draft invoice; ``invoiceitem.deleted``."""
    item = _editable_item(sandbox, call.path["item"])
    snapshot = sandbox.render(item)
    if item.invoice is not None:
        invoice = sandbox.store.get(Invoice, item.invoice)
        invoice.items.remove(item.id)
        sandbox.saved(invoice)
    item.deleted = True
    sandbox.emit("invoiceitem.deleted", item, call, snapshot=snapshot)
    return item.render_deleted()


@route(
    "GET",
    "/v1/invoiceitems",
    {
        **LIST_PARAMS,
        "customer": Param(ID),
        "invoice": Param(ID),
        "pending": Param(Bool()),
        "created": Param(Range()),
    },
)
def list_invoice_items(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Invoice items, newest first; ``pending=true`` gives those on no invoice yet."""
    params = call.params
    items = [
        item
        for item in sandbox.store.newest_first(InvoiceItem)
        if params.get("customer") in (None, item.customer)
        and params.get("invoice") in (None, item.invoice)
        and (params.get("pending") is None or (item.invoice is None) == params["pending"])
    ]
    return listed(sandbox, call, items, "/v1/invoiceitems")


# Invoices

_INVOICE_FIELDS: dict[str, Param] = {
    "auto_advance": Param(Bool()),
    "collection_method": Param(Enum(("charge_automatically", "send_invoice"))),
    "days_until_due": Param(Int(0, 730)),
    "due_date": Param(Int(0)),
    "default_payment_method": Param(ID),
    "description": Param(Str(max_length=1500)),
    "metadata": Param(Metadata()),
}


def _due(sandbox: Sandbox, invoice: Invoice, params: Mapping[str, Any], base: int) -> None:
    """Apply ``collection_method``, ``days_until_due`` and ``due_date`` (draft invoices only)."""
    method = params.get("collection_method", invoice.collection_method)
    days = params.get("days_until_due", invoice.days_until_due if "due_date" not in params else None)
    due = params.get("due_date", invoice.due_date if "days_until_due" not in params else None)
    if method == "charge_automatically":
        if params.get("days_until_due") is not None or params.get("due_date") is not None:
            raise InvalidRequestError(
                "days_until_due and due_date apply only to invoices with collection_method=send_invoice.",
                param="due_date" if "due_date" in params else "days_until_due",
            )
        days = due = None
    elif "days_until_due" in params and "due_date" in params:
        raise InvalidRequestError(
            "You may only specify one of these parameters: days_until_due, due_date.",
            code="parameters_exclusive",
            param="due_date",
        )
    elif days is None and due is None:
        raise InvalidRequestError(
            "Invoices with collection_method=send_invoice need days_until_due or due_date.",
            code="parameter_missing",
            param="days_until_due",
        )
    invoice.collection_method, invoice.days_until_due = method, days
    invoice.due_date = due if due is not None else (base + days * _DAY if days is not None else None)


@route(
    "POST",
    "/v1/invoices",
    {
        **_INVOICE_FIELDS,
        "customer": Param(ID, required=True),
        "currency": Param(Currency()),
        "pending_invoice_items_behavior": Param(Enum(("exclude", "include"))),
    },
)
def create_invoice(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Create a draft invoice; ``invoice.created``. Pending items of the customer in the invoice's currency join
    it only with ``pending_invoice_items_behavior=include``."""
    params = call.params
    customer = sandbox.store.get(Customer, params["customer"], param="customer")
    now = sandbox.clock.now()
    invoice = Invoice(
        id=new_id("in"),
        created=now,
        customer=customer.id,
        currency=params.get("currency") or customer.currency or "usd",
        auto_advance=params.get("auto_advance", False),
        description=params.get("description"),
        default_payment_method=params.get("default_payment_method"),
        metadata=new_metadata(params),
    )
    _due(sandbox, invoice, params, now)
    sandbox.store.add(invoice)
    if params.get("pending_invoice_items_behavior") == "include":
        pending = [
            item
            for item in sandbox.store.newest_first(InvoiceItem)
            if item.customer == customer.id and item.invoice is None and item.currency == invoice.currency
        ]
        for item in reversed(pending):
            item.invoice = invoice.id
            invoice.items.append(item.id)
    customer.currency = customer.currency or invoice.currency
    sandbox.saved(invoice)
    sandbox.emit("invoice.created", invoice, call)
    return sandbox.render(invoice)


@route("GET", "/v1/invoices/search", SEARCH_PARAMS)
def search_invoices(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Search invoices: ``metadata['opportunity_id']:'006…'``, ``customer``, ``status``, ``total``, …"""
    return searched(sandbox, call, Invoice, INVOICE_FIELDS, "invoices")


@route("GET", "/v1/invoices/{invoice}")
def retrieve_invoice(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """An invoice."""
    return sandbox.render(sandbox.store.get(Invoice, call.path["invoice"]))


@route("POST", "/v1/invoices/{invoice}", _INVOICE_FIELDS)
def update_invoice(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Change an invoice: anything while draft; once finalized only ``metadata``, ``description``, and, while
    open, ``auto_advance`` and ``default_payment_method``. ``invoice.updated`` with ``previous_attributes``."""
    invoice = sandbox.store.get(Invoice, call.path["invoice"])
    params = call.params
    allowed = {"metadata", "description"}
    if invoice.status in ("draft", "open", "uncollectible"):
        allowed |= {"auto_advance", "default_payment_method"}
    if invoice.status != "draft" and (refused := sorted(set(params) - allowed - {"expand"})):
        raise _not_editable(f"The {invoice.status} invoice {invoice.id} ({', '.join(refused)})")
    before = sandbox.render(invoice)
    if invoice.status == "draft" and {"collection_method", "days_until_due", "due_date"} & set(params):
        _due(sandbox, invoice, params, invoice.created)
    for name in ("auto_advance", "default_payment_method", "description"):
        if name in params:
            setattr(invoice, name, params[name])
    apply_metadata(invoice, params)
    after = sandbox.render(invoice)
    if previous := changes(before, after):
        sandbox.saved(invoice)
        sandbox.emit("invoice.updated", invoice, call, previous=previous)
    return after


def _transition(sandbox: Sandbox, call: Call, invoice: Invoice, event_type: str) -> None:
    sandbox.saved(invoice)
    sandbox.emit(event_type, invoice, call)


@route("POST", "/v1/invoices/{invoice}/finalize", {"auto_advance": Param(Bool())})
def finalize_invoice(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """draft → open: number it, stamp ``finalized_at``; ``invoice.finalized`` (and ``invoice.paid`` when nothing
    is due)."""
    invoice = sandbox.store.get(Invoice, call.path["invoice"])
    if invoice.status != "draft":
        raise InvalidRequestError(
            "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
            code="invoice_not_editable",
        )
    customer = sandbox.store.get(Customer, invoice.customer, allow_deleted=True)
    now = sandbox.clock.now()
    invoice.status, invoice.finalized_at, invoice.effective_at = "open", now, now
    invoice.auto_advance = call.params.get("auto_advance", invoice.auto_advance)
    invoice.number = f"{customer.invoice_prefix}-{customer.next_invoice_sequence:04d}"
    customer.next_invoice_sequence += 1
    invoice.customer_name, invoice.customer_email = customer.name, customer.email
    _transition(sandbox, call, invoice, "invoice.finalized")
    if invoice.amount_due(sandbox.store) == 0:
        invoice.status, invoice.paid_at = "paid", now
        _transition(sandbox, call, invoice, "invoice.paid")
    return sandbox.render(invoice)


@route(
    "POST",
    "/v1/invoices/{invoice}/pay",
    {
        "paid_out_of_band": Param(Bool()),
        "payment_method": Param(ID),
        "forgive": Param(Bool()),
        "off_session": Param(Bool()),
        "mandate": Param(Str()),
    },
)
def pay_invoice(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """open or uncollectible → paid, by charging a payment method or out of band; a decline answers 402."""
    invoice = sandbox.store.get(Invoice, call.path["invoice"])
    params = call.params
    if invoice.status == "paid":
        raise InvalidRequestError("Invoice is already paid")
    if invoice.status == "void":
        raise InvalidRequestError(f"You cannot pay a void invoice ({invoice.id}).")
    if invoice.status == "draft":
        raise InvalidRequestError(
            f"{invoice.id} is a draft: finalize it (POST /v1/invoices/{invoice.id}/finalize) before paying it."
        )
    due = invoice.amount_due(sandbox.store) - invoice.amount_paid
    now = sandbox.clock.now()
    if params.get("paid_out_of_band"):
        if params.get("payment_method"):
            raise InvalidRequestError(
                "You may only specify one of these parameters: paid_out_of_band, payment_method.",
                code="parameters_exclusive",
                param="payment_method",
            )
        invoice.amount_paid += due
        invoice.status, invoice.paid_at = "paid", now
        _transition(sandbox, call, invoice, "invoice.paid")
        return sandbox.render(invoice)
    customer = sandbox.store.get(Customer, invoice.customer, allow_deleted=True)
    method = params.get("payment_method") or invoice.default_payment_method or customer.default_payment_method
    if method is None:
        raise InvalidRequestError(
            "This customer has no attached payment source or default payment method. Please consider adding a "
            "default payment method."
        )
    if method not in SUCCEEDING_CARDS and method not in DECLINES:
        raise ResourceMissingError("PaymentMethod", method, param="payment_method")
    intent = sandbox.store.add(
        PaymentIntent(
            id=new_id("pi"),
            created=now,
            amount=due,
            currency=invoice.currency,
            customer=customer.id,
            payment_method=method,
            status="processing",
            description="Payment for Invoice",
        )
    )
    decline = DECLINES.get(method)
    charge = sandbox.store.add(
        Charge(
            id=new_id("ch"),
            created=now,
            amount=due,
            currency=invoice.currency,
            customer=customer.id,
            payment_intent=intent.id,
            payment_method=method,
            status="failed" if decline else "succeeded",
            description="Payment for Invoice",
            failure_code=decline[0] if decline else None,
            failure_message=decline[2] if decline else None,
            decline_code=decline[1] if decline else None,
        )
    )
    intent.latest_charge = charge.id
    invoice.attempt_count += 1
    invoice.attempted = True
    if decline is not None:
        return _declined(sandbox, call, invoice, intent, charge, decline)
    intent.status, intent.amount_received = "succeeded", due
    link = sandbox.store.add(
        InvoicePayment(
            id=new_id("inpay"),
            created=now,
            invoice=invoice.id,
            currency=invoice.currency,
            amount_requested=due,
            amount_paid=due,
            payment_intent=intent.id,
            status="paid",
            paid_at=now,
        )
    )
    invoice.payments.append(link.id)
    invoice.amount_paid += due
    invoice.status, invoice.paid_at = "paid", now
    sandbox.saved(intent)
    sandbox.saved(charge)
    sandbox.emit("payment_intent.created", intent, call)
    sandbox.emit("charge.succeeded", charge, call)
    sandbox.emit("payment_intent.succeeded", intent, call)
    sandbox.emit("invoice_payment.paid", link, call)
    _transition(sandbox, call, invoice, "invoice.paid")
    sandbox.emit("invoice.payment_succeeded", invoice, call)
    return sandbox.render(invoice)


def _declined(
    sandbox: Sandbox,
    call: Call,
    invoice: Invoice,
    intent: PaymentIntent,
    charge: Charge,
    decline: tuple[str, str | None, str],
) -> dict[str, Any]:
    code, decline_code, message = decline
    intent.status = "requires_payment_method"
    intent.last_payment_error = {
        "charge": charge.id,
        "code": code,
        "decline_code": decline_code,
        "message": message,
        "payment_method": {"id": charge.payment_method, "object": "payment_method", "type": "card"},
        "type": "card_error",
    }
    sandbox.saved(intent)
    sandbox.saved(charge)
    sandbox.saved(invoice)
    sandbox.emit("payment_intent.created", intent, call)
    sandbox.emit("charge.failed", charge, call)
    sandbox.emit("payment_intent.payment_failed", intent, call)
    sandbox.emit("invoice.payment_failed", invoice, call)
    raise CardError(
        message,
        code=code,
        decline_code=decline_code,
        charge=charge.id,
        payment_intent=sandbox.render(intent),
    )


@route("POST", "/v1/invoices/{invoice}/void")
def void_invoice(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """open or uncollectible → void; ``invoice.voided``."""
    invoice = sandbox.store.get(Invoice, call.path["invoice"])
    if invoice.status not in ("open", "uncollectible"):
        raise InvalidRequestError(
            f"You can only void an open or uncollectible invoice; {invoice.id} is {invoice.status}."
        )
    invoice.status, invoice.voided_at = "void", sandbox.clock.now()
    _transition(sandbox, call, invoice, "invoice.voided")
    return sandbox.render(invoice)


@route("POST", "/v1/invoices/{invoice}/mark_uncollectible")
def mark_uncollectible(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """open → uncollectible; ``invoice.marked_uncollectible``."""
    invoice = sandbox.store.get(Invoice, call.path["invoice"])
    if invoice.status != "open":
        raise InvalidRequestError(
            f"You can only mark an open invoice as uncollectible; {invoice.id} is {invoice.status}."
        )
    invoice.status, invoice.marked_uncollectible_at = "uncollectible", sandbox.clock.now()
    _transition(sandbox, call, invoice, "invoice.marked_uncollectible")
    return sandbox.render(invoice)


@route("GET", "/v1/invoices/{invoice}/lines", dict(LIST_PARAMS))
def list_invoice_lines(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """An invoice's lines in invoice order, paged by line id."""
    invoice = sandbox.store.get(Invoice, call.path["invoice"])
    lines = invoice.lines(sandbox.store)
    ids = [line["id"] for line in lines]
    params = call.params
    limit = int(params.get("limit") or 10)
    start, end = 0, len(lines)
    for name in ("starting_after", "ending_before"):
        if name in params and params[name] not in ids:
            raise ResourceMissingError("line item", params[name], param=name)
    if "starting_after" in params:
        start = ids.index(params["starting_after"]) + 1
    if "ending_before" in params:
        end = ids.index(params["ending_before"])
        start = max(end - limit, 0)
        selected, more = lines[start:end], start > 0
    else:
        selected, more = lines[start : start + limit], start + limit < end
    return {"object": "list", "data": selected, "has_more": more, "url": f"/v1/invoices/{invoice.id}/lines"}


@route(
    "GET",
    "/v1/invoices",
    {
        **LIST_PARAMS,
        "customer": Param(ID),
        "status": Param(Enum(("draft", "open", "paid", "uncollectible", "void"))),
        "collection_method": Param(Enum(("charge_automatically", "send_invoice"))),
        "created": Param(Range()),
        "due_date": Param(Range()),
    },
)
def list_invoices(sandbox: Sandbox, call: Call) -> dict[str, Any]:
    """Invoices, newest first, filtered by customer, status, collection method, creation and due date."""
    params = call.params
    invoices = [
        invoice
        for invoice in sandbox.store.newest_first(Invoice)
        if params.get("customer") in (None, invoice.customer)
        and params.get("status") in (None, invoice.status)
        and params.get("collection_method") in (None, invoice.collection_method)
        and in_range(invoice.due_date, params.get("due_date"))
    ]
    return listed(sandbox, call, invoices, "/v1/invoices")
