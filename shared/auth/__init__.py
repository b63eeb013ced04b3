"""OAuth 2.0 for finsync: the built-in authorization server and every service as a resource server.

Contracts shared by the two sides (they run as separate processes and meet only
in Redis and over HTTP):

- Tokens are RFC 9068 JWT access tokens (``typ: at+jwt``) with ``iss``, ``aud``,
  ``sub``, ``client_id``, ``scope`` (space-separated), ``jti``, ``iat``, ``exp``
  and, when an internal client relays a call, ``obo`` (the original caller's
  client id).
- Revocation: the server adds the ``jti`` to the sorted set
  :data:`REVOKED_SET` (score: the token's ``exp``) and publishes
  ``"{jti} {exp}"`` on :data:`REVOKED_CHANNEL`. Resource servers load the set at
  start and follow the channel, so a revocation costs no Redis round trip per
  request.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ("REVOKED_CHANNEL", "REVOKED_SET", "SCOPES", "Principal")

SCOPES: dict[str, str] = {
    "sources:read": "Read the configured source systems and their health.",
    "erp:read": "Read ERP master data, journals and balances.",
    "erp:write": "Post to the ERP.",
    "planning:read": "Read planning versions, members, cells and loads.",
    "planning:write": "Load rows into the planning platform.",
    "crm:read": "Read CRM customers and bookings.",
    "billing:read": "Read billing customers, invoices and payments.",
    "billing:write": "Create, finalize, pay and void billing invoices.",
    "flows:read": "Read flows, runs, exceptions and reconciliations.",
    "flows:run": "Start, replay and cancel flow runs.",
    "workbench:read": "Read the planner's workbench and dashboards.",
    "admin": "Operate finsync: configuration, dead letters, revocations.",
}
"""Every scope an operation may require, with what it grants."""

REVOKED_SET = "finsync:auth:revoked"
"""Sorted set of revoked token ids, scored by expiry (unix seconds)."""
REVOKED_CHANNEL = "finsync:auth:revoked"
"""Pub/sub channel announcing each revocation as ``"{jti} {exp}"``."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as the resource server verified it; kept in ``scope["auth"]``."""

    client_id: str
    """The client the token was issued to."""
    scopes: frozenset[str]
    """Granted scopes."""
    on_behalf_of: str | None = None
    """The original caller, when an internal client relays a call."""
    internal: bool = False
    """Issued to a finsync layer."""

    @property
    def actor(self) -> str:
        """Who audit records name: the original caller, not the layer that relayed the call."""
        return self.on_behalf_of or self.client_id
