"""Everything one sandbox holds, in memory, in one object kept on ``app.state.sandbox``.

All state lives in the one worker process: it is lost on restart and
re-created, deterministically, from the seed; :meth:`Sandbox.reset` does the
same on demand. Two things survive a reset on purpose: the numbering of query
locators and notifications (so a listener deduping on notification ids never
mistakes a new notification for an old one) and the HTTP client of the
outbound dispatcher.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from system_apis.connectors.salesforce.sandbox.clock import Clock
from system_apis.connectors.salesforce.sandbox.config import API_VERSIONS, DEFAULT_PORT
from system_apis.connectors.salesforce.sandbox.faults import ApiUsage, Counters, Faults
from system_apis.connectors.salesforce.sandbox.ids import (
    KEY_PREFIXES,
    OUTBOUND_MESSAGE_PREFIX,
    canonical,
    make_id,
    transient_counter,
)
from system_apis.connectors.salesforce.sandbox.org import Org
from system_apis.connectors.salesforce.sandbox.outbound import EnvelopeContext, Outbound
from system_apis.connectors.salesforce.sandbox.queries import QueryLocators
from system_apis.connectors.salesforce.sandbox.seed import SEED_HORIZON, seed_org
from system_apis.connectors.salesforce.sandbox.tokens import Credentials, SessionStore, load_public_key
from system_apis.connectors.tryton.seed import COMPANIES

if TYPE_CHECKING:
    from litestar import Request

    from system_apis.connectors.salesforce.sandbox.config import CrmSandboxConfig, SandboxSecrets

__all__ = ("Sandbox", "sandbox_of")


class Sandbox:
    """The seeded org, sessions, API usage, query locators, the outbound queue, faults and counters."""

    def __init__(self, config: CrmSandboxConfig, secrets: SandboxSecrets) -> None:
        """A fresh sandbox; outbound delivery starts with :meth:`start`.

        Raises:
            ValueError: the JWT public key file holds no RSA public key or certificate.
        """
        self.config = config
        """How it was started."""
        self.credentials = Credentials(
            client_id=config.client_id,
            client_secret=secrets.client_secret,
            username=config.username,
            public_key=load_public_key(secrets.public_key_pem),
        )
        """The connected app and the integration user."""
        organization_id = canonical(config.organization_id)
        assert organization_id is not None  # the config checked it
        self.organization_id = organization_id
        """The org's 18-character id."""
        self.user_id = make_id(KEY_PREFIXES["User"], 1)
        """The integration user's id."""
        self.action_id = make_id(OUTBOUND_MESSAGE_PREFIX, 1)
        """The Opportunity outbound message's id (``ActionId``)."""
        self.latest_version = API_VERSIONS[-1][0]
        """The newest API version served."""
        self.seen_url: str | None = None
        """The URL clients last called this sandbox at (the instance URL when none is configured)."""
        self._locator_numbers = transient_counter()
        self._notification_numbers = transient_counter()
        self._client: httpx.AsyncClient | None = None
        self._fresh()

    def _fresh(self) -> None:
        """Everything but the configuration, as at start; one definition for start and reset."""
        config = self.config
        self.counters = Counters()
        """What happened since start or reset."""
        self.faults = Faults(self.counters)
        """Fault injection."""
        self.usage = ApiUsage(config.daily_api_limit)
        """API requests against the daily limit."""
        self.sessions = SessionStore(self.organization_id, config.session_timeout)
        """Open sessions (access tokens)."""
        self.locators = QueryLocators(
            self._locator_numbers, max_open=config.max_query_locators, timeout=config.query_locator_timeout
        )
        """Open query results."""
        self.org = Org(
            org_id=self.organization_id,
            user_id=self.user_id,
            clock=Clock(SEED_HORIZON),
            entities={company.code: company.currency for company in COMPANIES},
        )
        """The records."""
        seed_org(self.org, variant=config.erp_seed_variant, opportunities=config.seed_opportunities)
        self.outbound = Outbound(
            config.outbound,
            org=self.org,
            faults=self.faults,
            counters=self.counters,
            numbers=self._notification_numbers,
            context=self.envelope_context,
            session_id=lambda: self.sessions.open("outbound").token,
        )
        """The Opportunity outbound message."""
        self.org.on_opportunity_change = self.outbound.enqueue

    @property
    def instance_url(self) -> str:
        """Where the org's API is: the configured instance URL, else where clients last called, else the default."""
        return self.config.instance_url or self.seen_url or f"http://127.0.0.1:{DEFAULT_PORT}"

    def envelope_context(self) -> EnvelopeContext:
        """What an outbound call says about the org."""
        return EnvelopeContext(
            organization_id=self.organization_id,
            action_id=self.action_id,
            instance_url=self.instance_url.rstrip("/"),
            api_version=self.latest_version,
        )

    def info(self) -> dict[str, Any]:
        """``GET /sandbox/org``: the ids, names and files a client needs (no secret)."""
        config = self.config
        private = config.jwt_private_key_path
        return {
            "organization_id": self.organization_id,
            "user_id": self.user_id,
            "username": config.username,
            "client_id": config.client_id,
            "client_secret_file": str(config.client_secret_path),
            "jwt_public_key_file": str(config.jwt_public_key_path),
            "jwt_private_key_file": str(private) if private is not None else None,
            "instance_url": self.instance_url,
            "api_versions": [version for version, _ in API_VERSIONS],
            "outbound_action_id": self.action_id,
            "records": {kind: self.org.count(kind) for kind in self.org.tables},
        }

    async def start(self) -> None:
        """Open the outbound HTTP client and start delivering."""
        # trust_env=False: a proxy from the environment must never carry loopback deliveries elsewhere.
        self._client = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        await self.outbound.start(self._client)

    async def reset(self) -> None:
        """Back to the state at start: fresh seeded org, no sessions or locators, queue empty, faults off,
        counters and API usage zero, outbound settings as configured."""
        await self.outbound.close()
        self._fresh()
        if self._client is not None:
            await self.outbound.start(self._client)

    async def close(self) -> None:
        """Stop delivering and close the HTTP client (app shutdown)."""
        await self.outbound.close()
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def sandbox_of(request: Request[Any, Any, Any]) -> Sandbox:
    """The sandbox of the app serving ``request``."""
    sandbox: Sandbox = request.app.state.sandbox
    return sandbox
