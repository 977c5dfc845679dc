"""Intake's use cases: receive, update, override and cancel calls; follow assignments and tell the PSAP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel

from services.intake import crisis_line, domain, eido, repository
from services.intake.addresses import CivicAddress
from services.intake.call import CallInput
from services.intake.geocode import Geocode, Geocoder
from services.intake.remembered import Remembered
from services.intake.schemas import CallAccepted, Outcome, OverrideAccepted, OverrideRequest
from shared import events, topics
from shared.auth import Principal
from shared.domain_errors import Conflict, Forbidden, NotConfigured, NotFound
from shared.envelope import Envelope, new_event, utcnow
from shared.outbox import enqueue

SERVICE = "intake"


def _decision(raw: dict[str, Any] | None) -> events.TriageDecision | None:
    return None if raw is None else events.TriageDecision.model_validate(raw)


def _accepted(row: repository.CallRow, outcome: Outcome, detail: str | None = None) -> CallAccepted:
    return CallAccepted(
        call_id=str(row.id),
        external_id=row.external_id,
        status=row.status,
        decision=events.TriageDecision.model_validate(row.decision),
        duplicate=outcome == "duplicate",
        outcome=outcome,
        detail=detail,
        shadow_decision=_decision(row.shadow_decision),
        version=row.version_at,
        warnings=row.warnings,
    )


async def _geocode(
    conn: asyncpg.Connection, geocoder: Geocoder, address_set: int | None, call: CallInput
) -> Geocode | None:
    """Where the call's civic address is, when its location has no coordinates but an address."""
    if call.location.coordinates_known is not False or not call.location.address:
        return None
    if call.civic is None:
        return Geocode(None, 0.0, failure="address_unreadable")
    return await geocoder.geocode(conn, address_set, call.civic)


async def _triage(
    conn: asyncpg.Connection,
    psap: Principal,
    call: CallInput,
    at: datetime,
    geocoder: Geocoder,
    remembered: Remembered,
    previous: events.TriageDecision | None = None,
) -> tuple[dict[str, Any], events.TriageDecision, events.TriageDecision | None]:
    """The stored fields of a call, its decision and the shadow rule set's decision.

    A new call is weighed against matching's last capacity snapshot; a newer version of a known
    call (its `previous` decision) keeps the verdict that decision carries.
    """
    setting = await remembered.triage_setting(conn, psap.tenant_id)
    rules = setting.rules
    if rules is None:
        raise NotConfigured("no triage rules loaded: run `careroute load`")
    incident_type = domain.normalise_type(call.incident_type, setting.local_codes)
    found = await _geocode(conn, geocoder, setting.address_set, call)
    facts = domain.TriageFacts(
        cautions=call.cautions,
        location=call.location,
        at=at,
        timezone=setting.timezone,
        consent_non_police=call.consent_non_police,
        determinant=call.mpds_determinant,
        geocode=found,
        capacity=(
            await repository.capacity(conn, setting.capacity_as_of)
            if previous is None
            else domain.carried_capacity(previous, at)
        ),
    )
    decision, shadow = domain.triage_for_psap(psap.tenant_id, incident_type, call.safety, rules, facts)
    # What cautions raise is part of the screen the team is told about, not only of the decision.
    in_force = rules.for_psap(psap.tenant_id)
    safety, _ = domain.apply_cautions(call.safety, call.cautions, in_force)
    line, consent = setting.crisis_line, call.consent_non_police
    decision = crisis_line.to_crisis_line(decision, line, incident_type, safety, consent)
    if shadow is not None:
        shadow = crisis_line.to_crisis_line(shadow, line, incident_type, safety, consent)
    row = {
        "incident_type": incident_type,
        "origin": call.origin,
        # A civic address geocoded well enough is stored and published at its position.
        "location": domain.located(call.location, found, in_force.geocoding.min_score).model_dump(
            mode="json", exclude_none=True
        ),
        "civic": call.civic.as_json() if call.civic else None,
        "language": call.language,
        "safety": safety.model_dump(mode="json"),
        "callback_number": call.callback_number,
        "caller_name": call.caller_name,
        "narrative": call.narrative,
        "consent_non_police": call.consent_non_police,
        "decision": decision.model_dump(mode="json"),
        "shadow_decision": shadow.model_dump(mode="json") if shadow else None,
        "source_format": call.source_format,
        "version_at": call.version,
        "mpds_determinant": call.mpds_determinant,
        "cautions": list(call.cautions),
        "warnings": list(call.warnings),
        "other_incidents": list(call.other_incidents),
    }
    return row, decision, shadow


def _published(
    call_id: str,
    psap: Principal,
    fields: dict[str, Any],
    decision: events.TriageDecision,
    shadow: events.TriageDecision | None,
    call: CallInput,
) -> dict[str, Any]:
    """What calls.received.v1 and calls.updated.v1 both carry (the minimum the consumers need)."""
    return {
        "call_id": call_id,
        "psap_id": psap.tenant_id,
        "incident_type": fields["incident_type"],
        "location": events.Location.model_validate(fields["location"]),
        "language": call.language,
        "safety": events.SafetyScreen.model_validate(fields["safety"]),
        "cautions": _for_team(call.cautions),
        "decision": decision,
        "shadow_decision": shadow,
        "version": call.version,
    }


def _for_team(cautions: tuple[str, ...] | list[str]) -> list[str]:
    """The cautions a team is told, cut to what the event contract carries."""
    return [c[: events.CAUTION_MAX_CHARS] for c in cautions[: events.CAUTIONS_MAX]]


async def receive_call(
    pool: asyncpg.Pool,
    psap: Principal,
    call: CallInput,
    clock_tolerance_s: float,
    geocoder: Geocoder,
    remembered: Remembered,
) -> CallAccepted:
    """Triage a call, store it and publish `calls.received.v1` in one transaction.

    The same PSAP call id again answers with the call already stored, so a CAD that retries
    after a timeout never creates a second call. For EIDO, the incident id plus its
    lastUpdateTimeStamp is the version: a newer one updates the call, an older one is ignored
    (except for the safety flags it raises). A client timestamp more than `clock_tolerance_s`
    ahead of intake's clock is refused before anything is stored (TimestampInFuture).
    """
    domain.refuse_future(call.stamps, utcnow(), clock_tolerance_s)
    # A new call costs two statements: the triage settings, then one statement that stores the
    # call, its first timeline step and its event together (atomic on its own). A PSAP id seen
    # before stores nothing there, and is then read and handled in a transaction.
    async with pool.acquire() as conn:
        now = utcnow()
        fields, decision, shadow = await _triage(conn, psap, call, now, geocoder, remembered)
        call_id = str(uuid.uuid4())
        status = domain.status_for(decision.route)
        row = {**fields, "id": call_id, "psap_id": psap.tenant_id, "external_id": call.external_id}
        row |= {"status": status, "received_at": now}
        payload = events.CallReceived(
            **_published(call_id, psap, fields, decision, shadow, call),
            external_id=call.external_id,
            origin=call.origin,
            callback_number=call.callback_number,
            received_at=now,
        )
        stored = await repository.insert_call(
            conn,
            row,
            {"decision": row["decision"], "shadow_decision": row["shadow_decision"]},
            new_event(topics.CALLS_RECEIVED, SERVICE, call_id, payload),
        )
        if stored is not None:
            return _accepted(stored, "created")
        async with conn.transaction():
            existing = await repository.find_by_external_id(conn, psap.tenant_id, call.external_id)
            if existing is None:  # stored by a request whose transaction then rolled back
                raise Conflict("this call is being received by another request; retry")
            return await _again(conn, psap, existing, call, geocoder, remembered)


async def receive_incident(
    pool: asyncpg.Pool,
    psap: Principal,
    document: eido.EidoDocument,
    clock_tolerance_s: float,
    geocoder: Geocoder,
    remembered: Remembered,
) -> CallAccepted:
    """Receive a NENA EIDO as a call (`receive_call`); EidoError when it cannot safely be one, and
    Forbidden (recorded as a denied access) when it names a sender other than the token's PSAP."""
    call = eido.normalise(document)
    if call.senders:
        async with pool.acquire() as conn:
            known = await repository.eido_identities(conn, psap.tenant_id)
            strangers = [s for s in call.senders if s not in known]
            if strangers:
                async with conn.transaction():
                    await enqueue(conn, SERVICE, _sender_refused(psap))
                raise Forbidden(
                    f"the document names {', '.join(strangers)} as its sender, but this token is PSAP"
                    f" {psap.tenant_id}'s (its EIDO identifiers: {', '.join(sorted(known))})",
                    "sender_mismatch",
                )
    return await receive_call(pool, psap, call, clock_tolerance_s, geocoder, remembered)


def _sender_refused(psap: Principal) -> Envelope:
    """The access record of an EIDO refused for naming another sender (no document text in it)."""
    payload = events.AccessRecorded(
        service=SERVICE,
        outcome="denied",
        method="POST",
        path="/v1/incidents",
        tenant_id=psap.tenant_id,
        role=psap.role,
        reason="sender_mismatch: the EIDO names another agency as its sender",
        at=utcnow(),
    )
    return new_event(topics.ACCESS_RECORDED, SERVICE, psap.tenant_id, payload)


async def _again(
    conn: asyncpg.Connection,
    psap: Principal,
    existing: repository.CallRow,
    call: CallInput,
    geocoder: Geocoder,
    remembered: Remembered,
) -> CallAccepted:
    """A call id seen before: the same version is a no-op, an older one is ignored, a newer one updates.

    A safety flag is never ignored because of version order: a duplicate or an older version that
    answers a safety question yes (or carries a caution that does) still raises it on the call.
    """
    known = existing.version_at
    if call.version is not None and known is not None and call.version > known:
        if existing.status == "cancelled":
            raise Conflict("this call was cancelled; a newer version cannot reopen it", "cancelled")
        return await _update(conn, psap, existing, call, "updated", geocoder, remembered)
    older = call.version is not None and known is not None and call.version < known
    outcome: Outcome = "ignored_older" if older else "duplicate"
    what = f"version {call.version.isoformat()}" if call.version else "this resend"
    raised = [] if existing.status == "cancelled" else await _flags_raised(conn, psap, existing, call)
    if not raised:
        if not older:
            return _accepted(existing, outcome)
        assert call.version is not None and known is not None
        detail = f"{what} is older than {known.isoformat()}: acknowledged and ignored"
        return _accepted(existing, outcome, detail)
    stored = _stored(existing)
    merged = replace(
        stored,
        safety=domain.ratchet(events.SafetyScreen.model_validate(existing.safety), call.safety),
        cautions=tuple(dict.fromkeys((*stored.cautions, *call.cautions))),
    )
    outcome = "safety_raised_from_older_version" if older else "safety_raised_from_duplicate"
    answer = await _update(conn, psap, existing, merged, outcome, geocoder, remembered)
    kept = "is older than the version in force" if older else "changes nothing else"
    detail = f"{what} {kept}, but raises {', '.join(raised)}: raised on the call, which was triaged again"
    return answer.model_copy(update={"detail": detail})


def _stored(row: repository.CallRow) -> CallInput:
    """The call as intake stored it (its version in force), to triage again."""
    return CallInput(
        external_id=row.external_id,
        incident_type=row.incident_type,
        location=events.Location.model_validate(row.location),
        safety=events.SafetyScreen.model_validate(row.safety),
        origin=row.origin,
        language=row.language,
        callback_number=row.callback_number,
        caller_name=row.caller_name,
        narrative=row.narrative,
        consent_non_police=row.consent_non_police,
        mpds_determinant=row.mpds_determinant,
        version=row.version_at,
        cautions=tuple(row.cautions),
        source_format=row.source_format,
        warnings=tuple(row.warnings),
        civic=CivicAddress.from_json(row.civic) if row.civic else None,
        other_incidents=tuple(row.other_incidents),
    )


async def _flags_raised(
    conn: asyncpg.Connection, psap: Principal, existing: repository.CallRow, call: CallInput
) -> list[str]:
    """The safety questions a resent or older version answers yes (cautions included) that the
    call does not."""
    rules = (await repository.triage_setting(conn, psap.tenant_id)).rules
    if rules is None:
        return []
    sent, _ = domain.apply_cautions(call.safety, call.cautions, rules.for_psap(psap.tenant_id))
    return domain.raised_flags(events.SafetyScreen.model_validate(existing.safety), sent)


async def _update(
    conn: asyncpg.Connection,
    psap: Principal,
    existing: repository.CallRow,
    call: CallInput,
    outcome: Outcome,
    geocoder: Geocoder,
    remembered: Remembered,
) -> CallAccepted:
    """Store what `call` says about a known call, triage it again and publish `calls.updated.v1`."""
    call_id = str(existing.id)
    now = utcnow()
    previous = events.TriageDecision.model_validate(existing.decision)
    fields, decision, shadow = await _triage(conn, psap, call, now, geocoder, remembered, previous)
    decision = domain.keep_review_deadline(decision, previous)
    fields["decision"] = decision.model_dump(mode="json")
    await repository.update_call(conn, call_id, fields)
    override = existing.override
    before = previous.route
    before = events.Route(override["route"]) if override else before
    raised = domain.raised_flags(
        events.SafetyScreen.model_validate(existing.safety),
        events.SafetyScreen.model_validate(fields["safety"]),
    )
    decided = domain.in_force(decision, override, raised)
    if override is not None and raised:
        await repository.set_override(conn, call_id, None)  # superseded; the timeline keeps it
    detail = {
        "version": call.version.isoformat() if call.version else None,
        "decision": decided.model_dump(mode="json"),
        "raised": raised,
        "outcome": outcome,
    }
    if decided.route != before:
        status = domain.status_for(decided.route)
        await _own_status(conn, existing, status, {"event": "updated", **detail}, now)
        if before == events.Route.community:
            await repository.set_non_diversion_reason(conn, call_id, f"retriaged_{decided.route}")
    else:
        key = _order(existing).own_step()
        await repository.add_timeline(conn, call_id, "updated", detail, key=key, event_time=now)
    payload = events.CallUpdated(
        **_published(call_id, psap, fields, decided, shadow, call),
        callback_number=call.callback_number,
        updated_at=now,
        reason="eido_update" if call.source_format == "eido" else None,
        previous_route=before,
    )
    await enqueue(conn, SERVICE, new_event(topics.CALLS_UPDATED, SERVICE, call_id, payload))
    stored = await repository.get_call(conn, call_id)
    assert stored is not None
    return _accepted(stored, outcome)


async def override_call(
    pool: asyncpg.Pool, psap: Principal, call_id: str, request: OverrideRequest
) -> OverrideAccepted:
    """Route a call as the call-taker decided, recording the reason, and publish `calls.updated.v1`."""
    async with pool.acquire() as conn, conn.transaction():
        row = await owned_call(conn, psap, call_id)
        if row.status == "cancelled":
            raise Conflict("this call was cancelled", "cancelled")
        recommended = events.TriageDecision.model_validate(row.decision)
        now = utcnow()
        override = {
            "route": request.route.value,
            "reason_code": request.reason_code,
            "reason_text": request.reason_text,
            "recommended_route": recommended.route.value,
            "at": now.isoformat(),
        }
        await repository.set_override(conn, call_id, override)
        status = domain.status_for(request.route)
        await _own_status(conn, row, status, {"event": "override", **override}, now)
        if recommended.route == events.Route.community and request.route != events.Route.community:
            await repository.set_non_diversion_reason(conn, call_id, request.reason_code)
        reason = f"override by the call-taker: {request.reason_code}"
        said = reason + (f" ({request.reason_text})" if request.reason_text else "")
        # Triage's own reasons stay beside the override, so oversight still sees what was recommended.
        decision = recommended.model_copy(
            update={
                "route": request.route,
                "reasons": [said, *recommended.reasons],
                "codes": [
                    events.ReasonCode(
                        code="override", params={"route": request.route.value, "reason": request.reason_code}
                    ),
                    *recommended.codes,
                ],
                "review_deadline": None,
            }
        )
        payload = events.CallUpdated(
            call_id=call_id,
            psap_id=psap.tenant_id,
            incident_type=row.incident_type,
            location=events.Location.model_validate(row.location),
            language=row.language,
            safety=events.SafetyScreen.model_validate(row.safety),
            callback_number=row.callback_number,
            cautions=_for_team(row.cautions),
            decision=decision,
            updated_at=now,
            reason="override",
            previous_route=recommended.route,
            override_reason_code=request.reason_code,
            override_reason_text=request.reason_text,
        )
        await enqueue(conn, SERVICE, new_event(topics.CALLS_UPDATED, SERVICE, call_id, payload))
    return OverrideAccepted(
        call_id=call_id,
        status=status,
        route=request.route,
        reason_code=request.reason_code,
        recommended=recommended,
    )


async def owned_call(conn: asyncpg.Connection, psap: Principal, call_id: str) -> repository.CallRow:
    """The call if this PSAP owns it; 404 for a missing call and another PSAP's call alike."""
    try:
        uuid.UUID(call_id)
    except ValueError:
        raise NotFound("call") from None
    row = await repository.get_call(conn, call_id)
    if row is None or row.psap_id != psap.tenant_id:
        raise NotFound("call")
    return row


async def cancel_call(pool: asyncpg.Pool, psap: Principal, call_id: str, reason: str | None) -> str:
    """Cancel a call and publish `calls.cancelled.v1`; cancelling twice is a no-op."""
    async with pool.acquire() as conn, conn.transaction():
        row = await owned_call(conn, psap, call_id)
        if row.status == "cancelled":
            return "cancelled"
        # A cancel is final: no assignment step recorded after it moves the status (domain.place).
        await _own_status(conn, row, "cancelled", {"reason": reason}, utcnow())
        if row.status in domain.BEFORE_A_TEAM:
            # Cancelled while a community call still waited for a team: that too is a reason.
            await repository.set_non_diversion_reason(conn, call_id, "cancelled_by_psap")
        payload = events.CallCancelled(call_id=call_id, psap_id=psap.tenant_id, reason=reason)
        await enqueue(conn, SERVICE, new_event(topics.CALLS_CANCELLED, SERVICE, call_id, payload))
    return "cancelled"


def _ref(payload: BaseModel) -> dict[str, Any]:
    data = payload.model_dump(mode="json")
    return {k: data[k] for k in ("assignment_id", "agency_id", "team_id") if k in data}


@dataclass(frozen=True)
class _Move:
    """What one assignment event would do to a call."""

    status: str
    detail: dict[str, Any]
    assignment: dict[str, Any] | None = None
    clear_assignment: bool = False
    reason: str | None = None  # told to the PSAP
    non_diversion_reason: str | None = None


_WORKING = (events.TeamStatus.en_route, events.TeamStatus.on_scene)


def _move(event: Envelope, payload: Any) -> _Move:
    detail: dict[str, Any] = {"event": event.type, **_ref(payload)}
    if isinstance(payload, events.AssignmentResponded):
        detail["reason_code"] = payload.reason_code
        if payload.response == "accepted":
            return _Move("assigned", detail, assignment=_ref(payload))
        return _Move("offer_declined", detail)
    if isinstance(payload, events.TimerMissed):
        detail.update(timer=payload.timer, due_at=payload.due_at.isoformat())
        return _Move(domain.OVERDUE, detail)
    if isinstance(payload, events.AssignmentStatusChanged):
        detail.update(disposition=payload.disposition, urgency=payload.urgency)
        # An en route or on scene that overtook its accept still names the team working the call.
        working = _ref(payload) if payload.status in _WORKING else None
        return _Move(payload.status.value, detail, assignment=working)
    status = domain.STATUS_BY_EVENT[event.type]
    if isinstance(payload, events.CallUnassigned):
        detail.update(reason_code=payload.reason_code, detail=payload.detail)
        reason = payload.reason_code
        return _Move(status, detail, clear_assignment=True, reason=reason, non_diversion_reason=reason)
    if isinstance(payload, events.AssignmentWithdrawn):
        detail["reason"] = payload.reason
        return _Move(status, detail, reason=payload.reason)
    return _Move(status, detail)


def _order(call: repository.CallRow) -> domain.Order:
    return domain.Order(call.status, call.status_attempt, call.status_stage, call.handed_back_through)


async def _own_status(
    conn: asyncpg.Connection, call: repository.CallRow, status: str, detail: dict[str, Any], at: datetime
) -> None:
    """Move a call to a status intake itself decides (cancel, update, override): where the call
    stands among its assignments' steps is unchanged, and the step sits after every one so far."""
    order = _order(call)
    await repository.set_status(
        conn, str(call.id), replace(order, status=status), detail, key=order.own_step(), event_time=at
    )


async def on_capacity(conn: asyncpg.Connection, event: Envelope, payload: events.TeamsCapacity) -> None:
    """Keep matching's newest capacity snapshot for triage (an older one read late changes nothing)."""
    await repository.store_capacity(conn, payload)


async def on_assignment_event(conn: asyncpg.Connection, event: Envelope, payload: Any) -> None:
    """Move the PSAP-facing status of a call as its assignment progresses, and tell the PSAP.

    Events of several topics and producers arrive in no order between them, so the status follows
    the causal order (matching's attempt number, then the step's place in its assignment's life),
    never the producers' clocks. A step that order puts behind the status joins the timeline marked
    late and changes nothing else, so neither the status nor the PSAP's callbacks ever go backwards.
    """
    call_id = event.subject
    # Locked: intake replicas may apply events of one call from two topics at once.
    call = await repository.lock_call(conn, call_id)
    if call is None:
        return  # not a call of ours (another deployment sharing the broker); nothing to update
    move = _move(event, payload)
    order = _order(call)
    if isinstance(payload, events.CallUnassigned):
        attempt = domain.covered_by(payload.attempts, order)
    else:
        assignment_id = move.detail["assignment_id"]
        recorded = None
        if payload.attempt is None:  # an older producer: its offer's step may have recorded it
            recorded = await repository.assignment_attempt(conn, call_id, assignment_id)
        attempt = domain.attempt_of(payload.attempt, recorded, order)
    parallel = getattr(payload, "offered_with", None) is not None
    placed = domain.place(order, move.status, attempt, parallel)
    detail = {**move.detail, "attempt": attempt}
    if placed.late_because == domain.ONE_OF_PARALLEL:
        detail |= {"offered_with": payload.offered_with, "moves_no_status": placed.late_because}
    elif placed.late_because is not None:
        detail |= {"late": True, "late_because": placed.late_because}
    if placed.late_because is not None:
        await repository.add_timeline(
            conn, call_id, move.status, detail, key=placed.key, event_time=event.time
        )
        return
    if move.non_diversion_reason is not None:
        await repository.set_non_diversion_reason(conn, call_id, move.non_diversion_reason)
    await repository.set_status(
        conn,
        call_id,
        placed.order,
        detail,
        key=placed.key,
        event_time=event.time,
        assignment=move.assignment,
        # The withdrawal with which matching answers a cancel stands the team down (the PSAP is
        # told) but leaves the call cancelled: nothing after a cancel may reopen it.
        clear_assignment=move.clear_assignment or placed.order.status == "cancelled",
        step=move.status,
    )
    await _tell_psap(conn, call, move.status, move.detail, move.reason, event)


async def on_timer_missed(conn: asyncpg.Connection, event: Envelope, missed: events.TimerMissed) -> None:
    """A team let a timer run out past its grace: the call's timeline shows it and the PSAP gets a
    signed `Overdue` callback naming the timer (a step of the live assignment, moving no status;
    an earlier miss the agency was only re-paged for is notify's to tell, not the PSAP's)."""
    if missed.escalation == "psap_told":
        await on_assignment_event(conn, event, missed)


async def _tell_psap(
    conn: asyncpg.Connection,
    call: repository.CallRow,
    status: str,
    detail: dict[str, Any],
    reason: str | None,
    event: Envelope,
    extra: dict[str, Any] | None = None,
) -> None:
    """Queue a status callback for the PSAP in the same transaction as the status change (`extra`:
    fields of this kind of status only)."""
    unit_status = domain.UNIT_STATUS.get(status)
    if unit_status is None:
        return
    psap = await repository.psap(conn, call.psap_id)
    if psap is None or not psap.callback_url:
        return
    payload = {
        "type": "call.status",
        "call_id": str(call.id),
        "external_id": call.external_id,
        "unitStatus": unit_status,
        "status": status,
        "reason": reason,
        "agency_id": detail.get("agency_id"),
        "team_id": detail.get("team_id"),
        "disposition": detail.get("disposition"),
        "at": event.time.isoformat(),
        "event_id": str(event.id),
        **(extra or {}),
    }
    if "timer" in detail:
        payload["timer"] = detail["timer"]  # which one the team let run out, for an Overdue
    await repository.enqueue_callback(conn, str(call.id), call.psap_id, payload)


# What each follow-up event of a 988 call is in its timeline; only an overdue one is told to the PSAP.
FOLLOW_UP_STEP = {
    topics.FOLLOW_UPS_SCHEDULED: "follow_up_scheduled",
    topics.FOLLOW_UPS_CLOSED: "follow_up_closed",
    topics.FOLLOW_UPS_OVERDUE: "follow_up_overdue",
}


async def on_follow_up_event(conn: asyncpg.Connection, event: Envelope, payload: events.FollowUpRef) -> None:
    """A 988 center's follow-up was scheduled, closed or found overdue: a step in the call's
    timeline (its status stays the center's), and an overdue one a signed callback to the PSAP."""
    call = await repository.lock_call(conn, event.subject)
    if call is None:
        return  # not a call of ours
    step = FOLLOW_UP_STEP[event.type]
    detail = {"event": event.type, **payload.model_dump(mode="json")}
    key = _order(call).own_step()
    await repository.add_timeline(conn, str(call.id), step, detail, key=key, event_time=event.time)
    if step != "follow_up_overdue":
        return
    told = {"agency_id": payload.agency_id, "due_at": payload.due_at.isoformat()}
    await _tell_psap(conn, call, step, told, step, event, extra={"due_at": told["due_at"]})


async def call_view(pool: asyncpg.Pool, psap: Principal, call_id: str) -> dict[str, Any]:
    """A call's status and timeline for its PSAP."""
    async with pool.acquire() as conn:
        row = await owned_call(conn, psap, call_id)
        steps = await repository.timeline(conn, call_id)
        callbacks = await repository.callbacks_of(conn, call_id)
    return {
        "call_id": str(row.id),
        "external_id": row.external_id,
        "incident_type": row.incident_type,
        "status": row.status,
        "decision": row.decision,
        "assignment": row.assignment,
        "received_at": row.received_at,
        "timeline": [
            {
                "at": s.at,
                "event_time": s.event_time,
                "status": s.status,
                "detail": s.detail,
            }
            for s in steps
        ],
        "source_format": row.source_format,
        "version": row.version_at,
        "shadow_decision": row.shadow_decision,
        "override": row.override,
        "non_diversion_reason": row.non_diversion_reason,
        "other_incidents": row.other_incidents,
        "callbacks": [
            {
                "unitStatus": c.payload["unitStatus"],
                "state": c.state,
                "attempts": c.attempts,
                "last_error": c.last_error,
            }
            for c in callbacks
        ],
    }
