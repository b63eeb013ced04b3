"""Schemathesis on the ERP routes, in-process, against the real Tryton of the ``erp`` fixture.

Every default check runs with the committed configuration (``schemathesis.toml``,
project "finsync system APIs"), auth on with real tokens. Generated source ids
would only ever meet 404, so each case is pointed at a configured source; the
other path and query values stay generated.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from system_apis.app import create_app
from tests.integration.test_erp_api import A, sources
from tests.support import REPO
from tests.tokens import TestIssuer, call_system_case

if TYPE_CHECKING:
    from collections.abc import Callable

    from schemathesis import Case

    from shared.settings import Settings
    from tests.erp_fixtures import Erp

pytestmark = pytest.mark.slow

CONFIG = SchemathesisConfig.from_path(REPO / "schemathesis.toml")


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> TestIssuer:
    return TestIssuer(tmp_path_factory.mktemp("issuer"))


@pytest.fixture
def erp_schema(
    make_settings: Callable[..., Settings], erp: Erp, issuer: TestIssuer
) -> schemathesis.schemas.BaseSchema:
    settings = make_settings(
        sources=sources(erp),
        auth={"issuer": issuer.issuer, "jwks_file": str(issuer.jwks_file)},
        rate_limit={"enabled": False},
    )
    return schemathesis.openapi.from_asgi("/schema/openapi.json", create_app(settings), config=CONFIG)


erp_api = schemathesis.pytest.from_fixture("erp_schema").include(path_regex="^/v1/erp/")


@erp_api.parametrize()
def test_erp_routes_keep_their_contract(case: Case, issuer: TestIssuer) -> None:
    call_system_case(case, issuer, "erp:read erp:write", A)
