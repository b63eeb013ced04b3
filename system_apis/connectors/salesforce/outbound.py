"""Salesforce outbound messages: the SOAP ``notifications`` call, read with a hardened parser, and the ``Ack``.

The call (from the outbound messaging WSDL Salesforce generates) is a SOAP 1.1
envelope whose body holds one ``notifications`` element in the namespace
:data:`OUTBOUND_NAMESPACE`: the ``OrganizationId``, the ``ActionId``, and 1 to
100 ``Notification`` elements, each with its own ``Id`` and the record as an
``sObject`` whose fields are in the enterprise namespace (``sf:Amount``). A
null field is left out, or sent as ``xsi:nil="true"``.

The body comes from outside, so it is parsed by ``defusedxml`` with DTDs
forbidden: a billion-laughs bomb or an external entity (XXE) is refused before
anything is expanded or fetched. Salesforce never sends a DTD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

__all__ = (
    "ACK",
    "MAX_NOTIFICATIONS",
    "OUTBOUND_NAMESPACE",
    "Notification",
    "OutboundError",
    "OutboundMessage",
    "parse",
)

OUTBOUND_NAMESPACE: Final = "http://soap.sforce.com/2005/09/outbound"
"""Namespace of ``notifications`` and of the listener's ``notificationsResponse``."""
MAX_NOTIFICATIONS: Final = 100
"""Most notifications one call carries (Salesforce's limit)."""
ACK: Final = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    b'<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack>'
    b"</notificationsResponse></soapenv:Body></soapenv:Envelope>"
)
"""The answer that acknowledges a call: Salesforce retries every notification of a call not answered so."""
_OUT: Final = f"{{{OUTBOUND_NAMESPACE}}}"
_NIL: Final = "{http://www.w3.org/2001/XMLSchema-instance}nil"


class OutboundError(ValueError):
    """The body is not a ``notifications`` call finsync accepts (or is hostile XML)."""


@dataclass(frozen=True)
class Notification:
    """One notification: its own id and the record's fields."""

    id: str
    """The notification's id (``04l…``), the same on every retry of it."""
    fields: dict[str, str | None]
    """The sObject's fields by API name (``Id``, ``Amount``, ``Legal_Entity__c``), as text; nil ones None."""


@dataclass(frozen=True)
class OutboundMessage:
    """One ``notifications`` call."""

    organization_id: str
    """The org that sent it (``00D…``)."""
    action_id: str
    """The outbound message definition (``04k…``)."""
    notifications: tuple[Notification, ...]
    """Its notifications, in the order sent."""


def _text(parent: Element, name: str) -> str:
    child = parent.find(_OUT + name)
    value = (child.text or "").strip() if child is not None else ""
    if not value:
        raise OutboundError(f"the call has no {name}")
    return value


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _notification(element: Element) -> Notification:
    sobject = element.find(_OUT + "sObject")
    if sobject is None:
        raise OutboundError("a notification has no sObject")
    fields = {
        _local(field.tag): None if field.get(_NIL) == "true" else (field.text or "") for field in sobject
    }
    if not fields.get("Id"):
        raise OutboundError("a notification's sObject has no Id")
    return Notification(id=_text(element, "Id"), fields=fields)


def parse(body: bytes) -> OutboundMessage:
    """The ``notifications`` call in ``body``.

    Raises:
        OutboundError: not well-formed XML, any DTD (so no entity is ever expanded or fetched), no
            ``notifications`` element, none or more than 100 notifications, or a notification without its ids.
    """
    try:
        root: Element = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise OutboundError(
            f"the XML declares a DTD or entities, which are refused: {type(exc).__name__}"
        ) from exc
    except ParseError as exc:
        raise OutboundError(f"the body is not well-formed XML: {exc}") from exc
    call = root.find(f".//{_OUT}notifications")
    if call is None:
        raise OutboundError("the body holds no outbound notifications element")
    notifications = call.findall(_OUT + "Notification")
    if not 1 <= len(notifications) <= MAX_NOTIFICATIONS:
        raise OutboundError(
            f"a call carries 1 to {MAX_NOTIFICATIONS} notifications, not {len(notifications)}"
        )
    return OutboundMessage(
        organization_id=_text(call, "OrganizationId"),
        action_id=_text(call, "ActionId"),
        notifications=tuple(_notification(element) for element in notifications),
    )
