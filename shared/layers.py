"""The three layers and the authorization server, named by import string so the kernel never imports a layer."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar import Litestar

__all__ = (
    "BILLING_SANDBOX_CONFIG",
    "CRM_SANDBOX_CONFIG",
    "ERP_COMMANDS",
    "LAYERS",
    "PLANNING_SANDBOX_CATALOG",
    "SANDBOXES",
    "SERVICES",
    "Layer",
    "Service",
    "app_factory",
)

Layer = Literal["system", "process", "experience"]
Service = Literal["auth", "system", "process", "experience"]

LAYERS: dict[Layer, str] = {
    "system": "system_apis.app:create_app",
    "process": "process_apis.app:create_app",
    "experience": "experience_apis.app:create_app",
}
"""Each layer's app factory, bottom layer first (the order the stack starts them in)."""

ERP_COMMANDS = "system_apis.connectors.tryton.commands"
"""The ERP runtime's commands (``finsync erp setup``, ``finsync serve erp``), by import string."""

SANDBOXES: dict[str, str] = {
    "planning-sandbox": "system_apis.connectors.anaplan.sandbox.server:serve_sandbox",
    "crm-sandbox": "system_apis.connectors.salesforce.sandbox.server:serve_sandbox",
    "billing-sandbox": "system_apis.connectors.stripe.sandbox.server:serve_local",
}
"""``finsync serve <name>``: each vendor-shaped sandbox's server, by import string. Each is called as
``serve(settings, host=..., port=..., **options)`` and serves on ``ports.<name with _>`` by default."""
PLANNING_SANDBOX_CATALOG = "system_apis.connectors.anaplan.sandbox.catalog"
"""The sandbox's fixed ids (``WORKSPACE_ID``, ``MODEL_ID``), which ``finsync up`` declares its source with."""
CRM_SANDBOX_CONFIG = "system_apis.connectors.salesforce.sandbox.config"
"""The CRM sandbox's defaults (``DEFAULT_CLIENT_ID``), which ``finsync up`` declares its source with."""
BILLING_SANDBOX_CONFIG = "system_apis.connectors.stripe.sandbox.config"
"""The billing sandbox's local secret files (``local_secret_key_path``), for ``finsync up``'s source."""

SERVICES: dict[Service, str] = {
    "auth": "shared.auth.server:create_app",
    "system": LAYERS["system"],
    "process": LAYERS["process"],
    "experience": LAYERS["experience"],
}
"""Everything ``finsync serve`` can run: the built-in authorization server, then the layers."""


def app_factory(layer: Layer) -> Callable[..., Litestar]:
    """Import a layer's ``create_app``."""
    module, _, attr = LAYERS[layer].partition(":")
    factory: Callable[..., Litestar] = getattr(importlib.import_module(module), attr)
    return factory
