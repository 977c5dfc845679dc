"""Where a call's time goes between the 202 and the offer, read from the services' outbox tables."""

from __future__ import annotations

from datetime import datetime

from shared.db import connect
from tools.bench.stats import percentile

# Each service's outbox row for the call: created_at is the start of the transaction that wrote
# it, sent_at the start of the relay's transaction that published it.
_QUERY = """
SELECT i.key,
       i.created_at AS intake_tx, i.sent_at AS intake_relay,
       m.created_at AS matching_tx, m.sent_at AS matching_relay,
       n.created_at AS notify_tx, n.sent_at AS notify_relay
FROM intake.outbox i
JOIN LATERAL (SELECT created_at, sent_at FROM matching.outbox
              WHERE key = i.key AND topic = 'assignments.offered.v1' ORDER BY id LIMIT 1) m ON true
JOIN LATERAL (SELECT created_at, sent_at FROM notify.outbox
              WHERE key = i.key AND topic LIKE 'agency.%' ORDER BY id LIMIT 1) n ON true
WHERE i.topic = 'calls.received.v1' AND i.key = ANY($1::text[])
"""

SEGMENTS = (
    ("intake_tx", "intake_relay", "intake: commit to relay pick-up"),
    ("intake_relay", "matching_tx", "intake relay publish, broker, matching consume"),
    ("matching_tx", "matching_relay", "matching: transaction to relay pick-up"),
    ("matching_relay", "notify_tx", "matching relay publish, broker, notify consume"),
    ("notify_tx", "notify_relay", "notify: transaction to relay pick-up"),
)


async def breakdown(dsn: str, offered_at: dict[str, float]) -> dict[str, dict[str, float]]:
    """p50 and p99 in ms of each segment, and of the last one (relay pick-up to the offer seen)."""
    conn = await connect(dsn)
    try:
        rows = await conn.fetch(_QUERY, list(offered_at))
    finally:
        await conn.close()
    spans: dict[str, list[float]] = {label: [] for _, _, label in SEGMENTS}
    last = "notify relay publish to the offer read from the agency topic"
    spans[last] = []
    for row in rows:
        if any(row[c] is None for c in ("intake_relay", "matching_relay", "notify_relay")):
            continue
        for start, end, label in SEGMENTS:
            spans[label].append(_ms(row[start], row[end]))
        spans[last].append((offered_at[row["key"]] - row["notify_relay"].timestamp()) * 1000)
    return {
        label: {"p50": round(percentile(v, 50), 1), "p99": round(percentile(v, 99), 1), "n": len(v)}
        for label, v in spans.items()
    }


def _ms(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() * 1000
