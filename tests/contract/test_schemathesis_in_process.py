"""Schemathesis against the process and experience services in-process (ASGI), with the committed configuration.

The system layer's routes are covered in-process against its real sources by
``tests/integration/test_system_schemathesis.py``, and live by
``tests/e2e/test_schemathesis_live.py``.

The app under test runs in-process but joins the live stack's trust domain: it
verifies tokens from the stack's authorization server, and calls the layer
below (the stack's real processes, over loopback) with that layer's local client.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from experience_apis.app import create_app as create_experience_app
from process_apis.app import create_app as create_process_app
from shared.auth.local import read_local_secrets
from tests.support import REPO

if TYPE_CHECKING:
    from collections.abc import Callable

    from schemathesis import Case

    from shared.settings import Settings
    from tests.conftest import LiveStack

CONFIG = SchemathesisConfig.from_path(REPO / "schemathesis.toml")


UNLIMITED = {"default": {"limit": "1000000/minute"}}
"""The tier of these runs: schemathesis sends far more than a partner would; rate limiting is tested on its own."""


def stack_auth(live_stack: LiveStack, client_id: str | None = None) -> dict[str, Any]:
    """Auth settings that trust the live stack's issuer, calling below as ``client_id``."""
    auth: dict[str, Any] = {"issuer": live_stack.urls["auth"]}
    if client_id is not None:
        auth |= {"client_id": client_id, "client_secret": read_local_secrets(live_stack.data_dir)[client_id]}
    return auth


@pytest.fixture(scope="module")
def tokens(live_stack: LiveStack) -> dict[str, str]:
    """One ``demo`` token per layer, for the whole module."""
    return {layer: live_stack.token(f"finsync-{layer}") for layer in ("system", "process", "experience")}


@pytest.fixture
def process_schema(
    make_settings: Callable[..., Settings], live_stack: LiveStack, ledger_url: str
) -> schemathesis.schemas.BaseSchema:
    settings = make_settings(
        system_url=live_stack.urls["system"],
        auth=stack_auth(live_stack, "process"),
        tiers=UNLIMITED,
        ledger={"database_url": ledger_url},
    )
    return schemathesis.openapi.from_asgi("/schema/openapi.json", create_process_app(settings), config=CONFIG)


@pytest.fixture
def experience_schema(
    make_settings: Callable[..., Settings], live_stack: LiveStack
) -> schemathesis.schemas.BaseSchema:
    settings = make_settings(
        process_url=live_stack.urls["process"], auth=stack_auth(live_stack, "experience"), tiers=UNLIMITED
    )
    return schemathesis.openapi.from_asgi(
        "/schema/openapi.json", create_experience_app(settings), config=CONFIG
    )


process = schemathesis.pytest.from_fixture("process_schema")
experience = schemathesis.pytest.from_fixture("experience_schema")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@process.parametrize()
def test_process_in_process(case: Case, tokens: dict[str, str]) -> None:
    case.call_and_validate(headers=bearer(tokens["process"]))


@experience.parametrize()
def test_experience_in_process(case: Case, tokens: dict[str, str]) -> None:
    case.call_and_validate(headers=bearer(tokens["experience"]))
