"""``POST /v1/billing/{source}/webhooks``: the billing platform's signed webhook deliveries, as events.

Public (no bearer token): a delivery authenticates itself with its
``Stripe-Signature``, verified against the source's webhook secrets
(:mod:`system_apis.connectors.stripe.signature`). A bad signature answers 400
and a timestamp out of tolerance (a replay) 400 too; both are logged and
counted, and nothing of them is appended. An authentic ``invoice.*`` event of a
known type is appended to the billing stream *before* the 200; a repeated
delivery (same ``evt_…``) is answered 200 again and appended once. Other event
types are answered 200 and dropped, so the platform stops retrying them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Controller, Request, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath

from shared.errors import BadRequestError, NotFoundError, UnknownCurrencyError
from shared.problems import problem_responses
from system_apis.billing.controller import SourcePath
from system_apis.billing.schemas import WebhookReceipt
from system_apis.connectors.stripe.events import EVENTS
from system_apis.connectors.stripe.signature import SignatureError, verify
from system_apis.events.ingress import read_secrets
from system_apis.events.stream import Outcome

if TYPE_CHECKING:
    from litestar.datastructures import State

    from system_apis.billing.registry import BillingRegistry
    from system_apis.connectors.stripe.connector import StripeConnector
    from system_apis.events.ingress import Ingress

__all__ = ("STRIPE_SIGNATURE", "BillingWebhookController")

STRIPE_SIGNATURE = "StripeSignature"
"""The OpenAPI security scheme of the webhook route."""
KIND = "billing"


def _secrets(connector: StripeConnector) -> list[str]:
    config = connector.config
    return read_secrets(config.webhook_secrets, config.webhook_secret_files)


class BillingWebhookController(Controller):
    """The billing platform's webhook deliveries."""

    path = "/v1/billing/{source:str}"
    tags = ["billing", "events"]  # noqa: RUF012 - Litestar reads a plain class attribute

    @post(
        "/webhooks",
        operation_id="ReceiveBillingWebhook",
        summary="Receive a signed webhook delivery from the billing platform",
        status_code=200,
        responses={
            200: ResponseSpec(
                data_container=WebhookReceipt, description="Received (accepted, or not needed)."
            ),
            **problem_responses(400, 404, 413, 503),
        },
        opt={"public": True},
        security=[{STRIPE_SIGNATURE: []}],
    )
    async def receive(
        self, request: Request[Any, Any, Any], state: State, source: FromPath[SourcePath]
    ) -> WebhookReceipt:
        """A Stripe event, as Stripe delivers it to a webhook endpoint (the raw JSON body, signed).

        `Stripe-Signature: t=<unix>,v1=<hex>` must carry an HMAC-SHA256 of `"{t}.{body}"` under one of the
        source's webhook secrets, and `t` must be within the source's tolerance (300 s) of now; otherwise
        400, and nothing is kept. An `invoice.*` event is on the `finsync:events:billing` stream before the
        200 (`accepted`, or `duplicate` when it already was); other events are answered `ignored`. While the
        stream's backlog is over its bound the answer is 503 with `Retry-After`, and the platform retries.
        """
        registry: BillingRegistry = state.billing
        connector = registry.get(source)
        ingress: Ingress = state.ingress
        header = request.headers.get("stripe-signature")
        if not header:
            ingress.reject(source, KIND, "signature", "the delivery has no Stripe-Signature header")
            raise BadRequestError(
                "a webhook delivery needs its Stripe-Signature header", field="Stripe-Signature"
            )
        secrets = _secrets(connector)
        if not secrets:
            ingress.reject(source, KIND, "unconfigured", "the source has no webhook secret")
            raise NotFoundError(f"billing source {source!r} takes no webhooks", field="source")
        body = await request.body()
        try:
            verify(
                header,
                body,
                secrets,
                tolerance=connector.config.webhook_tolerance,
                now=time.time(),
            )
        except SignatureError as refused:
            ingress.reject(source, KIND, refused.reason, refused.detail)
            raise BadRequestError(refused.detail, field="Stripe-Signature") from refused
        try:
            delivered = EVENTS.decode(body)
            event = connector.source_event(delivered, datetime.now(UTC))
        except (msgspec.DecodeError, msgspec.ValidationError, UnknownCurrencyError) as exc:
            # Authentic but not a Stripe event finsync can read: refused, so it shows in the platform's log.
            ingress.reject(source, KIND, "malformed", str(exc))
            raise BadRequestError(f"the delivery is not a Stripe event finsync can read: {exc}") from exc
        if event is None:
            ingress.reject(source, KIND, "ignored_type", f"{delivered.type} makes no event")
            return WebhookReceipt(outcome="ignored")
        appended = await ingress.persist(source, KIND, [event])
        if appended.outcome is Outcome.ACCEPTED:
            return WebhookReceipt(outcome="accepted", event_id=event.id)
        return WebhookReceipt(outcome="duplicate", event_id=event.id)
