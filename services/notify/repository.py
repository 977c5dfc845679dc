"""SQL for notify's schema.

Lock order, the one every notify transaction keeps: first the agency's row (`lock_agency`; its feed
sequence lives there and every message to the agency bumps it), then the assignment's row
(`get_for_update`, `lock_due_offers`, `lock_due_repages`). Why: the consumer applies a run of
events in one transaction, so it holds the agency's row from one offer's message while it locks the
run's next offer; a decline of that offer taking the offer's row first would then wait for the
agency's row the run holds, a cycle PostgreSQL breaks by killing one of them. With the agency's row
first everywhere, one simply waits for the other. Transactions touching several agencies (a run)
may still meet another such run in the opposite order; those conflicts are retried.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from shared.auth import Credential, replace_credentials
from shared.jurisdiction import Jurisdiction

SCHEMA = "notify"


def _jsonable(value: object) -> str:
    # Datetimes in ISO 8601 (what browsers parse), UUIDs and the rest as text.
    return value.isoformat() if isinstance(value, datetime) else str(value)


async def load_jurisdiction(conn: asyncpg.Connection, j: Jurisdiction) -> None:
    """Store agencies' channels and tokens (idempotent)."""
    for a in j.agencies:
        hook = a.webhook
        # A new webhook URL re-enables an endpoint that answered 410; the same URL stays disabled.
        await conn.execute(
            "INSERT INTO notify.agencies (id, name, channels, partitions, webhook_url, webhook_secret,"
            " webhook_allow_private) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (id) DO UPDATE SET name = $2, channels = $3, partitions = $4,"
            " webhook_url = $5, webhook_secret = $6, webhook_allow_private = $7,"
            " webhook_disabled_at = CASE WHEN notify.agencies.webhook_url IS DISTINCT FROM $5"
            " THEN NULL ELSE notify.agencies.webhook_disabled_at END",
            a.id,
            a.name,
            list(a.channels),
            a.partitions,
            hook.url if hook else None,
            hook.secret if hook else None,
            hook.allow_private if hook else False,
        )
    await replace_credentials(conn, SCHEMA, [Credential(a.token, a.id, "agency") for a in j.agencies])


async def agencies(conn: asyncpg.Connection | asyncpg.Pool) -> list[asyncpg.Record]:
    """Every agency with its channels."""
    return await conn.fetch("SELECT id, channels, partitions FROM notify.agencies ORDER BY id")


async def insert_assignment(conn: asyncpg.Connection, row: dict[str, Any]) -> asyncpg.Record | None:
    """Record an offer to deliver and return it; None if already known or taken back before it arrived."""
    return await conn.fetchrow(
        "WITH stored AS (INSERT INTO notify.assignments (id, call_id, agency_id, team_id, status, deadline,"
        " details, correlation, attempt) VALUES ($1::uuid, $2::uuid, $3, $4,"
        " coalesce((SELECT kind FROM notify.taken_back WHERE assignment_id = $1::uuid), 'offered'),"
        " $5, $6::jsonb, $7, $8)"
        " ON CONFLICT DO NOTHING RETURNING *) SELECT * FROM stored WHERE status = 'offered'",
        row["id"],
        row["call_id"],
        row["agency_id"],
        row["team_id"],
        row["deadline"],
        row["details"],
        row["correlation"],
        row["attempt"],
    )


async def remember_taken_back(conn: asyncpg.Connection, assignment_id: str, kind: str) -> None:
    """Keep a withdrawal or expiry whose offer has not arrived yet."""
    await conn.execute(
        "INSERT INTO notify.taken_back (assignment_id, kind) VALUES ($1::uuid, $2) ON CONFLICT DO NOTHING",
        assignment_id,
        kind,
    )


async def lock_agency(conn: asyncpg.Connection, agency_id: str) -> None:
    """Lock an agency's row: the first lock of every notify transaction that changes an assignment."""
    await conn.execute("SELECT 1 FROM notify.agencies WHERE id = $1 FOR NO KEY UPDATE", agency_id)


async def record_refusal(conn: asyncpg.Connection, row: dict[str, Any]) -> None:
    """Keep a step the lifecycle refused: what asked for it, the state it met, and why not."""
    await conn.execute(
        "INSERT INTO notify.refusals (assignment_id, call_id, source, from_state, step, code, detail)"
        " VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7)",
        row["assignment_id"],
        row.get("call_id"),
        row["source"],
        row["from_state"],
        row["step"],
        row["code"],
        row.get("detail"),
    )


async def agencies_with_due_offers(conn: asyncpg.Connection | asyncpg.Pool, now: datetime) -> list[str]:
    """Agencies holding an unanswered offer whose deadline is `now` or earlier."""
    rows = await conn.fetch(
        "SELECT DISTINCT agency_id FROM notify.assignments WHERE status = 'offered' AND deadline <= $1", now
    )
    return [r["agency_id"] for r in rows]


async def lock_due_offers(
    conn: asyncpg.Connection, agency_id: str, now: datetime, limit: int
) -> list[asyncpg.Record]:
    """An agency's unanswered offers past their deadline, locked (the caller holds the agency's lock)."""
    return await conn.fetch(
        "SELECT * FROM notify.assignments WHERE agency_id = $1 AND status = 'offered' AND deadline <= $2"
        " ORDER BY deadline LIMIT $3 FOR UPDATE",
        agency_id,
        now,
        limit,
    )


async def get_for_update(conn: asyncpg.Connection, assignment_id: str) -> asyncpg.Record | None:
    """One assignment, locked so concurrent answers apply one at a time."""
    return await conn.fetchrow(
        "SELECT * FROM notify.assignments WHERE id = $1::uuid FOR UPDATE", assignment_id
    )


async def set_status(
    conn: asyncpg.Connection, assignment_id: str, status: str, answer: dict[str, Any] | None = None
) -> None:
    """Move an assignment (and keep the agency's answer)."""
    await conn.execute(
        "UPDATE notify.assignments SET status = $2, answer = coalesce($3::jsonb, answer),"
        " updated_at = now() WHERE id = $1::uuid",
        assignment_id,
        status,
        answer,
    )


async def list_for_agency(
    conn: asyncpg.Connection, agency_id: str, status: str | None, limit: int
) -> list[asyncpg.Record]:
    """An agency's assignments, newest first."""
    return await conn.fetch(
        "SELECT * FROM notify.assignments WHERE agency_id = $1 AND ($2::text IS NULL OR status = $2)"
        " ORDER BY offered_at DESC LIMIT $3",
        agency_id,
        status,
        limit,
    )


async def agency(conn: asyncpg.Connection | asyncpg.Pool, agency_id: str) -> asyncpg.Record | None:
    """One agency with its channels and webhook."""
    return await conn.fetchrow("SELECT * FROM notify.agencies WHERE id = $1", agency_id)


async def get(conn: asyncpg.Connection | asyncpg.Pool, assignment_id: str) -> asyncpg.Record | None:
    """One assignment, unlocked."""
    return await conn.fetchrow("SELECT * FROM notify.assignments WHERE id = $1::uuid", assignment_id)


async def append_feed(
    conn: asyncpg.Connection,
    agency_id: str,
    kind: str,
    assignment_id: str,
    call_id: str,
    page: int | None,
    data: dict[str, Any],
) -> int:
    """Add one entry to the agency's SSE feed and return its sequence number."""
    # Bumping the counter locks the agency's row until commit, so entries commit in sequence order.
    # One statement: the counter, the entry, and the NOTIFY that wakes the agency's streams at commit.
    seq = await conn.fetchval(
        "WITH bumped AS (UPDATE notify.agencies SET feed_seq = feed_seq + 1 WHERE id = $1"
        " RETURNING feed_seq),"
        " entry AS (INSERT INTO notify.feed (agency_id, seq, kind, assignment_id, call_id, page, data)"
        " SELECT $1, feed_seq, $2, $3::uuid, $4::uuid, $5, $6::text::jsonb FROM bumped RETURNING seq)"
        " SELECT seq FROM entry, LATERAL (SELECT pg_notify('notify_feed', $1)) woken",
        agency_id,
        kind,
        assignment_id,
        call_id,
        page,
        # Encoded here, not by the pool's codec: the views hold datetimes and UUIDs, written as text.
        json.dumps(data, default=_jsonable),
    )
    if seq is None:
        raise LookupError(f"unknown agency {agency_id}")
    return int(seq)


async def feed_after(pool: asyncpg.Pool, agency_id: str, after: int, limit: int) -> list[asyncpg.Record]:
    """The agency's feed entries after sequence `after`, oldest first."""
    return await pool.fetch(
        "SELECT seq, kind, data FROM notify.feed WHERE agency_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        agency_id,
        after,
        limit,
    )


async def feed_start(pool: asyncpg.Pool, agency_id: str, replay_s: float) -> int:
    """Where a stream without Last-Event-ID starts: just before the entries of the last `replay_s`."""
    seq = await pool.fetchval(
        "SELECT min(seq) - 1 FROM notify.feed WHERE agency_id = $1"
        " AND created_at > now() - make_interval(secs => $2)",
        agency_id,
        replay_s,
    )
    if seq is None:
        seq = await pool.fetchval("SELECT feed_seq FROM notify.agencies WHERE id = $1", agency_id)
    return int(seq or 0)


_DELIVERY_COLUMNS = (
    ("notification_id", "uuid"),
    ("assignment_id", "uuid"),
    ("call_id", "uuid"),
    ("agency_id", "text"),
    ("channel", "text"),
    ("kind", "text"),
    ("page", "int"),
    ("attempt", "int"),
    ("outcome", "text"),
    ("error", "text"),
)


async def record_deliveries(conn: asyncpg.Connection, rows: list[dict[str, Any]]) -> None:
    """Keep delivery attempts and their outcomes (one statement however many)."""
    names = ", ".join(name for name, _ in _DELIVERY_COLUMNS)
    arrays = ", ".join(f"${n}::{kind}[]" for n, (_, kind) in enumerate(_DELIVERY_COLUMNS, start=1))
    await conn.execute(
        f"INSERT INTO notify.deliveries ({names}) SELECT * FROM unnest({arrays})",
        *[[row.get(name) for row in rows] for name, _ in _DELIVERY_COLUMNS],
    )


async def queue_webhook(conn: asyncpg.Connection, row: dict[str, Any]) -> None:
    """Queue one webhook message; the sender takes each call's messages in order."""
    await conn.execute(
        "INSERT INTO notify.webhook_queue (notification_id, agency_id, call_id, assignment_id, kind, page,"
        " body) VALUES ($1::uuid, $2, $3::uuid, $4::uuid, $5, $6, $7) ON CONFLICT DO NOTHING",
        row["notification_id"],
        row["agency_id"],
        row["call_id"],
        row["assignment_id"],
        row["kind"],
        row["page"],
        row["body"],
    )


async def lease_webhooks(conn: asyncpg.Connection, lease_s: float, limit: int) -> list[asyncpg.Record]:
    """Take the due webhook messages that head their call's queue, leased for `lease_s`.

    A message waits while an earlier one of the same call and agency is pending, so each call's
    messages reach the agency in order; the lease keeps two senders from taking the same one.
    """
    return await conn.fetch(
        "UPDATE notify.webhook_queue q SET attempts = q.attempts + 1,"
        " next_attempt_at = now() + make_interval(secs => $1)"
        " FROM notify.agencies a"
        " WHERE a.id = q.agency_id AND q.id IN ("
        "  SELECT d.id FROM notify.webhook_queue d WHERE d.state = 'pending' AND d.next_attempt_at <= now()"
        "  AND NOT EXISTS (SELECT 1 FROM notify.webhook_queue e WHERE e.state = 'pending'"
        "   AND e.agency_id = d.agency_id AND e.call_id = d.call_id AND e.id < d.id)"
        "  ORDER BY d.id LIMIT $2 FOR UPDATE SKIP LOCKED)"
        " RETURNING q.*, a.webhook_url, a.webhook_secret, a.webhook_allow_private, a.webhook_disabled_at",
        lease_s,
        limit,
    )


async def finish_webhook(
    conn: asyncpg.Connection, queue_id: int, state: str, error: str | None, retry_in_s: float | None = None
) -> None:
    """Mark a webhook message delivered or failed, or put it back to wait `retry_in_s`."""
    await conn.execute(
        "UPDATE notify.webhook_queue SET state = $2, last_error = $3,"
        " next_attempt_at = CASE WHEN $4::float8 IS NULL THEN next_attempt_at"
        " ELSE now() + make_interval(secs => $4::float8) END WHERE id = $1",
        queue_id,
        state,
        error,
        retry_in_s,
    )


async def disable_webhook(conn: asyncpg.Connection, agency_id: str) -> list[asyncpg.Record]:
    """Disable an agency's endpoint (it answered 410) and fail its pending messages; return them."""
    await conn.execute(
        "UPDATE notify.agencies SET webhook_disabled_at = now()"
        " WHERE id = $1 AND webhook_disabled_at IS NULL",
        agency_id,
    )
    return await conn.fetch(
        "UPDATE notify.webhook_queue SET state = 'failed', last_error = 'endpoint disabled after 410'"
        " WHERE agency_id = $1 AND state = 'pending' RETURNING *",
        agency_id,
    )


_DUE_REPAGE = (
    "status = 'offered' AND deadline > now()"
    " AND last_paged_at <= now() - make_interval(secs => $1) AND pages <= $2"
)


async def agencies_with_due_repages(
    conn: asyncpg.Connection | asyncpg.Pool, every_s: float, max_repages: int
) -> list[str]:
    """Agencies holding an offer to re-page (see lock_due_repages)."""
    rows = await conn.fetch(
        f"SELECT DISTINCT agency_id FROM notify.assignments WHERE {_DUE_REPAGE}", every_s, max_repages
    )
    return [r["agency_id"] for r in rows]


async def lock_due_repages(
    conn: asyncpg.Connection, agency_id: str, every_s: float, limit: int, max_repages: int
) -> list[asyncpg.Record]:
    """An agency's unanswered offers before their deadline, last paged `every_s` ago or more and
    re-paged fewer than `max_repages` times; locked, skipped if busy (the caller holds the agency)."""
    return await conn.fetch(
        f"SELECT * FROM notify.assignments WHERE agency_id = $4 AND {_DUE_REPAGE}"
        " ORDER BY last_paged_at LIMIT $3 FOR UPDATE SKIP LOCKED",
        every_s,
        max_repages,
        limit,
        agency_id,
    )


async def mark_paged(conn: asyncpg.Connection, assignment_id: str) -> int:
    """Count one more page of an offer and return its number."""
    return int(
        await conn.fetchval(
            "UPDATE notify.assignments SET pages = pages + 1, last_paged_at = now()"
            " WHERE id = $1::uuid RETURNING pages",
            assignment_id,
        )
    )


async def deliveries(conn: asyncpg.Connection | asyncpg.Pool, assignment_id: str) -> list[asyncpg.Record]:
    """Every recorded delivery attempt for an assignment, oldest first."""
    return await conn.fetch(
        "SELECT * FROM notify.deliveries WHERE assignment_id = $1::uuid ORDER BY id", assignment_id
    )
