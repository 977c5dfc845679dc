"""Intake's use cases: receive a call, cancel it, and follow its assignment events."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
from pydantic import BaseModel

from services.intake import domain, repository
from services.intake.schemas import CallAccepted, NativeCall
from shared import events, topics
from shared.auth import Principal
from shared.envelope import Envelope, new_event, utcnow
from shared.errors import ApiError, not_found
from shared.outbox import enqueue

SERVICE = "intake"


def _accepted(row: asyncpg.Record, duplicate: bool) -> CallAccepted:
    return CallAccepted(
        call_id=str(row["id"]),
        external_id=row["external_id"],
        status=row["status"],
        decision=events.TriageDecision.model_validate_json(row["decision"]),
        duplicate=duplicate,
    )


async def receive_call(pool: asyncpg.Pool, psap: Principal, call: NativeCall) -> CallAccepted:
    """Triage a call, store it and publish `calls.received.v1` in one transaction.

    The same PSAP call id again answers with the call already stored, so a CAD that retries
    after a timeout never creates a second call.
    """
    async with pool.acquire() as conn, conn.transaction():
        existing = await repository.find_by_external_id(conn, psap.tenant_id, call.external_id)
        if existing is not None:
            return _accepted(existing, duplicate=True)
        rules = await repository.active_rules(conn)
        if rules is None:
            raise ApiError(503, "not_configured", "no triage rules loaded: run `careroute load`")
        incident_type = domain.normalise_type(
            call.incident_type, await repository.local_codes(conn, psap.tenant_id)
        )
        decision = domain.triage(incident_type, call.safety, rules)
        call_id = str(uuid.uuid4())
        now = utcnow()
        status = "received" if decision.route == events.Route.community else f"routed_{decision.route}"
        row = {
            "id": call_id,
            "psap_id": psap.tenant_id,
            "external_id": call.external_id,
            "incident_type": incident_type,
            "origin": call.origin,
            "location": call.location.model_dump(mode="json"),
            "language": call.language,
            "safety": call.safety.model_dump(mode="json"),
            "callback_number": call.callback_number,
            "caller_name": call.caller_name,
            "narrative": call.narrative,
            "consent_non_police": call.consent_non_police,
            "decision": decision.model_dump(mode="json"),
            "status": status,
            "received_at": now,
        }
        if not await repository.insert_call(conn, row):
            # A concurrent request with the same PSAP id won; answer with its call.
            raise ApiError(409, "conflict", "this call is being received by another request; retry")
        await repository.add_timeline(conn, call_id, status, {"decision": row["decision"]})
        payload = events.CallReceived(
            call_id=call_id,
            psap_id=psap.tenant_id,
            external_id=call.external_id,
            incident_type=incident_type,
            origin=call.origin,
            location=call.location,
            language=call.language,
            safety=call.safety,
            callback_number=call.callback_number,
            decision=decision,
            received_at=now,
        )
        await enqueue(conn, SERVICE, new_event(topics.CALLS_RECEIVED, SERVICE, call_id, payload))
        stored = await repository.get_call(conn, call_id)
        assert stored is not None
        return _accepted(stored, duplicate=False)


async def owned_call(conn: asyncpg.Connection, psap: Principal, call_id: str) -> asyncpg.Record:
    """The call if this PSAP owns it; 404 for a missing call and another PSAP's call alike."""
    try:
        uuid.UUID(call_id)
    except ValueError:
        raise not_found("call") from None
    row = await repository.get_call(conn, call_id)
    if row is None or row["psap_id"] != psap.tenant_id:
        raise not_found("call")
    return row


async def cancel_call(pool: asyncpg.Pool, psap: Principal, call_id: str, reason: str | None) -> str:
    """Cancel a call and publish `calls.cancelled.v1`; cancelling twice is a no-op."""
    async with pool.acquire() as conn, conn.transaction():
        row = await owned_call(conn, psap, call_id)
        if row["status"] == "cancelled":
            return "cancelled"
        await repository.set_status(conn, call_id, "cancelled", {"reason": reason})
        payload = events.CallCancelled(call_id=call_id, psap_id=psap.tenant_id, reason=reason)
        await enqueue(conn, SERVICE, new_event(topics.CALLS_CANCELLED, SERVICE, call_id, payload))
    return "cancelled"


def _ref(payload: BaseModel) -> dict[str, Any]:
    data = payload.model_dump(mode="json")
    return {k: data[k] for k in ("assignment_id", "agency_id", "team_id") if k in data}


async def on_assignment_event(conn: asyncpg.Connection, event: Envelope, payload: Any) -> None:
    """Move the PSAP-facing status of a call as its assignment progresses."""
    call_id = event.subject
    if await repository.get_call(conn, call_id) is None:
        return  # not a call of ours (another deployment sharing the broker); nothing to update
    detail: dict[str, Any] = {"event": event.type, **_ref(payload)}
    if isinstance(payload, events.AssignmentResponded):
        status = "assigned" if payload.response == "accepted" else "offer_declined"
        detail["reason_code"] = payload.reason_code
        if payload.response == "accepted":
            await repository.set_status(conn, call_id, status, detail, assignment=_ref(payload))
            return
    elif isinstance(payload, events.AssignmentStatusChanged):
        status = payload.status.value
        detail.update(disposition=payload.disposition, urgency=payload.urgency)
    elif isinstance(payload, events.CallUnassigned):
        status = domain.STATUS_BY_EVENT[event.type]
        detail.update(reason_code=payload.reason_code, detail=payload.detail)
        await repository.set_status(conn, call_id, status, detail, clear_assignment=True)
        return
    else:
        status = domain.STATUS_BY_EVENT[event.type]
        if isinstance(payload, events.AssignmentWithdrawn):
            detail["reason"] = payload.reason
    await repository.set_status(conn, call_id, status, detail)


async def call_view(pool: asyncpg.Pool, psap: Principal, call_id: str) -> dict[str, Any]:
    """A call's status and timeline for its PSAP."""
    async with pool.acquire() as conn:
        row = await owned_call(conn, psap, call_id)
        steps = await repository.timeline(conn, call_id)
    return {
        "call_id": str(row["id"]),
        "external_id": row["external_id"],
        "incident_type": row["incident_type"],
        "status": row["status"],
        "decision": json.loads(row["decision"]),
        "assignment": json.loads(row["assignment"]) if row["assignment"] else None,
        "received_at": row["received_at"],
        "timeline": [
            {"at": s["at"], "status": s["status"], "detail": json.loads(s["detail"])} for s in steps
        ],
    }
