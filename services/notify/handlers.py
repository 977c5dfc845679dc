"""Notify's use cases: deliver offers to agencies and take their answers and status reports."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg

from services.notify import delivery, domain, repository
from shared import events, topics
from shared.auth import Principal
from shared.envelope import Envelope, new_event, utcnow
from shared.errors import not_found
from shared.outbox import enqueue

SERVICE = "notify"


async def on_offered(conn: asyncpg.Connection, event: Envelope, offer: events.AssignmentOffered) -> None:
    """Record the offer and deliver it to the agency: only the minimum a team needs leaves here."""
    details = domain.minimum(offer.offer)
    row = await repository.insert_assignment(
        conn,
        {
            "id": offer.assignment_id,
            "call_id": offer.call_id,
            "agency_id": offer.agency_id,
            "team_id": offer.team_id,
            "deadline": offer.deadline,
            "details": details.model_dump(mode="json"),
            "correlation": event.correlationid,
        },
    )
    if row is not None:
        message = events.AgencyAssignmentMessage(
            kind="offered",
            assignment_id=offer.assignment_id,
            call_id=offer.call_id,
            team_id=offer.team_id,
            deadline=offer.deadline,
            details=details,
        )
        await delivery.to_agency(
            conn, offer.agency_id, message, view(row), correlation=event.correlationid, cause=event, page=1
        )


async def on_taken_back(conn: asyncpg.Connection, event: Envelope, ref: Any) -> None:
    """An offer expired or was withdrawn: record it and tell the agency."""
    kind = "withdrawn" if isinstance(ref, events.AssignmentWithdrawn) else "expired"
    row = await repository.get_for_update(conn, ref.assignment_id)
    if row is None:
        # The offer's topic is consumed apart from this one: it may still come, and must not go out.
        await repository.remember_taken_back(conn, ref.assignment_id, kind)
        return
    if row["agency_id"] != ref.agency_id or row["status"] == kind:
        return
    await repository.set_status(conn, ref.assignment_id, kind)
    message = events.AgencyAssignmentMessage(
        kind=kind,
        assignment_id=ref.assignment_id,
        call_id=ref.call_id,
        team_id=ref.team_id,
        reason=getattr(ref, "reason", None),
    )
    updated = await repository.get(conn, ref.assignment_id)
    assert updated is not None
    await delivery.to_agency(
        conn,
        ref.agency_id,
        message,
        {**view(updated), "reason": message.reason},
        correlation=row["correlation"],
        cause=event,
    )


async def repage(conn: asyncpg.Connection, row: asyncpg.Record) -> None:
    """Send an unanswered offer again through every channel (the caller holds the row's lock)."""
    page = await repository.mark_paged(conn, str(row["id"]))
    message = events.AgencyAssignmentMessage(
        kind="offered",
        assignment_id=str(row["id"]),
        call_id=str(row["call_id"]),
        team_id=row["team_id"],
        deadline=row["deadline"],
        details=events.OfferDetails.model_validate_json(row["details"]),
    )
    await delivery.to_agency(
        conn, row["agency_id"], message, view(row), correlation=row["correlation"], page=page
    )


async def _owned(conn: asyncpg.Connection, agency: Principal, assignment_id: str) -> asyncpg.Record:
    try:
        uuid.UUID(assignment_id)
    except ValueError:
        raise not_found("assignment") from None
    row = await repository.get_for_update(conn, assignment_id)
    if row is None or row["agency_id"] != agency.tenant_id:
        raise not_found("assignment")
    return row


def view(row: asyncpg.Record) -> dict[str, Any]:
    """An assignment as its agency sees it."""
    return {
        "assignment_id": str(row["id"]),
        "call_id": str(row["call_id"]),
        "team_id": row["team_id"],
        "status": row["status"],
        "deadline": row["deadline"],
        "details": json.loads(row["details"]),
        "answer": json.loads(row["answer"]) if row["answer"] else None,
        "offered_at": row["offered_at"],
        "updated_at": row["updated_at"],
    }


async def answer(
    pool: asyncpg.Pool,
    agency: Principal,
    assignment_id: str,
    response: str,
    reason_code: str | None = None,
    reason_text: str | None = None,
) -> dict[str, Any]:
    """Accept or decline an offer and publish `assignments.responded.v1` (idempotent)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _owned(conn, agency, assignment_id)
        now = utcnow()
        if not domain.check_answer(row["status"], row["deadline"], now, response):
            return view(row)
        await repository.set_status(
            conn,
            assignment_id,
            response,
            {
                "response": response,
                "reason_code": reason_code,
                "reason_text": reason_text,
                "at": now.isoformat(),
            },
        )
        payload = events.AssignmentResponded(
            assignment_id=assignment_id,
            call_id=str(row["call_id"]),
            agency_id=row["agency_id"],
            team_id=row["team_id"],
            response=response,
            reason_code=reason_code,
            reason_text=reason_text,
            responded_at=now,
        )
        await enqueue(
            conn,
            SERVICE,
            new_event(
                topics.ASSIGNMENTS_RESPONDED,
                SERVICE,
                str(row["call_id"]),
                payload,
                correlationid=row["correlation"],
            ),
        )
        updated = await repository.get_for_update(conn, assignment_id)
        assert updated is not None
        await delivery.to_feed(conn, agency.tenant_id, response, view(updated))
        return view(updated)


async def report_status(
    pool: asyncpg.Pool,
    agency: Principal,
    assignment_id: str,
    status: events.TeamStatus,
    disposition: str | None,
    urgency: str | None,
) -> dict[str, Any]:
    """Record a status report that follows the lifecycle and publish it (a repeat is a no-op).

    A backup request is urgent: its event is written with the request and the outbox relay,
    woken by the commit, publishes it at once.
    """
    async with pool.acquire() as conn, conn.transaction():
        row = await _owned(conn, agency, assignment_id)
        new_state = domain.check_status(row["status"], status.value)
        if domain.is_repeat(row["status"], status.value):
            return view(row)
        await repository.set_status(conn, assignment_id, new_state)
        payload = events.AssignmentStatusChanged(
            assignment_id=assignment_id,
            call_id=str(row["call_id"]),
            agency_id=row["agency_id"],
            team_id=row["team_id"],
            status=status,
            disposition=disposition,
            urgency=urgency,
            reported_at=utcnow(),
        )
        await enqueue(
            conn,
            SERVICE,
            new_event(
                topics.ASSIGNMENTS_STATUS_CHANGED,
                SERVICE,
                str(row["call_id"]),
                payload,
                correlationid=row["correlation"],
            ),
        )
        updated = await repository.get_for_update(conn, assignment_id)
        assert updated is not None
        answer = view(updated)
        await delivery.to_feed(conn, agency.tenant_id, status.value, {**answer, "urgency": urgency})
        return answer


HANDLERS = {
    topics.ASSIGNMENTS_OFFERED: on_offered,
    topics.ASSIGNMENTS_EXPIRED: on_taken_back,
    topics.ASSIGNMENTS_WITHDRAWN: on_taken_back,
}
