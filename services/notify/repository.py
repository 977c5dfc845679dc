"""SQL for notify's schema.

Lock order, the one every notify transaction keeps: first the agency's row (`lock_agency`; its feed
sequence lives there and every message to the agency bumps it), then the assignment's row
(`get_for_update`, `lock_due_offers`, `lock_due_repages`, `lock_due_watches`). Why: the consumer
applies a run of events in one transaction, so it holds the agency's row from one offer's message
while it locks the run's next offer; a decline of that offer taking the offer's row first would
then wait for the agency's row the run holds, a cycle PostgreSQL breaks by killing one of them.
With the agency's row first everywhere, one simply waits for the other. Transactions touching
several agencies (a run) may still meet another such run in the opposite order; those conflicts
are retried.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import asyncpg

from services.notify.rules import DEFAULT_WATCH, Watch, watch_rules
from services.notify.watch import Running, Stage
from shared import outbox
from shared.auth import Credential, replace_credentials
from shared.db import as_row, as_rows, columns
from shared.events import Timer
from shared.jurisdiction import Jurisdiction

SCHEMA = "notify"


def _jsonable(value: object) -> str:
    # Datetimes in ISO 8601 (what browsers parse), UUIDs and the rest as text.
    return value.isoformat() if isinstance(value, datetime) else str(value)


async def load_jurisdiction(conn: asyncpg.Connection, j: Jurisdiction) -> None:
    """Store agencies' channels and tokens and the watch section's timers (idempotent)."""
    await conn.execute(
        "INSERT INTO notify.watch_config (rules) VALUES ($1::jsonb)"
        " ON CONFLICT (only_row) DO UPDATE SET rules = EXCLUDED.rules",
        watch_rules(j).model_dump(mode="json"),
    )
    for a in j.agencies:
        hook = a.webhook
        # A new webhook URL re-enables an endpoint that answered 410; the same URL stays disabled.
        await conn.execute(
            "INSERT INTO notify.agencies (id, name, channels, partitions, webhook_url, webhook_secret,"
            " webhook_allow_private, liveness_timeout_s) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            " ON CONFLICT (id) DO UPDATE SET name = $2, channels = $3, partitions = $4,"
            " webhook_url = $5, webhook_secret = $6, webhook_allow_private = $7,"
            " webhook_disabled_at = CASE WHEN notify.agencies.webhook_url IS DISTINCT FROM $5"
            " THEN NULL ELSE notify.agencies.webhook_disabled_at END,"
            # A new timeout starts the watch afresh: the agency gets the whole of it to show life.
            " watched_since = CASE WHEN notify.agencies.liveness_timeout_s IS DISTINCT FROM $8"
            " THEN now() ELSE notify.agencies.watched_since END, liveness_timeout_s = $8",
            a.id,
            a.name,
            list(a.channels),
            a.partitions,
            hook.url if hook else None,
            hook.secret if hook else None,
            hook.allow_private if hook else False,
            a.liveness_timeout_s,
        )
    line = j.crisis_line
    # Only the 988 center's agency owes follow-ups; a reload that drops the line ends new ones.
    await conn.execute(
        "UPDATE notify.agencies SET follow_up_within_h = CASE WHEN id = $1 THEN $2::float8 END",
        line.agency if line else None,
        line.follow_up_within if line else None,
    )
    await replace_credentials(conn, SCHEMA, [Credential(a.token, a.id, "agency") for a in j.agencies])


@dataclass(frozen=True, slots=True)
class AgencyChannels:
    """An agency and the channels its messages go through."""

    id: str
    channels: list[str]
    partitions: int


@dataclass(frozen=True, slots=True)
class AgencyRow:
    """An agency with its channels, its webhook and where its feed stands."""

    id: str
    name: str
    channels: list[str]
    partitions: int
    webhook_url: str | None
    webhook_secret: str | None
    webhook_allow_private: bool
    webhook_disabled_at: datetime | None
    feed_seq: int


@dataclass(frozen=True, slots=True)
class AssignmentRow:
    """An offer notify delivers to an agency, and how it stands."""

    id: uuid.UUID
    call_id: uuid.UUID
    agency_id: str
    team_id: str
    status: str
    deadline: datetime
    details: dict[str, Any]
    correlation: str
    answer: dict[str, Any] | None
    offered_at: datetime
    updated_at: datetime
    pages: int
    last_paged_at: datetime
    attempt: int | None
    eta_min: float | None
    watch_timer: str | None
    watch_due: datetime | None
    watch_stage: str | None
    watch_fire_at: datetime | None
    # How many teams shared this offer's attempt (None: offered alone).
    offered_with: int | None = None

    def running(self) -> Running | None:
        """The timer watching this assignment, if one runs (or ran out and is overdue)."""
        if self.watch_timer is None or self.watch_due is None or self.watch_stage is None:
            return None
        timer, stage = cast(Timer, self.watch_timer), cast(Stage, self.watch_stage)
        return Running(timer, self.watch_due, stage, self.watch_fire_at)


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One entry of an agency's SSE feed."""

    seq: int
    kind: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WebhookMessage:
    """One queued webhook message and how its delivery stands."""

    id: int
    notification_id: uuid.UUID
    agency_id: str
    call_id: uuid.UUID
    assignment_id: uuid.UUID
    kind: str
    page: int | None
    body: bytes
    state: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    last_error: str | None


@dataclass(frozen=True, slots=True)
class LeasedWebhook(WebhookMessage):
    """A webhook message taken to send, with its agency's endpoint."""

    # Messages are queued only for an agency with a webhook, which has a URL and a secret.
    webhook_url: str
    webhook_secret: str
    webhook_allow_private: bool
    webhook_disabled_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One recorded delivery attempt of a message to an agency."""

    id: int
    notification_id: uuid.UUID
    assignment_id: uuid.UUID
    call_id: uuid.UUID
    agency_id: str
    channel: str
    kind: str
    page: int | None
    attempt: int
    outcome: str
    error: str | None
    at: datetime


_ASSIGNMENT = columns(AssignmentRow)


async def agencies(conn: asyncpg.Connection | asyncpg.Pool) -> list[AgencyChannels]:
    """Every agency with its channels."""
    return as_rows(
        AgencyChannels, await conn.fetch(f"SELECT {columns(AgencyChannels)} FROM notify.agencies ORDER BY id")
    )


async def insert_assignment(conn: asyncpg.Connection, row: dict[str, Any]) -> AssignmentRow | None:
    """Record an offer to deliver and return it; None if already known or taken back before it arrived."""
    stored = await conn.fetchrow(
        # What an early update kept goes out in the offer and is not kept twice (a callback number).
        "WITH early AS (DELETE FROM notify.early_updates WHERE assignment_id = $1::uuid RETURNING details),"
        " stored AS (INSERT INTO notify.assignments (id, call_id, agency_id, team_id, status, deadline,"
        " details, correlation, attempt, eta_min, offered_with) VALUES ($1::uuid, $2::uuid, $3, $4,"
        " coalesce((SELECT kind FROM notify.taken_back WHERE assignment_id = $1::uuid), 'offered'),"
        " $5, coalesce((SELECT details FROM early), $6::jsonb), $7, $8, $9, $10)"
        f" ON CONFLICT DO NOTHING RETURNING {_ASSIGNMENT})"
        f" SELECT {_ASSIGNMENT} FROM stored WHERE status = 'offered'",
        row["id"],
        row["call_id"],
        row["agency_id"],
        row["team_id"],
        row["deadline"],
        row["details"],
        row["correlation"],
        row["attempt"],
        row.get("eta_min"),
        row.get("offered_with"),
    )
    return as_row(AssignmentRow, stored)


# The states in which an assignment has taken its call.
TOOK_CALL = ["accepted", "en_route", "on_scene", "cleared"]


async def taken_by_another(conn: asyncpg.Connection, call_id: str, assignment_id: str) -> bool:
    """Whether another offer of the call was accepted first (for an offer of a parallel attempt).

    The advisory lock on the call, held to the end of the transaction, orders concurrent accepts of
    its offers, each made under its own agency's lock; the check is a statement of its own so that
    it sees what an accept committed while this one waited for the lock.
    """
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1::text, 7))", call_id)
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM notify.assignments WHERE call_id = $1::uuid"
            " AND id <> $2::uuid AND status = ANY($3::text[]))",
            call_id,
            assignment_id,
            TOOK_CALL,
        )
    )


async def remember_update(conn: asyncpg.Connection, assignment_id: str, details: dict[str, Any]) -> None:
    """Keep the newest details of an offer that has not arrived yet, so it goes out with them."""
    await conn.execute(
        "INSERT INTO notify.early_updates (assignment_id, details) VALUES ($1::uuid, $2::jsonb)"
        " ON CONFLICT (assignment_id) DO UPDATE SET details = EXCLUDED.details, at = now()",
        assignment_id,
        details,
    )


async def set_details(conn: asyncpg.Connection, assignment_id: str, details: dict[str, Any]) -> None:
    """Replace what the agency is told of an assignment (a PSAP update changed it)."""
    await conn.execute(
        "UPDATE notify.assignments SET details = $2::jsonb, updated_at = now() WHERE id = $1::uuid",
        assignment_id,
        details,
    )


async def remember_taken_back(conn: asyncpg.Connection, assignment_id: str, kind: str) -> None:
    """Keep a withdrawal or expiry whose offer has not arrived yet."""
    await conn.execute(
        "INSERT INTO notify.taken_back (assignment_id, kind) VALUES ($1::uuid, $2) ON CONFLICT DO NOTHING",
        assignment_id,
        kind,
    )


async def lock_agency(conn: asyncpg.Connection, agency_id: str) -> AgencyRow | None:
    """Lock an agency's row and return it: the first lock of every notify transaction that changes
    an assignment. Locked, the row's channels and webhook stay as read until commit."""
    row = await conn.fetchrow(
        f"SELECT {columns(AgencyRow)} FROM notify.agencies WHERE id = $1 FOR NO KEY UPDATE", agency_id
    )
    return as_row(AgencyRow, row)


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


# What makes an assignment due for one of the jobs, by the job's clock `{now}`, and their order.
_OFFER_DUE = "status = 'offered' AND deadline <= {now}", "deadline"
_WATCH_DUE = "watch_fire_at <= {now}", "watch_fire_at"


async def _agencies_due(
    conn: asyncpg.Connection | asyncpg.Pool, due: tuple[str, str], now: datetime
) -> list[str]:
    rows = await conn.fetch(
        f"SELECT DISTINCT agency_id FROM notify.assignments WHERE {due[0].format(now='$1')}", now
    )
    return [r["agency_id"] for r in rows]


async def _lock_due(
    conn: asyncpg.Connection, agency_id: str, due: tuple[str, str], now: datetime, limit: int
) -> list[AssignmentRow]:
    rows = await conn.fetch(
        f"SELECT {_ASSIGNMENT} FROM notify.assignments WHERE agency_id = $1 AND {due[0].format(now='$2')}"
        f" ORDER BY {due[1]} LIMIT $3 FOR UPDATE",
        agency_id,
        now,
        limit,
    )
    return as_rows(AssignmentRow, rows)


async def agencies_with_due_offers(conn: asyncpg.Connection | asyncpg.Pool, now: datetime) -> list[str]:
    """Agencies holding an unanswered offer whose deadline is `now` or earlier."""
    return await _agencies_due(conn, _OFFER_DUE, now)


async def lock_due_offers(
    conn: asyncpg.Connection, agency_id: str, now: datetime, limit: int
) -> list[AssignmentRow]:
    """An agency's unanswered offers past their deadline, locked (the caller holds the agency's lock)."""
    return await _lock_due(conn, agency_id, _OFFER_DUE, now, limit)


async def get_for_update(conn: asyncpg.Connection, assignment_id: str) -> AssignmentRow | None:
    """One assignment, locked so concurrent answers apply one at a time."""
    row = await conn.fetchrow(
        f"SELECT {_ASSIGNMENT} FROM notify.assignments WHERE id = $1::uuid FOR UPDATE", assignment_id
    )
    return as_row(AssignmentRow, row)


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
) -> list[AssignmentRow]:
    """An agency's assignments, newest first."""
    rows = await conn.fetch(
        f"SELECT {_ASSIGNMENT} FROM notify.assignments WHERE agency_id = $1"
        " AND ($2::text IS NULL OR status = $2) ORDER BY offered_at DESC LIMIT $3",
        agency_id,
        status,
        limit,
    )
    return as_rows(AssignmentRow, rows)


async def agency(conn: asyncpg.Connection | asyncpg.Pool, agency_id: str) -> AgencyRow | None:
    """One agency with its channels and webhook."""
    row = await conn.fetchrow(f"SELECT {columns(AgencyRow)} FROM notify.agencies WHERE id = $1", agency_id)
    return as_row(AgencyRow, row)


async def get(conn: asyncpg.Connection | asyncpg.Pool, assignment_id: str) -> AssignmentRow | None:
    """One assignment, unlocked."""
    row = await conn.fetchrow(
        f"SELECT {_ASSIGNMENT} FROM notify.assignments WHERE id = $1::uuid", assignment_id
    )
    return as_row(AssignmentRow, row)


async def append_feed(
    conn: asyncpg.Connection,
    agency_id: str,
    kind: str,
    assignment_id: str,
    call_id: str,
    page: int | None,
    data: dict[str, Any],
    queued: list[Any] | None = None,
) -> int:
    """Add one entry to the agency's SSE feed and return its sequence number; with `queued` (the
    outbox's `row_values` of an event), the event goes into the outbox in the same statement."""
    # Bumping the counter locks the agency's row until commit, so entries commit in sequence order.
    # One statement: the counter, the entry, the event for the agency's topic, and the NOTIFYs that
    # wake the agency's streams and the relay at commit.
    relay = (
        f", {outbox.queue_cte(SCHEMA, 7, source='entry')}",
        ", LATERAL (SELECT pg_notify($11, '') FROM queued) relayed",
    )
    with_queued, relayed = relay if queued is not None else ("", "")
    seq = await conn.fetchval(
        "WITH bumped AS (UPDATE notify.agencies SET feed_seq = feed_seq + 1 WHERE id = $1"
        " RETURNING feed_seq),"
        " entry AS (INSERT INTO notify.feed (agency_id, seq, kind, assignment_id, call_id, page, data)"
        " SELECT $1, feed_seq, $2, $3::uuid, $4::uuid, $5, $6::text::jsonb FROM bumped RETURNING seq)"
        f"{with_queued} SELECT seq FROM entry, LATERAL (SELECT pg_notify('notify_feed', $1)) woken{relayed}",
        agency_id,
        kind,
        assignment_id,
        call_id,
        page,
        # Encoded here, not by the pool's codec: the views hold datetimes and UUIDs, written as text.
        json.dumps(data, default=_jsonable),
        *([] if queued is None else [*queued, outbox.channel(SCHEMA)]),
    )
    if seq is None:
        raise LookupError(f"unknown agency {agency_id}")
    return int(seq)


async def feed_after(pool: asyncpg.Pool, agency_id: str, after: int, limit: int) -> list[FeedEntry]:
    """The agency's feed entries after sequence `after`, oldest first."""
    rows = await pool.fetch(
        f"SELECT {columns(FeedEntry)} FROM notify.feed WHERE agency_id = $1 AND seq > $2"
        " ORDER BY seq LIMIT $3",
        agency_id,
        after,
        limit,
    )
    return as_rows(FeedEntry, rows)


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


# NOTIFYed at the commit of a transaction that queued a webhook message: it wakes the sender.
WEBHOOKS_CHANNEL = "notify_webhooks"

# A pending message that heads its call's line for its agency: only such a one is ever sent.
_HEADS_ITS_LINE = (
    "d.state = 'pending' AND NOT EXISTS (SELECT 1 FROM notify.webhook_queue e WHERE e.state = 'pending'"
    " AND e.agency_id = d.agency_id AND e.call_id = d.call_id AND e.id < d.id)"
)


async def queue_webhook(conn: asyncpg.Connection, row: dict[str, Any]) -> None:
    """Queue one webhook message; the sender takes each call's messages in order."""
    await conn.execute(
        "WITH queued AS (INSERT INTO notify.webhook_queue (notification_id, agency_id, call_id,"
        " assignment_id, kind, page, body) VALUES ($1::uuid, $2, $3::uuid, $4::uuid, $5, $6, $7)"
        f" ON CONFLICT DO NOTHING RETURNING 1) SELECT pg_notify('{WEBHOOKS_CHANNEL}', '') FROM queued",
        row["notification_id"],
        row["agency_id"],
        row["call_id"],
        row["assignment_id"],
        row["kind"],
        row["page"],
        row["body"],
    )


async def lease_webhooks(conn: asyncpg.Connection, lease_s: float, limit: int) -> list[LeasedWebhook]:
    """Take the due webhook messages that head their call's queue, leased for `lease_s`.

    A message waits while an earlier one of the same call and agency is pending, so each call's
    messages reach the agency in order; the lease keeps two senders from taking the same one.
    """
    rows = await conn.fetch(
        "UPDATE notify.webhook_queue q SET attempts = q.attempts + 1,"
        " next_attempt_at = now() + make_interval(secs => $1)"
        " FROM notify.agencies a"
        " WHERE a.id = q.agency_id AND q.id IN ("
        f"  SELECT d.id FROM notify.webhook_queue d WHERE {_HEADS_ITS_LINE} AND d.next_attempt_at <= now()"
        "  ORDER BY d.id LIMIT $2 FOR UPDATE SKIP LOCKED)"
        f" RETURNING {columns(WebhookMessage, 'q')}, a.webhook_url, a.webhook_secret,"
        " a.webhook_allow_private, a.webhook_disabled_at",
        lease_s,
        limit,
    )
    return as_rows(LeasedWebhook, rows)


async def next_webhook_due_in_s(conn: asyncpg.Connection | asyncpg.Pool) -> float | None:
    """Seconds until the next webhook message falls due (<= 0: due now; None: nothing pending),
    counting only messages that head their call's line, as lease_webhooks takes them."""
    due_in = await conn.fetchval(
        "SELECT extract(epoch FROM min(d.next_attempt_at) - now())::float8"
        f" FROM notify.webhook_queue d WHERE {_HEADS_ITS_LINE}"
    )
    return None if due_in is None else float(due_in)


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


async def disable_webhook(conn: asyncpg.Connection, agency_id: str) -> list[WebhookMessage]:
    """Disable an agency's endpoint (it answered 410) and fail its pending messages; return them."""
    await conn.execute(
        "UPDATE notify.agencies SET webhook_disabled_at = now()"
        " WHERE id = $1 AND webhook_disabled_at IS NULL",
        agency_id,
    )
    rows = await conn.fetch(
        "UPDATE notify.webhook_queue SET state = 'failed', last_error = 'endpoint disabled after 410'"
        f" WHERE agency_id = $1 AND state = 'pending' RETURNING {columns(WebhookMessage)}",
        agency_id,
    )
    return as_rows(WebhookMessage, rows)


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
) -> list[AssignmentRow]:
    """An agency's unanswered offers before their deadline, last paged `every_s` ago or more and
    re-paged fewer than `max_repages` times; locked, skipped if busy (the caller holds the agency)."""
    rows = await conn.fetch(
        f"SELECT {_ASSIGNMENT} FROM notify.assignments WHERE agency_id = $4 AND {_DUE_REPAGE}"
        " ORDER BY last_paged_at LIMIT $3 FOR UPDATE SKIP LOCKED",
        every_s,
        max_repages,
        limit,
        agency_id,
    )
    return as_rows(AssignmentRow, rows)


async def mark_paged(conn: asyncpg.Connection, assignment_id: str) -> int:
    """Count one more page of an offer and return its number."""
    return int(
        await conn.fetchval(
            "UPDATE notify.assignments SET pages = pages + 1, last_paged_at = now()"
            " WHERE id = $1::uuid RETURNING pages",
            assignment_id,
        )
    )


async def deliveries(conn: asyncpg.Connection | asyncpg.Pool, assignment_id: str) -> list[DeliveryRow]:
    """Every recorded delivery attempt for an assignment, oldest first."""
    rows = await conn.fetch(
        f"SELECT {columns(DeliveryRow)} FROM notify.deliveries WHERE assignment_id = $1::uuid ORDER BY id",
        assignment_id,
    )
    return as_rows(DeliveryRow, rows)


@dataclass(frozen=True, slots=True)
class FollowUpRow:
    """A follow-up call a 988 center owes after taking a call, and how it stands."""

    id: uuid.UUID
    assignment_id: uuid.UUID
    call_id: uuid.UUID
    agency_id: str
    correlation: str
    due_at: datetime
    created_at: datetime
    overdue_at: datetime | None
    closed_at: datetime | None
    outcome: str | None
    note: str | None


_FOLLOW_UP = columns(FollowUpRow)


async def follow_up_within(conn: asyncpg.Connection, agency_id: str) -> float | None:
    """Hours within which the agency must close a follow-up of a call it accepted (None: it owes none)."""
    hours = await conn.fetchval("SELECT follow_up_within_h FROM notify.agencies WHERE id = $1", agency_id)
    return None if hours is None else float(hours)


async def insert_follow_up(conn: asyncpg.Connection, row: dict[str, Any]) -> FollowUpRow | None:
    """Record the follow-up of an accepted assignment; None if it has one already."""
    stored = await conn.fetchrow(
        "INSERT INTO notify.follow_ups (id, assignment_id, call_id, agency_id, correlation, due_at)"
        " VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5, $6) ON CONFLICT (assignment_id) DO NOTHING"
        f" RETURNING {_FOLLOW_UP}",
        row["id"],
        row["assignment_id"],
        row["call_id"],
        row["agency_id"],
        row["correlation"],
        row["due_at"],
    )
    return as_row(FollowUpRow, stored)


async def lock_follow_up(conn: asyncpg.Connection, follow_up_id: str) -> FollowUpRow | None:
    """One follow-up, locked (the caller holds its agency's lock)."""
    row = await conn.fetchrow(
        f"SELECT {_FOLLOW_UP} FROM notify.follow_ups WHERE id = $1::uuid FOR UPDATE", follow_up_id
    )
    return as_row(FollowUpRow, row)


async def close_follow_up(
    conn: asyncpg.Connection, follow_up_id: str, outcome: str, note: str | None, at: datetime
) -> FollowUpRow:
    """Close a follow-up with its outcome."""
    row = await conn.fetchrow(
        "UPDATE notify.follow_ups SET closed_at = $2, outcome = $3, note = $4 WHERE id = $1::uuid"
        f" RETURNING {_FOLLOW_UP}",
        follow_up_id,
        at,
        outcome,
        note,
    )
    closed = as_row(FollowUpRow, row)
    assert closed is not None
    return closed


async def agencies_with_due_follow_ups(conn: asyncpg.Connection | asyncpg.Pool, now: datetime) -> list[str]:
    """Agencies holding an open follow-up due `now` or earlier that was not reported overdue yet."""
    rows = await conn.fetch(
        "SELECT DISTINCT agency_id FROM notify.follow_ups"
        " WHERE closed_at IS NULL AND overdue_at IS NULL AND due_at <= $1",
        now,
    )
    return [r["agency_id"] for r in rows]


async def lock_due_follow_ups(
    conn: asyncpg.Connection, agency_id: str, now: datetime, limit: int
) -> list[FollowUpRow]:
    """An agency's open follow-ups past due and not reported yet, locked (after the agency's lock)."""
    rows = await conn.fetch(
        f"SELECT {_FOLLOW_UP} FROM notify.follow_ups WHERE agency_id = $1 AND closed_at IS NULL"
        " AND overdue_at IS NULL AND due_at <= $2 ORDER BY due_at LIMIT $3 FOR UPDATE",
        agency_id,
        now,
        limit,
    )
    return as_rows(FollowUpRow, rows)


async def mark_overdue(conn: asyncpg.Connection, follow_up_id: str, at: datetime) -> None:
    """Note that a follow-up was reported overdue (once)."""
    await conn.execute("UPDATE notify.follow_ups SET overdue_at = $2 WHERE id = $1::uuid", follow_up_id, at)


async def follow_ups_of(
    conn: asyncpg.Connection | asyncpg.Pool, agency_id: str, state: str | None, limit: int
) -> list[FollowUpRow]:
    """An agency's follow-ups (`open`, `overdue` and still open, `closed`, or all), newest first."""
    rows = await conn.fetch(
        f"SELECT {_FOLLOW_UP} FROM notify.follow_ups WHERE agency_id = $1 AND CASE $2::text"
        " WHEN 'open' THEN closed_at IS NULL WHEN 'overdue' THEN closed_at IS NULL AND overdue_at IS NOT NULL"
        " WHEN 'closed' THEN closed_at IS NOT NULL ELSE true END ORDER BY created_at DESC LIMIT $3",
        agency_id,
        state,
        limit,
    )
    return as_rows(FollowUpRow, rows)


async def watch_config(conn: asyncpg.Connection) -> Watch:
    """The loaded jurisdiction's watch section (the defaults before one is loaded)."""
    raw = await conn.fetchval("SELECT rules FROM notify.watch_config")
    return DEFAULT_WATCH if raw is None else Watch.model_validate(raw)


async def set_watch(conn: asyncpg.Connection, assignment_id: str, running: Running | None) -> None:
    """Replace the timer watching an assignment (None: none watches it any more)."""
    await conn.execute(
        "UPDATE notify.assignments SET watch_timer = $2, watch_due = $3, watch_stage = $4,"
        " watch_fire_at = $5, updated_at = now() WHERE id = $1::uuid",
        assignment_id,
        running.timer if running else None,
        running.due_at if running else None,
        running.stage if running else None,
        running.fire_at if running else None,
    )


async def agencies_with_due_watches(conn: asyncpg.Connection | asyncpg.Pool, now: datetime) -> list[str]:
    """Agencies holding an assignment whose timer fires at `now` or earlier."""
    return await _agencies_due(conn, _WATCH_DUE, now)


async def lock_due_watches(
    conn: asyncpg.Connection, agency_id: str, now: datetime, limit: int
) -> list[AssignmentRow]:
    """An agency's assignments whose timer fires at `now` or earlier, locked (after the agency)."""
    return await _lock_due(conn, agency_id, _WATCH_DUE, now, limit)
