"""The ``crm_sandbox`` fixture: the Salesforce-shaped CRM sandbox as a real process, for the whole session.

``python -m system_apis.connectors.salesforce.sandbox --fast-retries`` runs on
a free loopback port with a temporary data dir, a client secret and a JWT key
pair written here, and its accounts named as the ``erp`` fixture's first
variant names its customers. ``crm`` is the same process, reset (fresh seeded
org, no sessions, faults off, counters and API usage zero, outbound settings
as started) for one test. ``outbound_listener`` is a small SOAP listener on
loopback that records each ``notifications`` call and answers ``Ack`` (or
not, as a test tells it)::

    def test_something(crm: CrmSandbox, outbound_listener: OutboundListener) -> None:
        crm.outbound(listener_url=outbound_listener.url)
        crm.update_opportunity(opportunity_id, StageName="Closed Won")
        (call,) = outbound_listener.wait_for_calls(1)
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from system_apis.connectors.salesforce.sandbox.config import DEFAULT_CLIENT_ID, DEFAULT_USERNAME
from system_apis.connectors.salesforce.sandbox.outbound import OUTBOUND_NAMESPACE, SOBJECT_NAMESPACE
from tests.erp_fixtures import ERP_VARIANTS
from tests.support import free_port, start_sandbox_process, stop_process_group

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

__all__ = (
    "API",
    "CrmSandbox",
    "OutboundCall",
    "OutboundListener",
    "crm",
    "crm_sandbox",
    "outbound_listener",
    "start_crm_sandbox",
    "stop_crm_sandbox",
)

API = "/services/data/v66.0"
"""The API version the tests use."""
"""Seconds the sandbox has to answer after start."""
ACK = (
    b'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    b'<soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack>'
    b"</notificationsResponse></soapenv:Body></soapenv:Envelope>"
)
"""What a listener answers to acknowledge a call."""
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


@dataclass
class CrmSandbox:
    """A running CRM sandbox, and helpers over its OAuth endpoint and its control API (``/sandbox/...``)."""

    url: str
    """Base URL: ``/services/oauth2``, ``/services/data`` and ``/sandbox`` are all under it."""
    client_id: str
    """The connected app's consumer key."""
    client_secret: str = field(repr=False)
    """Its consumer secret."""
    username: str
    """The integration user (``sub`` of JWT assertions)."""
    private_key: RSAKey = field(repr=False)
    """The key JWT assertions are signed with (the sandbox holds its public half)."""
    process: subprocess.Popen[bytes] = field(repr=False)
    """The sandbox process."""
    log: Path = field(repr=False)
    """Its output."""

    def control(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        """One control API call; asserts ``status`` and answers the JSON."""
        response = httpx.request(method, f"{self.url}/sandbox{path}", timeout=10, **kwargs)
        assert response.status_code == status, (
            f"{method} /sandbox{path}: {response.status_code} {response.text}"
        )
        return response.json()

    def reset(self) -> None:
        """Fresh seeded org, no sessions, faults off, counters and usage zero, outbound as started."""
        self.control("POST", "/reset")

    def faults(self, **config: Any) -> dict[str, Any]:
        """Replace the fault configuration (``rate_5xx``, ``rate_limit_exceeded``, ``duplicate_notifications``,
        ``reorder_notifications``, ``seed``); fields left out are off."""
        answer: dict[str, Any] = self.control("PUT", "/faults", json=config)
        return answer

    def counters(self) -> dict[str, Any]:
        """What happened since start or reset."""
        answer: dict[str, Any] = self.control("GET", "/counters")
        return answer

    def org(self) -> dict[str, Any]:
        """Org id, user id, action id, record counts, ..."""
        answer: dict[str, Any] = self.control("GET", "/org")
        return answer

    def outbound(self, **changes: Any) -> dict[str, Any]:
        """Change outbound settings (``listener_url``, ``paused``, ``batch_size``, ...); answers the view."""
        answer: dict[str, Any] = self.control("PATCH", "/outbound", json=changes)
        return answer

    def deliveries(self) -> list[dict[str, Any]]:
        """Every ``notifications`` call so far, oldest first."""
        answer: list[dict[str, Any]] = self.control("GET", "/outbound/deliveries")["deliveries"]
        return answer

    def update_opportunity(self, opportunity_id: str, **fields: Any) -> dict[str, Any]:
        """Change an opportunity through the control API (one outbound notification)."""
        answer: dict[str, Any] = self.control("PATCH", f"/opportunities/{opportunity_id}", json=fields)
        return answer

    def create_opportunity(self, lines: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
        """Create an opportunity with its ``lines`` through the control API (one outbound notification)."""
        answer: dict[str, Any] = self.control(
            "POST", "/opportunities", status=201, json={**fields, "lines": lines or []}
        )
        return answer

    def token(self) -> str:
        """A new access token (one client credentials request)."""
        response = httpx.post(
            f"{self.url}/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            },
            timeout=10,
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def assertion(self, key: RSAKey | OctKey | None = None, algorithm: str = "RS256", **claims: Any) -> str:
        """A JWT bearer assertion: consumer key, integration user, the sandbox as audience, 2 minutes to live;
        ``claims`` override those (``None`` leaves one out)."""
        payload: dict[str, Any] = {
            "iss": self.client_id,
            "sub": self.username,
            "aud": self.url,
            "exp": int(time.time()) + 120,
        }
        payload.update(claims)
        payload = {name: value for name, value in payload.items() if value is not None}
        return jwt.encode({"alg": algorithm}, payload, key or self.private_key, algorithms=[algorithm])


@dataclass
class OutboundCall:
    """One ``notifications`` call as a listener received it."""

    received: float
    """``time.monotonic()`` when it arrived."""
    envelope: dict[str, str | None]
    """``OrganizationId``, ``ActionId``, ``SessionId`` (``None`` when nil), ``EnterpriseUrl``, ``PartnerUrl``."""
    notifications: list[tuple[str, str, dict[str, str]]]
    """``(notification Id, sObject xsi:type, {field: text})`` in document order."""
    body: bytes = field(repr=False)
    """The raw SOAP."""
    content_type: str
    """Its ``Content-Type``."""

    @property
    def ids(self) -> list[str]:
        """The notification ids, in order."""
        return [notification_id for notification_id, _, _ in self.notifications]


def parse_notifications(body: bytes, content_type: str = "text/xml") -> OutboundCall:
    """Parse a SOAP ``notifications`` call, checking its namespaces on the way."""
    root = ET.fromstring(body)
    assert root.tag == "{http://schemas.xmlsoap.org/soap/envelope/}Envelope", root.tag
    call = root.find(
        f"./{{http://schemas.xmlsoap.org/soap/envelope/}}Body/{{{OUTBOUND_NAMESPACE}}}notifications"
    )
    assert call is not None, body
    envelope: dict[str, str | None] = {}
    for name in ("OrganizationId", "ActionId", "SessionId", "EnterpriseUrl", "PartnerUrl"):
        element = call.find(f"{{{OUTBOUND_NAMESPACE}}}{name}")
        assert element is not None, name
        envelope[name] = None if element.get(_XSI_NIL) == "true" else element.text
    notifications = []
    for notification in call.findall(f"{{{OUTBOUND_NAMESPACE}}}Notification"):
        notification_id = notification.findtext(f"{{{OUTBOUND_NAMESPACE}}}Id")
        sobject = notification.find(f"{{{OUTBOUND_NAMESPACE}}}sObject")
        assert notification_id is not None
        assert sobject is not None
        values = {}
        for child in sobject:
            assert child.tag.startswith(f"{{{SOBJECT_NAMESPACE}}}"), child.tag
            values[child.tag.split("}", 1)[1]] = child.text or ""
        notifications.append((notification_id, sobject.get(_XSI_TYPE, ""), values))
    return OutboundCall(time.monotonic(), envelope, notifications, body, content_type)


class OutboundListener:
    """A SOAP listener on loopback: records every call and answers from a plan, then with ``Ack``.

    Plan entries: ``"ack"``, ``"nack"`` (200 with ``<Ack>false</Ack>``), ``"no-ack"`` (200, an empty
    response element), ``"500"`` (a SOAP fault with status 500).
    """

    def __init__(self) -> None:
        self.calls: list[OutboundCall] = []
        self.plan: list[str] = []
        self._condition = threading.Condition()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                call = parse_notifications(body, self.headers.get("content-type", ""))
                with listener._condition:
                    answer = listener.plan.pop(0) if listener.plan else "ack"
                    listener.calls.append(call)
                    listener._condition.notify_all()
                status, content = 200, ACK
                if answer == "nack":
                    content = ACK.replace(b"<Ack>true</Ack>", b"<Ack>false</Ack>")
                elif answer == "no-ack":
                    content = ACK.replace(b"<Ack>true</Ack>", b"")
                elif answer == "500":
                    status, content = 500, b"<soapenv:Fault>listener down</soapenv:Fault>"
                self.send_response(status)
                self.send_header("content-type", "text/xml; charset=utf-8")
                self.send_header("content-length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/outbound/secret-path-token"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def wait_for(
        self, predicate: Callable[[list[OutboundCall]], bool], timeout: float = 10.0
    ) -> list[OutboundCall]:
        """The calls once ``predicate`` holds for them; fails after ``timeout``."""
        with self._condition:
            assert self._condition.wait_for(lambda: predicate(self.calls), timeout), self.calls
            return list(self.calls)

    def wait_for_calls(self, count: int, timeout: float = 10.0) -> list[OutboundCall]:
        """The first ``count`` calls, once they arrived."""
        return self.wait_for(lambda calls: len(calls) >= count, timeout)[:count]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start_crm_sandbox(tmp: Path, *extra_args: str) -> CrmSandbox:
    """Start the sandbox in ``tmp`` (fast retries) and wait until it answers; ``extra_args`` go to the command."""
    client_secret = secrets.token_hex(16)
    secret_file = tmp / "client-secret"
    secret_file.write_text(client_secret + "\n", encoding="utf-8")
    secret_file.chmod(0o600)
    key = RSAKey.generate_key(2048)
    public_file = tmp / "jwt-public.pem"
    public_file.write_bytes(key.as_pem(private=False))
    config = tmp / "crm-sandbox.toml"
    config.write_text(
        f'client_secret_file = "{secret_file}"\n'
        f'jwt_public_key_file = "{public_file}"\n'
        f"erp_seed_variant = {ERP_VARIANTS[0]}\n",
        encoding="utf-8",
    )
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("FINSYNC_")}
    args = [
        sys.executable,
        "-m",
        "system_apis.connectors.salesforce.sandbox",
        "--port",
        str(port),
        "--data-dir",
        str(tmp / "data"),
        "--config",
        str(config),
        "--fast-retries",
        *extra_args,
    ]
    log = tmp / "crm-sandbox.log"
    url = f"http://127.0.0.1:{port}"
    process = start_sandbox_process("CRM sandbox", args, env, log, url)
    return CrmSandbox(
        url=url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=client_secret,
        username=DEFAULT_USERNAME,
        private_key=key,
        process=process,
        log=log,
    )


def stop_crm_sandbox(sandbox: CrmSandbox, timeout: float = 10.0) -> None:
    """SIGTERM, wait; SIGKILL to its process group (granian's worker included) if it does not stop."""
    stop_process_group(sandbox.process, timeout)


@pytest.fixture(scope="session")
def crm_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CrmSandbox]:
    """The CRM sandbox, fast retries on, for the whole session (stopped at the end)."""
    running = start_crm_sandbox(tmp_path_factory.mktemp("crm-sandbox"))
    try:
        yield running
    finally:
        stop_crm_sandbox(running)


@pytest.fixture
def crm(crm_sandbox: CrmSandbox) -> CrmSandbox:
    """The session's CRM sandbox, reset for this test."""
    crm_sandbox.reset()
    return crm_sandbox


@pytest.fixture
def outbound_listener() -> Iterator[OutboundListener]:
    """A SOAP listener on loopback for this test."""
    listener = OutboundListener()
    try:
        yield listener
    finally:
        listener.close()
