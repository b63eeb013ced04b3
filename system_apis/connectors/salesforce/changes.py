"""What changed in a window of time: bookings from two keyset walks, over opportunities and over line items.

A booking is an opportunity with its line items, and either can change alone
(in Salesforce a line item's own fields can change without its opportunity
being stamped). So one read walks both objects over the same window
``[low, until]``, each in ``(LastModifiedDate, Id)`` order, by keyset (``WHERE
(LastModifiedDate, Id) > last seen``, no query locator to keep alive between
pages), and merges the two walks by stamp.

Each change is an *event*. A booking's version is its latest stamp
(``modified_at``: the opportunity's or a line item's), and exactly one event
stands for it, its *anchor*: the opportunity itself when nothing of it is
later, else its latest line item (the smallest id among equals). A booking is
returned at its anchor only. So a booking whose opportunity and lines changed
in the same window is returned once, and the merged walk returns bookings in
``modified_at`` order.

``until`` is a second that has passed (:func:`settled_until`): every change
made after a read started is stamped later, so a record that changed during
the read shows a version past ``until``, is not returned by it, and comes in
the next read. Data is read in a fixed order (the events, then the
opportunities they name, then their line items), so a booking assembled from
parts read at different moments either predates every concurrent change or
shows one past ``until``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import msgspec

from system_apis.connectors.salesforce.mapping import status_of
from system_apis.connectors.salesforce.wire import LineRow, LineStamp, OpportunityRow

if TYPE_CHECKING:
    from shared.canonical import Booking, BookingStatus
    from system_apis.connectors.salesforce.connector import SalesforceConnector

__all__ = ("Changes", "Position", "WalkPosition", "anchor_line", "merge", "settled_until")

MAX_BATCH = 2000
"""Most records one query batch holds; no walk asks for more at once."""
MIN_BATCH = 200
"""Fewest records a walk asks for at once, however few bookings are wanted: a filtered read may go past many
that do not match, and what is read but not used is simply read again by the next page."""
LINES_PER_BOOKING = 3
"""Line items asked for per opportunity asked for: a deal has one to a few."""

Event = OpportunityRow | LineStamp


class Position(msgspec.Struct, frozen=True, array_like=True):
    """Where one walk stands: the ``(LastModifiedDate, Id)`` of the last record it went past."""

    stamp: datetime
    ref: str


class WalkPosition(msgspec.Struct, frozen=True, kw_only=True):
    """Where both walks of a read stand."""

    opportunity: Position | None = None
    """Last opportunity gone past."""
    line: Position | None = None
    """Last line item gone past."""
    opportunities_done: bool = False
    """No opportunity of the window is left."""
    lines_done: bool = False
    """No line item of the window is left."""

    @property
    def ended(self) -> bool:
        """Both walks went through the whole window."""
        return self.opportunities_done and self.lines_done


def settled_until(now: datetime | None = None) -> datetime:
    """The last whole second that has passed: Salesforce stamps to the second, so nothing changed from now on
    can be stamped at or before it."""
    now = now or datetime.now(UTC)
    return now.replace(microsecond=0) - timedelta(seconds=1)


def anchor_line(opportunity: OpportunityRow, lines: list[LineRow]) -> LineRow | None:
    """The line item that stands for the booking's version, or ``None`` when the opportunity itself does
    (nothing of it is later than the opportunity's own stamp)."""
    latest = max((line.last_modified_date for line in lines), default=None)
    if latest is None or latest <= opportunity.last_modified_date:
        return None
    return min((line for line in lines if line.last_modified_date == latest), key=lambda line: line.id)


def merge(
    opportunities: list[OpportunityRow], more_opportunities: bool, lines: list[LineStamp], more_lines: bool
) -> list[Event]:
    """The events of two batches in stamp order (an opportunity before a line item of the same stamp), as far
    as the batches can tell: a walk with ``more`` to come bounds how far the other may go."""
    events: list[Event] = []
    i = j = 0
    while True:
        head = opportunities[i] if i < len(opportunities) else None
        line = lines[j] if j < len(lines) else None
        if head is not None and (line is None or head.last_modified_date <= line.last_modified_date):
            if line is None and more_lines and head.last_modified_date > lines[-1].last_modified_date:
                break  # line items not read yet may come first
            events.append(head)
            i += 1
        elif line is not None:
            if (
                head is None
                and more_opportunities
                and line.last_modified_date >= opportunities[-1].last_modified_date
            ):
                break  # opportunities not read yet may come first
            events.append(line)
            j += 1
        else:
            break
    return events


class Changes:
    """One read's walk over the window ``[low, until]``, page after page."""

    def __init__(
        self,
        connector: SalesforceConnector,
        *,
        low: datetime | None,
        until: datetime,
        position: WalkPosition | None = None,
        seen: dict[str, datetime] | None = None,
        zone: datetime | None = None,
    ) -> None:
        """``seen``: versions returned before inside the lookback (``Id -> modified_at``), skipped when met again
        and added to as versions at or after ``zone`` are returned."""
        self.connector = connector
        self.low = low
        self.until = until
        self.position = position or WalkPosition()
        """Where the walks stand now."""
        self.seen = seen if seen is not None else {}
        self.zone = zone

    async def take(self, limit: int | None, status: BookingStatus | None = None) -> list[Booking]:
        """The next ``limit`` bookings (every one left when ``None``), of ``status`` only when given."""
        taken: list[Booking] = []
        while not self.position.ended and (limit is None or len(taken) < limit):
            taken += await self._round(None if limit is None else limit - len(taken), status)
        return taken

    async def _round(self, room: int | None, status: BookingStatus | None) -> list[Booking]:
        connector, position = self.connector, self.position
        size = None if room is None else min(MAX_BATCH, max(room, MIN_BATCH))
        line_size = None if size is None else min(MAX_BATCH, size * LINES_PER_BOOKING)
        opportunities = (
            []
            if position.opportunities_done
            else await connector.changed_opportunities(self.low, self.until, position.opportunity, size)
        )
        stamps = (
            []
            if position.lines_done
            else await connector.changed_lines(self.low, self.until, position.line, line_size)
        )
        more_opportunities = size is not None and len(opportunities) == size
        more_lines = line_size is not None and len(stamps) == line_size
        events = merge(opportunities, more_opportunities, stamps, more_lines)

        rows = {event.id: event for event in events if isinstance(event, OpportunityRow)}
        named = [event.opportunity_id for event in events if isinstance(event, LineStamp)]
        rows |= await connector.opportunities([ref for ref in named if ref not in rows])
        wanted = [event.id for event in events if isinstance(event, OpportunityRow)] + [
            event.opportunity_id
            for event in events
            if isinstance(event, LineStamp)
            and event.opportunity_id in rows
            and event.last_modified_date > rows[event.opportunity_id].last_modified_date
        ]
        lines = await connector.lines(wanted)

        chosen: list[tuple[OpportunityRow, list[LineRow]]] = []
        after_opportunity, after_line = position.opportunity, position.line
        went_opportunities = went_lines = 0
        for event in events:
            if room is not None and len(chosen) >= room:
                break
            if isinstance(event, OpportunityRow):
                after_opportunity = Position(event.last_modified_date, event.id)
                went_opportunities += 1
                opportunity: OpportunityRow | None = event
                own = event.id
                anchored = anchor_line(event, lines.get(own, [])) is None
            else:
                after_line = Position(event.last_modified_date, event.id)
                went_lines += 1
                own = event.opportunity_id
                opportunity = rows.get(own)
                line = anchor_line(opportunity, lines[own]) if opportunity and own in lines else None
                anchored = line is not None and (line.id, line.last_modified_date) == (
                    event.id,
                    event.last_modified_date,
                )
            if not anchored or opportunity is None:
                continue
            own_lines = lines.get(own, [])
            version = max([opportunity.last_modified_date, *(item.last_modified_date for item in own_lines)])
            if self.seen.get(own) == version or (status is not None and status_of(opportunity) != status):
                continue
            if self.zone is not None and version >= self.zone:
                self.seen[own] = version
            chosen.append((opportunity, own_lines))

        self.position = WalkPosition(
            opportunity=after_opportunity,
            line=after_line,
            opportunities_done=not more_opportunities and went_opportunities == len(opportunities),
            lines_done=not more_lines and went_lines == len(stamps),
        )
        numbers = await connector.account_numbers(
            [opportunity.account_id for opportunity, _ in chosen if opportunity.account_id]
        )
        return [
            connector.to_booking(opportunity, own_lines, numbers.get(opportunity.account_id or ""))
            for opportunity, own_lines in chosen
        ]
