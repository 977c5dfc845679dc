"""Matching's use cases: place a call, follow answers and status, withdraw, free teams, and an
agency's change to its roster.

Each is a function whose first argument is the `Matcher`, what matching keeps from one event to
the next (its knobs and the roster it indexes once); the composition root binds it. The steps
they take are in services/matching/steps.py, offering a call in services/matching/offers.py.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from services.matching import domain, lifecycle, repository
from services.matching.domain import OFF_ROSTER
from services.matching.matcher import Matcher
from services.matching.offers import offer_details, offer_next, place
from services.matching.schemas import TeamUpdate
from services.matching.steps import (
    call_to,
    emit,
    emit_withdrawn,
    hand_back,
    refuse,
    release,
    set_team_status,
)
from services.matching.updates import offer_changes, updated_offer
from shared import events, topics
from shared.auth import Principal
from shared.domain_errors import NotFound
from shared.envelope import Envelope

# A pending call's offer details before its `calls.received.v1` was read (a cancel read first).
UNKNOWN_OFFER: dict[str, Any] = {}
# The routes matching places: a community team, or the 988 crisis line's agency.
PLACED = (events.Route.community, events.Route.crisis_line)


def _takes_call_away(
    update: events.CallUpdated, before: events.SafetyScreen, route: str = events.Route.community
) -> bool:
    """Whether a PSAP update ends the response: routed elsewhere than the call's `route`, or a risk
    flag newly raised.

    Intake already routes a raised flag away; a flag that turns "yes" under a `community` route
    (a call-taker's override stands until a flag is raised) still withdraws, the safe side.
    """
    now, earlier = update.safety.model_dump(), before.model_dump()
    raised = any(now.get(q) == events.Answer.yes != earlier.get(q) for q in events.RISK_QUESTIONS)
    return raised or update.decision.route != route


async def on_call_received(
    matcher: Matcher, conn: asyncpg.Connection, event: Envelope, call: events.CallReceived
) -> None:
    """A community or 988 call: remember it and offer it (to the best team, or to the crisis line's
    agency), unless a cancel or an update read before it already ended it (its pending record), in
    which case it never is offered."""
    if call.decision.route not in PLACED:
        return
    if await place(matcher, conn, event, call):
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
        await hand_back(conn, known, "withdrawn_by_psap_update", event, explanation, version)


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
        await refuse(conn, cause, call_id, None, state, step, refusal)
        return None
    state = str(a.status)
    nxt = lifecycle.assignment_step(state, step)
    if isinstance(nxt, lifecycle.Refusal):
        told = await repository.has_refusals(conn, ref.assignment_id)
        await refuse(conn, cause, call_id, ref.assignment_id, state, step, nxt)
        if lifecycle.tells_agency_gone(step) and state not in ("withdrawn", "cleared") and not told:
            # A withdrawal is on its way to notify already; a declined or expired assignment
            # the agency still works on was never taken back: tell it now, once.
            await emit_withdrawn(conn, call, a, "assignment_not_live", cause)
        return None
    if nxt == state:
        return None
    return a, nxt


async def on_responded(
    matcher: Matcher, conn: asyncpg.Connection, event: Envelope, answer: events.AssignmentResponded
) -> None:
    """Accepted: the team is assigned (and any other team offered the call in the same attempt is
    withdrawn and freed). Declined: free it and offer the next team."""
    call = await repository.get_call(conn, answer.call_id)
    if call is None:
        return
    stepped = await _assignment_step(conn, event, call, answer, answer.response)
    if stepped is None:
        return
    a, nxt = stepped
    if nxt == "accepted":
        await repository.set_assignment_status(conn, answer.assignment_id, "accepted")
        await set_team_status(matcher, conn, answer.team_id, answer.call_id, "assigned")
        await call_to(conn, event, call, "accept")
        await _withdraw_others(matcher, conn, call, a, event)
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
    await release(matcher, conn, a.team_id, str(call.call_id))
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
    a, nxt = stepped
    if nxt == "cleared":
        await repository.set_assignment_status(conn, change.assignment_id, "cleared", change.disposition)
        await release(matcher, conn, change.team_id, change.call_id)
        await call_to(conn, event, call, "close")
        return
    await repository.set_assignment_status(conn, change.assignment_id, nxt)
    await set_team_status(matcher, conn, change.team_id, change.call_id, nxt)
    # A status report read before the acceptance it follows implies it.
    await call_to(conn, event, call, "accept")
    await _withdraw_others(matcher, conn, call, a, event)


async def _withdraw(
    matcher: Matcher,
    conn: asyncpg.Connection,
    call: repository.CallRow,
    reason: str,
    cause: Envelope | None,
    release_to: str = "available",
    *,
    keep: str | None = None,
    team_id: str | None = None,
) -> Envelope | None:
    """Take back the call's live offers and assignment (all but `keep`; only `team_id`'s when
    given) and free their teams; answers the last withdrawal's event, or None if none was live."""
    call_id = str(call.call_id)
    withdrawn = None
    for live in await repository.live_assignments(conn, call_id):
        if str(live.id) == keep or (team_id is not None and live.team_id != team_id):
            continue
        assert lifecycle.assignment_step(str(live.status), "withdraw") == "withdrawn"
        await repository.set_assignment_status(conn, str(live.id), "withdrawn", reason)
        await release(matcher, conn, live.team_id, call_id, release_to)
        withdrawn = await emit_withdrawn(conn, call, live, reason, cause)
    return withdrawn


async def _withdraw_others(
    matcher: Matcher,
    conn: asyncpg.Connection,
    call: repository.CallRow,
    a: repository.AssignmentRow,
    cause: Envelope,
) -> None:
    """A team of a parallel attempt took the call: withdraw the other teams' offers and free them."""
    if a.offered_with > 1:
        await _withdraw(matcher, conn, call, "accepted_by_another_team", cause, keep=str(a.id))


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
    matcher: Matcher,
    conn: asyncpg.Connection,
    team_id: str,
    call_id: str,
    release_to: str,
    reason: str = "team_taken_off_roster",
) -> None:
    """An agency took away an offered team's capacity: withdraw the offer, offer the next team.

    `call_id` must be locked already (_lock_offers_of); an offer accepted meanwhile is left alone.
    """
    call = await repository.get_call(conn, call_id)
    if call is None:
        return
    offered = [a for a in await repository.live_assignments(conn, call_id) if a.status == "offered"]
    if not any(a.team_id == team_id for a in offered):
        return
    withdrawn = await _withdraw(matcher, conn, call, reason, None, release_to, team_id=team_id)
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


async def _lock_offers_of_agency(conn: asyncpg.Connection, agency_id: str) -> list[tuple[str, str]]:
    """(call id, team id) of each offer the agency's teams hold, the calls locked in call id order
    as every handler locks them."""
    held = await repository.offers_held_by_agency(conn, agency_id)
    for call_id, _ in held:
        await repository.get_call(conn, call_id)
    return held


async def _move_offers_on(
    matcher: Matcher, conn: asyncpg.Connection, held: list[tuple[str, str]], reason: str
) -> None:
    """Withdraw each of `held` (locked) with `reason` and offer its call to the next team."""
    matcher.roster.invalidate()
    for call_id, team in held:
        await _take_off_roster(matcher, conn, team, call_id, "available", reason)


async def pause_agency(
    matcher: Matcher, pool: asyncpg.Pool, agency: Principal, reason: str | None
) -> repository.AgencyRow:
    """Pause an agency (`reason`, e.g. staffing) or resume it (None), in one transaction. Paused,
    none of its teams is offered a call, and each offer its teams hold goes to the next team (an
    accepted call stays with the team working it); resumed, its teams are chosen again at once."""
    async with pool.acquire() as conn, conn.transaction():
        held = await _lock_offers_of_agency(conn, agency.tenant_id) if reason else []
        row = await repository.set_paused(conn, agency.tenant_id, reason)
        if row is None:
            raise NotFound("agency")
        await _move_offers_on(matcher, conn, held, "agency_paused")
    return row


async def on_reachability(
    matcher: Matcher, conn: asyncpg.Connection, event: Envelope, payload: events.AgencyReachability
) -> None:
    """An agency went silent past its liveness timeout, or showed life again. Unreachable, its
    teams are skipped (`agency_unreachable`) and each offer they hold goes to the next team (an
    accepted call stays with its team); reachable, they are chosen again at once."""
    held = [] if payload.reachable else await _lock_offers_of_agency(conn, payload.agency_id)
    if await repository.set_reachability(conn, payload):
        await _move_offers_on(matcher, conn, held, "agency_unreachable")


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
    if await call_to(conn, event, call, "cancel"):
        await _withdraw(matcher, conn, call, "cancelled_by_psap", event)


async def on_call_updated(
    matcher: Matcher, conn: asyncpg.Connection, event: Envelope, update: events.CallUpdated
) -> None:
    """A PSAP update: routed away or a raised safety flag withdraws the team and hands the call
    back; a call newly routed to `community` or `988` (a newer version, a call-taker's override) is
    placed.

    An update read before its call's `calls.received.v1` is kept: routed away, as a pending
    record the late received call cannot re-place; to `community`, as the call itself.
    """
    call = await repository.get_call(conn, update.call_id)
    placed = update.decision.route in PLACED
    if call is None:
        if placed:
            await place(matcher, conn, event, update)
        else:
            await repository.insert_call(
                conn,
                update.call_id,
                update.psap_id,
                offer_details(update).model_dump(mode="json"),
                event.correlationid,
                update.decision.rules_version,
                status="routed_away",
            )
        return
    if call.status == "routed_away":
        await repository.update_offer(
            conn,
            update.call_id,
            offer_details(update).model_dump(mode="json"),
            update.decision.rules_version,
            route=update.decision.route if placed else None,
        )
        if placed and await call_to(conn, event, call, "reroute"):
            await offer_next(matcher, conn, update.call_id, event)
        return
    if call.status not in lifecycle.LIVE_CALLS:
        if _takes_call_away(update, events.SafetyScreen(), call.route):
            # A finished call is not handed back again: the state machine records the refusal
            # (a cancelled or closed call), or finds it handed back already.
            await call_to(conn, event, call, "hand_back")
        return
    old = events.OfferDetails.model_validate(call.offer)
    if _takes_call_away(update, old.safety, call.route):
        await _withdraw(matcher, conn, call, "withdrawn_by_psap_update", event)
        explanation = {
            "inputs": {"safety": update.safety.model_dump(mode="json"), "route": update.decision.route},
            "detail": "; ".join(update.decision.reasons),
            "decided_by": matcher.config.instance,
        }
        await hand_back(
            conn, call, "withdrawn_by_psap_update", event, explanation, update.decision.rules_version
        )
        return
    # Still a community call: later offers carry the newer details, and a team offered or
    # assigned the call hears what changed.
    offer = updated_offer(old, offer_details(update))
    await repository.update_offer(
        conn, update.call_id, offer.model_dump(mode="json"), update.decision.rules_version
    )
    changed = offer_changes(old, offer)
    for live in await repository.live_assignments(conn, update.call_id) if changed else []:
        told = events.AssignmentUpdated(
            assignment_id=str(live.id),
            call_id=update.call_id,
            agency_id=live.agency_id,
            team_id=live.team_id,
            attempt=live.attempt,
            offered_with=live.parallel(),
            offer=offer,
            changed=changed,
        )
        await emit(conn, topics.ASSIGNMENTS_UPDATED, call, told, event)


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
    await hand_back(conn, call, "processing_failed", event, explanation, rules.version)


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
