"""Writes to Tryton: journal entries created and posted in one step, replay-safe inside the ERP itself.

Each write carries the payload's ``external_ref``, which the finsync Tryton
module makes unique per company, and is one call to the module's
``finsync_post``: the move is created *and* posted in one transaction, or
nothing is written. So:

- a retry after a lost answer, or two racing requests, cannot post twice: the
  second insert breaks the unique constraint, the connector finds the first
  move by its reference and answers with it (or 409 when the payloads differ);
- an entry Tryton refuses (closed period, unbalanced) leaves no draft behind.

Before calling Tryton, the payload is checked against the canonical rules and
the entity's reference data, so the usual mistakes come back as 422 naming the
line: unknown account, cost centre or party, a currency that is not the
entity's, a date outside any open period.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from shared.canonical import (
    EntryState,
    JournalEntry,
    JournalEntryCreate,
    JournalLine,
    validate_journal_entry,
)
from shared.errors import ConflictError, InvalidEntryError, SourceRejectedError, Violation
from system_apis.connectors.tryton import rows
from system_apis.connectors.tryton.checks import period_violation, text_violations
from system_apis.connectors.tryton.rpc import TrytonUserError
from system_apis.connectors.tryton.written import Written, call_write

if TYPE_CHECKING:
    from system_apis.connectors.tryton.connector import Entity, TrytonConnector

__all__ = ("DEFAULT_JOURNAL", "post_journal_entry")

DEFAULT_JOURNAL = "MISC"
"""Journal of an entry that names none: Tryton's miscellaneous journal."""


async def post_journal_entry(
    connector: TrytonConnector, payload: JournalEntryCreate, *, dry_run: bool = False
) -> Written[JournalEntry]:
    """Create and post ``payload``, or (``dry_run``) only check it.

    Returns:
        The posted entry; ``created`` is False when an entry with the same
        ``external_ref`` and the same content already existed.

    Raises:
        InvalidEntryError: the payload breaks a canonical rule or names unknown reference data.
        SourceRejectedError: Tryton refused the entry; nothing was written.
        ConflictError: the ``external_ref`` is taken by an entry with other content.
    """
    validate_journal_entry(payload)
    scope = await connector.entity(payload.entity)
    existing = await _existing(connector, payload, scope)
    if existing is not None:
        return existing
    values = await _values(connector, payload, scope)
    if dry_run:
        return Written(_preview(connector, payload, scope), created=False)
    try:
        # Retried while Tryton is busy (posting numbers the move under a NOWAIT lock): safe, since
        # the external reference is unique in the ERP.
        (move_id,) = await call_write(
            connector.rpc, "model.account.move.finsync_post", [values], scope.context
        )
    except TrytonUserError as refused:
        # Lost the race to a request with the same reference? Then that entry is the answer.
        existing = await _existing(connector, payload, scope)
        if existing is not None:
            return existing
        raise SourceRejectedError(
            f"the ERP refused the entry: {refused.message}", source_message=str(refused)
        ) from None
    entry = await connector.journal_entry(connector.record_id("move", move_id))
    return Written(entry, created=True)


async def _existing(
    connector: TrytonConnector, payload: JournalEntryCreate, scope: Entity
) -> Written[JournalEntry] | None:
    """The entry already posted under ``payload.external_ref``; 409 when its content differs."""
    moves = await connector.moves_by_ref(payload.external_ref, scope)
    if not moves:
        return None
    (entry,) = await connector.journal_entries(moves, scope)
    if not _same(entry, payload):
        raise ConflictError(
            f"external_ref {payload.external_ref!r} is already used by another entry ({entry.id}) "
            "with different content",
            existing_id=entry.id,
        )
    return Written(entry, created=False)


def _same(entry: JournalEntry, payload: JournalEntryCreate) -> bool:
    """Same date and the same lines (account, amounts, cost centre), in any order."""

    def key(lines: Any) -> list[tuple[str, Any, Any, str | None]]:
        return sorted((line.account_code, line.debit, line.credit, line.cost_center or "") for line in lines)

    return entry.posting_date == payload.posting_date and key(entry.lines) == key(payload.lines)


@dataclass(frozen=True, slots=True)
class _Books:
    """What an entity has that an entry may name, by code."""

    entity: Entity
    accounts: dict[str, int]
    """Postable accounts (leaf, typed, open, active) -> id."""
    needing_party: set[str]
    """Accounts whose lines must name a party."""
    cost_centers: dict[str, int]
    parties: dict[str, int]

    def line_violations(self, index: int, line: JournalLine) -> list[Violation]:
        """Every reason line ``index`` cannot be posted in this entity."""
        scope = self.entity
        found = text_violations({"description": line.description}, index)
        if line.account_code not in self.accounts:
            found.append(
                Violation(
                    reason="unknown-account",
                    message=f"{line.account_code!r} is not an open leaf account of {scope.code}",
                    line=index,
                    field="account_code",
                )
            )
        elif line.account_code in self.needing_party and not line.party:
            found.append(
                Violation(
                    reason="party-required",
                    message=f"{line.account_code!r} is a receivable or payable account: its line must name a party",
                    line=index,
                    field="party",
                )
            )
        if line.currency != scope.record.currency:
            found.append(
                Violation(
                    reason="wrong-currency",
                    message=f"{scope.code} keeps its books in {scope.record.currency}, not {line.currency}",
                    line=index,
                    field="currency",
                )
            )
        if line.cost_center and line.cost_center not in self.cost_centers:
            found.append(
                Violation(
                    reason="unknown-cost-center",
                    message=f"{line.cost_center!r} is not a cost centre of {scope.code}",
                    line=index,
                    field="cost_center",
                )
            )
        if line.party and line.party not in self.parties:
            found.append(
                Violation(
                    reason="unknown-party",
                    message=f"{line.party!r} is not a party of this ERP",
                    line=index,
                    field="party",
                )
            )
        return found

    def line_values(self, line: JournalLine, posting_date: date) -> dict[str, Any]:
        """Tryton's create values of a checked line, with its cost centre as an analytic line."""
        values: dict[str, Any] = {
            "account": self.accounts[line.account_code],
            "debit": line.debit,
            "credit": line.credit,
            "description": line.description or "",
        }
        if line.party:
            values["party"] = self.parties[line.party]
        if line.cost_center:
            analytic = {
                "account": self.cost_centers[line.cost_center],
                "debit": line.debit,
                "credit": line.credit,
                "date": posting_date,
            }
            values["analytic_lines"] = [["create", [analytic]]]
        return values


async def _values(connector: TrytonConnector, payload: JournalEntryCreate, scope: Entity) -> dict[str, Any]:
    """Tryton's create values of the move, after checking every code it names."""
    accounts, needing_party, cost_centers, journals, periods = await asyncio.gather(
        connector.postable_accounts(scope),
        connector.accounts_needing_party(scope),
        connector.cost_centers(scope.code),
        connector.search(
            "account.journal",
            [("code", "=", payload.journal or DEFAULT_JOURNAL)],
            rows.JournalRow,
            scope.context,
        ),
        connector.periods(scope.code),
    )
    books = _Books(
        entity=scope,
        accounts=accounts,
        needing_party=needing_party,
        cost_centers={center.code: int(center.source_ref.rsplit(",", 1)[1]) for center in cost_centers},
        parties=await _party_ids(connector, {line.party for line in payload.lines if line.party}),
    )
    violations = text_violations({"description": payload.description, "external_ref": payload.external_ref})
    for index, line in enumerate(payload.lines):
        violations += books.line_violations(index, line)
    closed = period_violation(periods, payload.posting_date, scope.code, "posting_date")
    if closed is not None:
        violations.append(closed)
    if not journals:
        violations.append(
            Violation(
                reason="unknown-journal",
                message=f"{payload.journal or DEFAULT_JOURNAL!r} is not a journal of this ERP",
                field="journal",
            )
        )
    if violations:
        raise InvalidEntryError(
            f"the entry names what {scope.code} does not have: {violations[0].message}"
            + (f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""),
            violations=violations,
        )
    period = next(p for p in periods if p.start_date <= payload.posting_date <= p.end_date)
    return {
        "company": scope.company_id,
        "journal": journals[0].id,
        "period": int(period.source_ref.rsplit(",", 1)[1]),
        "date": payload.posting_date,
        "description": payload.description or "",
        "external_ref": payload.external_ref,
        "lines": [["create", [books.line_values(line, payload.posting_date) for line in payload.lines]]],
    }


async def _party_ids(connector: TrytonConnector, codes: set[str | None]) -> dict[str, int]:
    if not codes:
        return {}
    found = await connector.search(
        "party.party", [("code", "in", sorted(c for c in codes if c))], rows.PartyRow, {}
    )
    return {row.code: row.id for row in found if row.code}


def _preview(connector: TrytonConnector, payload: JournalEntryCreate, scope: Entity) -> JournalEntry:
    """What a dry run answers: the entry as it would be posted, without an id in the ERP."""
    return JournalEntry(
        id=f"{connector.source}:move:dry-run",
        source=connector.source,
        source_ref="account.move,dry-run",
        external_ref=payload.external_ref,
        modified_at=datetime.now(UTC),
        mapping_version=connector.rules.version,
        entity=scope.code,
        posting_date=payload.posting_date,
        period=f"{payload.posting_date.year:04d}-{payload.posting_date.month:02d}",
        journal=payload.journal or DEFAULT_JOURNAL,
        description=payload.description,
        state=EntryState.DRAFT,
        lines=tuple(
            JournalLine(
                account_code=line.account_code,
                debit=line.debit,
                credit=line.credit,
                currency=line.currency,
                cost_center=line.cost_center,
                description=line.description,
                party=line.party,
            )
            for line in payload.lines
        ),
    )
