"""What every sandbox's fault injection shares: a configuration, reproducible draws, counters and their view.

Each sandbox (planning, CRM, billing) subclasses :class:`SandboxFaults` with its
own configuration Struct (which has a ``seed``) and counters (which list their
injected faults with ``faults()``), and decides from ``self._random`` which
answer to fake.
"""

from __future__ import annotations

import random
from typing import Any, Generic, Protocol, TypeVar

import msgspec

__all__ = ("SandboxFaults",)


class _Config(Protocol):
    @property
    def seed(self) -> int: ...


class _Counters(Protocol):
    def faults(self) -> dict[str, int]: ...


C = TypeVar("C", bound=_Config)
K = TypeVar("K", bound=_Counters)


class SandboxFaults(Generic[C, K]):
    """The current fault configuration, its random draws, and the counters faults add to."""

    def __init__(self, counters: K, config: C) -> None:
        """``config`` (no faults, as a rule); injected ones are counted in ``counters``."""
        self.counters = counters
        """Where injected faults are counted."""
        self.config = config
        """The current configuration."""
        self._random = random.Random(config.seed)  # noqa: S311 - reproducible faults, not secrets

    def configure(self, config: C) -> None:
        """Replace the configuration and reseed the draws."""
        self.config = config
        self._random = random.Random(config.seed)  # noqa: S311

    def view(self) -> dict[str, Any]:
        """``GET /sandbox/faults``: the configuration and the fault counters."""
        return {"config": msgspec.to_builtins(self.config), "counters": self.counters.faults()}
