"""What the ingress counts: pushes accepted, repeated, rejected (by reason) and turned away, per source."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from prometheus_client import CollectorRegistry, Counter

if TYPE_CHECKING:
    from shared.observability.metrics import HttpMetrics

__all__ = ("IngressMetrics", "Reason")

Reason = Literal[
    "signature", "replay", "token", "organization", "malformed", "entity", "unconfigured", "ignored_type"
]
"""Why a push was rejected (``ignored_type``: acknowledged but of a type that makes no event)."""


class IngressMetrics:
    """Counters of the pushes from sources, on the service's registry (their own when metrics are off)."""

    def __init__(self, http: HttpMetrics | None) -> None:
        registry = http.registry if http is not None else CollectorRegistry()
        self.registry = registry
        """Where the counters are (``GET /metrics`` exposes it when metrics are on)."""
        self.pushes = Counter(
            "finsync_source_pushes",
            "Pushes from sources (webhooks, outbound messages) by source, kind and outcome: accepted, "
            "duplicate, rejected or turned_away.",
            ("source", "kind", "outcome"),
            registry=registry,
        )
        self.rejections = Counter(
            "finsync_source_push_rejections",
            "Pushes from sources refused or dropped, by source, kind and reason.",
            ("source", "kind", "reason"),
            registry=registry,
        )
        self.events = Counter(
            "finsync_source_events_appended",
            "Events appended to the published streams, by source and kind.",
            ("source", "kind"),
            registry=registry,
        )

    def outcome(self, source: str, kind: str, outcome: str, events: int = 0) -> None:
        """Count one push that was ``accepted``, a ``duplicate`` or ``turned_away``, and its new ``events``."""
        self.pushes.labels(source, kind, outcome).inc()
        if events:
            self.events.labels(source, kind).inc(events)

    def rejected(self, source: str, kind: str, reason: Reason) -> None:
        """Count one push refused (or, for ``ignored_type``, acknowledged and dropped) for ``reason``."""
        self.pushes.labels(source, kind, "rejected" if reason != "ignored_type" else "ignored").inc()
        self.rejections.labels(source, kind, reason).inc()
