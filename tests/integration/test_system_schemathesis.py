"""Schemathesis on the ERP and planning routes, in-process, against the real Tryton and the planning sandbox.

Every default check runs with the committed configuration (``schemathesis.toml``,
project "finsync system APIs"), auth on with real tokens. Generated source ids
would only ever meet 404, so each case is pointed at a configured source (unless
its path is invalid on purpose); the other path and query values stay generated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from system_apis.app import create_app
from tests.integration.test_erp_api import A, sources
from tests.integration.test_planning_api import SOURCE, planning_source
from tests.support import REPO
from tests.tokens import TestIssuer, call_system_case

if TYPE_CHECKING:
    from collections.abc import Callable

    from schemathesis import Case

    from shared.settings import Settings
    from tests.erp_fixtures import Erp
    from tests.planning_fixtures import PlanningSandbox

pytestmark = pytest.mark.slow

CONFIG = SchemathesisConfig.from_path(REPO / "schemathesis.toml")


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> TestIssuer:
    return TestIssuer(tmp_path_factory.mktemp("issuer"))


def _schema(make_settings: Callable[..., Settings], issuer: TestIssuer, sources: dict[str, Any]) -> Any:
    settings = make_settings(
        sources=sources,
        auth={"issuer": issuer.issuer, "jwks_file": str(issuer.jwks_file)},
        rate_limit={"enabled": False},
    )
    return schemathesis.openapi.from_asgi("/schema/openapi.json", create_app(settings), config=CONFIG)


@pytest.fixture
def erp_schema(
    make_settings: Callable[..., Settings], erp: Erp, issuer: TestIssuer
) -> schemathesis.schemas.BaseSchema:
    return _schema(make_settings, issuer, sources(erp))


@pytest.fixture
def planning_schema(
    make_settings: Callable[..., Settings], planning_sandbox: PlanningSandbox, issuer: TestIssuer
) -> schemathesis.schemas.BaseSchema:
    return _schema(make_settings, issuer, planning_source(planning_sandbox))


erp_api = schemathesis.pytest.from_fixture("erp_schema").include(path_regex="^/v1/erp/")
planning_api = schemathesis.pytest.from_fixture("planning_schema").include(path_regex="^/v1/planning/")


@erp_api.parametrize()
def test_erp_routes_keep_their_contract(case: Case, issuer: TestIssuer) -> None:
    call_system_case(case, issuer, "erp:read erp:write", A)


@planning_api.parametrize()
def test_planning_routes_keep_their_contract(case: Case, issuer: TestIssuer) -> None:
    call_system_case(case, issuer, "planning:read planning:write", SOURCE)
