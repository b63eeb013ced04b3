"""A small SOQL: a tokenizer, a recursive-descent parser and an evaluator for the subset finsync's connector uses.

Grammar (keywords in any case; field and object names in any case)::

    query      := SELECT field ("," field)* FROM object
                  [WHERE condition] [ORDER BY order ("," order)*] [LIMIT integer] [OFFSET integer]
    condition  := term ((AND term)* | (OR term)*)      -- AND and OR never mix without parentheses
    term       := "(" condition ")" | NOT term
                | field operator literal | field [NOT] IN "(" literal ("," literal)* ")"
    operator   := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    literal    := 'string' | number | date | datetime | TRUE | FALSE | NULL
    order      := field [ASC | DESC] [NULLS FIRST | NULLS LAST]

Dates are ``YYYY-MM-DD`` and datetimes ``YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)``,
both unquoted, as in SOQL. Each literal must fit its field's type, as
Salesforce checks: a quoted value for a boolean, number, date or datetime
field, or an unquoted one for a text field, is an ``INVALID_FIELD``; an id
literal that is no id is an ``INVALID_QUERY_FILTER_OPERATOR``. Text compares
case-insensitively. ``!=`` and ``NOT IN`` match nulls; the other operators
never do. ``ORDER BY`` sorts nulls first ascending and last descending unless
told; text sorts case-insensitively. Without ``ORDER BY``, records come in
creation order.

Errors carry Salesforce's position header::

    \\nSELECT Id FRM Account\\n          ^\\nERROR at Row:1:Column:11\\nunexpected token: FRM

Not supported (``MALFORMED_QUERY`` naming the sandbox): functions and
aggregates (``COUNT()``, ``DAY_ONLY``), ``LIKE``, ``INCLUDES``, date literals
such as ``TODAY``, ``GROUP BY``, ``FOR UPDATE``. Relationship paths
(``Account.Name``) and subqueries answer ``INVALID_FIELD`` / ``MALFORMED_QUERY``.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from system_apis.connectors.salesforce.sandbox.errors import (
    InvalidFieldError,
    InvalidQueryFilterOperatorError,
    InvalidTypeError,
    MalformedQueryError,
    NumberOutsideValidRangeError,
    SalesforceError,
)
from system_apis.connectors.salesforce.sandbox.ids import canonical
from system_apis.connectors.salesforce.sandbox.schema import Field, FieldType, SObjectType, object_type

if TYPE_CHECKING:
    from collections.abc import Iterable

    from system_apis.connectors.salesforce.sandbox.org import Org, Record

__all__ = ("MAX_OFFSET", "OrderItem", "Query", "execute", "parse")

MAX_OFFSET = 2000
"""SOQL's largest ``OFFSET``."""

_UNSUPPORTED = frozenset(
    {"like", "includes", "excludes", "group", "having", "with", "for", "update", "using", "typeof"}
)
_KEYWORDS = frozenset(
    {
        *("select", "from", "where", "and", "or", "not", "in", "order", "by", "asc", "desc"),
        *("nulls", "first", "last", "limit", "offset", "null", "true", "false"),
        *_UNSUPPORTED,
    }
)
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
    |(?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
    |(?P<date>\d{4}-\d{2}-\d{2})(?![\w:])
    |(?P<number>[+-]?\d+(?:\.\d+)?)(?![\w.])
    |(?P<string>'(?:[^'\\]|\\.)*')
    |(?P<ident>[A-Za-z_][A-Za-z0-9_.]*)
    |(?P<op>!=|<>|<=|>=|=|<|>)
    |(?P<punct>[,()])
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
_ORDERINGS: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class _Token:
    kind: str
    """``ident``, ``string``, ``number``, ``date``, ``datetime``, ``op``, ``punct`` or ``eof``."""
    text: str
    """As written."""
    pos: int
    """Offset in the query."""
    value: Any = None
    """The literal's value (``str``, ``Decimal``, ``date``, ``datetime``)."""

    def word(self, *words: str) -> bool:
        """Whether this is one of the keywords ``words`` (lower case)."""
        return self.kind == "ident" and self.text.lower() in words


def _error(kind: type[SalesforceError], text: str, pos: int, reason: str) -> SalesforceError:
    """An error with Salesforce's header: the query's row, a caret under the column, ``ERROR at Row:r:Column:c``."""
    row_start = text.rfind("\n", 0, pos) + 1
    row_end = text.find("\n", pos)
    row = text[row_start : row_end if row_end >= 0 else len(text)]
    line = text.count("\n", 0, pos) + 1
    column = pos - row_start + 1
    return kind(f"\n{row}\n{' ' * (column - 1)}^\nERROR at Row:{line}:Column:{column}\n{reason}")


def _unescape(text: str, raw: str, pos: int) -> str:
    """The value of a quoted SOQL string (``raw`` without its quotes)."""
    out: list[str] = []
    chars = iter(enumerate(raw))
    for offset, char in chars:
        if char != "\\":
            out.append(char)
            continue
        _, escaped = next(chars)
        if escaped not in _ESCAPES:
            raise _error(
                MalformedQueryError,
                text,
                pos + offset + 1,
                f"Invalid string literal '{raw}'. Illegal character sequence '\\{escaped}' in string literal.",
            )
        out.append(_ESCAPES[escaped])
    return "".join(out)


def _tokens(text: str) -> list[_Token]:
    """The tokens of ``text``, ending with an ``eof`` token."""
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _error(
                MalformedQueryError,
                text,
                pos,
                f"line 1:{pos} no viable alternative at character '{text[pos]}'",
            )
        kind = match.lastgroup
        assert kind is not None
        raw = match.group(kind)
        value: Any = None
        if kind == "ws":
            pos = match.end()
            continue
        try:
            if kind == "datetime":
                value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(dt.UTC)
            elif kind == "date":
                value = dt.date.fromisoformat(raw)
        except ValueError:
            label = "datetime" if kind == "datetime" else "date"
            raise _error(MalformedQueryError, text, pos, f"Invalid {label}: {raw}") from None
        if kind == "number":
            value = Decimal(raw)
        elif kind == "string":
            value = _unescape(text, raw[1:-1], pos)
        tokens.append(_Token(kind, raw, pos, value))
        pos = match.end()
    tokens.append(_Token("eof", "<EOF>", len(text)))
    return tokens


# -- the parsed query --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Name:
    text: str
    pos: int


@dataclass(frozen=True)
class _Literal:
    token: _Token

    @property
    def is_null(self) -> bool:
        return self.token.word("null")


@dataclass(frozen=True)
class _Comparison:
    field: _Name
    operator: str
    literal: _Literal


@dataclass(frozen=True)
class _Membership:
    field: _Name
    negated: bool
    literals: tuple[_Literal, ...]


@dataclass(frozen=True)
class _Junction:
    kind: str
    """``and`` or ``or``."""
    parts: tuple[_Condition, ...]


@dataclass(frozen=True)
class _Not:
    part: _Condition


_Condition = _Comparison | _Membership | _Junction | _Not


@dataclass(frozen=True)
class OrderItem:
    """One ``ORDER BY`` item."""

    field: Field
    """What to sort by."""
    descending: bool
    """``DESC``."""
    nulls_last: bool
    """Where nulls go."""


@dataclass(frozen=True)
class Query:
    """A parsed, checked query, ready to run against an org."""

    kind: SObjectType
    """The sObject type after ``FROM``."""
    fields: tuple[Field, ...]
    """The selected fields, in the order selected."""
    predicate: Callable[[Record], bool] | None
    """The ``WHERE`` clause, compiled; ``None`` when there is none."""
    order: tuple[OrderItem, ...]
    """The ``ORDER BY`` items."""
    limit: int | None
    """``LIMIT``."""
    offset: int
    """``OFFSET`` (0 when absent)."""


class _Parser:
    """Recursive descent over the tokens of one query."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
        return token

    def unexpected(self, token: _Token) -> SalesforceError:
        if token.word(*_UNSUPPORTED):
            return _error(
                MalformedQueryError,
                self.text,
                token.pos,
                f"{token.text.upper()} is not supported by the Salesforce sandbox's SOQL subset",
            )
        return _error(MalformedQueryError, self.text, token.pos, f"unexpected token: {token.text}")

    def keyword(self, word: str) -> _Token:
        token = self.take()
        if not token.word(word):
            raise self.unexpected(token)
        return token

    def name(self) -> _Name:
        token = self.take()
        if token.kind != "ident" or token.text.lower() in _KEYWORDS:
            raise self.unexpected(token)
        if self.peek().text == "(":
            raise _error(
                MalformedQueryError,
                self.text,
                token.pos,
                f"{token.text}(): functions are not supported by the Salesforce sandbox's SOQL subset",
            )
        return _Name(token.text, token.pos)

    def parse(
        self,
    ) -> tuple[list[_Name], _Name, _Condition | None, list[tuple[_Name, bool, bool | None]], int | None, int]:
        self.keyword("select")
        fields = [self.name()]
        while self.peek().text == ",":
            self.take()
            fields.append(self.name())
        self.keyword("from")
        source = self.name()
        condition = None
        order: list[tuple[_Name, bool, bool | None]] = []
        limit: int | None = None
        offset = 0
        if self.peek().word("where"):
            self.take()
            condition = self.condition()
        if self.peek().word("order"):
            self.take()
            self.keyword("by")
            order.append(self.order_item())
            while self.peek().text == ",":
                self.take()
                order.append(self.order_item())
        if self.peek().word("limit"):
            self.take()
            limit = self.integer()
        if self.peek().word("offset"):
            self.take()
            token = self.peek()
            offset = self.integer()
            if offset > MAX_OFFSET:
                raise _error(
                    NumberOutsideValidRangeError,
                    self.text,
                    token.pos,
                    f"Maximum SOQL offset allowed is {MAX_OFFSET}",
                )
        token = self.take()
        if token.kind != "eof":
            raise self.unexpected(token)
        return fields, source, condition, order, limit, offset

    def integer(self) -> int:
        token = self.take()
        if token.kind != "number" or "." in token.text or token.value < 0:
            raise self.unexpected(token)
        return int(token.value)

    def order_item(self) -> tuple[_Name, bool, bool | None]:
        field = self.name()
        descending = False
        nulls_last: bool | None = None
        if self.peek().word("asc", "desc"):
            descending = self.take().word("desc")
        if self.peek().word("nulls"):
            self.take()
            token = self.take()
            if not token.word("first", "last"):
                raise self.unexpected(token)
            nulls_last = token.word("last")
        return field, descending, nulls_last

    def condition(self) -> _Condition:
        first = self.term()
        if not self.peek().word("and", "or"):
            return first
        kind = self.peek().text.lower()
        parts = [first]
        while self.peek().word(kind):
            self.take()
            parts.append(self.term())
        if self.peek().word("and", "or"):
            # SOQL refuses to guess precedence: "a AND b OR c" needs parentheses.
            raise self.unexpected(self.peek())
        return _Junction(kind, tuple(parts))

    def term(self) -> _Condition:
        token = self.peek()
        if token.text == "(":
            self.take()
            inner = self.condition()
            closing = self.take()
            if closing.text != ")":
                raise self.unexpected(closing)
            return inner
        if token.word("not"):
            self.take()
            return _Not(self.term())
        field = self.name()
        token = self.take()
        if token.kind == "op":
            symbol = "!=" if token.text == "<>" else token.text
            return _Comparison(field, symbol, self.literal())
        negated = False
        if token.word("not"):
            negated = True
            token = self.take()
        if not token.word("in"):
            raise self.unexpected(token)
        opening = self.take()
        if opening.text != "(":
            raise self.unexpected(opening)
        literals = [self.literal()]
        while self.peek().text == ",":
            self.take()
            literals.append(self.literal())
        closing = self.take()
        if closing.text != ")":
            raise self.unexpected(closing)
        return _Membership(field, negated, tuple(literals))

    def literal(self) -> _Literal:
        token = self.take()
        if token.kind in ("string", "number", "date", "datetime") or token.word("true", "false", "null"):
            return _Literal(token)
        raise self.unexpected(token)


# -- checking names and types, compiling the WHERE clause --------------------------------------------------


def _field(text: str, kind: SObjectType, name: _Name) -> Field:
    if "." in name.text:
        relationship = name.text.split(".", 1)[0]
        raise _error(
            InvalidFieldError,
            text,
            name.pos,
            f"Didn't understand relationship '{relationship}' in field path. Relationship queries are not "
            "supported by the Salesforce sandbox.",
        )
    field = kind.field(name.text)
    if field is None:
        raise _error(
            InvalidFieldError,
            text,
            name.pos,
            f"No such column '{name.text}' on entity '{kind.name}'. If you are attempting to use a custom "
            "field, be sure to append the '__c' after the custom field name. Please reference your WSDL or "
            "the describe call for the appropriate names.",
        )
    return field


def _value(text: str, field: Field, name: _Name, literal: _Literal) -> Any:
    """The literal's value for comparing with ``field``; refused when its type does not fit."""
    token = literal.token
    if literal.is_null:
        return None
    ftype = field.type
    fits = {
        FieldType.BOOLEAN: token.word("true", "false"),
        FieldType.DATE: token.kind == "date",
        FieldType.DATETIME: token.kind == "datetime",
    }.get(ftype, token.kind == "number" if ftype.is_number else token.kind == "string")
    if not fits:
        quoted = (
            "should be enclosed in quotes"
            if ftype.is_text or ftype.is_id
            else "should not be enclosed in quotes"
        )
        type_name = "string" if ftype.is_text else ftype.value
        raise _error(
            InvalidFieldError,
            text,
            name.pos,
            f"value of filter criterion for field '{field.name}' must be of type {type_name} and {quoted}",
        )
    if ftype is FieldType.BOOLEAN:
        return token.word("true")
    if ftype.is_id:
        full = canonical(token.value)
        if full is None:
            raise _error(InvalidQueryFilterOperatorError, text, token.pos, f"invalid ID field: {token.value}")
        return full
    if ftype.is_text:
        return str(token.value).lower()
    return token.value


def _compile(text: str, kind: SObjectType, condition: _Condition) -> Callable[[Record], bool]:
    """A predicate over records for ``condition`` (names and literal types checked here)."""
    if isinstance(condition, _Junction):
        parts = [_compile(text, kind, part) for part in condition.parts]
        if condition.kind == "and":
            return lambda record: all(part(record) for part in parts)
        return lambda record: any(part(record) for part in parts)
    if isinstance(condition, _Not):
        inner = _compile(text, kind, condition.part)
        return lambda record: not inner(record)
    field = _field(text, kind, condition.field)
    key = field.name
    lower = field.type.is_text
    if isinstance(condition, _Membership):
        values = {_value(text, field, condition.field, literal) for literal in condition.literals}
        negated = condition.negated

        def member(record: Record) -> bool:
            value = record[key]
            if value is None:
                return negated
            return (_norm(value, lower) in values) != negated

        return member
    expected = _value(text, field, condition.field, condition.literal)
    symbol = condition.operator

    ordering = _ORDERINGS.get(symbol)

    def compare(record: Record) -> bool:
        value = record[key]
        if symbol == "=":
            return (
                value is None if expected is None else value is not None and _norm(value, lower) == expected
            )
        if symbol == "!=":
            return value is not None if expected is None else value is None or _norm(value, lower) != expected
        if value is None or expected is None or ordering is None:
            return False
        return bool(ordering(_norm(value, lower), expected))

    return compare


def _norm(value: Any, lower: bool) -> Any:
    return value.lower() if lower else value


def parse(text: str) -> Query:
    """Parse and check one SOQL query.

    Raises:
        MalformedQueryError: it does not parse, is empty, or uses what the sandbox does not support.
        InvalidTypeError: the object after ``FROM`` does not exist.
        InvalidFieldError: a field does not exist, or a literal does not fit its field.
        InvalidQueryFilterOperatorError: an id field is compared with something that is no id.
        NumberOutsideValidRangeError: ``OFFSET`` is over :data:`MAX_OFFSET`.
    """
    if not text.strip():
        raise MalformedQueryError("A query string has to be specified")
    names, source, condition, order, limit, offset = _Parser(text).parse()
    kind = object_type(source.text)
    if kind is None:
        raise _error(
            InvalidTypeError,
            text,
            source.pos,
            f"sObject type '{source.text}' is not supported. If you are attempting to use a custom object, be "
            "sure to append the '__c' after the entity name. Please reference your WSDL or the describe call "
            "for the appropriate names.",
        )
    fields: list[Field] = []
    for name in names:
        field = _field(text, kind, name)
        if field in fields:
            raise _error(MalformedQueryError, text, name.pos, f"duplicate field selected: {field.name}")
        fields.append(field)
    predicate = _compile(text, kind, condition) if condition is not None else None
    items = tuple(
        OrderItem(_field(text, kind, name), descending, descending if nulls_last is None else nulls_last)
        for name, descending, nulls_last in order
    )
    return Query(kind, tuple(fields), predicate, items, limit, offset)


def _sort(records: list[Record], order: Iterable[OrderItem]) -> None:
    """Sort in place: one stable pass per item, last item first."""
    for item in reversed(list(order)):
        key = item.field.name
        lower = item.field.type.is_text
        # Nulls get a rank that lands them first or last once the pass is (or is not) reversed.
        null_rank = (0 if item.nulls_last else 2) if item.descending else (2 if item.nulls_last else 0)

        def sort_key(
            record: Record, key: str = key, lower: bool = lower, null_rank: int = null_rank
        ) -> tuple[Any, ...]:
            value = record[key]
            if value is None:
                return (null_rank,)
            return (1, value.lower() if lower else value)

        records.sort(key=sort_key, reverse=item.descending)


def execute(org: Org, query: Query) -> list[Record]:
    """The records ``query`` selects from ``org``, filtered, sorted, offset and limited (the records themselves)."""
    predicate = query.predicate
    selected = [record for record in org.records(query.kind.name) if predicate is None or predicate(record)]
    if query.order:
        _sort(selected, query.order)
    end = None if query.limit is None else query.offset + query.limit
    return selected[query.offset : end]
