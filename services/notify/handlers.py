"""Notify's use cases: deliver offers to agencies, take their answers and status reports, and expire
offers at their deadline (notify alone decides whether an answer came in time).

Every change of an assignment goes through services/notify/domain.py's lifecycle table; a step it
refuses is recorded in notify.refusals and never applied. Lock order: see services/notify/repository.py.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from services.notify import delivery, domain, follow_ups, repository, watch
from services.notify.rules import Watch
from shared import events, topics
from shared.auth import Principal
from shared.domain_errors import NotFound
from shared.envelope import Envelope, new_event, utcnow
from shared.failures import retry_conflicts
from shared.outbox import enqueue

SERVICE = "notify"

log = structlog.get_logger(__name__)


async def on_offered(conn: asyncpg.Connection, event: Envelope, offer: events.AssignmentOffered) -> None:
    """Record the offer and deliver it to the agency: only the minimum a team needs leaves here.

    An offer that arrives past its deadline (notify's clock decides) is expired at once and never
    delivered: no agency can accept it any more.
    """
    details = domain.minimum(offer.offer)
    agency = await repository.lock_agency(conn, offer.agency_id)
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
            "attempt": offer.attempt,
            "eta_min": offer.eta_min,
            "offered_with": offer.offered_with,
        },
    )
    if row is None:
        return
    if offer.deadline <= utcnow():
        await expire(conn, row, cause=event, tell_agency=False)
        return
    message = events.AgencyAssignmentMessage(
        kind="offered",
        assignment_id=offer.assignment_id,
        call_id=offer.call_id,
        team_id=offer.team_id,
        deadline=offer.deadline,
        # The stored details: newer than the offer's own when an update was read before it.
        details=events.OfferDetails.model_validate(row.details),
        offered_with=offer.offered_with,
    )
    await delivery.to_agency(
        conn, agency, message, view(row), correlation=event.correlationid, cause=event, page=1
    )


async def on_updated(conn: asyncpg.Connection, event: Envelope, update: events.AssignmentUpdated) -> None:
    """A PSAP update changed what the team was told: keep the newer details and tell the agency
    on every channel what changed. An update read before its offer is kept, so the offer goes out
    with the newer details; an assignment that is over hears nothing (the refusal is recorded)."""
    details = domain.minimum(update.offer)
    agency = await repository.lock_agency(conn, update.agency_id)
    row = await repository.get_for_update(conn, update.assignment_id)
    if row is None:
        await repository.remember_update(conn, update.assignment_id, details.model_dump(mode="json"))
        return
    if row.agency_id != update.agency_id:
        return
    if row.status not in domain.HEARS_UPDATES:
        refusal = domain.Refusal("assignment_not_live", f"the assignment is {row.status}")
        await _refuse(conn, row, event.type, "update", refusal)
        return
    if details == events.OfferDetails.model_validate(row.details):
        return  # a repeat: the agency was told already
    await repository.set_details(conn, update.assignment_id, details.model_dump(mode="json"))
    updated = await repository.get(conn, update.assignment_id)
    assert updated is not None
    message = events.AgencyAssignmentMessage(
        kind="updated",
        assignment_id=update.assignment_id,
        call_id=update.call_id,
        team_id=row.team_id,
        deadline=row.deadline if row.status == "offered" else None,
        details=details,
        changed=update.changed,
    )
    feed = {**view(updated), "changed": update.changed}
    await delivery.to_agency(conn, agency, message, feed, correlation=event.correlationid, cause=event)


async def _refuse(
    conn: asyncpg.Connection, row: repository.AssignmentRow, source: str, step: str, refusal: domain.Refusal
) -> None:
    """Record a refused step (what asked for it, the state it met, why) instead of applying it."""
    log.info("step refused", assignment_id=str(row.id), source=source, step=step, code=refusal.code)
    await repository.record_refusal(
        conn,
        {
            "assignment_id": str(row.id),
            "call_id": str(row.call_id),
            "source": source,
            "from_state": row.status,
            "step": step,
            "code": refusal.code,
            "detail": refusal.detail,
        },
    )


def _ref(row: repository.AssignmentRow) -> dict[str, Any]:
    """What every assignment event notify publishes names, from its row (with matching's attempt)."""
    return {
        "assignment_id": str(row.id),
        "call_id": str(row.call_id),
        "agency_id": row.agency_id,
        "team_id": row.team_id,
        "attempt": row.attempt,
        "offered_with": row.offered_with,
    }


async def _tell_agency(
    conn: asyncpg.Connection,
    row: repository.AssignmentRow,
    kind: str,
    reason: str | None,
    cause: Envelope | None,
) -> None:
    """Tell the agency an offer or assignment is no longer theirs (`kind`: withdrawn or expired)."""
    message = events.AgencyAssignmentMessage(
        kind=kind,
        assignment_id=str(row.id),
        call_id=str(row.call_id),
        team_id=row.team_id,
        reason=reason,
    )
    updated = await repository.get(conn, str(row.id))
    assert updated is not None
    await delivery.to_agency(
        conn,
        await repository.agency(conn, row.agency_id),
        message,
        {**view(updated), "reason": reason},
        correlation=row.correlation,
        cause=cause,
    )


async def expire(
    conn: asyncpg.Connection,
    row: repository.AssignmentRow,
    *,
    cause: Envelope | None = None,
    tell_agency: bool = True,
) -> bool:
    """Expire an unanswered offer (its row locked after its agency's): publish `assignments.expired.v1`
    so matching offers the next team, and tell the agency; False if the lifecycle refuses."""
    outcome = domain.step(row.status, "expire")
    if isinstance(outcome, domain.Refusal):
        await _refuse(conn, row, cause.type if cause else "deadline", "expire", outcome)
        return False
    if not outcome.changed:
        return False
    await repository.set_status(conn, str(row.id), "expired")
    payload = events.AssignmentExpired(**_ref(row))
    event = new_event(
        topics.ASSIGNMENTS_EXPIRED,
        SERVICE,
        str(row.call_id),
        payload,
        cause=cause,
        correlationid=row.correlation,
    )
    await enqueue(conn, SERVICE, event)
    if tell_agency:
        await _tell_agency(conn, row, "expired", "no_answer_by_deadline", event)
    return True


async def on_withdrawn(conn: asyncpg.Connection, event: Envelope, ref: events.AssignmentWithdrawn) -> None:
    """Matching took an offer or assignment back: record it and tell the agency."""
    await repository.lock_agency(conn, ref.agency_id)
    row = await repository.get_for_update(conn, ref.assignment_id)
    if row is None:
        # The offer's topic is consumed apart from this one: it may still come, and must not go out.
        await repository.remember_taken_back(conn, ref.assignment_id, "withdrawn")
        return
    if row.agency_id != ref.agency_id:
        return
    outcome = domain.step(row.status, "withdraw")
    if isinstance(outcome, domain.Refusal):
        await _refuse(conn, row, event.type, "withdraw", outcome)
        return
    if outcome.changed:
        await repository.set_status(conn, ref.assignment_id, "withdrawn")
        await repository.set_watch(conn, ref.assignment_id, None)
        await _tell_agency(conn, row, "withdrawn", ref.reason, event)


async def on_dead_letter(conn: asyncpg.Connection, event: Envelope) -> None:
    """An offer notify could never take is expired, so matching moves on to the next team (and the
    offer, should it be replayed, is never delivered)."""
    if event.type != topics.ASSIGNMENTS_OFFERED:
        return
    try:
        offer = events.AssignmentRef.model_validate(event.data)
        uuid.UUID(offer.assignment_id)
    except ValueError:
        return  # nothing in it names an offer matching could move on from
    await repository.lock_agency(conn, offer.agency_id)
    row = await repository.get_for_update(conn, offer.assignment_id)
    if row is not None:
        await expire(conn, row, cause=event)
        return
    await repository.remember_taken_back(conn, offer.assignment_id, "expired")
    payload = events.AssignmentExpired(**offer.model_dump(include=set(events.AssignmentRef.model_fields)))
    await enqueue(
        conn,
        SERVICE,
        new_event(topics.ASSIGNMENTS_EXPIRED, SERVICE, offer.call_id, payload, cause=event),
    )


async def repage(conn: asyncpg.Connection, row: repository.AssignmentRow) -> None:
    """Send an unanswered offer again through every channel (the caller holds the row's lock)."""
    page = await repository.mark_paged(conn, str(row.id))
    message = events.AgencyAssignmentMessage(
        kind="offered",
        assignment_id=str(row.id),
        call_id=str(row.call_id),
        team_id=row.team_id,
        deadline=row.deadline,
        details=events.OfferDetails.model_validate(row.details),
    )
    agency = await repository.agency(conn, row.agency_id)
    await delivery.to_agency(conn, agency, message, view(row), correlation=row.correlation, page=page)


async def _owned(conn: asyncpg.Connection, agency: Principal, assignment_id: str) -> repository.AssignmentRow:
    try:
        uuid.UUID(assignment_id)
    except ValueError:
        raise NotFound("assignment") from None
    row = await repository.get_for_update(conn, assignment_id)
    if row is None or row.agency_id != agency.tenant_id:
        raise NotFound("assignment")
    return row


def view(row: repository.AssignmentRow) -> dict[str, Any]:
    """An assignment as its agency sees it."""
    running = row.running()
    return {
        "assignment_id": str(row.id),
        "call_id": str(row.call_id),
        "team_id": row.team_id,
        "status": row.status,
        "deadline": row.deadline,
        "details": row.details,
        "answer": row.answer,
        "offered_at": row.offered_at,
        "updated_at": row.updated_at,
        "watch": None
        if running is None
        else {"timer": running.timer, "due_at": running.due_at, "stage": running.stage},
    }


def _source(agency: Principal) -> str:
    return f"api:{agency.tenant_id}"


async def answer(
    pool: asyncpg.Pool,
    agency: Principal,
    assignment_id: str,
    response: str,
    reason_code: str | None = None,
    reason_text: str | None = None,
) -> dict[str, Any]:
    """Accept or decline an offer and publish `assignments.responded.v1` (idempotent).

    The deadline is decided here, under the offer's lock: an answer in time wins, a late one is
    answered 409 `offer_expired` and the offer is expired in the same transaction, so what the
    agency hears is what holds.
    """

    async def work() -> dict[str, Any] | domain.Refusal:
        async with pool.acquire() as conn, conn.transaction():
            await repository.lock_agency(conn, agency.tenant_id)
            row = await _owned(conn, agency, assignment_id)
            now = utcnow()
            outcome = domain.step(row.status, response, past_deadline=now >= row.deadline)
            if (
                not isinstance(outcome, domain.Refusal)
                and outcome.changed
                and response == "accepted"
                and row.offered_with is not None
                and await repository.taken_by_another(conn, str(row.call_id), assignment_id)
            ):
                outcome = domain.CALL_TAKEN
            if isinstance(outcome, domain.Refusal):
                if outcome.code == "offer_expired" and row.status == "offered":
                    await expire(conn, row)
                await _refuse(conn, row, _source(agency), response, outcome)
                return outcome
            if not outcome.changed:
                return view(row)
            await repository.set_status(
                conn,
                assignment_id,
                outcome.state,
                {
                    "response": response,
                    "reason_code": reason_code,
                    "reason_text": reason_text,
                    "at": now.isoformat(),
                },
            )
            await _rewatch(conn, row, outcome.state, now)
            payload = events.AssignmentResponded(
                **_ref(row),
                response=response,
                reason_code=reason_code,
                reason_text=reason_text,
                responded_at=now,
            )
            await _publish(conn, topics.ASSIGNMENTS_RESPONDED, row, payload)
            if response == "accepted":
                await follow_ups.schedule(conn, row, now)
            updated = await repository.get(conn, assignment_id)
            assert updated is not None
            await delivery.to_feed(conn, agency.tenant_id, response, view(updated))
            return view(updated)

    return _answered(await retry_conflicts(work))


def _answered(outcome: dict[str, Any] | domain.Refusal) -> dict[str, Any]:
    """The agency's answer; a refusal (recorded and committed already) is a 409 with its code."""
    if isinstance(outcome, domain.Refusal):
        raise domain.refused(outcome)
    return outcome


async def _publish(
    conn: asyncpg.Connection, topic: str, row: repository.AssignmentRow, payload: events.Payload
) -> None:
    await enqueue(
        conn,
        SERVICE,
        new_event(topic, SERVICE, str(row.call_id), payload, correlationid=row.correlation),
    )


async def report_status(
    pool: asyncpg.Pool,
    agency: Principal,
    assignment_id: str,
    status: events.TeamStatus,
    disposition: str | None,
    urgency: str | None,
    eta_min: int | None = None,
) -> dict[str, Any]:
    """Record a status report that follows the lifecycle and publish it (a repeat is a no-op); a
    step into the next state replaces the timer watching the assignment (`eta_min`, with en route,
    is the team's own ETA for the on-scene timer).

    A backup request is urgent: its event is written with the request and the outbox relay,
    woken by the commit, publishes it at once.
    """

    async def work() -> dict[str, Any] | domain.Refusal:
        async with pool.acquire() as conn, conn.transaction():
            await repository.lock_agency(conn, agency.tenant_id)
            row = await _owned(conn, agency, assignment_id)
            outcome = domain.step(row.status, status.value)
            if isinstance(outcome, domain.Refusal):
                await _refuse(conn, row, _source(agency), status.value, outcome)
                return outcome
            if not outcome.changed:
                return view(row)
            await repository.set_status(conn, assignment_id, outcome.state)
            now = utcnow()
            await _rewatch(conn, row, outcome.state, now, eta_min)
            payload = events.AssignmentStatusChanged(
                **_ref(row),
                status=status,
                disposition=disposition,
                urgency=urgency,
                reported_at=now,
                eta_min=eta_min,
            )
            await _publish(conn, topics.ASSIGNMENTS_STATUS_CHANGED, row, payload)
            updated = await repository.get(conn, assignment_id)
            assert updated is not None
            answer = view(updated)
            await delivery.to_feed(conn, agency.tenant_id, status.value, {**answer, "urgency": urgency})
            return answer

    return _answered(await retry_conflicts(work))


async def _rewatch(
    conn: asyncpg.Connection,
    row: repository.AssignmentRow,
    state: str,
    at: datetime,
    eta_min: float | None = None,
) -> None:
    """Start the timer of the state the assignment moved into (none for a state that ends it, nor
    for the 988 center's); a step that stays in its state (a backup request) leaves the running
    timer alone."""
    if state == row.status:
        return
    if await repository.follow_up_within(conn, row.agency_id) is not None:
        return  # the 988 center takes the call on the phone: it owes a follow-up, not a visit
    rules = await repository.watch_config(conn)
    eta = eta_min if eta_min is not None else row.eta_min
    await repository.set_watch(conn, str(row.id), watch.started(state, at, rules, eta))


async def check_in(pool: asyncpg.Pool, agency: Principal, assignment_id: str, code: str) -> dict[str, Any]:
    """A team on scene checks in (`code`: how it is going): the check-in timer starts again, and a
    check-in missed so far is answered. Refused (409) unless the assignment is on scene."""

    async def work() -> dict[str, Any] | domain.Refusal:
        async with pool.acquire() as conn, conn.transaction():
            await repository.lock_agency(conn, agency.tenant_id)
            row = await _owned(conn, agency, assignment_id)
            outcome = domain.step(row.status, "check_in")
            if isinstance(outcome, domain.Refusal):
                await _refuse(conn, row, _source(agency), "check_in", outcome)
                return outcome
            now = utcnow()
            rules = await repository.watch_config(conn)
            await repository.set_watch(conn, assignment_id, watch.started(outcome.state, now, rules))
            updated = await repository.get(conn, assignment_id)
            assert updated is not None
            answer = view(updated)
            await delivery.to_feed(conn, agency.tenant_id, "checked_in", {**answer, "code": code})
            return answer

    return _answered(await retry_conflicts(work))


async def timer_missed(
    conn: asyncpg.Connection, row: repository.AssignmentRow, rules: Watch, now: datetime
) -> bool:
    """A timer fired (the row locked after its agency's): `assignments.timer_missed.v1` goes into the
    trail; the first time the agency is paged again on every channel, the second its PSAP is told
    (intake sends the `Overdue` callback). False when no timer is due on the row any more."""
    running = row.running()
    if running is None or running.fire_at is None or running.fire_at > now:
        return False
    miss = watch.missed(running, rules)
    await repository.set_watch(conn, str(row.id), miss.after)
    payload = events.TimerMissed(
        **_ref(row), timer=running.timer, escalation=miss.escalation, due_at=running.due_at, missed_at=now
    )
    event = new_event(
        topics.ASSIGNMENTS_TIMER_MISSED, SERVICE, str(row.call_id), payload, correlationid=row.correlation
    )
    await enqueue(conn, SERVICE, event)
    log.warning("timer missed", assignment_id=str(row.id), timer=running.timer, escalation=miss.escalation)
    updated = await repository.get(conn, str(row.id))
    assert updated is not None
    if miss.escalation == "psap_told":
        # The agency heard of the miss already; its console's stream learns the PSAP now knows.
        await delivery.to_feed(conn, row.agency_id, "timer_overdue", view(updated))
    else:
        message = events.AgencyAssignmentMessage(
            kind="timer_missed",
            assignment_id=str(row.id),
            call_id=str(row.call_id),
            team_id=row.team_id,
            timer=running.timer,
            due_at=running.due_at,
        )
        feed = {**view(updated), "timer": running.timer}
        agency = await repository.agency(conn, row.agency_id)
        await delivery.to_agency(conn, agency, message, feed, correlation=row.correlation, cause=event)
    return True
