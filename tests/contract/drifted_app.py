"""The system layer with one route more than its committed spec: what a forgotten regeneration looks like."""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar import get

from system_apis.app import create_app as create_system_app

if TYPE_CHECKING:
    from litestar import Litestar

    from shared.settings import Settings


@get("/v1/sources-archive", operation_id="ListArchivedSources", sync_to_thread=False)
def list_archived_sources() -> list[str]:
    """A route added to the code but not to openapi/system.json."""
    return []


def create_app(settings: Settings | None = None) -> Litestar:
    app = create_system_app(settings)
    app.register(list_archived_sources)
    return app
