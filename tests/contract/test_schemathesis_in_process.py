"""Schemathesis against each service in-process (ASGI), with the committed configuration.

The app under test runs in-process; the layers below it are the live stack's real
processes, reached over loopback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from experience_apis.app import create_app as create_experience_app
from process_apis.app import create_app as create_process_app
from system_apis.app import create_app as create_system_app
from tests.support import REPO, closed_port

if TYPE_CHECKING:
    from collections.abc import Callable

    from schemathesis import Case

    from shared.settings import Settings
    from tests.conftest import LiveStack

CONFIG = SchemathesisConfig.from_path(REPO / "schemathesis.toml")


@pytest.fixture
def system_schema(make_settings: Callable[..., Settings]) -> schemathesis.schemas.BaseSchema:
    settings = make_settings(
        sources={"erp-gone": {"kind": "http", "base_url": f"http://127.0.0.1:{closed_port()}"}}
    )
    return schemathesis.openapi.from_asgi("/schema/openapi.json", create_system_app(settings), config=CONFIG)


@pytest.fixture
def process_schema(
    make_settings: Callable[..., Settings], live_stack: LiveStack
) -> schemathesis.schemas.BaseSchema:
    settings = make_settings(system_url=live_stack.urls["system"])
    return schemathesis.openapi.from_asgi("/schema/openapi.json", create_process_app(settings), config=CONFIG)


@pytest.fixture
def experience_schema(
    make_settings: Callable[..., Settings], live_stack: LiveStack
) -> schemathesis.schemas.BaseSchema:
    settings = make_settings(process_url=live_stack.urls["process"])
    return schemathesis.openapi.from_asgi(
        "/schema/openapi.json", create_experience_app(settings), config=CONFIG
    )


system = schemathesis.pytest.from_fixture("system_schema")
process = schemathesis.pytest.from_fixture("process_schema")
experience = schemathesis.pytest.from_fixture("experience_schema")


@system.parametrize()
def test_system_in_process(case: Case) -> None:
    case.call_and_validate()


@process.parametrize()
def test_process_in_process(case: Case) -> None:
    case.call_and_validate()


@experience.parametrize()
def test_experience_in_process(case: Case) -> None:
    case.call_and_validate()
