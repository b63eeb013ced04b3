"""``finsync openapi``: the committed specs in ``openapi/`` are generated here, and checked for drift.

Besides the three services' OpenAPI documents, ``openapi/events.json`` is the
published event contract (:mod:`shared.events`): a JSON Schema (2020-12) of
:class:`~shared.events.SourceEvent`, as each stream entry's :data:`~shared.events.FIELD`
holds it, with the stream names and the delivery semantics beside it.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import msgspec

from shared.events import FIELD, STREAMS, SourceEvent
from shared.layers import LAYERS, app_factory
from shared.settings import Settings

__all__ = ("EVENTS_FILE", "render_events", "render_spec", "write_or_check")

EVENTS_FILE = "events.json"
"""The event contract's file in the specs directory."""
_DELIVERY = {
    "guarantee": "at-least-once",
    "dedupe_key": "Equal for every delivery of one change (a retry, a duplicated push, or the catch-up sweep "
    "finding it again); a consumer applies each dedupe_key once. The ingress also drops a push whose "
    "dedupe_key it appended within its dedupe window.",
    "ordering_key": "The business object an event is about ({kind}:{source}:{object}:{id}). Entries are not in "
    "order: work that depends on order takes a short lock on it, or does not depend on arrival order.",
    "acknowledgement": "An event is on its stream before its source is acknowledged (a 2xx, or a SOAP Ack).",
    "back_pressure": "When a stream holds events.max_backlog entries or more (XLEN: consumers XDEL what they "
    "acknowledge), pushes are answered 503 with Retry-After and the source retries; the catch-up sweep "
    "recovers what a source gives up on.",
    "consumption": "Through a consumer group (XREADGROUP), acknowledging (XACK) and then deleting (XDEL) each "
    "entry once its effect is durable.",
}


def render_spec(layer: str) -> str:
    """The OpenAPI document of ``layer`` as committed: sorted keys, two-space indent, final newline.

    The app is built with default settings and never started, so the spec depends
    on the code alone, not on the machine's environment.
    """
    app = app_factory(layer)(Settings())  # type: ignore[arg-type]
    schema: dict[str, Any] = app.openapi_schema.to_schema()
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_events() -> str:
    """The event contract as committed: a JSON Schema of ``SourceEvent`` plus the streams and delivery."""
    schema: dict[str, Any] = msgspec.json.schema(SourceEvent)
    document = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://finsync.invalid/openapi/events.json",
        "title": "finsync published events",
        "description": "One canonical event per stream entry: the entry's field x-finsync-entry-field holds it "
        "as JSON. Owned by the system layer (shared/events.py); consumed by the process layer.",
        **schema,
        "x-finsync-streams": dict(STREAMS),
        "x-finsync-entry-field": FIELD,
        "x-finsync-delivery": _DELIVERY,
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _drift(path: Path, rendered: str, name: str) -> str | None:
    committed = path.read_text(encoding="utf-8") if path.exists() else ""
    if committed == rendered:
        return None
    diff = difflib.unified_diff(
        committed.splitlines(), rendered.splitlines(), str(path), f"{name} (from code)", lineterm="", n=1
    )
    return "\n".join(list(diff)[:40])


def write_or_check(directory: Path, *, check: bool) -> list[str]:
    """Write every layer's spec and the event contract into ``directory``, or with ``check`` list the ones
    that drifted.

    Returns:
        One message per drifted or missing file (empty when all agree, or after writing).
    """
    problems: list[str] = []
    directory.mkdir(parents=True, exist_ok=True)
    documents: list[tuple[str, str]] = [(f"{layer}.json", layer) for layer in LAYERS]
    documents.append((EVENTS_FILE, "events"))
    for file, name in documents:
        path = directory / file
        rendered = render_events() if file == EVENTS_FILE else render_spec(name)
        if not check:
            path.write_text(rendered, encoding="utf-8")
            continue
        problem = _drift(path, rendered, name)
        if problem is not None:
            problems.append(problem)
    return problems
