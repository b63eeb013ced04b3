"""Liveness and readiness. Readiness checks only the service's own dependencies.

A service never checks the layers below here, so one failure cannot take every
layer out of its load balancer at once; the health of the layers below is
reported in the API instead (``/v1/overview``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

import msgspec
from litestar import Controller, get
from litestar.exceptions import ServiceUnavailableException

from shared.problems import problem_responses

if TYPE_CHECKING:
    from litestar.datastructures import State

__all__ = ("HealthController", "ReadinessCheck", "ServiceHealth")

ReadinessCheck = Callable[["State"], Awaitable[None]]
"""Raises when the dependency is not usable; returns otherwise."""

CHECK_TIMEOUT = 2.0


class ServiceHealth(msgspec.Struct, kw_only=True):
    """Health of one service."""

    service: str
    """Service name: system, process or experience."""
    status: Literal["up", "down"]
    """Overall status."""
    checks: dict[str, Literal["up", "down"]]
    """Status of each of the service's own dependencies."""


async def _run(check: ReadinessCheck, state: State) -> Literal["up", "down"]:
    try:
        await asyncio.wait_for(check(state), CHECK_TIMEOUT)
    except Exception:  # noqa: BLE001 - any failure of a dependency means "down"
        return "down"
    return "up"


class HealthController(Controller):
    """``/health/live`` and ``/health/ready``; public, outside ``/v1``."""

    path = "/health"
    tags = ["health"]  # noqa: RUF012 - Litestar reads a plain class attribute
    opt = {"public": True}  # noqa: RUF012 - a load balancer calls these without a token

    @get(
        "/live",
        operation_id="GetLiveness",
        summary="Is the process serving",
        responses=problem_responses(),
        sync_to_thread=False,
    )
    def live(self, state: State) -> ServiceHealth:
        """Answers while the process can serve requests."""
        return ServiceHealth(service=state.service, status="up", checks={})

    @get(
        "/ready",
        operation_id="GetReadiness",
        summary="Are this service's own dependencies usable",
        responses=problem_responses(503),
    )
    async def ready(self, state: State) -> ServiceHealth:
        """200 when every dependency of this service answers; 503 problem+json naming the failing ones."""
        checks: dict[str, ReadinessCheck] = state.readiness_checks
        results = await asyncio.gather(*(_run(check, state) for check in checks.values()))
        statuses = dict(zip(checks, results, strict=True))
        if "down" in results:
            raise ServiceUnavailableException(
                detail="a dependency of this service is down", extra={"checks": statuses}
            )
        return ServiceHealth(service=state.service, status="up", checks=statuses)
