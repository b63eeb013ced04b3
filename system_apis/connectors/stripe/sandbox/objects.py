"""The sandbox's objects and how each renders as Stripe's JSON (API version :data:`~.config.API_VERSION`).

Each record is a small mutable dataclass holding what the sandbox decides on;
:meth:`Record.render` produces the full object with every field the API shows,
the constant ones included (``livemode`` is always false). Ids carry Stripe's
prefixes: ``cus_``, ``prod_``, ``price_``, ``ii_`` (line items ``il_``), ``in_``,
``pi_``, ``ch_``, ``inpay_``, ``evt_``, ``we_``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any, ClassVar

from system_apis.connectors.stripe.sandbox.config import API_VERSION

if TYPE_CHECKING:
    from system_apis.connectors.stripe.sandbox.store import Store

__all__ = (
    "ACCOUNT_NAME",
    "LINES_IN_INVOICE",
    "Charge",
    "Customer",
    "Event",
    "Invoice",
    "InvoiceItem",
    "InvoicePayment",
    "PaymentIntent",
    "Price",
    "Product",
    "Record",
    "WebhookEndpoint",
    "amount_of",
)

ACCOUNT_NAME = "Finsync (sandbox)"
"""``account_name`` on invoices: the sandbox's own account, labelled as a sandbox."""
LINES_IN_INVOICE = 10
"""Lines embedded in an invoice object (``lines.has_more`` says when there are more: page ``…/lines``)."""


def amount_of(unit_amount: Decimal, quantity: int) -> int:
    """An item's integer amount: unit * quantity, rounded half up to the minor unit."""
    return int((unit_amount * quantity).to_integral_value(rounding=ROUND_HALF_UP))


@dataclass(kw_only=True, eq=False)
class Record:
    """What every object has: an id, a creation time, an order of creation, metadata, a deleted mark."""

    OBJECT: ClassVar[str]
    """Its ``object`` field."""
    KIND: ClassVar[str]
    """How errors name it (``No such invoice: 'in_…'``)."""

    id: str
    """Its id, with Stripe's prefix."""
    created: int
    """Unix time of creation (the sandbox's clock)."""
    seq: int = 0
    """Order of creation across the sandbox; ties of ``created`` list by it."""
    metadata: dict[str, str] = field(default_factory=dict)
    """Key-value pairs the client attached."""
    deleted: bool = False
    """Deleted objects are kept only to answer ``{"deleted": true}``."""

    def render(self, store: Store) -> dict[str, Any]:
        """The object as the API shows it."""
        raise NotImplementedError

    def render_deleted(self) -> dict[str, Any]:
        """What the API shows for it once deleted."""
        return {"id": self.id, "object": self.OBJECT, "deleted": True}

    def sort_key(self) -> tuple[int, int]:
        """Lists are newest first: by ``created``, then by order of creation."""
        return (self.created, self.seq)


@dataclass(kw_only=True, eq=False)
class Customer(Record):
    """A customer: one per ERP customer in the seed (``metadata[erp_party]`` holds the ERP code)."""

    OBJECT: ClassVar[str] = "customer"
    KIND: ClassVar[str] = "customer"

    name: str | None = None
    email: str | None = None
    description: str | None = None
    phone: str | None = None
    currency: str | None = None
    """Set by its first invoice, as Stripe does."""
    invoice_prefix: str = ""
    """Prefix of its invoice numbers (``{prefix}-0001``)."""
    next_invoice_sequence: int = 1
    default_payment_method: str | None = None
    """``invoice_settings.default_payment_method``: what ``pay`` charges when given nothing else."""

    def render(self, store: Store) -> dict[str, Any]:
        """The customer object."""
        return {
            "id": self.id,
            "object": "customer",
            "address": None,
            "balance": 0,
            "created": self.created,
            "currency": self.currency,
            "default_source": None,
            "delinquent": False,
            "description": self.description,
            "discount": None,
            "email": self.email,
            "invoice_prefix": self.invoice_prefix,
            "invoice_settings": {
                "custom_fields": None,
                "default_payment_method": self.default_payment_method,
                "footer": None,
                "rendering_options": None,
            },
            "livemode": False,
            "metadata": dict(self.metadata),
            "name": self.name,
            "next_invoice_sequence": self.next_invoice_sequence,
            "phone": self.phone,
            "preferred_locales": [],
            "shipping": None,
            "tax_exempt": "none",
            "test_clock": None,
        }


@dataclass(kw_only=True, eq=False)
class Product(Record):
    """A product: one per ERP product (``metadata[erp_product]`` holds the ERP code)."""

    OBJECT: ClassVar[str] = "product"
    KIND: ClassVar[str] = "product"

    name: str
    description: str | None = None
    active: bool = True
    default_price: str | None = None

    def render(self, store: Store) -> dict[str, Any]:
        """The product object."""
        return {
            "id": self.id,
            "object": "product",
            "active": self.active,
            "created": self.created,
            "default_price": self.default_price,
            "description": self.description,
            "images": [],
            "livemode": False,
            "marketing_features": [],
            "metadata": dict(self.metadata),
            "name": self.name,
            "package_dimensions": None,
            "shippable": None,
            "statement_descriptor": None,
            "tax_code": None,
            "unit_label": None,
            "updated": self.created,
            "url": None,
        }


@dataclass(kw_only=True, eq=False)
class Price(Record):
    """A one-time price of a product in one currency; ``lookup_key`` is ``{ERP code}:{currency}``."""

    OBJECT: ClassVar[str] = "price"
    KIND: ClassVar[str] = "price"

    product: str
    currency: str
    unit_amount: int
    unit_amount_decimal: Decimal | None = None
    """The unit amount when it has decimals (an inline ``price_data`` price); else ``unit_amount`` says it all."""
    lookup_key: str | None = None
    active: bool = True
    nickname: str | None = None

    def render(self, store: Store) -> dict[str, Any]:
        """The price object (``unit_amount`` is null when the unit amount has decimals)."""
        decimal = (
            self.unit_amount_decimal if self.unit_amount_decimal is not None else Decimal(self.unit_amount)
        )
        exact = decimal == decimal.to_integral_value()
        return {
            "id": self.id,
            "object": "price",
            "active": self.active,
            "billing_scheme": "per_unit",
            "created": self.created,
            "currency": self.currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": self.lookup_key,
            "metadata": dict(self.metadata),
            "nickname": self.nickname,
            "product": self.product,
            "recurring": None,
            "tax_behavior": "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "one_time",
            "unit_amount": self.unit_amount if exact else None,
            "unit_amount_decimal": format(decimal.normalize(), "f"),
        }


@dataclass(kw_only=True, eq=False)
class InvoiceItem(Record):
    """An invoice item: pending (``invoice`` null) or on one invoice, where it shows as a line ``il_…``."""

    OBJECT: ClassVar[str] = "invoiceitem"
    KIND: ClassVar[str] = "invoiceitem"

    customer: str
    currency: str
    amount: int
    quantity: int = 1
    unit_amount_decimal: Decimal
    price: str | None = None
    product: str | None = None
    description: str | None = None
    invoice: str | None = None
    period_start: int
    period_end: int
    line_id: str
    """Its id as a line of its invoice."""
    discountable: bool = True

    def pricing(self) -> dict[str, Any]:
        """``pricing``: the price details when a price was used, and the unit amount either way."""
        details = {"price": self.price, "product": self.product} if self.price else None
        return {
            "price_details": details,
            "type": "price_details" if details else None,
            "unit_amount_decimal": format(self.unit_amount_decimal.normalize(), "f"),
        }

    def render(self, store: Store) -> dict[str, Any]:
        """The invoice item object."""
        return {
            "id": self.id,
            "object": "invoiceitem",
            "amount": self.amount,
            "currency": self.currency,
            "customer": self.customer,
            "date": self.created,
            "description": self.description,
            "discountable": self.discountable,
            "discounts": [],
            "invoice": self.invoice,
            "livemode": False,
            "metadata": dict(self.metadata),
            "parent": None,
            "period": {"end": self.period_end, "start": self.period_start},
            "pricing": self.pricing(),
            "proration": False,
            "quantity": self.quantity,
            "tax_rates": [],
            "test_clock": None,
        }

    def render_line(self) -> dict[str, Any]:
        """The item as a line of its invoice (``object: line_item``)."""
        return {
            "id": self.line_id,
            "object": "line_item",
            "amount": self.amount,
            "currency": self.currency,
            "description": self.description,
            "discount_amounts": [],
            "discountable": self.discountable,
            "discounts": [],
            "invoice": self.invoice,
            "livemode": False,
            "metadata": dict(self.metadata),
            "parent": {
                "invoice_item_details": {
                    "invoice_item": self.id,
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": None,
                },
                "subscription_item_details": None,
                "type": "invoice_item_details",
            },
            "period": {"end": self.period_end, "start": self.period_start},
            "pretax_credit_amounts": [],
            "pricing": self.pricing(),
            "quantity": self.quantity,
            "taxes": [],
        }


@dataclass(kw_only=True, eq=False)
class Invoice(Record):
    """An invoice and its state machine: draft → open → paid | void | uncollectible (→ paid | void)."""

    OBJECT: ClassVar[str] = "invoice"
    KIND: ClassVar[str] = "invoice"

    customer: str
    currency: str
    status: str = "draft"
    collection_method: str = "charge_automatically"
    auto_advance: bool = False
    description: str | None = None
    due_date: int | None = None
    days_until_due: int | None = None
    number: str | None = None
    default_payment_method: str | None = None
    items: list[str] = field(default_factory=list)
    """Its invoice items, in the order they were added."""
    payments: list[str] = field(default_factory=list)
    """Its invoice payments (``inpay_…``)."""
    amount_paid: int = 0
    attempt_count: int = 0
    attempted: bool = False
    effective_at: int | None = None
    finalized_at: int | None = None
    paid_at: int | None = None
    voided_at: int | None = None
    marked_uncollectible_at: int | None = None
    customer_name: str | None = None
    """The customer's name and email, copied at finalization (live from the customer before)."""
    customer_email: str | None = None
    webhooks_delivered_at: int | None = None

    def subtotal(self, store: Store) -> int:
        """Sum of its lines."""
        return sum(store.get(InvoiceItem, item).amount for item in self.items)

    def amount_due(self, store: Store) -> int:
        """What the customer owes in total: the total, never below zero (a credit stays on the customer)."""
        return max(self.subtotal(store), 0)

    def lines(self, store: Store) -> list[dict[str, Any]]:
        """Every line, in order."""
        return [store.get(InvoiceItem, item).render_line() for item in self.items]

    def render(self, store: Store) -> dict[str, Any]:
        """The invoice object (``payments`` only when expanded)."""
        subtotal = self.subtotal(store)
        due = max(subtotal, 0)
        customer = store.get(Customer, self.customer, allow_deleted=True)
        frozen = self.status != "draft"
        lines = self.lines(store)
        return {
            "id": self.id,
            "object": "invoice",
            "account_country": "US",
            "account_name": ACCOUNT_NAME,
            "account_tax_ids": None,
            "amount_due": due,
            "amount_overpaid": 0,
            "amount_paid": self.amount_paid,
            "amount_remaining": max(due - self.amount_paid, 0),
            "amount_shipping": 0,
            "application": None,
            "attempt_count": self.attempt_count,
            "attempted": self.attempted,
            "auto_advance": self.auto_advance,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None, "status": None},
            "billing_reason": "manual",
            "collection_method": self.collection_method,
            "confirmation_secret": None,
            "created": self.created,
            "currency": self.currency,
            "custom_fields": None,
            "customer": self.customer,
            "customer_address": None,
            "customer_email": self.customer_email if frozen else customer.email,
            "customer_name": self.customer_name if frozen else customer.name,
            "customer_phone": None,
            "customer_shipping": None,
            "customer_tax_exempt": "none",
            "customer_tax_ids": [],
            "default_payment_method": self.default_payment_method,
            "default_source": None,
            "default_tax_rates": [],
            "description": self.description,
            "discounts": [],
            "due_date": self.due_date,
            "effective_at": self.effective_at,
            "ending_balance": 0 if frozen else None,
            "footer": None,
            "from_invoice": None,
            "hosted_invoice_url": None,
            "invoice_pdf": None,
            "issuer": {"type": "self"},
            "last_finalization_error": None,
            "latest_revision": None,
            "lines": {
                "object": "list",
                "data": lines[:LINES_IN_INVOICE],
                "has_more": len(lines) > LINES_IN_INVOICE,
                "total_count": len(lines),
                "url": f"/v1/invoices/{self.id}/lines",
            },
            "livemode": False,
            "metadata": dict(self.metadata),
            "next_payment_attempt": None,
            "number": self.number,
            "on_behalf_of": None,
            "parent": None,
            "payment_settings": {
                "default_mandate": None,
                "payment_method_options": None,
                "payment_method_types": None,
            },
            "period_end": self.created,
            "period_start": self.created,
            "post_payment_credit_notes_amount": 0,
            "pre_payment_credit_notes_amount": 0,
            "receipt_number": None,
            "rendering": None,
            "shipping_cost": None,
            "shipping_details": None,
            "starting_balance": 0,
            "statement_descriptor": None,
            "status": self.status,
            "status_transitions": {
                "finalized_at": self.finalized_at,
                "marked_uncollectible_at": self.marked_uncollectible_at,
                "paid_at": self.paid_at,
                "voided_at": self.voided_at,
            },
            "subtotal": subtotal,
            "subtotal_excluding_tax": subtotal,
            "test_clock": None,
            "threshold_reason": None,
            "total": subtotal,
            "total_discount_amounts": [],
            "total_excluding_tax": subtotal,
            "total_pretax_credit_amounts": [],
            "total_taxes": [],
            "webhooks_delivered_at": self.webhooks_delivered_at,
        }

    def render_payments(self, store: Store) -> dict[str, Any]:
        """``payments``, the includable list of its invoice payments (``expand[]=payments``)."""
        data = [store.get(InvoicePayment, payment).render(store) for payment in reversed(self.payments)]
        return {
            "object": "list",
            "data": data,
            "has_more": False,
            "total_count": len(data),
            "url": f"/v1/invoice_payments?invoice={self.id}",
        }


@dataclass(kw_only=True, eq=False)
class PaymentIntent(Record):
    """A payment: what ``POST /v1/invoices/{id}/pay`` creates to collect an invoice."""

    OBJECT: ClassVar[str] = "payment_intent"
    KIND: ClassVar[str] = "payment_intent"

    amount: int
    currency: str
    customer: str | None
    payment_method: str | None
    status: str
    amount_received: int = 0
    latest_charge: str | None = None
    description: str | None = None
    last_payment_error: dict[str, Any] | None = None

    def render(self, store: Store) -> dict[str, Any]:
        """The payment intent object."""
        return {
            "id": self.id,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": self.amount_received,
            "application": None,
            "application_fee_amount": None,
            "automatic_payment_methods": None,
            "canceled_at": None,
            "cancellation_reason": None,
            "capture_method": "automatic",
            "client_secret": f"{self.id}_secret_sandbox",
            "confirmation_method": "automatic",
            "created": self.created,
            "currency": self.currency,
            "customer": self.customer,
            "description": self.description,
            "last_payment_error": self.last_payment_error,
            "latest_charge": self.latest_charge,
            "livemode": False,
            "metadata": dict(self.metadata),
            "next_action": None,
            "on_behalf_of": None,
            "payment_method": self.payment_method,
            "payment_method_types": ["card"],
            "processing": None,
            "receipt_email": None,
            "setup_future_usage": None,
            "shipping": None,
            "statement_descriptor": None,
            "statement_descriptor_suffix": None,
            "status": self.status,
            "transfer_data": None,
            "transfer_group": None,
        }


@dataclass(kw_only=True, eq=False)
class Charge(Record):
    """One attempt to move money for a payment intent: succeeded or failed."""

    OBJECT: ClassVar[str] = "charge"
    KIND: ClassVar[str] = "charge"

    amount: int
    currency: str
    customer: str | None
    payment_intent: str
    payment_method: str
    status: str
    description: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    decline_code: str | None = None

    def render(self, store: Store) -> dict[str, Any]:
        """The charge object."""
        succeeded = self.status == "succeeded"
        return {
            "id": self.id,
            "object": "charge",
            "amount": self.amount,
            "amount_captured": self.amount if succeeded else 0,
            "amount_refunded": 0,
            "application": None,
            "application_fee": None,
            "application_fee_amount": None,
            "balance_transaction": None,
            "billing_details": {"address": None, "email": None, "name": None, "phone": None},
            "calculated_statement_descriptor": "FINSYNC SANDBOX",
            "captured": succeeded,
            "created": self.created,
            "currency": self.currency,
            "customer": self.customer,
            "description": self.description,
            "disputed": False,
            "failure_balance_transaction": None,
            "failure_code": self.failure_code,
            "failure_message": self.failure_message,
            "fraud_details": {},
            "livemode": False,
            "metadata": dict(self.metadata),
            "on_behalf_of": None,
            "outcome": {
                "network_status": "approved_by_network" if succeeded else "declined_by_network",
                "reason": None if succeeded else self.decline_code,
                "risk_level": "normal",
                "seller_message": "Payment complete."
                if succeeded
                else "The bank did not return any further details with this decline.",
                "type": "authorized" if succeeded else "issuer_declined",
            },
            "paid": succeeded,
            "payment_intent": self.payment_intent,
            "payment_method": self.payment_method,
            "payment_method_details": {
                "card": {
                    "brand": "visa",
                    "country": "US",
                    "exp_month": 12,
                    "exp_year": 2034,
                    "last4": "4242",
                },
                "type": "card",
            },
            "receipt_email": None,
            "receipt_url": None,
            "refunded": False,
            "review": None,
            "shipping": None,
            "statement_descriptor": None,
            "status": self.status,
            "transfer_data": None,
            "transfer_group": None,
        }


@dataclass(kw_only=True, eq=False)
class InvoicePayment(Record):
    """The link between an invoice and the payment intent that paid it (``inpay_…``)."""

    OBJECT: ClassVar[str] = "invoice_payment"
    KIND: ClassVar[str] = "invoice_payment"

    invoice: str
    currency: str
    amount_requested: int
    amount_paid: int | None
    payment_intent: str
    status: str
    paid_at: int | None

    def render(self, store: Store) -> dict[str, Any]:
        """The invoice payment object."""
        return {
            "id": self.id,
            "object": "invoice_payment",
            "amount_paid": self.amount_paid,
            "amount_requested": self.amount_requested,
            "created": self.created,
            "currency": self.currency,
            "invoice": self.invoice,
            "is_default": True,
            "livemode": False,
            "payment": {"payment_intent": self.payment_intent, "type": "payment_intent"},
            "status": self.status,
            "status_transitions": {"canceled_at": None, "paid_at": self.paid_at},
        }


@dataclass(kw_only=True, eq=False)
class Event(Record):
    """Something that happened, with a snapshot of the object as it was then."""

    OBJECT: ClassVar[str] = "event"
    KIND: ClassVar[str] = "event"

    type: str
    data: dict[str, Any]
    """``{"object": snapshot}``, plus ``previous_attributes`` for ``*.updated`` events."""
    request_id: str | None
    idempotency_key: str | None
    pending_webhooks: int = 0
    """Endpoints that have not yet answered a delivery of it with 2xx."""

    def render(self, store: Store) -> dict[str, Any]:
        """The event object, as listed and as delivered."""
        return {
            "id": self.id,
            "object": "event",
            "api_version": API_VERSION,
            "created": self.created,
            "data": self.data,
            "livemode": False,
            "pending_webhooks": self.pending_webhooks,
            "request": {"id": self.request_id, "idempotency_key": self.idempotency_key},
            "type": self.type,
        }


@dataclass(kw_only=True, eq=False)
class WebhookEndpoint(Record):
    """Where events are delivered, signed with the endpoint's secret."""

    OBJECT: ClassVar[str] = "webhook_endpoint"
    KIND: ClassVar[str] = "webhook_endpoint"

    url: str
    secret: str = field(repr=False)
    enabled_events: list[str]
    status: str = "enabled"
    description: str | None = None

    def wants(self, event_type: str) -> bool:
        """Whether an event of ``event_type`` is delivered here."""
        return self.status == "enabled" and ("*" in self.enabled_events or event_type in self.enabled_events)

    def render(self, store: Store) -> dict[str, Any]:
        """The endpoint object, without its secret (Stripe shows the secret only when it is created)."""
        return {
            "id": self.id,
            "object": "webhook_endpoint",
            "api_version": API_VERSION,
            "application": None,
            "created": self.created,
            "description": self.description,
            "enabled_events": list(self.enabled_events),
            "livemode": False,
            "metadata": dict(self.metadata),
            "status": self.status,
            "url": self.url,
        }
