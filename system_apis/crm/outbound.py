"""``POST /v1/crm/{source}/outbound-messages/{path_token}``: the CRM's outbound messages, as events.

Public (no bearer token): Salesforce cannot sign an outbound message, so the
listener URL itself is the secret. The path token is compared in constant time
with the source's ``outbound_token``; a wrong one answers 404, as if there were
no such listener. The call's ``OrganizationId`` must then be the source's org
(when one is configured): that check is not authentication, it keeps a
misconfigured org from feeding the wrong source (403).

The SOAP body is parsed with DTDs forbidden (:mod:`.outbound
<system_apis.connectors.salesforce.outbound>`): an XML bomb or an external
entity answers 400 and nothing is expanded. Each notification becomes one
``crm.booking.changed`` event, and the call is answered with the SOAP ``Ack``
only once they are all on the CRM stream; any other answer (400, 503 under
back-pressure) makes Salesforce retry every notification of the call.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import FromPath, Parameter

from shared.auth.middleware import public
from shared.errors import BadRequestError, NotFoundError, PermissionDeniedError, UpstreamContractError
from shared.problems import problem_responses
from system_apis.connectors.salesforce.events import booking_event
from system_apis.connectors.salesforce.outbound import ACK, OutboundError, parse
from system_apis.crm.controller import SourcePath
from system_apis.events.ingress import read_secrets

if TYPE_CHECKING:
    from litestar.datastructures import State

    from shared.settings import SalesforceSourceConfig
    from system_apis.crm.registry import CrmRegistry
    from system_apis.events.ingress import Ingress

__all__ = ("OutboundMessageController",)

KIND = "crm"
TokenPath = Annotated[
    str,
    Parameter(
        pattern=r"^[A-Za-z0-9._~-]{1,256}$",
        description="The listener's secret path token (the source's `outbound_token`): this is how an outbound "
        "message authenticates. A wrong token answers 404.",
    ),
]


def _token_matches(config: SalesforceSourceConfig, given: str) -> bool:
    tokens = read_secrets([config.outbound_token], [config.outbound_token_file])
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(token.encode(), given.encode())
    return matched


def _same_org(configured: str, sent: str) -> bool:
    # The first 15 characters are the id (case-sensitive); the 18-character form adds a checksum of the case.
    return configured[:15] == sent[:15]


class OutboundMessageController(Controller):
    """The CRM's outbound messages."""

    path = "/v1/crm/{source:str}"
    tags = ["crm", "events"]  # noqa: RUF012 - Litestar reads a plain class attribute

    @post(
        "/outbound-messages/{path_token:str}",
        operation_id="ReceiveCrmOutboundMessage",
        summary="Receive an outbound message (SOAP notifications) from the CRM",
        status_code=200,
        media_type="text/xml",
        responses={
            200: ResponseSpec(
                data_container=str,
                media_type="text/xml",
                description="The SOAP `notificationsResponse` with `<Ack>true</Ack>`: every notification is on "
                "the stream.",
                generate_examples=False,
                examples=[Example(summary="The acknowledgement", value=ACK.decode())],
            ),
            **problem_responses(400, 403, 404, 413, 503),
        },
        **public(),
    )
    async def receive(
        self,
        request: Request[Any, Any, Any],
        state: State,
        source: FromPath[SourcePath],
        path_token: FromPath[TokenPath],
    ) -> Response[bytes]:
        """A SOAP `notifications` call of a Salesforce outbound message on Opportunity (1 to 100 notifications,
        `text/xml`), authenticated by the secret token in its path.

        Each notification becomes a `crm.booking.changed` event on the `finsync:events:crm` stream before
        the answer, the SOAP `Ack`. A wrong token answers 404, another org than the source's 403, a body
        that is not such a call (or declares a DTD: no entity is ever expanded) 400, and a stream over its
        backlog bound 503 with `Retry-After`; Salesforce retries each of those calls.
        """
        registry: CrmRegistry = state.crm
        connector = registry.get(source)
        ingress: Ingress = state.ingress
        config = connector.config
        if not _token_matches(config, path_token):
            ingress.reject(source, KIND, "token", "the path token matches no outbound token of the source")
            raise NotFoundError("no such outbound-message listener")
        try:
            message = parse(await request.body())
        except OutboundError as exc:
            ingress.reject(source, KIND, "malformed", str(exc))
            raise BadRequestError(str(exc)) from exc
        if config.organization_id and not _same_org(config.organization_id, message.organization_id):
            ingress.reject(source, KIND, "organization", f"the call comes from org {message.organization_id}")
            raise PermissionDeniedError(f"CRM source {source!r} takes no outbound messages from this org")
        now = datetime.now(UTC)
        try:
            events = [
                booking_event(source, config, notification, now) for notification in message.notifications
            ]
        except (msgspec.ValidationError, UpstreamContractError) as exc:
            ingress.reject(source, KIND, "malformed", str(exc))
            raise BadRequestError(f"a notification cannot be read: {exc}") from exc
        await ingress.persist(source, KIND, events)
        return Response(ACK, media_type="text/xml; charset=utf-8", status_code=200)
