"""The three layers and the authorization server, named by import string so the kernel never imports a layer."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar import Litestar

__all__ = (
    "ERP_COMMANDS",
    "LAYERS",
    "PLANNING_SANDBOX",
    "PLANNING_SANDBOX_CATALOG",
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

PLANNING_SANDBOX = "system_apis.connectors.anaplan.sandbox.server:serve_sandbox"
"""``finsync serve planning-sandbox``: the Anaplan-shaped sandbox, by import string."""
PLANNING_SANDBOX_CATALOG = "system_apis.connectors.anaplan.sandbox.catalog"
"""The sandbox's fixed ids (``WORKSPACE_ID``, ``MODEL_ID``), which ``finsync up`` declares its source with."""

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
