"""Offering a call: read what it needs, choose the best free team (or the best few at once, in a
parallel attempt), reserve and offer it, or hand the call back with the reason and how far the
roster got."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from services.matching import crisis_line, domain, lifecycle, repository
from services.matching.index import RosterIndex
from services.matching.matcher import Matcher
from services.matching.rules import Matching
from services.matching.steps import event_about, hand_back, refuse
from shared import events, topics
from shared.envelope import Envelope, utcnow

# How many runners-up a decision keeps in its explanation.
RUNNERS_UP = 5


def offer_details(call: events.CallReceived | events.CallUpdated) -> events.OfferDetails:
    """The minimum a team needs to respond, from intake's event (an update may omit the callback)."""
    return events.OfferDetails(
        location=call.location,
        presenting_problem=call.incident_type,
        language=call.language,
        safety=call.safety,
        callback_number=call.callback_number,
        cautions=call.cautions,
    )


async def place(
    matcher: Matcher,
    conn: asyncpg.Connection,
    event: Envelope,
    call: events.CallReceived | events.CallUpdated,
) -> bool:
    """Remember a community or 988 call and offer it; False if the call was known."""
    offer = offer_details(call)
    stored = await repository.insert_call(
        conn,
        call.call_id,
        call.psap_id,
        offer.model_dump(mode="json"),
        event.correlationid,
        call.decision.rules_version,
        commit_from=call.received_at if isinstance(call, events.CallReceived) else call.updated_at,
        route=call.decision.route,
    )
    if stored is None:
        return False
    await offer_next(matcher, conn, call.call_id, event, stored)
    return True


async def offer_next(
    matcher: Matcher,
    conn: asyncpg.Connection,
    call_id: str,
    cause: Envelope,
    call: repository.CallRow | None = None,
) -> None:
    """Reserve the best free team and offer it the call (the best few at once when the jurisdiction
    asks for parallel offers), or hand the call back with a reason; while an offer of the call's
    attempt is still open, its answer is awaited first (`call`: its row when the caller holds it
    already, locked or new in this transaction)."""
    if call is None:
        call = await repository.get_call(conn, call_id)
    assert call is not None
    refused = lifecycle.call_step(str(call.status), "offer")
    if isinstance(refused, lifecycle.Refusal):
        await refuse(conn, cause, call_id, None, str(call.status), "offer", refused)
        return
    if call.route == events.Route.crisis_line:
        await _to_crisis_line(matcher, conn, call, cause)
        return
    if call.attempts and await repository.live_assignments(conn, call_id):
        return  # another team of a parallel attempt may still accept
    offer = events.OfferDetails.model_validate(call.offer)
    tried = list(call.tried_teams)
    index = await matcher.roster.index(conn)
    rules, now = matcher.roster.rules, utcnow()
    needs = call_needs(rules, offer)
    explanation = _explanation(matcher, call, offer, needs, rules, tried, now)
    if call.attempts >= matcher.config.max_attempts:
        explanation["detail"] = f"{len(tried)} teams were offered the call"
        await hand_back(conn, call, "no_acceptance_in_time", cause, explanation, rules.version)
        return
    deadline = await _deadline(matcher, conn, call, cause, rules, now)
    if deadline is None:
        explanation["detail"] = f"no team accepted within {rules.commit_within:g} s of the call"
        await hand_back(conn, call, "no_acceptance_in_time", cause, explanation, rules.version)
        return
    explanation["agency_load"] = index.load()
    want = _offers_at_once(rules, call, cause, now)
    decision, chosen, taken = await _choose(matcher, conn, call_id, index, needs, tried, now, want)
    explanation["considered"] = "every team"
    explanation["funnel"] = decision.funnel
    explanation["taken_meanwhile"] = taken
    if chosen:
        if want > 1:
            explanation["offered_at_once"] = len(chosen)
        for rank_no, candidate in chosen:
            why = {
                **explanation,
                "chosen": {"rank": rank_no, **candidate.explain()},
                "runners_up": [c.explain() for c in decision.candidates[rank_no : rank_no + RUNNERS_UP]],
            }
            await _offer(conn, call, candidate, why, rules.version, deadline, cause, len(chosen))
        return
    # The PSAP sees how far the roster got: "teams 12, with_capacity 12, on_shift 3, in_area 0".
    explanation["detail"] = ", ".join(f"{stage} {n}" for stage, n in decision.funnel.items())
    await hand_back(conn, call, hand_back_reason(decision, tried), cause, explanation, rules.version)


async def _to_crisis_line(
    matcher: Matcher, conn: asyncpg.Connection, call: repository.CallRow, cause: Envelope
) -> None:
    """Offer a 988 call to the crisis line's agency, or hand it back once the center answered no."""
    call_id = str(call.call_id)
    agency_id = await repository.crisis_line_agency(conn)
    center = None if agency_id is None else await repository.get_agency(conn, agency_id)
    paused = center is not None and center.paused_at is not None
    step = crisis_line.next_step(agency_id, await repository.assignments_of_call(conn, call_id), paused)
    rules = await repository.rules(conn)
    version, now = rules.version, utcnow()
    explanation: dict[str, Any] = {
        "inputs": {"route": events.Route.crisis_line.value, "at": now.isoformat()},
        "rules_version": version,
        "triage_rules_version": call.triage_version,
        "decided_by": matcher.config.instance,
    }
    if isinstance(step, crisis_line.HandBack):
        explanation["detail"] = step.detail
        await hand_back(conn, call, step.reason, cause, explanation, version)
        return
    # The center answers within the call's time to commit, as a team would.
    deadline = await _deadline(matcher, conn, call, cause, rules, now)
    if deadline is None:
        explanation["detail"] = f"the center was not offered the call within {rules.commit_within:g} s of it"
        await hand_back(conn, call, "no_acceptance_in_time", cause, explanation, version)
        return
    assignment_id = str(uuid.uuid4())
    explanation["chosen"] = {"agency_id": step.agency_id, "team_id": crisis_line.CENTER}
    payload = events.AssignmentOffered(
        assignment_id=assignment_id,
        call_id=call_id,
        agency_id=step.agency_id,
        team_id=crisis_line.CENTER,
        attempt=call.attempts + 1,
        deadline=deadline,
        offer=events.OfferDetails.model_validate(call.offer),
    )
    await repository.record_offer(
        conn,
        {
            "id": assignment_id,
            "call_id": call_id,
            "team_id": crisis_line.CENTER,
            "agency_id": step.agency_id,
            "attempt": payload.attempt,
            "deadline": deadline,
            "explanation": explanation["chosen"],
        },
        version,
        explanation,
        event_about(topics.ASSIGNMENTS_OFFERED, call, payload, cause),
    )


def call_needs(rules: Matching, offer: events.OfferDetails) -> domain.CallNeeds:
    """What a team must have and should have to take the call the offer describes."""
    required, preferred = domain.needs_for(
        rules, offer.presenting_problem, offer.safety.model_dump(mode="json")
    )
    return domain.CallNeeds(
        lat=offer.location.lat,
        lon=offer.location.lon,
        language=offer.language,
        required=frozenset(required),
        preferred=frozenset(preferred),
    )


def _offers_at_once(rules: Matching, call: repository.CallRow, cause: Envelope, now: datetime) -> int:
    """How many teams this attempt offers the call at once, from what is left of its time to commit."""
    parallel = rules.parallel_offers
    if parallel is None:
        return 1
    commit_from = call.commit_from or cause.time
    left_s = rules.commit_within - (now - commit_from).total_seconds()
    return domain.offers_at_once(parallel.teams, parallel.below_s, left_s)


def hand_back_reason(decision: domain.Decision, tried: list[str]) -> str:
    """Why no team was chosen; with every team left offered the call already, none accepted in time."""
    reason = decision.reason or "all_busy"
    if reason == "all_busy" and tried:
        return "no_acceptance_in_time"
    return reason


async def _choose(
    matcher: Matcher,
    conn: asyncpg.Connection,
    call_id: str,
    index: RosterIndex,
    needs: domain.CallNeeds,
    tried: list[str],
    now: datetime,
    want: int = 1,
) -> tuple[domain.Decision, list[tuple[int, domain.Candidate]], list[str]]:
    """Decide on the roster as last read and reserve the best `want` teams still free; with none
    free, read the roster again (another replica may have freed a team since) and try once more.

    Answers the decision, the reserved candidates with their ranks (none: no team free), and the
    teams a concurrent call reserved meanwhile.
    """
    load, shares = index.load(), matcher.roster.shares
    rules, tz = matcher.roster.rules, matcher.roster.timezone

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
    chosen = await _reserve(matcher, conn, call_id, decision, taken, want)
    if not chosen:
        decision = decide(await matcher.roster.index(conn, fresh=True))
        chosen = await _reserve(matcher, conn, call_id, decision, taken, want)
    return decision, chosen, taken


async def _reserve(
    matcher: Matcher,
    conn: asyncpg.Connection,
    call_id: str,
    decision: domain.Decision,
    taken: list[str],
    want: int,
) -> list[tuple[int, domain.Candidate]]:
    """Reserve the best `want` candidates still free (each with its rank from 1), best first.

    Each reservation is the conditional UPDATE of reserve_team, so a team offered one call of a
    parallel attempt is never double-booked by another call or another matching process.
    """
    chosen: list[tuple[int, domain.Candidate]] = []
    for rank_no, candidate in enumerate(decision.candidates, start=1):
        team_id = candidate.team.id
        matcher.roster.touched(team_id)
        if await repository.reserve_team(conn, team_id, call_id):
            chosen.append((rank_no, candidate))
            if len(chosen) == want:
                break
        elif team_id not in taken:
            taken.append(team_id)  # reserved by a concurrent call a moment ago
    return chosen


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


async def _deadline(
    matcher: Matcher,
    conn: asyncpg.Connection,
    call: repository.CallRow,
    cause: Envelope,
    rules: Matching,
    now: datetime,
) -> datetime | None:
    """The deadline of an offer made now, within the call's time to commit (None: too little is
    left); a call rerouted to community starts its time with the update that rerouted it."""
    commit_from = call.commit_from
    if commit_from is None:
        commit_from = cause.time
        await repository.start_commit_budget(conn, str(call.call_id), commit_from)
    c = matcher.config
    return domain.offer_deadline(now, commit_from, rules.commit_within, c.offer_timeout_s, c.offer_floor_s)


async def _offer(
    conn: asyncpg.Connection,
    call: repository.CallRow,
    candidate: domain.Candidate,
    explanation: dict[str, Any],
    rules_version: str,
    deadline: datetime,
    cause: Envelope,
    offered_with: int = 1,
) -> None:
    """Offer the reserved team the call until `deadline`, recorded with the decision's explanation
    (`offered_with`: how many teams this attempt offers it at once)."""
    call_id = str(call.call_id)
    team = candidate.team
    attempt = call.attempts + 1
    assignment_id = str(uuid.uuid4())
    payload = events.AssignmentOffered(
        assignment_id=assignment_id,
        call_id=call_id,
        agency_id=team.agency_id,
        team_id=team.id,
        attempt=attempt,
        deadline=deadline,
        offer=events.OfferDetails.model_validate(call.offer),
        distance_km=round(candidate.distance_km, 3),
        eta_min=round(candidate.eta_min, 1),
        offered_with=offered_with if offered_with > 1 else None,
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
            "offered_with": offered_with,
        },
        rules_version,
        explanation,
        event_about(topics.ASSIGNMENTS_OFFERED, call, payload, cause),
    )
