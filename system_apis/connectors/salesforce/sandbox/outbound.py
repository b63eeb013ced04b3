"""Outbound Messaging: each opportunity change queues a notification; a dispatcher POSTs them as SOAP
``notifications`` calls to the configured listener and retries until it answers ``<Ack>true</Ack>``.

The call follows the outbound messaging WSDL Salesforce generates for an
Opportunity outbound message::

    <soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" ... xmlns:xsi="…XMLSchema-instance">
     <soapenv:Body>
      <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
       <OrganizationId>00D…</OrganizationId>
       <ActionId>04k…</ActionId>
       <SessionId xsi:nil="true"/>
       <EnterpriseUrl>{instance}/services/Soap/c/66.0/00D…</EnterpriseUrl>
       <PartnerUrl>{instance}/services/Soap/u/66.0/00D…</PartnerUrl>
       <Notification>                                   (1 to 100 of them)
        <Id>04l…</Id>
        <sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
         <sf:Id>006…</sf:Id>
         <sf:Amount>1500.00</sf:Amount> ...           (the chosen fields, alphabetical; null ones left out)
        </sObject>
       </Notification>
      </notifications>
     </soapenv:Body>
    </soapenv:Envelope>

Delivery, as Salesforce documents it:

- A notification carries the record **as it is when sent**, not as it was when the change happened.
- The listener must answer HTTP 200 with ``<Ack>true</Ack>`` in the outbound namespace. Anything else (an
  error status, no or false Ack, a timeout, a refused connection) fails the whole call, and each of its
  notifications is retried after ``retry_initial`` seconds, then ``retry_factor`` times longer each time, up
  to ``retry_max``; once older than ``retry_lifetime`` it is dropped.
- Delivery is at least once and unordered. The ``duplicate_notifications`` fault delivers an acknowledged
  notification once more (same ``Id``), and ``reorder_notifications`` sends the newest first, so listeners
  must dedupe on the notification ``Id``.

Every call is logged (``GET /sandbox/outbound/deliveries``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import time
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

import httpx
import msgspec

from system_apis.connectors.salesforce.sandbox.errors import InvalidFieldError
from system_apis.connectors.salesforce.sandbox.ids import NOTIFICATION_PREFIX, make_id
from system_apis.connectors.salesforce.sandbox.schema import OPPORTUNITY

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from system_apis.connectors.salesforce.sandbox.config import OutboundSettings
    from system_apis.connectors.salesforce.sandbox.faults import Counters, Faults
    from system_apis.connectors.salesforce.sandbox.org import Org

__all__ = (
    "OUTBOUND_NAMESPACE",
    "SOBJECT_NAMESPACE",
    "EnvelopeContext",
    "Outbound",
    "acknowledged",
    "check_fields",
    "url_origin",
)

OUTBOUND_NAMESPACE = "http://soap.sforce.com/2005/09/outbound"
"""Namespace of ``notifications`` and of the listener's ``notificationsResponse``/``Ack``."""
SOBJECT_NAMESPACE = "urn:sobject.enterprise.soap.sforce.com"
"""Namespace of the ``sObject``'s fields (enterprise WSDL)."""
MAX_LOGGED_DELIVERIES = 1000
"""Calls kept in the delivery log; older ones are forgotten."""
MAX_PENDING = 50_000
"""Notifications kept waiting at most; past it the oldest is dropped (counted), so memory stays bounded."""

logger = logging.getLogger("finsync.crm_sandbox")


def url_origin(url: str | None) -> str:
    """``url`` without its path, query or credentials, for logs: a listener's path may hold a secret token."""
    if not url:
        return "not set"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/…"


def check_fields(fields: tuple[str, ...]) -> tuple[str, ...]:
    """The Opportunity API names of ``fields`` (any case), ``Id`` left out as it always comes first.

    Raises:
        InvalidFieldError: a field is not an Opportunity field.
    """
    names = []
    for given in fields:
        field = OPPORTUNITY.field(given)
        if field is None:
            raise InvalidFieldError(f"No such column '{given}' on sobject of type Opportunity", (given,))
        if field.name != "Id" and field.name not in names:
            names.append(field.name)
    return tuple(names)


def acknowledged(content: bytes) -> bool:
    """Whether a listener's answer holds ``<Ack>true</Ack>`` in the outbound namespace."""
    if b"<!doctype" in content.lower() or b"<!entity" in content.lower():
        return (
            False  # no DTDs: a listener's answer never needs one, and entities are how XML parsers get abused
        )
    try:
        root = ET.fromstring(content)  # noqa: S314 - DTDs refused above; the listener is a configured endpoint
    except ET.ParseError:
        return False
    ack = root.find(f".//{{{OUTBOUND_NAMESPACE}}}Ack")
    return ack is not None and (ack.text or "").strip() in ("true", "1")


def _soap_value(value: Any) -> str:
    """A field value as ``xsd`` text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return escape(str(value))


@dataclass(frozen=True)
class EnvelopeContext:
    """What a ``notifications`` call says about the org that sends it."""

    organization_id: str
    """``OrganizationId`` (18 characters)."""
    action_id: str
    """``ActionId``: the outbound message definition."""
    instance_url: str
    """Base of ``EnterpriseUrl`` and ``PartnerUrl``."""
    api_version: str
    """Version in those URLs, e.g. ``66.0``."""


@dataclass
class _Notification:
    id: str
    sobject_id: str
    sequence: int
    created: float
    created_at: dt.datetime
    due: float
    attempts: int = 0
    duplicated: bool = False


class Outbound:
    """The notification queue of the Opportunity outbound message, its dispatcher and its delivery log."""

    def __init__(
        self,
        settings: OutboundSettings,
        *,
        org: Org,
        faults: Faults,
        counters: Counters,
        numbers: Iterator[int],
        context: Callable[[], EnvelopeContext],
        session_id: Callable[[], str],
    ) -> None:
        """An empty queue; nothing is sent before :meth:`start`.

        Args:
            settings: where to deliver and how to retry.
            org: the records the notifications carry.
            faults: the duplicate and reorder faults.
            counters: where deliveries are counted.
            numbers: numbers of notification ids (never repeated).
            context: the envelope's org, action and URLs, asked at each call.
            session_id: a new session id, for ``send_session_id``.
        """
        self.settings = msgspec.structs.replace(settings, fields=check_fields(settings.fields))
        """The current settings."""
        self._org = org
        self._faults = faults
        self._counters = counters
        self._numbers = numbers
        self._context = context
        self._session_id = session_id
        self._pending: dict[str, _Notification] = {}
        self._sequence = itertools.count(1)
        self._deliveries: deque[dict[str, Any]] = deque(maxlen=MAX_LOGGED_DELIVERIES)
        self._delivery_numbers = itertools.count(1)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    # -- control -------------------------------------------------------------------------------------------

    def update(self, changes: dict[str, Any]) -> None:
        """Change some settings (``PATCH /sandbox/outbound``) and wake the dispatcher.

        Raises:
            msgspec.ValidationError: a setting is unknown or out of range.
            InvalidFieldError: a notification field is not an Opportunity field.
        """
        merged = msgspec.to_builtins(self.settings) | changes
        settings = msgspec.convert(merged, type(self.settings))
        self.settings = msgspec.structs.replace(settings, fields=check_fields(settings.fields))
        self._wake.set()

    def retry_now(self) -> int:
        """Make every waiting notification due now; how many there are."""
        now = time.monotonic()
        for notification in self._pending.values():
            notification.due = now
        self._wake.set()
        return len(self._pending)

    def view(self, limit: int = 1000) -> dict[str, Any]:
        """``GET /sandbox/outbound``: the settings, the action, and the waiting notifications (oldest first)."""
        now = time.monotonic()
        waiting = sorted(self._pending.values(), key=lambda notification: notification.sequence)
        return {
            "settings": msgspec.to_builtins(self.settings),
            "action_id": self._context().action_id,
            "pending_count": len(waiting),
            "pending": [
                {
                    "id": notification.id,
                    "sobject_id": notification.sobject_id,
                    "attempts": notification.attempts,
                    "due_in": round(max(0.0, notification.due - now), 3),
                    "created_at": notification.created_at.isoformat().replace("+00:00", "Z"),
                }
                for notification in waiting[:limit]
            ],
        }

    def deliveries(self) -> list[dict[str, Any]]:
        """The delivery log, oldest first."""
        return list(self._deliveries)

    # -- queueing ------------------------------------------------------------------------------------------

    def enqueue(self, sobject_id: str) -> str:
        """Queue a notification for the opportunity ``sobject_id``; its id."""
        now = time.monotonic()
        notification = _Notification(
            id=make_id(NOTIFICATION_PREFIX, next(self._numbers)),
            sobject_id=sobject_id,
            sequence=next(self._sequence),
            created=now,
            created_at=self._org.clock.now(),
            due=now + self.settings.batch_window,
        )
        self._pending[notification.id] = notification
        self._counters.notifications_queued += 1
        while len(self._pending) > MAX_PENDING:
            oldest = min(self._pending.values(), key=lambda waiting: waiting.sequence)
            del self._pending[oldest.id]
            self._counters.dropped += 1
        self._wake.set()
        return notification.id

    # -- the dispatcher ------------------------------------------------------------------------------------

    async def start(self, client: httpx.AsyncClient) -> None:
        """Start delivering with ``client``."""
        self._client = client
        self._task = asyncio.create_task(self._run(), name="crm-sandbox-outbound")

    async def close(self) -> None:
        """Stop delivering (a call in flight is abandoned; its notifications are forgotten with the queue)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _next_delay(self) -> float | None:
        """Seconds until a notification is due; ``None`` when nothing can be sent (paused, no listener, empty)."""
        if self.settings.paused or not self.settings.listener_url or not self._pending:
            return None
        due = min(notification.due for notification in self._pending.values())
        return max(0.0, due - time.monotonic())

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            delay = self._next_delay()
            if delay is None or delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            try:
                await self._deliver(self._take())
            except Exception:  # a sandbox bug must not end delivery for good
                logger.exception("CRM sandbox: an outbound delivery failed unexpectedly")
                await asyncio.sleep(0.1)

    def _take(self) -> list[_Notification]:
        """The next call's notifications, out of the queue: due ones, oldest (or, reordering, newest) first."""
        now = time.monotonic()
        due = sorted(
            (notification for notification in self._pending.values() if notification.due <= now),
            key=lambda notification: notification.sequence,
            reverse=self._faults.config.reorder_notifications,
        )
        batch = due[: self.settings.batch_size]
        if self._faults.config.reorder_notifications:
            oldest = min(notification.sequence for notification in self._pending.values())
            self._counters.reordered += sum(1 for notification in batch if notification.sequence > oldest)
        for notification in batch:
            del self._pending[notification.id]
        return batch

    def _envelope(self, batch: list[_Notification]) -> bytes:
        """The SOAP ``notifications`` call for ``batch``, each with its record as it is now."""
        context = self._context()
        org15 = context.organization_id[:15]
        session = self._session_id() if self.settings.send_session_id else None
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            (
                '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            ),
            "<soapenv:Body>",
            f'<notifications xmlns="{OUTBOUND_NAMESPACE}">',
            f"<OrganizationId>{context.organization_id}</OrganizationId>",
            f"<ActionId>{context.action_id}</ActionId>",
            f"<SessionId>{escape(session)}</SessionId>" if session else '<SessionId xsi:nil="true"/>',
            f"<EnterpriseUrl>{escape(context.instance_url)}/services/Soap/c/{context.api_version}/{org15}</EnterpriseUrl>",
            f"<PartnerUrl>{escape(context.instance_url)}/services/Soap/u/{context.api_version}/{org15}</PartnerUrl>",
        ]
        fields = sorted(self.settings.fields)
        for notification in batch:
            record = self._org.get(OPPORTUNITY.name, notification.sobject_id)
            assert record is not None, "records are never deleted"
            parts.append(f"<Notification><Id>{notification.id}</Id>")
            parts.append(f'<sObject xsi:type="sf:Opportunity" xmlns:sf="{SOBJECT_NAMESPACE}">')
            parts.append(f"<sf:Id>{record['Id']}</sf:Id>")
            parts.extend(
                f"<sf:{name}>{_soap_value(record[name])}</sf:{name}>"
                for name in fields
                if record[name] is not None
            )
            parts.append("</sObject></Notification>")
        parts.extend(("</notifications>", "</soapenv:Body>", "</soapenv:Envelope>"))
        return "".join(parts).encode()

    async def _deliver(self, batch: list[_Notification]) -> None:
        """POST one call; on Ack the batch is delivered (some maybe kept for a duplicate), else it is rescheduled."""
        settings = self.settings
        url = settings.listener_url
        assert url is not None
        assert self._client is not None
        body = self._envelope(batch)
        self._counters.deliveries += 1
        status: int | None = None
        detail: str | None = None
        try:
            response = await self._client.post(
                url,
                content=body,
                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
                timeout=settings.timeout,
            )
        except httpx.TimeoutException:
            outcome, detail = "timeout", f"no answer within {settings.timeout:g}s"
        except httpx.HTTPError as exc:
            outcome, detail = "unreachable", f"{type(exc).__name__}: {exc}"
        else:
            status = response.status_code
            if status != 200:
                outcome = "http_error"
            elif acknowledged(response.content):
                outcome = "acked"
            else:
                outcome = "not_acked"
            if outcome != "acked":
                detail = response.text[:500]
        now = time.monotonic()
        self._deliveries.append(
            {
                "number": next(self._delivery_numbers),
                "at": self._org.clock.now().isoformat().replace("+00:00", "Z"),
                "listener": url_origin(url),
                "notification_ids": [notification.id for notification in batch],
                "sobject_ids": [notification.sobject_id for notification in batch],
                "attempts": [notification.attempts + 1 for notification in batch],
                "outcome": outcome,
                "http_status": status,
                "detail": detail,
            }
        )
        if outcome == "acked":
            self._counters.notifications_acked += len(batch)
            for notification in batch:
                if not notification.duplicated and self._faults.duplicate():
                    notification.duplicated = True
                    notification.due = now
                    self._pending[notification.id] = notification
            return
        self._counters.deliveries_failed += 1
        logger.warning(
            "CRM sandbox: outbound call to %s not acknowledged (%s); %d notifications will be retried",
            url_origin(url),
            outcome,
            len(batch),
        )
        for notification in batch:
            notification.attempts += 1
            delay = min(
                settings.retry_initial * settings.retry_factor ** (notification.attempts - 1),
                settings.retry_max,
            )
            if now + delay - notification.created > settings.retry_lifetime:
                self._counters.dropped += 1
                continue
            notification.due = now + delay
            self._pending[notification.id] = notification
            self._counters.retries += 1
