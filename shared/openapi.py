"""``finsync openapi``: the committed specs in ``openapi/`` are generated here, and checked for drift."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from shared.layers import LAYERS, app_factory
from shared.settings import Settings

__all__ = ("render_spec", "write_or_check")


def render_spec(layer: str) -> str:
    """The OpenAPI document of ``layer`` as committed: sorted keys, two-space indent, final newline.

    The app is built with default settings and never started, so the spec depends
    on the code alone, not on the machine's environment.
    """
    app = app_factory(layer)(Settings())  # type: ignore[arg-type]
    schema: dict[str, Any] = app.openapi_schema.to_schema()
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_or_check(directory: Path, *, check: bool) -> list[str]:
    """Write every layer's spec into ``directory``, or with ``check`` list the ones that drifted.

    Returns:
        One message per drifted or missing file (empty when all agree, or after writing).
    """
    problems: list[str] = []
    directory.mkdir(parents=True, exist_ok=True)
    for layer in LAYERS:
        path = directory / f"{layer}.json"
        rendered = render_spec(layer)
        if not check:
            path.write_text(rendered, encoding="utf-8")
            continue
        committed = path.read_text(encoding="utf-8") if path.exists() else ""
        if committed != rendered:
            diff = difflib.unified_diff(
                committed.splitlines(),
                rendered.splitlines(),
                str(path),
                f"{layer} (from code)",
                lineterm="",
                n=1,
            )
            problems.append("\n".join(list(diff)[:40]))
    return problems
