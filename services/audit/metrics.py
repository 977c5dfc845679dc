"""Audit's own Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter

EVENTS_FLAGGED = Counter(
    "careroute_audit_events_flagged_total",
    "Events kept in the trail flagged, with their received bytes sealed, because audit could not"
    " encode them canonically (each one is an alert: a producer let through a value it should refuse)",
    ["type"],
)
