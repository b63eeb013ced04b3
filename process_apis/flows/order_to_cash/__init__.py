"""The order-to-cash flow: closed-won deals to billing invoices to ERP receivables and payments, on events.

- :mod:`~process_apis.flows.order_to_cash.machine`: the state machine, pure:
  which steps a deal or an invoice calls for, from where it stands now.
- :mod:`~process_apis.flows.order_to_cash.flow`: :class:`OrderToCash`, the
  handlers on the event path, each step idempotent and audited under the deal's
  trace.
- :mod:`~process_apis.flows.order_to_cash.mapping`: the versioned map (legal
  entities, the reversal's accounts), in ``maps/``.
- :mod:`~process_apis.flows.order_to_cash.runtime`: subscribed with the service.
"""

from __future__ import annotations

from process_apis.flows.order_to_cash.flow import INVOICE_EVENTS, OrderToCash
from process_apis.flows.order_to_cash.machine import DealStep, InvoiceStep, deal_step, invoice_steps
from process_apis.flows.order_to_cash.mapping import OrderToCashMap, load_map
from process_apis.flows.order_to_cash.runtime import order_to_cash_runtime

__all__ = (
    "INVOICE_EVENTS",
    "DealStep",
    "InvoiceStep",
    "OrderToCash",
    "OrderToCashMap",
    "deal_step",
    "invoice_steps",
    "load_map",
    "order_to_cash_runtime",
)
