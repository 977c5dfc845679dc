"""The follow-up call a 988 center owes after taking a call: scheduled when it accepts, closed by
the center, and reported once when still open at its due time (an event in the trail, which intake
tells the PSAP, and a count)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from prometheus_client import Counter

from services.notify import repository
from shared import events, topics
from shared.auth import Principal
from shared.domain_errors import Conflict, NotFound
from shared.envelope import new_event, utcnow
from shared.failures import retry_conflicts
from shared.outbox import enqueue

SERVICE = "notify"
FOLLOW_UPS_OVERDUE = Counter(
    "careroute_follow_ups_overdue_total", "Follow-ups a 988 center left open past their due time"
)


def _ref(row: repository.FollowUpRow) -> dict[str, Any]:
    return {
        "follow_up_id": str(row.id),
        "call_id": str(row.call_id),
        "agency_id": row.agency_id,
        "assignment_id": str(row.assignment_id),
        "due_at": row.due_at,
    }


async def _publish(
    conn: asyncpg.Connection, topic: str, row: repository.FollowUpRow, payload: events.Payload
) -> None:
    event = new_event(topic, SERVICE, str(row.call_id), payload, correlationid=row.correlation)
    await enqueue(conn, SERVICE, event)


def view(row: repository.FollowUpRow) -> dict[str, Any]:
    """A follow-up as its center sees it."""
    state = "closed" if row.closed_at is not None else "overdue" if row.overdue_at is not None else "open"
    return {
        "follow_up_id": str(row.id),
        "call_id": str(row.call_id),
        "assignment_id": str(row.assignment_id),
        "state": state,
        "due_at": row.due_at,
        "overdue_at": row.overdue_at,
        "closed_at": row.closed_at,
        "outcome": row.outcome,
    }


async def schedule(
    conn: asyncpg.Connection, assignment: repository.AssignmentRow, accepted_at: datetime
) -> None:
    """In the acceptance's transaction: when the accepting agency is the 988 center, it owes a
    follow-up due `follow_up_within` hours from now (publish `follow_ups.scheduled.v1`)."""
    hours = await repository.follow_up_within(conn, assignment.agency_id)
    if hours is None:
        return
    stored = await repository.insert_follow_up(
        conn,
        {
            "id": str(uuid.uuid4()),
            "assignment_id": str(assignment.id),
            "call_id": str(assignment.call_id),
            "agency_id": assignment.agency_id,
            "correlation": assignment.correlation,
            "due_at": accepted_at + timedelta(hours=hours),
        },
    )
    if stored is not None:
        await _publish(conn, topics.FOLLOW_UPS_SCHEDULED, stored, events.FollowUpScheduled(**_ref(stored)))


async def close(
    pool: asyncpg.Pool,
    agency: Principal,
    follow_up_id: str,
    outcome: events.FollowUpOutcome,
    note: str | None,
) -> dict[str, Any]:
    """The center closes its follow-up with an outcome (publish `follow_ups.closed.v1`, late when
    past due); the same close again is a no-op, another outcome for a closed one is a conflict.
    NotFound for another agency's follow-up and an unknown one alike."""
    try:
        uuid.UUID(follow_up_id)
    except ValueError:
        raise NotFound("follow-up") from None

    async def work() -> dict[str, Any]:
        async with pool.acquire() as conn, conn.transaction():
            await repository.lock_agency(conn, agency.tenant_id)
            row = await repository.lock_follow_up(conn, follow_up_id)
            if row is None or row.agency_id != agency.tenant_id:
                raise NotFound("follow-up")
            if row.closed_at is not None:
                if row.outcome == outcome:
                    return view(row)
                raise Conflict(f"the follow-up was closed already ({row.outcome})", "follow_up_closed")
            now = utcnow()
            closed = await repository.close_follow_up(conn, follow_up_id, outcome, note, now)
            payload = events.FollowUpClosed(
                **_ref(closed), outcome=outcome, closed_at=now, late=now > row.due_at
            )
            await _publish(conn, topics.FOLLOW_UPS_CLOSED, closed, payload)
            return view(closed)

    return await retry_conflicts(work)


async def report_overdue(conn: asyncpg.Connection, row: repository.FollowUpRow, now: datetime) -> None:
    """A follow-up still open at its due time (locked, after its agency's lock): noted once, and
    `follow_ups.overdue.v1` published for the trail and the PSAP."""
    await repository.mark_overdue(conn, str(row.id), now)
    await _publish(conn, topics.FOLLOW_UPS_OVERDUE, row, events.FollowUpOverdue(**_ref(row), overdue_at=now))


async def list_for(
    pool: asyncpg.Pool, agency: Principal, state: str | None, limit: int
) -> list[dict[str, Any]]:
    """The center's follow-ups, newest first."""
    return [view(r) for r in await repository.follow_ups_of(pool, agency.tenant_id, state, limit)]
