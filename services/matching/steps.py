"""The steps every use case of matching takes: a call or a team moved through its state machine,
a refused step recorded instead of applied, an event enqueued, a call handed back to its PSAP.

Every change of an assignment or a call goes through services/matching/lifecycle.py; a step it
refuses is recorded in matching.refusals and never applied.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog

from services.matching import lifecycle, repository
from services.matching.matcher import SERVICE, Matcher
from shared import events, topics
from shared.envelope import Envelope, new_event
from shared.outbox import enqueue

log = structlog.get_logger(__name__)


def event_about(
    topic: str, call: repository.CallRow, payload: events.Payload, cause: Envelope | None
) -> Envelope:
    """An event about `call`, caused by `cause`, in the call's correlation."""
    return new_event(topic, SERVICE, str(call.call_id), payload, cause=cause, correlationid=call.correlation)


async def emit(
    conn: asyncpg.Connection,
    topic: str,
    call: repository.CallRow,
    payload: events.Payload,
    cause: Envelope | None,
) -> Envelope:
    """Enqueue an event about `call` in the outbox, in this transaction."""
    event = event_about(topic, call, payload, cause)
    await enqueue(conn, SERVICE, event)
    return event


async def call_to(conn: asyncpg.Connection, cause: Envelope, call: repository.CallRow, step: str) -> bool:
    """Move a call by `step` through its state machine; False (and the refusal recorded) when the
    step is not allowed, or when it changes nothing."""
    state = str(call.status)
    nxt = lifecycle.call_step(state, step)
    if isinstance(nxt, lifecycle.Refusal):
        await refuse(conn, cause, str(call.call_id), None, state, step, nxt)
        return False
    if nxt == state:
        return False
    await repository.set_call_status(conn, str(call.call_id), nxt)
    return True


async def refuse(
    conn: asyncpg.Connection,
    cause: Envelope,
    call_id: str,
    assignment_id: str | None,
    from_state: str,
    step: str,
    refusal: lifecycle.Refusal,
) -> None:
    """Record a refused step (the event, the state it met, why) instead of applying it."""
    log.warning(
        "step refused",
        call_id=call_id,
        assignment_id=assignment_id,
        event_type=cause.type,
        from_state=from_state,
        step=step,
        code=refusal.code,
    )
    await repository.record_refusal(
        conn,
        {
            "call_id": call_id,
            "assignment_id": assignment_id,
            "event_id": str(cause.id),
            "event_type": cause.type,
            "from_state": from_state,
            "step": step,
            "code": refusal.code,
            "detail": refusal.detail,
        },
    )


async def release(
    matcher: Matcher, conn: asyncpg.Connection, team_id: str, call_id: str, status: str = "available"
) -> None:
    """Free a team held for a call (the roster reads it again before the next decision)."""
    matcher.roster.touched(team_id)
    await repository.release_team(conn, team_id, call_id, status)


async def set_team_status(
    matcher: Matcher, conn: asyncpg.Connection, team_id: str, call_id: str, status: str
) -> None:
    """Move a team with its call (the roster reads it again before the next decision)."""
    matcher.roster.touched(team_id)
    await repository.set_team_status(conn, team_id, call_id, status)


async def emit_withdrawn(
    conn: asyncpg.Connection,
    call: repository.CallRow,
    a: repository.AssignmentRow,
    reason: str,
    cause: Envelope | None,
) -> Envelope:
    """Tell the assignment's agency, through the outbox, that the assignment is taken back."""
    payload = events.AssignmentWithdrawn(
        assignment_id=str(a.id),
        call_id=str(call.call_id),
        agency_id=a.agency_id,
        team_id=a.team_id,
        attempt=a.attempt,
        offered_with=a.parallel(),
        reason=reason,
    )
    return await emit(conn, topics.ASSIGNMENTS_WITHDRAWN, call, payload, cause)


async def hand_back(
    conn: asyncpg.Connection,
    call: repository.CallRow,
    reason: str,
    cause: Envelope,
    explanation: dict[str, Any],
    rules_version: str,
) -> None:
    """Hand the call back to its PSAP with a reason: the decision recorded, `calls.unassigned.v1` enqueued."""
    call_id = str(call.call_id)
    if not await call_to(conn, cause, call, "hand_back"):
        return
    attempts = call.attempts
    await repository.insert_decision(
        conn,
        {
            "call_id": call_id,
            "attempt": attempts + 1,
            "outcome": "handed_back",
            "reason": reason,
            "rules_version": rules_version,
            "explanation": explanation,
        },
    )
    payload = events.CallUnassigned(
        call_id=call_id,
        psap_id=call.psap_id,
        reason_code=reason,
        detail=explanation.get("detail"),
        attempts=attempts,
    )
    await emit(conn, topics.CALLS_UNASSIGNED, call, payload, cause)
