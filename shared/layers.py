"""The three layers, named by import string so the kernel never imports a layer."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar import Litestar

__all__ = ("LAYERS", "Layer", "app_factory")

Layer = Literal["system", "process", "experience"]

LAYERS: dict[Layer, str] = {
    "system": "system_apis.app:create_app",
    "process": "process_apis.app:create_app",
    "experience": "experience_apis.app:create_app",
}
"""Each layer's app factory, bottom layer first (the order the stack starts them in)."""


def app_factory(layer: Layer) -> Callable[..., Litestar]:
    """Import a layer's ``create_app``."""
    module, _, attr = LAYERS[layer].partition(":")
    factory: Callable[..., Litestar] = getattr(importlib.import_module(module), attr)
    return factory
