"""Query results in batches, linked by ``nextRecordsUrl`` (``/services/data/vXX.X/query/01g…-2000``).

A query's whole result is taken when it runs: its rows are rendered then and
kept behind a query locator, so the later batches show the records as they
were when the query ran, however the org changes meanwhile. A locator serves
any position of its result for as long as it lives, the last batch included,
so a client that lost an answer can fetch the same batch again.

A locator dies after ``timeout`` seconds unused (Salesforce: 15 minutes) or
when more than ``max_open`` are open (Salesforce: 10 per user; the oldest is
closed). A dead, unknown or malformed locator answers
``INVALID_QUERY_LOCATOR``.

Batches hold 2,000 records unless the request's ``Sforce-Query-Options:
batchSize=N`` asks for another size from 200 to 2,000 (an out-of-range size
is ignored, as Salesforce treats it as a hint).
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from system_apis.connectors.salesforce.sandbox.errors import InvalidQueryLocatorError
from system_apis.connectors.salesforce.sandbox.ids import QUERY_LOCATOR_PREFIX, make_id

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ("DEFAULT_BATCH_SIZE", "MIN_BATCH_SIZE", "QueryLocators", "batch_size", "result_page")

DEFAULT_BATCH_SIZE = 2000
"""Records per batch, and the most a batch holds."""
MIN_BATCH_SIZE = 200
"""The smallest batch ``Sforce-Query-Options`` may ask for."""
_LOCATOR = re.compile(r"^(01g[A-Za-z0-9]{15})-(\d{1,9})$")
_BATCH_OPTION = re.compile(r"(?:^|[;,\s])batchSize\s*=\s*(\d+)", re.IGNORECASE)


def batch_size(options: str | None) -> int:
    """The batch size a ``Sforce-Query-Options`` header asks for, or the default."""
    match = _BATCH_OPTION.search(options or "")
    if match is None:
        return DEFAULT_BATCH_SIZE
    size = int(match.group(1))
    return size if MIN_BATCH_SIZE <= size <= DEFAULT_BATCH_SIZE else DEFAULT_BATCH_SIZE


@dataclass
class _Cursor:
    rows: list[dict[str, Any]]
    last_used: float


class QueryLocators:
    """Open query results, by locator id."""

    def __init__(self, numbers: Iterator[int], *, max_open: int, timeout: float) -> None:
        """No open locator; ids come from ``numbers`` (never repeated, see :func:`~.ids.transient_counter`)."""
        self._numbers = numbers
        self._max_open = max_open
        self._timeout = timeout
        self._open: OrderedDict[str, _Cursor] = OrderedDict()

    def open(self, rows: list[dict[str, Any]]) -> str:
        """Keep ``rows`` behind a new locator; the oldest locators close past ``max_open``."""
        locator = make_id(QUERY_LOCATOR_PREFIX, next(self._numbers))
        self._open[locator] = _Cursor(rows, time.monotonic())
        while len(self._open) > self._max_open:
            self._open.popitem(last=False)
        return locator

    def rows(self, locator_and_position: str) -> tuple[str, list[dict[str, Any]], int]:
        """Locator, rows and position named by ``01g…-N``.

        Raises:
            InvalidQueryLocatorError: malformed, unknown, expired or closed, or a position past the result.
        """
        match = _LOCATOR.match(locator_and_position)
        if match is None:
            raise InvalidQueryLocatorError("invalid query locator")
        locator, position = match.group(1), int(match.group(2))
        cursor = self._open.get(locator)
        now = time.monotonic()
        if cursor is not None and now - cursor.last_used > self._timeout:
            del self._open[locator]
            cursor = None
        if cursor is None or position > len(cursor.rows):
            raise InvalidQueryLocatorError("invalid query locator")
        cursor.last_used = now
        return locator, cursor.rows, position

    def clear(self) -> None:
        """Close every locator."""
        self._open.clear()


def result_page(
    rows: list[dict[str, Any]], position: int, size: int, version: str, locator: str | None
) -> dict[str, Any]:
    """The batch of ``rows`` from ``position``: ``totalSize``, ``done``, ``nextRecordsUrl`` while not done."""
    end = position + size
    body: dict[str, Any] = {"totalSize": len(rows), "done": end >= len(rows)}
    if not body["done"]:
        assert locator is not None
        body["nextRecordsUrl"] = f"/services/data/{version}/query/{locator}-{end}"
    body["records"] = rows[position:end]
    return body
