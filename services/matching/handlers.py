"""Matching's use cases: place a call, follow answers and status, withdraw, free teams, and an
agency's change to its roster.

Each is a function whose first argument is the `Matcher`, what matching keeps from one event to
the next (its knobs and the roster it indexes once); the composition root binds it. Every change
of an assignment or a call goes through services/matching/lifecycle.py; a step it refuses is
recorded in matching.refusals and never applied.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog

from services.matching import domain, lifecycle, repository
from services.matching.domain import OFF_ROSTER
from services.matching.index import RosterIndex
from services.matching.roster import Roster
from services.matching.rules import Matching
from services.matching.schemas import TeamUpdate
from shared import events, topics
from shared.auth import Principal
from shared.domain_errors import NotFound
from shared.envelope import Envelope, new_event, utcnow
from shared.outbox import enqueue

SERVICE = "matching"
# How many runners-up a decision keeps in its explanation.
RUNNERS_UP = 5
# A pending call's offer details before its `calls.received.v1` was read (a cancel read first).
UNKNOWN_OFFER: dict[str, Any] = {}

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class MatchingConfig:
    """The knobs of matching."""

    offer_timeout_s: int = 120
    speed_kmh: float = 40.0
    max_attempts: int = 3
    # How stale another replica's roster changes may be in a decision (this process's own are not).
    roster_refresh_s: float = 1.0
    # Which process made a decision (stored with it; two replicas may share the work).
    instance: str = f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Matcher:
    """What matching's handlers share from one event to the next: its knobs and the roster it keeps."""

    config: MatchingConfig = field(default_factory=MatchingConfig)
    roster: Roster = field(init=False)

    def __post_init__(self) -> None:
        self.roster = Roster(self.config.roster_refresh_s)


def _takes_call_away(update: events.CallUpdated, before: events.SafetyScreen) -> bool:
    """Whether a PSAP update ends the community response: routed elsewhere, or a flag newly raised.

    Intake already routes a raised flag away; a flag that turns "yes" under a `community` route
    (a call-taker's override stands until a flag is raised) still withdraws, the safe side.
    """
    now, earlier = update.safety.model_dump(), before.model_dump()
    raised = any(v == events.Answer.yes and earlier.get(k) != events.Answer.yes for k, v in now.items())
    return raised or update.decision.route != events.Route.community


def _offer_details(call: events.CallReceived | events.CallUpdated) -> events.OfferDetails:
    """The minimum a team needs to respond, from intake's event (an update may omit the callback)."""
    return events.OfferDetails(
        location=call.location,
        presenting_problem=call.incident_type,
        language=call.language,
        safety=call.safety,
        callback_number=getattr(call, "callback_number", None),
    )


def _event(topic: str, call: repository.CallRow, payload: events.Payload, cause: Envelope | None) -> Envelope:
    """An event about `call`, caused by `cause`, in the call's correlation."""
    return new_event(topic, SERVICE, str(call.call_id), payload, cause=cause, correlationid=call.correlation)


async def on_call_received(
    matcher: Matcher, conn: asyncpg.Connection, event: Envelope, call: events.CallReceived
) -> None:
    """A community call: remember it and offer it to the best team, unless a cancel or an update
    read before it already ended it (its pending record), in which case it never is offered."""
    if call.decision.route != events.Route.community:
        return
    if await _place(matcher, conn, event, call):
        return
    known = await repository.get_call(conn, call.call_id)
    assert known is not None
    if known.status == "routed_away":
        # An update read first took the call away: the PSAP hears what the same events in order
        # would have told it, and no team is offered the call.
        explanation = {
            "detail": "a PSAP update read first took the call away",
            "decided_by": matcher.config.instance,
        }
        version = known.triage_version or call.decision.rules_version
        await _hand_back(conn, known, "withdrawn_by_psap_update", event, explanation, version)


async def _place(
    matcher: Matcher,
    conn: asyncpg.Connection,
    event: Envelope,
    call: events.CallReceived | events.CallUpdated,
) -> bool:
    """Remember a community call and offer it to the best team; False if the call was known."""
    offer = _offer_details(call)
    stored = await repository.insert_call(
        conn,
        call.call_id,
        call.psap_id,
        offer.model_dump(mode="json"),
        event.correlationid,
        call.decision.rules_version,
    )
    if stored is None:
        return False
    await offer_next(matcher, conn, call.call_id, event, stored)
    return True


async def _call_to(conn: asyncpg.Connection, cause: Envelope, call: repository.CallRow, step: str) -> bool:
    """Move a call by `step` through its state machine; False (and the refusal recorded) when the
    step is not allowed, or when it changes nothing."""
    state = str(call.status)
    nxt = lifecycle.call_step(state, step)
    if isinstance(nxt, lifecycle.Refusal):
        await _refuse(conn, cause, str(call.call_id), None, state, step, nxt)
        return False
    if nxt == state:
        return False
    await repository.set_call_status(conn, str(call.call_id), nxt)
    return True


async def _refuse(
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


async def offer_next(
    matcher: Matcher,
    conn: asyncpg.Connection,
    call_id: str,
    cause: Envelope,
    call: repository.CallRow | None = None,
) -> None:
    """Reserve the best free team and offer it the call, or hand the call back with a reason
    (`call`: its row when the caller holds it already, locked or new in this transaction)."""
    if call is None:
        call = await repository.get_call(conn, call_id)
    assert call is not None
    refused = lifecycle.call_step(str(call.status), "offer")
    if isinstance(refused, lifecycle.Refusal):
        await _refuse(conn, cause, call_id, None, str(call.status), "offer", refused)
        return
    offer = events.OfferDetails.model_validate(call.offer)
    tried = list(call.tried_teams)
    index = await matcher.roster.index(conn)
    rules, tz = matcher.roster.rules, matcher.roster.timezone
    now = utcnow()
    required, preferred = domain.needs_for(
        rules, offer.presenting_problem, offer.safety.model_dump(mode="json")
    )
    needs = domain.CallNeeds(
        lat=offer.location.lat,
        lon=offer.location.lon,
        language=offer.language,
        required=frozenset(required),
        preferred=frozenset(preferred),
    )
    explanation = _explanation(matcher, call, offer, needs, rules, tried, now)
    if len(tried) >= matcher.config.max_attempts:
        explanation["detail"] = f"{len(tried)} teams were offered the call"
        await _hand_back(conn, call, "no_acceptance_in_time", cause, explanation, rules.version)
        return
    load, shares = index.load(), matcher.roster.shares
    explanation["agency_load"] = load

    def decide(index: RosterIndex) -> domain.Decision:
        return index.decide(
            needs,
            now,
            tz,
            speed_kmh=matcher.config.speed_kmh,
            rules=rules,
            exclude=frozenset(tried),
            load=load,
            shares=shares,
        )

    taken: list[str] = []
    decision = decide(index)
    chosen = await _reserve(matcher, conn, call_id, decision, taken)
    if chosen is None:
        # Nobody free as this process last read the roster: read it again before handing back
        # (another replica may have freed a team since).
        decision = decide(await matcher.roster.index(conn, fresh=True))
        chosen = await _reserve(matcher, conn, call_id, decision, taken)
    explanation["considered"] = "every team"
    explanation["funnel"] = decision.funnel
    explanation["taken_meanwhile"] = taken
    if chosen is not None:
        rank_no, candidate = chosen
        explanation["chosen"] = {"rank": rank_no, **candidate.explain()}
        explanation["runners_up"] = [c.explain() for c in decision.candidates[rank_no : rank_no + RUNNERS_UP]]
        await _offer(matcher, conn, call, candidate, explanation, rules.version, now, cause)
        return
    reason = decision.reason or "all_busy"
    if reason == "all_busy" and tried:
        # Every team left was offered the call already and declined or let it expire.
        reason = "no_acceptance_in_time"
    # The PSAP sees how far the roster got: "teams 12, with_capacity 12, on_shift 3, in_area 0".
    explanation["detail"] = ", ".join(f"{stage} {n}" for stage, n in decision.funnel.items())
    await _hand_back(conn, call, reason, cause, explanation, rules.version)


async def _release(
    matcher: Matcher, conn: asyncpg.Connection, team_id: str, call_id: str, status: str = "available"
) -> None:
    """Free a team held for a call (the roster reads it again before the next decision)."""
    matcher.roster.touched(team_id)
    await repository.release_team(conn, team_id, call_id, status)


async def _set_team_status(
    matcher: Matcher, conn: asyncpg.Connection, team_id: str, call_id: str, status: str
) -> None:
    """Move a team with its call (the roster reads it again before the next decision)."""
    matcher.roster.touched(team_id)
    await repository.set_team_status(conn, team_id, call_id, status)


async def _reserve(
    matcher: Matcher, conn: asyncpg.Connection, call_id: str, decision: domain.Decision, taken: list[str]
) -> tuple[int, domain.Candidate] | None:
    """Reserve the best candidate still free (rank from 1 and the candidate), or None."""
    for rank_no, candidate in enumerate(decision.candidates, start=1):
        team_id = candidate.team.id
        matcher.roster.touched(team_id)
        if await repository.reserve_team(conn, team_id, call_id):
            return rank_no, candidate
        if team_id not in taken:
            taken.append(team_id)  # reserved by a concurrent call a moment ago
    return None


def _explanation(
    matcher: Matcher,
    call: repository.CallRow,
    offer: events.OfferDetails,
    needs: domain.CallNeeds,
    rules: Matching,
    tried: list[str],
    now: datetime,
) -> dict[str, Any]:
    """What a decision is stored with before it is made: its inputs, rules and weights."""
    return {
        "inputs": {
            "location": {"lat": needs.lat, "lon": needs.lon},
            "incident_type": offer.presenting_problem,
            "language": offer.language,
            "safety": offer.safety.model_dump(mode="json"),
            "required_skills": sorted(needs.required),
            "preferred_skills": sorted(needs.preferred),
            "already_tried": tried,
            "at": now.isoformat(),
        },
        "rules_version": rules.version,
        "triage_rules_version": call.triage_version,
        "weights": {
            "speed_kmh": matcher.config.speed_kmh,
            "preferred_skill_min": rules.preferred_skill_min,
            "language_min": rules.language_min,
            "fairness_min": rules.fairness_min,
            "language_policy": rules.language,
        },
        "decided_by": matcher.config.instance,
    }


async def _offer(
    matcher: Matcher,
    conn: asyncpg.Connection,
    call: repository.CallRow,
    candidate: domain.Candidate,
    explanation: dict[str, Any],
    rules_version: str,
    now: datetime,
    cause: Envelope,
) -> None:
    call_id = str(call.call_id)
    team = candidate.team
    attempt = len(call.tried_teams) + 1
    assignment_id = str(uuid.uuid4())
    deadline = now + timedelta(seconds=matcher.config.offer_timeout_s)
    payload = events.AssignmentOffered(
        assignment_id=assignment_id,
        call_id=call_id,
        agency_id=team.agency_id,
        team_id=team.id,
        attempt=attempt,
        deadline=deadline,
        offer=events.OfferDetails.model_validate(call.offer),
        distance_km=round(candidate.distance_km, 3),
    )
    await repository.record_offer(
        conn,
        {
            "id": assignment_id,
            "call_id": call_id,
            "team_id": team.id,
            "agency_id": team.agency_id,
            "attempt": attempt,
            "deadline": deadline,
            "explanation": explanation["chosen"],
        },
        rules_version,
        explanation,
        _event(topics.ASSIGNMENTS_OFFERED, call, payload, cause),
    )


async def _emit(
    conn: asyncpg.Connection,
    topic: str,
    call: repository.CallRow,
    payload: events.Payload,
    cause: Envelope | None,
) -> Envelope:
    event = _event(topic, call, payload, cause)
    await enqueue(conn, SERVICE, event)
    return event


async def _hand_back(
    conn: asyncpg.Connection,
    call: repository.CallRow,
    reason: str,
    cause: Envelope,
    explanation: dict[str, Any],
    rules_version: str,
) -> None:
    call_id = str(call.call_id)
    if not await _call_to(conn, cause, call, "hand_back"):
        return
    attempts = len(call.tried_teams)
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
    await _emit(conn, topics.CALLS_UNASSIGNED, call, payload, cause)


async def _assignment_step(
    conn: asyncpg.Connection,
    cause: Envelope,
    call: repository.CallRow,
    ref: events.AssignmentRef,
    step: str,
) -> tuple[repository.AssignmentRow, str] | None:
    """Apply `step` to the assignment `ref` names through its state machine: the assignment as it
    was and its new state, or None when nothing changes (a repeat, a step read late, a refusal).

    A refused claim (accept, en route, on scene, cleared) of an assignment matching no longer
    holds is recorded, and the agency is told the assignment is gone.
    """
    call_id = str(call.call_id)
    a = await repository.get_assignment(conn, ref.assignment_id)
    if a is None or str(a.call_id) != call_id or a.team_id != ref.team_id:
        state = "unknown" if a is None else "other_call_or_team"
        refusal = lifecycle.Refusal("not_an_assignment_of_this_call", f"{ref.assignment_id} is {state}")
        await _refuse(conn, cause, call_id, None, state, step, refusal)
        return None
    state = str(a.status)
    nxt = lifecycle.assignment_step(state, step)
    if isinstance(nxt, lifecycle.Refusal):
        told = await repository.has_refusals(conn, ref.assignment_id)
        await _refuse(conn, cause, call_id, ref.assignment_id, state, step, nxt)
        if lifecycle.tells_agency_gone(step) and state not in ("withdrawn", "cleared") and not told:
            # A withdrawal is on its way to notify already; a declined or expired assignment
            # the agency still works on was never taken back: tell it now, once.
            await _emit_withdrawn(conn, call, a, "assignment_not_live", cause)
        return None
    if nxt == state:
        return None
    return a, nxt


async def _emit_withdrawn(
    conn: asyncpg.Connection,
    call: repository.CallRow,
    a: repository.AssignmentRow,
    reason: str,
    cause: Envelope | None,
) -> Envelope:
    payload = events.AssignmentWithdrawn(
        assignment_id=str(a.id),
        call_id=str(call.call_id),
        agency_id=a.agency_id,
        team_id=a.team_id,
        attempt=a.attempt,
        reason=reason,
    )
    return await _emit(conn, topics.ASSIGNMENTS_WITHDRAWN, call, payload, cause)


async def on_responded(
    matcher: Matcher, conn: asyncpg.Connection, event: Envelope, answer: events.AssignmentResponded
) -> None:
    """Accepted: the team is assigned. Declined: free it and offer the next team."""
    call = await repository.get_call(conn, answer.call_id)
    if call is None:
        return
    stepped = await _assignment_step(conn, event, call, answer, answer.response)
    if stepped is None:
        return
    a, nxt = stepped
    if nxt == "accepted":
        await repository.set_assignment_status(conn, answer.assignment_id, "accepted")
        await _set_team_status(matcher, conn, answer.team_id, answer.call_id, "assigned")
        await _call_to(conn, event, call, "accept")
        return
    await _let_go(matcher, conn, event, call, a, nxt, answer.reason_code or "declined")


async def _let_go(
    matcher: Matcher,
    conn: asyncpg.Connection,
    cause: Envelope,
    call: repository.CallRow,
    a: repository.AssignmentRow,
    status: str,
    reason: str,
) -> None:
    """An offer declined or expired: free its team and offer the next one."""
    await repository.set_assignment_status(conn, str(a.id), status, reason)
    await _release(matcher, conn, a.team_id, str(call.call_id))
    await offer_next(matcher, conn, str(call.call_id), cause)


async def on_expired(
    matcher: Matcher, conn: asyncpg.Connection, event: Envelope, expiry: events.AssignmentExpired
) -> None:
    """Notify, which decides deadlines, expired an offer: free the team and offer the next one."""
    call = await repository.get_call(conn, expiry.call_id)
    if call is None:
        return
    stepped = await _assignment_step(conn, event, call, expiry, "expired")
    if stepped is not None:
        a, nxt = stepped
        await _let_go(matcher, conn, event, call, a, nxt, "no_answer_by_deadline")


async def on_status_changed(
    matcher: Matcher, conn: asyncpg.Connection, event: Envelope, change: events.AssignmentStatusChanged
) -> None:
    """Move the team with its reports; cleared frees it and closes the call."""
    if change.status == events.TeamStatus.backup_requested:
        return
    call = await repository.get_call(conn, change.call_id)
    if call is None:
        return
    stepped = await _assignment_step(conn, event, call, change, change.status.value)
    if stepped is None:
        return
    _, nxt = stepped
    if nxt == "cleared":
        await repository.set_assignment_status(conn, change.assignment_id, "cleared", change.disposition)
        await _release(matcher, conn, change.team_id, change.call_id)
        await _call_to(conn, event, call, "close")
        return
    await repository.set_assignment_status(conn, change.assignment_id, nxt)
    await _set_team_status(matcher, conn, change.team_id, change.call_id, nxt)
    # A status report read before the acceptance it follows implies it.
    await _call_to(conn, event, call, "accept")


async def _withdraw(
    matcher: Matcher,
    conn: asyncpg.Connection,
    call: repository.CallRow,
    reason: str,
    cause: Envelope | None,
    release_to: str = "available",
) -> Envelope | None:
    """Take back the call's live offer or assignment, if any, and free its team."""
    call_id = str(call.call_id)
    live = await repository.active_assignment(conn, call_id)
    if live is None:
        return None
    assert lifecycle.assignment_step(str(live.status), "withdraw") == "withdrawn"
    await repository.set_assignment_status(conn, str(live.id), "withdrawn", reason)
    await _release(matcher, conn, live.team_id, call_id, release_to)
    return await _emit_withdrawn(conn, call, live, reason, cause)


async def _lock_offers_of(conn: asyncpg.Connection, team_id: str) -> list[str]:
    """Lock the calls a team is being offered, in call id order, before anything locks the team row.

    Every handler locks the call row before the team row; the roster API does the same, so a
    roster change and an answer to the same offer apply one after the other, never deadlock.
    """
    return [
        call_id
        for call_id in await repository.offered_calls_of_team(conn, team_id)
        if await repository.get_call(conn, call_id) is not None
    ]


async def _take_off_roster(
    matcher: Matcher, conn: asyncpg.Connection, team_id: str, call_id: str, release_to: str
) -> None:
    """An agency took away an offered team's capacity: withdraw the offer, offer the next team.

    `call_id` must be locked already (_lock_offers_of); an offer accepted meanwhile is left alone.
    """
    call = await repository.get_call(conn, call_id)
    live = await repository.active_assignment(conn, call_id)
    if call is None or live is None or live.status != "offered" or live.team_id != team_id:
        return
    withdrawn = await _withdraw(matcher, conn, call, "team_taken_off_roster", None, release_to)
    assert withdrawn is not None
    await offer_next(matcher, conn, call_id, withdrawn)


async def update_team(
    matcher: Matcher, pool: asyncpg.Pool, agency: Principal, team_id: str, update: TeamUpdate
) -> repository.TeamRow:
    """Change an agency's own team's status, position, capacity or shifts, in one transaction; a
    team whose capacity goes (no capacity, or off the roster) loses the offers it holds, and each
    call goes to the next team. NotFound for another agency's team and an unknown one alike."""
    changes = update.model_dump(mode="json", exclude_none=True)
    async with pool.acquire() as conn, conn.transaction():
        if await repository.agency_of_team(conn, team_id) != agency.tenant_id:
            raise NotFound("team")
        takes_away = update.capacity == 0 or update.status in OFF_ROSTER
        held = await _lock_offers_of(conn, team_id) if takes_away else []
        matcher.roster.touched(team_id)
        if "shifts" in changes:
            matcher.roster.invalidate()
        row = await repository.update_team(conn, team_id, agency.tenant_id, changes)
        # The change is in place first, so choosing the next team already sees it; the team
        # comes back freed of its offers, to the status asked for once it holds no call.
        for call_id in held:
            await _take_off_roster(matcher, conn, team_id, call_id, update.status or "available")
        if held:
            row = await repository.get_team(conn, team_id)
    assert row is not None
    return row


async def on_call_cancelled(
    matcher: Matcher, conn: asyncpg.Connection, event: Envelope, cancel: events.CallCancelled
) -> None:
    """The PSAP cancelled: withdraw any live assignment and free the team. A cancel read before
    its call is kept as the call, cancelled, so the call starts cancelled when it arrives."""
    call = await repository.get_call(conn, cancel.call_id)
    if call is None:
        await repository.insert_call(
            conn, cancel.call_id, cancel.psap_id, UNKNOWN_OFFER, event.correlationid, status="cancelled"
        )
        return
    if await _call_to(conn, event, call, "cancel"):
        await _withdraw(matcher, conn, call, "cancelled_by_psap", event)


async def on_call_updated(
    matcher: Matcher, conn: asyncpg.Connection, event: Envelope, update: events.CallUpdated
) -> None:
    """A PSAP update: routed away or a raised safety flag withdraws the team and hands the call
    back; a call newly routed to `community` (a newer version, a call-taker's override) is placed.

    An update read before its call's `calls.received.v1` is kept: routed away, as a pending
    record the late received call cannot re-place; to `community`, as the call itself.
    """
    call = await repository.get_call(conn, update.call_id)
    community = update.decision.route == events.Route.community
    if call is None:
        if community:
            await _place(matcher, conn, event, update)
        else:
            await repository.insert_call(
                conn,
                update.call_id,
                update.psap_id,
                _offer_details(update).model_dump(mode="json"),
                event.correlationid,
                update.decision.rules_version,
                status="routed_away",
            )
        return
    if call.status == "routed_away":
        await repository.update_offer(
            conn,
            update.call_id,
            _offer_details(update).model_dump(mode="json"),
            update.decision.rules_version,
        )
        if community and await _call_to(conn, event, call, "reroute"):
            await offer_next(matcher, conn, update.call_id, event)
        return
    if call.status not in lifecycle.LIVE_CALLS:
        if _takes_call_away(update, events.SafetyScreen()):
            # A finished call is not handed back again: the state machine records the refusal
            # (a cancelled or closed call), or finds it handed back already.
            await _call_to(conn, event, call, "hand_back")
        return
    old = events.OfferDetails.model_validate(call.offer)
    if _takes_call_away(update, old.safety):
        await _withdraw(matcher, conn, call, "withdrawn_by_psap_update", event)
        explanation = {
            "inputs": {"safety": update.safety.model_dump(mode="json"), "route": update.decision.route},
            "detail": "; ".join(update.decision.reasons),
            "decided_by": matcher.config.instance,
        }
        await _hand_back(
            conn, call, "withdrawn_by_psap_update", event, explanation, update.decision.rules_version
        )
        return
    # Still a community call: later offers carry the newer details.
    offer = _offer_details(update)
    offer = offer.model_copy(update={"callback_number": offer.callback_number or old.callback_number})
    await repository.update_offer(
        conn, update.call_id, offer.model_dump(mode="json"), update.decision.rules_version
    )


async def on_dead_letter(matcher: Matcher, conn: asyncpg.Connection, event: Envelope) -> None:
    """An event about a call could never be processed: a call still live goes back to its PSAP
    (`processing_failed`), its live assignment withdrawn and its team freed."""
    try:
        call_id = str(uuid.UUID(event.subject))
    except ValueError:
        return
    call = await repository.get_call(conn, call_id)
    if call is None or call.status not in lifecycle.LIVE_CALLS:
        return
    await _withdraw(matcher, conn, call, "processing_failed", event)
    explanation = {
        "detail": f"{event.type} {event.id} could not be processed",
        "decided_by": matcher.config.instance,
    }
    rules = await repository.rules(conn)
    await _hand_back(conn, call, "processing_failed", event, explanation, rules.version)


def match_view(
    decisions: list[repository.DecisionRow],
    assignments: list[repository.AssignmentRow],
    *,
    oversight: bool = True,
) -> dict[str, Any]:
    """Every decision made for a call and every offer, with why; for oversight each explanation is
    cut to `domain.EXPLANATION_SHOWN` (no free text, the position on the grid), an admin sees all."""

    def explained(explanation: dict[str, Any], shown: dict[str, Any]) -> Any:
        return domain.disclosed(explanation, shown) if oversight else explanation

    return {
        "decisions": [
            {
                "attempt": d.attempt,
                "outcome": d.outcome,
                "team_id": d.team_id,
                "reason": d.reason,
                "rules_version": d.rules_version,
                "decided_at": d.decided_at,
                "explanation": explained(d.explanation, domain.EXPLANATION_SHOWN),
            }
            for d in decisions
        ],
        "offers": [
            {
                "assignment_id": str(a.id),
                "team_id": a.team_id,
                "agency_id": a.agency_id,
                "attempt": a.attempt,
                "status": a.status,
                "reason": a.reason,
                "deadline": a.deadline,
                "offered_at": a.created_at,
                "decided_at": a.decided_at,
                "explanation": explained(a.explanation, domain.EXPLANATION_SHOWN["chosen"]),
            }
            for a in assignments
        ],
    }
