"""Stripe's search query language over the store's searchable snapshots (``GET /v1/{resource}/search``).

A query is up to 10 clauses joined by ``AND`` or by ``OR`` (not both), each
``field<op>value``, optionally negated with a leading ``-``:

- ``:`` exact match (strings compare case-insensitively; ``null`` matches a missing value);
- ``~`` substring, for string fields, at least 3 characters;
- ``>``, ``<``, ``>=``, ``<=``, ``=`` for numeric fields;
- string values are quoted (``'…'`` or ``"…"``), numbers are not;
- ``metadata['key']:'value'`` reads one metadata key.

Each resource admits the fields Stripe lists for it; another field is an
error. Search reads the snapshot taken when the object was last written, and
only once the ``search_lag`` fault's delay has passed, as Stripe's index does
("searchable in less than a minute"): search is not read-after-write.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from system_apis.connectors.stripe.sandbox.errors import InvalidRequestError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from system_apis.connectors.stripe.sandbox.objects import Record
    from system_apis.connectors.stripe.sandbox.store import Store

__all__ = (
    "CHARGE_FIELDS",
    "CUSTOMER_FIELDS",
    "INVOICE_FIELDS",
    "PAYMENT_INTENT_FIELDS",
    "Clause",
    "parse",
    "search",
)

STRING, TOKEN, NUMBER, METADATA = "string", "token", "number", "metadata"

CUSTOMER_FIELDS = {"created": NUMBER, "email": STRING, "metadata": METADATA, "name": STRING, "phone": STRING}
"""Query fields of customers."""
INVOICE_FIELDS = {
    "created": NUMBER,
    "currency": TOKEN,
    "customer": TOKEN,
    "last_finalization_error_code": TOKEN,
    "metadata": METADATA,
    "number": STRING,
    "receipt_number": STRING,
    "status": TOKEN,
    "subscription": TOKEN,
    "total": NUMBER,
}
"""Query fields of invoices."""
PAYMENT_INTENT_FIELDS = {
    "amount": NUMBER,
    "created": NUMBER,
    "currency": TOKEN,
    "customer": TOKEN,
    "metadata": METADATA,
    "status": TOKEN,
}
"""Query fields of payment intents."""
CHARGE_FIELDS = {
    "amount": NUMBER,
    "created": NUMBER,
    "currency": TOKEN,
    "customer": TOKEN,
    "disputed": TOKEN,
    "metadata": METADATA,
    "payment_method_details.card.last4": TOKEN,
    "refunded": TOKEN,
    "status": TOKEN,
}
"""Query fields of charges."""

_MAX_CLAUSES = 10
_CLAUSE = re.compile(
    r"""\s*(?P<negate>-)?
    (?P<field>metadata\[(?:'[^']*'|"[^"]*")\]|[a-z_][a-z0-9_.]*)
    \s*(?P<op>>=|<=|:|~|>|<|=)\s*
    (?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|null)\s*""",
    re.VERBOSE,
)
_JOIN = re.compile(r"\s*(AND|OR)\s+")


@dataclass(frozen=True)
class Clause:
    """One ``field<op>value`` of a query."""

    field: str
    """The field (``metadata`` for a metadata key)."""
    key: str | None
    """The metadata key, for ``metadata['key']``."""
    op: str
    """``:``, ``~``, ``>``, ``<``, ``>=``, ``<=`` or ``=``."""
    value: str | float | None
    """The string, the number, or None for ``null``."""
    negate: bool
    """A leading ``-``."""


def _invalid(query: str, reason: str) -> InvalidRequestError:
    return InvalidRequestError(f"Invalid search query {query!r}: {reason}", param="query")


def _value(raw: str) -> str | float | None:
    if raw == "null":
        return None
    if raw[0] in "'\"":
        return re.sub(r"\\(.)", r"\1", raw[1:-1])
    return float(raw)


def _check_operand(query: str, name: str, kind: str, op: str, value: str | float | None) -> None:
    """Refuse an operator or a value the field's kind cannot take."""
    if kind == NUMBER:
        if op == "~" or (value is not None and not isinstance(value, float)):
            raise _invalid(query, f"'{name}' is numeric: compare it with a number and :, =, >, <, >= or <=")
    elif op not in (":", "~"):
        raise _invalid(query, f"'{name}' is not numeric: use : or ~")
    elif op == "~" and (kind != STRING or not isinstance(value, str) or len(value) < 3):
        raise _invalid(query, "~ takes a quoted string of at least 3 characters, on a string field")
    elif isinstance(value, float):
        raise _invalid(query, f"'{name}' takes a quoted string")


def parse(query: str, fields: Mapping[str, str], resource: str) -> tuple[list[Clause], str]:
    """The clauses of ``query`` and how they join (``AND`` or ``OR``).

    Raises:
        InvalidRequestError: the query does not parse, mixes AND and OR, has too many clauses, names a field
            the resource does not search, or compares a value the field cannot take.
    """
    clauses: list[Clause] = []
    joins: set[str] = set()
    position = 0
    while True:
        match = _CLAUSE.match(query, position)
        if match is None:
            raise _invalid(query, f"cannot read a clause at character {position}")
        field, key = match["field"], None
        if field.startswith("metadata["):
            field, key = "metadata", field[10:-2]
        kind = fields.get(field)
        if kind is None or (kind == METADATA) != (key is not None):
            raise _invalid(
                query,
                f"Field '{match['field']}' is an unsupported search field for resource {resource}. "
                f"Supported fields: {', '.join(sorted(fields))}",
            )
        op, value = match["op"], _value(match["value"])
        _check_operand(query, match["field"], kind, op, value)
        clauses.append(Clause(field, key, op, value, bool(match["negate"])))
        position = match.end()
        if position == len(query):
            break
        join = _JOIN.match(query, position)
        if join is None:
            raise _invalid(query, f"expected AND or OR at character {position}")
        joins.add(join[1])
        position = join.end()
    if len(joins) > 1:
        raise _invalid(query, "AND and OR cannot be combined in one query")
    if len(clauses) > _MAX_CLAUSES:
        raise _invalid(query, f"at most {_MAX_CLAUSES} clauses")
    return clauses, joins.pop() if joins else "AND"


def _lookup(snapshot: Mapping[str, Any], clause: Clause) -> Any:
    if clause.key is not None:
        return snapshot.get("metadata", {}).get(clause.key)
    node: Any = snapshot
    for part in clause.field.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _holds(snapshot: Mapping[str, Any], clause: Clause) -> bool:
    actual = _lookup(snapshot, clause)
    wanted = clause.value
    if wanted is None:
        result = actual is None
    elif isinstance(wanted, float):
        compare: dict[str, Callable[[float, float], bool]] = {
            ":": lambda a, b: a == b,
            "=": lambda a, b: a == b,
            ">": lambda a, b: a > b,
            "<": lambda a, b: a < b,
            ">=": lambda a, b: a >= b,
            "<=": lambda a, b: a <= b,
        }
        result = isinstance(actual, int | float) and compare[clause.op](float(actual), wanted)
    elif actual is None:
        result = False
    else:
        text = str(actual).lower()
        result = wanted.lower() in text if clause.op == "~" else text == wanted.lower()
    return result != clause.negate


def search(
    store: Store,
    records: list[Any],
    params: Mapping[str, Any],
    *,
    fields: Mapping[str, str],
    resource: str,
    render: Callable[[Any], dict[str, Any]],
    on_hidden: Callable[[int], None],
) -> dict[str, Any]:
    """``{"object": "search_result", …}``: one page of newest-first ``records`` whose snapshots match.

    ``page`` is the opaque ``next_page`` of the previous answer. ``on_hidden`` is
    told how many objects the search lag kept out.

    Raises:
        InvalidRequestError: the query or the page token is invalid.
    """
    query = str(params["query"])
    clauses, join = parse(query, fields, resource)
    combine = all if join == "AND" else any
    matches: list[Record] = []
    hidden = 0
    for record in records:
        snapshot = store.searchable(record)
        if snapshot is None:
            hidden += 1
            continue
        if combine(_holds(snapshot, clause) for clause in clauses):
            matches.append(record)
    if hidden:
        on_hidden(hidden)
    offset = 0
    if params.get("page"):
        try:
            offset = int(
                base64.urlsafe_b64decode(str(params["page"]).encode()).decode().removeprefix("offset:")
            )
        except (ValueError, UnicodeDecodeError):
            raise InvalidRequestError("Invalid page: not a next_page value", param="page") from None
    limit = int(params.get("limit") or 10)
    selected = matches[offset : offset + limit]
    more = len(matches) > offset + limit
    result: dict[str, Any] = {
        "object": "search_result",
        "data": [render(record) for record in selected],
        "has_more": more,
        "next_page": base64.urlsafe_b64encode(f"offset:{offset + limit}".encode()).decode() if more else None,
        "url": f"/v1/{resource}/search",
    }
    if "total_count" in params.get("expand", []):
        result["total_count"] = len(matches)
    return result
