"""Prometheus metrics of the platform pieces (services add their own)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS_PROCESSED = Counter(
    "careroute_events_processed_total", "Events handled by a consumer group", ["group", "type"]
)
EVENTS_DUPLICATE = Counter(
    "careroute_events_duplicate_total", "Redelivered events skipped by the inbox", ["group", "type"]
)
EVENTS_RETRIED = Counter(
    "careroute_events_retried_total", "Handler attempts that failed and were retried", ["group"]
)
EVENTS_DEAD_LETTERED = Counter(
    "careroute_events_dead_lettered_total",
    "Messages sent to a dead-letter topic (each one is an alert)",
    ["group", "reason"],
)
DEAD_LETTERS_OPEN = Gauge(
    "careroute_dead_letters_open",
    "Dead letters of a consumer group recorded and not replayed yet (alert while above zero)",
    ["group"],
)
OUTBOX_PUBLISHED = Counter(
    "careroute_outbox_published_total", "Outbox rows published to the broker", ["schema"]
)
HTTP_REQUESTS = Counter(
    "careroute_http_requests_total", "HTTP requests answered", ["service", "method", "status"]
)
