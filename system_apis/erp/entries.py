"""Incremental reads of journal entries (see :mod:`system_apis.erp.feed` for the guarantees)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import msgspec

from shared.canonical import EntryState, JournalEntry
from system_apis.erp.feed import FeedState
from system_apis.erp.schemas import JournalEntryPage

if TYPE_CHECKING:
    from datetime import date

    from system_apis.connectors.tryton import rows
    from system_apis.connectors.tryton.connector import Entity, TrytonConnector
    from system_apis.cursors import CursorStore

__all__ = ("read_entries",)


async def read_entries(
    connector: TrytonConnector,
    store: CursorStore[FeedState],
    *,
    entity: str | None,
    modified_since: datetime | None,
    cursor: str | None,
    limit: int,
) -> JournalEntryPage:
    """One page of an incremental read of the journal entries of ``entity`` (or of every entity).

    Without ``cursor`` a read starts at ``modified_since`` (or the beginning);
    with a ``next_cursor`` it goes on; with a ``sync_cursor`` a new read starts
    where the previous one ended, lookback included.
    """
    scopes = await connector.scoped(entity)
    feed = f"{connector.source}/journal-entries/{entity or '*'}"
    lookback = timedelta(seconds=connector.config.lookback)
    if cursor is None:
        state = FeedState(feed=feed, low=modified_since, until=datetime.now(UTC))
    else:
        state = await store.load(cursor, feed)
        if state.until is None:
            state = msgspec.structs.replace(state, until=datetime.now(UTC))
    assert state.until is not None
    zone = state.until - lookback
    seen = dict(state.seen)
    drafts = dict(state.drafts)
    after = state.after
    chosen: list[rows.MoveRow] = []
    ended = False
    while len(chosen) < limit:
        wanted = limit - len(chosen)
        moves = await connector.changed_moves(scopes, state.low, state.until, after, wanted)
        for move in moves:
            written = (move.write_date or move.create_date).value()
            after = (written, move.id)
            if seen.get(move.id) == written:
                continue  # the same version, found again by the lookback
            chosen.append(move)
            if written >= zone:
                seen[move.id] = written
            if move.state == "draft":
                drafts[move.id] = (_code(scopes, move.company), move.date.value())
            else:
                drafts.pop(move.id, None)
        if len(moves) < wanted:
            ended = True
            break
    entries = await _entries(connector, chosen, scopes)
    if not ended:
        following = msgspec.structs.replace(state, after=after, seen=seen, drafts=drafts)
        return JournalEntryPage(items=entries, next_cursor=await store.save(following))
    remaining = await connector.existing_moves(list(drafts), scopes)
    entries += [
        _deleted(connector, move_id, *drafts[move_id]) for move_id in drafts if move_id not in remaining
    ]
    ended_state = msgspec.structs.replace(state, seen=seen)
    following = ended_state.sync(lookback, {key: value for key, value in drafts.items() if key in remaining})
    return JournalEntryPage(items=entries, next_cursor=None, sync_cursor=await store.save(following))


async def _entries(
    connector: TrytonConnector, moves: list[rows.MoveRow], scopes: list[Entity]
) -> list[JournalEntry]:
    """Canonical entries of ``moves``, in their order, each mapped in its own entity."""
    by_company: dict[int, list[rows.MoveRow]] = {}
    for move in moves:
        by_company.setdefault(move.company, []).append(move)
    mapped: dict[int, JournalEntry] = {}
    for scope in scopes:
        group = by_company.get(scope.company_id, [])
        for move, entry in zip(group, await connector.journal_entries(group, scope), strict=True):
            mapped[move.id] = entry
    return [mapped[move.id] for move in moves]


def _code(scopes: list[Entity], company_id: int) -> str:
    return next(scope.code for scope in scopes if scope.company_id == company_id)


def _deleted(connector: TrytonConnector, move_id: int, entity: str, posting_date: date) -> JournalEntry:
    """The tombstone of a draft that was deleted: what is known of it, flagged ``deleted``."""
    return JournalEntry(
        id=connector.record_id("move", move_id),
        source=connector.source,
        source_ref=f"account.move,{move_id}",
        modified_at=datetime.now(UTC),
        deleted=True,
        mapping_version=connector.rules.version,
        entity=entity,
        posting_date=posting_date,
        state=EntryState.DRAFT,
        lines=(),
    )
