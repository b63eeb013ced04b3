"""``finsync up`` points the sandboxes' pushes at the system layer and declares how the sources check them."""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING

import msgspec

from shared.settings import SalesforceSourceConfig, Settings, StripeSourceConfig
from shared.stack import Stack
from system_apis.connectors.salesforce.sandbox.config import CrmSandboxConfig

if TYPE_CHECKING:
    from pathlib import Path


def test_the_sandboxes_push_to_the_system_layer_with_secrets_the_sources_read(tmp_path: Path) -> None:
    settings = msgspec.convert({"data_dir": str(tmp_path), "ports": {"system": 8201}}, Settings)
    stack = Stack(settings)
    listener = stack.push_url("crm-sandbox")
    token = (tmp_path / "crm-sandbox" / "outbound-token").read_text().strip()
    assert listener == f"http://127.0.0.1:8201/v1/crm/crm/outbound-messages/{token}"
    assert len(token) >= 32
    assert stat.S_IMODE((tmp_path / "crm-sandbox" / "outbound-token").stat().st_mode) == 0o600
    assert stack.push_url("crm-sandbox") == listener, "generated once, then kept"
    assert stack.push_url("billing-sandbox") == "http://127.0.0.1:8201/v1/billing/billing/webhooks"

    crm = msgspec.convert(stack._crm_source(), SalesforceSourceConfig)
    assert crm.outbound_token_file == str(tmp_path / "crm-sandbox" / "outbound-token")
    assert crm.organization_id == CrmSandboxConfig().organization_id
    billing = msgspec.convert(stack._billing_source(), StripeSourceConfig)
    assert billing.webhook_secret_files == [str(tmp_path / "billing-sandbox" / "webhook_secret")]
