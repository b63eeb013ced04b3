"""What the process layer does with a source event: a registry of handlers by event type.

Flows subscribe to the types they care about (order-to-cash, issue 10, will
subscribe to bookings and invoices). Every event also goes through
:func:`record_state`, which keeps per ordering key the newest state seen, by
``occurred_at``: a small state machine that gives the same answer whatever the
arrival order, so it needs no lock.

Handlers run at least once per event (a retry, a claim after a crash), so they
key their effects by business identity, never by attempt. A handler that meets
a business failure raises :class:`EventRejectedError`: the event goes to the
exception queue, not to the retries. Anything else it raises is a transient
failure, retried with backoff until the attempts run out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeAlias

import msgspec

from shared.errors import FinsyncError
from shared.events import SourceEvent

if TYPE_CHECKING:
    from process_apis.ledger.inbox import EventInbox
    from shared.events import EventType

__all__ = ("EventHandler", "EventHandlers", "EventRejectedError", "record_state")

EventHandler: TypeAlias = Callable[[SourceEvent], Awaitable[None]]
"""Applies one event; raising :class:`EventRejectedError` is a business failure, anything else a transient one."""


class EventRejectedError(FinsyncError):
    """A business failure: the event is valid but cannot be applied (an unknown customer, a closed period).

    Never retried blindly: it opens an exception with ``reason_code``, which is replayed once the cause is fixed.
    """

    def __init__(self, reason_code: str, message: str) -> None:
        """Name the reason (``unknown-customer``) and say what went wrong."""
        super().__init__(message)
        self.reason_code = reason_code
        """What kind of problem, a short kebab-case name."""


class EventHandlers:
    """Handlers by event type; those subscribed to every type run first, in the order they subscribed."""

    def __init__(self) -> None:
        """An empty registry."""
        self._by_type: defaultdict[str, list[EventHandler]] = defaultdict(list)
        self._every: list[EventHandler] = []

    def subscribe(self, handler: EventHandler, *types: EventType) -> None:
        """Run ``handler`` for events of ``types``, or of every type when none is given."""
        if not types:
            self._every.append(handler)
        for type_ in types:
            self._by_type[str(type_)].append(handler)

    def unsubscribe(self, handler: EventHandler) -> None:
        """Stop running ``handler`` for any type."""
        self._every = [each for each in self._every if each is not handler]
        for handlers in self._by_type.values():
            handlers[:] = [each for each in handlers if each is not handler]

    def handlers_for(self, type_: EventType | str) -> list[EventHandler]:
        """What runs for an event of ``type_``, in order."""
        return [*self._every, *self._by_type.get(str(type_), ())]


def record_state(inbox: EventInbox) -> EventHandler:
    """The handler that keeps, per ordering key, the object as its newest event carried it."""

    async def apply(event: SourceEvent) -> None:
        state = event.booking if event.booking is not None else event.invoice
        await inbox.apply_state(
            ordering_key=event.ordering_key,
            event_id=event.id,
            event_type=str(event.type),
            occurred_at=event.occurred_at,
            state=msgspec.to_builtins(state) if state is not None else {},
        )

    return apply
