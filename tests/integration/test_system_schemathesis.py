"""Schemathesis on the ERP, planning, CRM and billing routes, in-process, against the real Tryton and the
planning, CRM and billing sandboxes.

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
from tests.integration.test_billing_api import SOURCE as BILLING
from tests.integration.test_billing_api import billing_source
from tests.integration.test_crm_api import SOURCE as CRM
from tests.integration.test_crm_api import crm_source
from tests.integration.test_erp_api import A, sources
from tests.integration.test_planning_api import SOURCE, planning_source
from tests.support import REPO
from tests.tokens import TestIssuer, call_system_case

if TYPE_CHECKING:
    from collections.abc import Callable

    from schemathesis import Case

    from shared.settings import Settings
    from tests.billing_fixtures import BillingSandbox
    from tests.crm_fixtures import CrmSandbox
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


@pytest.fixture
def crm_schema(
    make_settings: Callable[..., Settings], crm_sandbox: CrmSandbox, issuer: TestIssuer
) -> schemathesis.schemas.BaseSchema:
    return _schema(make_settings, issuer, crm_source(crm_sandbox))


@pytest.fixture
def billing_schema(
    make_settings: Callable[..., Settings], billing_sandbox: BillingSandbox, issuer: TestIssuer
) -> schemathesis.schemas.BaseSchema:
    return _schema(make_settings, issuer, billing_source(billing_sandbox))


erp_api = schemathesis.pytest.from_fixture("erp_schema").include(path_regex="^/v1/erp/")
planning_api = schemathesis.pytest.from_fixture("planning_schema").include(path_regex="^/v1/planning/")
crm_api = schemathesis.pytest.from_fixture("crm_schema").include(path_regex="^/v1/crm/")
billing_api = schemathesis.pytest.from_fixture("billing_schema").include(path_regex="^/v1/billing/")


@erp_api.parametrize()
def test_erp_routes_keep_their_contract(case: Case, issuer: TestIssuer) -> None:
    call_system_case(case, issuer, "erp:read erp:write", A)


@planning_api.parametrize()
def test_planning_routes_keep_their_contract(case: Case, issuer: TestIssuer) -> None:
    call_system_case(case, issuer, "planning:read planning:write", SOURCE)


@crm_api.parametrize()
def test_crm_routes_keep_their_contract(case: Case, issuer: TestIssuer) -> None:
    call_system_case(case, issuer, "crm:read", CRM)


@billing_api.parametrize()
def test_billing_routes_keep_their_contract(case: Case, issuer: TestIssuer) -> None:
    call_system_case(case, issuer, "billing:read billing:write", BILLING)
