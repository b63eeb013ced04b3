"""The ``billing_sandbox`` fixture: the Stripe-shaped billing sandbox as a real process, for the whole session.

``python -m system_apis.connectors.stripe.sandbox`` runs on a free loopback
port with a secret key file written here and webhook retries compressed for
tests (first retry after 0.05 s, doubling, for at most 3 s). ``billing`` is the
same process, reset (fresh seed, no keys, no events, no endpoints, faults off,
counters zero, clock back) for one test. ``webhook_receiver`` is a real HTTP
server on loopback that records what it receives and answers as told::

    def test_something(billing: BillingSandbox, webhook_receiver: WebhookReceiver) -> None:
        endpoint = billing.add_endpoint(webhook_receiver.url)
        billing.api.post("/v1/customers", data={"name": "x"})
        (delivery,) = webhook_receiver.wait_for(1)
        assert billing.counters()["webhook_delivered"] == 1
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

import httpx
import pytest

from tests.erp_fixtures import ERP_VARIANTS
from tests.support import free_port, start_sandbox_process, stop_process_group, wait_until

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

__all__ = (
    "RETRY_BASE",
    "RETRY_HORIZON",
    "BillingSandbox",
    "Received",
    "WebhookReceiver",
    "billing",
    "billing_sandbox",
    "start_billing_sandbox",
    "stop_billing_sandbox",
    "webhook_receiver",
)

RETRY_BASE = 0.05
"""Seconds to the first webhook retry in tests (Stripe: unpublished, retries over up to three days)."""
RETRY_HORIZON = 3.0
"""Seconds after the first attempt beyond which no retry is scheduled, in tests."""
"""Seconds the sandbox has to answer after start."""


@dataclass
class BillingSandbox:
    """A running billing sandbox, a client of its API, and helpers over its control API (``/sandbox/...``)."""

    url: str
    """Base URL: ``/v1`` and ``/sandbox`` are both under it."""
    secret_key: str
    """The ``sk_test_…`` key the API accepts."""
    secret_key_file: Path
    """The file that holds it."""
    process: subprocess.Popen[bytes] = field(repr=False)
    """The sandbox's process."""
    log: Path = field(repr=False)
    """Its output."""
    api: httpx.Client = field(init=False, repr=False)
    """A client of ``/v1`` with the secret key as bearer token."""

    def __post_init__(self) -> None:
        self.api = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.secret_key}"}, timeout=10
        )

    def _control(self, method: str, path: str, **kwargs: Any) -> Any:
        """One control API call; asserts 200 and answers the JSON."""
        response = httpx.request(method, f"{self.url}/sandbox{path}", timeout=10, **kwargs)
        assert response.status_code == 200, f"{method} /sandbox{path}: {response.status_code} {response.text}"
        return response.json()

    def reset(self) -> None:
        """Fresh seed, no keys, no events, no endpoints, faults off, counters zero, clock and timings as at start."""
        self._control("POST", "/reset")

    def faults(self, **config: Any) -> dict[str, Any]:
        """Replace the fault configuration (``rate_429``, ``rate_5xx``, ``retry_after``, ``write_delay``,
        ``search_lag``, ``webhook_duplicates``, ``webhook_reorder_window``, ``seed``); left out is off."""
        answer: dict[str, Any] = self._control("PUT", "/faults", json=config)
        return answer

    def counters(self) -> dict[str, Any]:
        """What happened since start or reset (``requests``, ``idempotent_replays``, ``events``,
        ``webhook_attempts``, ``429``, ``5xx``, …) and ``webhooks_pending``."""
        answer: dict[str, Any] = self._control("GET", "/counters")
        return answer

    def advance_clock(self, seconds: int) -> int:
        """Move the sandbox's clock forward; answers its new now."""
        now: int = self._control("POST", "/clock/advance", json={"seconds": seconds})["now"]
        return now

    def expire_keys(self, older_than: int | None = None) -> int:
        """Prune saved idempotency keys (every one when ``older_than`` is None); answers how many."""
        body = {} if older_than is None else {"older_than": older_than}
        expired: int = self._control("POST", "/idempotency/expire", json=body)["expired"]
        return expired

    def add_endpoint(
        self, url: str, secret: str | None = None, events: list[str] | None = None
    ) -> dict[str, Any]:
        """Add a webhook endpoint (its secret generated unless given); answers it with ``secret``."""
        body: dict[str, Any] = {"url": url}
        if secret is not None:
            body["secret"] = secret
        if events is not None:
            body["enabled_events"] = events
        endpoint: dict[str, Any] = self._control("POST", "/webhooks/endpoints", json=body)
        return endpoint

    def timings(self, **timings: float) -> dict[str, Any]:
        """Replace the webhook retry timings (``retry_base``, ``retry_factor``, ``retry_horizon``, ``timeout``)."""
        answer: dict[str, Any] = self._control("PUT", "/webhooks/timings", json=timings)
        return answer

    def deliveries(self, event: str | None = None) -> dict[str, Any]:
        """``{"attempts": [...], "pending": n}``: every delivery attempt (of one event, if given)."""
        params = {"event": event} if event else {}
        answer: dict[str, Any] = self._control("GET", "/webhooks/deliveries", params=params)
        return answer

    def seed(self) -> dict[str, Any]:
        """The seeded customers, products and prices with their ERP codes."""
        answer: dict[str, Any] = self._control("GET", "/seed")
        return answer

    def list_all(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every object of a list endpoint, newest first, paged by ``starting_after`` at 100 a page."""
        objects: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            response = self.api.get(
                path, params={**params, "limit": 100, **({"starting_after": cursor} if cursor else {})}
            )
            assert response.status_code == 200, response.text
            page = response.json()
            objects.extend(page["data"])
            if not page["has_more"]:
                return objects
            cursor = page["data"][-1]["id"]


def start_billing_sandbox(tmp: Path, *extra: str) -> BillingSandbox:
    """Start the billing sandbox in ``tmp`` and wait until it answers; ``extra`` adds command-line arguments."""
    secret_key = f"sk_test_{secrets.token_urlsafe(18)}"
    key_file = tmp / "stripe-secret-key"
    key_file.write_text(secret_key + "\n", encoding="utf-8")
    key_file.chmod(0o600)
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "system_apis.connectors.stripe.sandbox",
        "--port",
        str(port),
        "--secret-key-file",
        str(key_file),
        "--webhook-retry-base",
        str(RETRY_BASE),
        "--webhook-retry-horizon",
        str(RETRY_HORIZON),
        "--webhook-timeout",
        "2",
        "--seed-variant",
        str(ERP_VARIANTS[0]),
        *extra,
    ]
    env = {key: value for key, value in os.environ.items() if not key.startswith("FINSYNC_")}
    log = tmp / "billing-sandbox.log"
    url = f"http://127.0.0.1:{port}"
    process = start_sandbox_process("billing sandbox", args, env, log, url)
    return BillingSandbox(url=url, secret_key=secret_key, secret_key_file=key_file, process=process, log=log)


def stop_billing_sandbox(sandbox: BillingSandbox, timeout: float = 10.0) -> None:
    """SIGTERM, wait; SIGKILL to its process group (granian's worker included) if it does not stop."""
    sandbox.api.close()
    stop_process_group(sandbox.process, timeout)


@pytest.fixture(scope="session")
def billing_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BillingSandbox]:
    """The billing sandbox for the whole session (stopped at the end)."""
    running = start_billing_sandbox(tmp_path_factory.mktemp("billing-sandbox"))
    try:
        yield running
    finally:
        stop_billing_sandbox(running)


@pytest.fixture
def billing(billing_sandbox: BillingSandbox) -> BillingSandbox:
    """The session's billing sandbox, reset for this test."""
    billing_sandbox.reset()
    return billing_sandbox


@dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    headers: dict[str, str]
    """Its headers, names in lower case."""
    body: bytes
    """Its exact body."""
    at: float
    """Monotonic time of arrival."""
    status: int
    """What the receiver answered."""


class WebhookReceiver:
    """A real HTTP server on loopback that records POSTs and answers each with ``answer(n)`` (n from 1)."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answer: Callable[[int], int] = lambda _n: 200
        """The status of the n-th request (default: always 200)."""
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver._lock:
                    status = receiver.answer(len(receiver.received) + 1)
                    receiver.received.append(
                        Received(
                            headers={key.lower(): value for key, value in self.headers.items()},
                            body=body,
                            at=time.monotonic(),
                            status=status,
                        )
                    )
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/stripe"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The first ``count`` requests, once they have arrived."""
        arrived = wait_until(lambda: len(self.received) >= count, timeout, interval=0.02)
        assert arrived, f"got {len(self.received)} of {count}"
        with self._lock:
            return list(self.received[:count])

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    """A webhook receiver on loopback for one test."""
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.close()
