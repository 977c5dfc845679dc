"""Matching's event handlers: place a call, follow answers and status, expire, withdraw, free teams."""

from __future__ import annotations

import json
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.matching import domain, repository
from services.matching.roster import Roster
from shared import events, topics
from shared.envelope import Envelope, new_event, utcnow
from shared.jurisdiction import Matching
from shared.outbox import enqueue

SERVICE = "matching"
# How many runners-up a decision keeps in its explanation.
RUNNERS_UP = 5
# Calls in these states are finished for matching: later events about them change nothing.
FINISHED = ("unassigned", "cancelled", "closed")


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


def _event(topic: str, call: asyncpg.Record, payload: events.Payload, cause: Envelope | None) -> Envelope:
    """An event about `call`, caused by `cause`, in the call's correlation."""
    return new_event(
        topic, SERVICE, str(call["call_id"]), payload, cause=cause, correlationid=call["correlation"]
    )


class MatchingHandlers:
    """Event handlers of matching, each run in the consumer's transaction."""

    def __init__(self, config: MatchingConfig) -> None:
        self.config = config
        self.roster = Roster(config.roster_refresh_s)

    async def on_call_received(
        self, conn: asyncpg.Connection, event: Envelope, call: events.CallReceived
    ) -> None:
        """A community call: remember it and offer it to the best team."""
        if call.decision.route == events.Route.community:
            await self._place(conn, event, call)

    async def _place(
        self, conn: asyncpg.Connection, event: Envelope, call: events.CallReceived | events.CallUpdated
    ) -> None:
        """Remember a community call and offer it to the best team (a known call is left alone)."""
        offer = _offer_details(call)
        stored = await repository.insert_call(
            conn,
            call.call_id,
            call.psap_id,
            offer.model_dump(mode="json"),
            event.correlationid,
            call.decision.rules_version,
        )
        if stored is not None:
            await self.offer_next(conn, call.call_id, event, stored)

    async def offer_next(
        self, conn: asyncpg.Connection, call_id: str, cause: Envelope, call: asyncpg.Record | None = None
    ) -> None:
        """Reserve the best free team and offer it the call, or hand the call back with a reason
        (`call`: its row when the caller holds it already, locked or new in this transaction)."""
        if call is None:
            call = await repository.get_call(conn, call_id)
        assert call is not None
        offer = events.OfferDetails.model_validate_json(call["offer"])
        tried = list(call["tried_teams"])
        index = await self.roster.index(conn)
        rules, tz = self.roster.rules, self.roster.timezone
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
        explanation = self._explanation(call, offer, needs, rules, tried, now)
        if len(tried) >= self.config.max_attempts:
            explanation["detail"] = f"{len(tried)} teams were offered the call"
            await self._hand_back(conn, call, "no_acceptance_in_time", cause, explanation, rules.version)
            return
        load, shares = index.load(), self.roster.shares
        explanation["agency_load"] = load

        def decide(index: domain.RosterIndex) -> domain.Decision:
            return index.decide(
                needs,
                now,
                tz,
                speed_kmh=self.config.speed_kmh,
                rules=rules,
                exclude=frozenset(tried),
                load=load,
                shares=shares,
            )

        taken: list[str] = []
        decision = decide(index)
        chosen = await self._reserve(conn, call_id, decision, taken)
        if chosen is None:
            # Nobody free as this process last read the roster: read it again before handing back
            # (another replica may have freed a team since).
            decision = decide(await self.roster.index(conn, fresh=True))
            chosen = await self._reserve(conn, call_id, decision, taken)
        explanation["considered"] = "every team"
        explanation["funnel"] = decision.funnel
        explanation["taken_meanwhile"] = taken
        if chosen is not None:
            rank_no, candidate = chosen
            explanation["chosen"] = {"rank": rank_no, **candidate.explain()}
            explanation["runners_up"] = [
                c.explain() for c in decision.candidates[rank_no : rank_no + RUNNERS_UP]
            ]
            await self._offer(conn, call, candidate, explanation, rules.version, now, cause)
            return
        reason = decision.reason or "all_busy"
        if reason == "all_busy" and tried:
            # Every team left was offered the call already and declined or let it expire.
            reason = "no_acceptance_in_time"
        # The PSAP sees how far the roster got: "teams 12, with_capacity 12, on_shift 3, in_area 0".
        explanation["detail"] = ", ".join(f"{stage} {n}" for stage, n in decision.funnel.items())
        await self._hand_back(conn, call, reason, cause, explanation, rules.version)

    async def _release(
        self, conn: asyncpg.Connection, team_id: str, call_id: str, status: str = "available"
    ) -> None:
        """Free a team held for a call (the roster reads it again before the next decision)."""
        self.roster.touched(team_id)
        await repository.release_team(conn, team_id, call_id, status)

    async def _set_team_status(
        self, conn: asyncpg.Connection, team_id: str, call_id: str, status: str
    ) -> None:
        """Move a team with its call (the roster reads it again before the next decision)."""
        self.roster.touched(team_id)
        await repository.set_team_status(conn, team_id, call_id, status)

    async def _reserve(
        self, conn: asyncpg.Connection, call_id: str, decision: domain.Decision, taken: list[str]
    ) -> tuple[int, domain.Candidate] | None:
        """Reserve the best candidate still free (rank from 1 and the candidate), or None."""
        for rank_no, candidate in enumerate(decision.candidates, start=1):
            team_id = candidate.team.id
            self.roster.touched(team_id)
            if await repository.reserve_team(conn, team_id, call_id):
                return rank_no, candidate
            if team_id not in taken:
                taken.append(team_id)  # reserved by a concurrent call a moment ago
        return None

    def _explanation(
        self,
        call: asyncpg.Record,
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
            "triage_rules_version": call["triage_version"],
            "weights": {
                "speed_kmh": self.config.speed_kmh,
                "preferred_skill_min": rules.preferred_skill_min,
                "language_min": rules.language_min,
                "fairness_min": rules.fairness_min,
                "language_policy": rules.language,
            },
            "decided_by": self.config.instance,
        }

    async def _offer(
        self,
        conn: asyncpg.Connection,
        call: asyncpg.Record,
        candidate: domain.Candidate,
        explanation: dict[str, Any],
        rules_version: str,
        now: datetime,
        cause: Envelope,
    ) -> None:
        call_id = str(call["call_id"])
        team = candidate.team
        attempt = len(call["tried_teams"]) + 1
        assignment_id = str(uuid.uuid4())
        deadline = now + timedelta(seconds=self.config.offer_timeout_s)
        payload = events.AssignmentOffered(
            assignment_id=assignment_id,
            call_id=call_id,
            agency_id=team.agency_id,
            team_id=team.id,
            attempt=attempt,
            deadline=deadline,
            offer=events.OfferDetails.model_validate_json(call["offer"]),
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
        self,
        conn: asyncpg.Connection,
        topic: str,
        call: asyncpg.Record,
        payload: events.Payload,
        cause: Envelope | None,
    ) -> Envelope:
        event = _event(topic, call, payload, cause)
        await enqueue(conn, SERVICE, event)
        return event

    async def _hand_back(
        self,
        conn: asyncpg.Connection,
        call: asyncpg.Record,
        reason: str,
        cause: Envelope,
        explanation: dict[str, Any],
        rules_version: str,
    ) -> None:
        call_id = str(call["call_id"])
        await repository.set_call_status(conn, call_id, "unassigned")
        await repository.insert_decision(
            conn,
            {
                "call_id": call_id,
                "attempt": len(call["tried_teams"]) + 1,
                "outcome": "handed_back",
                "reason": reason,
                "rules_version": rules_version,
                "explanation": explanation,
            },
        )
        payload = events.CallUnassigned(
            call_id=call_id, psap_id=call["psap_id"], reason_code=reason, detail=explanation.get("detail")
        )
        await self._emit(conn, topics.CALLS_UNASSIGNED, call, payload, cause)

    async def on_responded(
        self, conn: asyncpg.Connection, event: Envelope, answer: events.AssignmentResponded
    ) -> None:
        """Accepted: the team is assigned. Declined: free it and offer the next team."""
        if await repository.get_call(conn, answer.call_id) is None:
            return
        assignment = await repository.get_assignment(conn, answer.assignment_id)
        if assignment is None or assignment["status"] != "offered":
            return  # already expired or withdrawn: notify refused the answer to the agency
        if answer.response == "accepted":
            await repository.set_assignment_status(conn, answer.assignment_id, "accepted")
            await self._set_team_status(conn, answer.team_id, answer.call_id, "assigned")
            await repository.set_call_status(conn, answer.call_id, "assigned")
            return
        await repository.set_assignment_status(
            conn, answer.assignment_id, "declined", answer.reason_code or "declined"
        )
        await self._release(conn, answer.team_id, answer.call_id)
        await self.offer_next(conn, answer.call_id, event)

    async def on_deadline(self, conn: asyncpg.Connection, assignment_id: str) -> None:
        """An offer's deadline passed unanswered: expire it, free the team, offer the next one."""
        a = await repository.get_assignment(conn, assignment_id)
        call = await repository.get_call(conn, str(a["call_id"])) if a else None
        if a is None or call is None or a["status"] != "offered":
            return
        await repository.set_assignment_status(conn, assignment_id, "expired", "no_answer_by_deadline")
        await self._release(conn, a["team_id"], str(a["call_id"]))
        payload = events.AssignmentExpired(
            assignment_id=assignment_id,
            call_id=str(a["call_id"]),
            agency_id=a["agency_id"],
            team_id=a["team_id"],
        )
        expired = await self._emit(conn, topics.ASSIGNMENTS_EXPIRED, call, payload, None)
        await self.offer_next(conn, str(a["call_id"]), expired)

    async def on_status_changed(
        self, conn: asyncpg.Connection, event: Envelope, change: events.AssignmentStatusChanged
    ) -> None:
        """Move the team with its reports; cleared frees it."""
        if await repository.get_call(conn, change.call_id) is None:
            return
        if change.status == events.TeamStatus.cleared:
            await repository.set_assignment_status(conn, change.assignment_id, "cleared", change.disposition)
            await self._release(conn, change.team_id, change.call_id)
            await repository.set_call_status(conn, change.call_id, "closed")
        elif change.status in (events.TeamStatus.en_route, events.TeamStatus.on_scene):
            await repository.set_assignment_status(conn, change.assignment_id, change.status.value)
            await self._set_team_status(conn, change.team_id, change.call_id, change.status.value)

    async def _withdraw(
        self,
        conn: asyncpg.Connection,
        call: asyncpg.Record,
        reason: str,
        cause: Envelope | None,
        release_to: str = "available",
    ) -> Envelope | None:
        """Take back the call's live offer or assignment, if any, and free its team."""
        call_id = str(call["call_id"])
        live = await repository.active_assignment(conn, call_id)
        if live is None:
            return None
        await repository.set_assignment_status(conn, str(live["id"]), "withdrawn", reason)
        await self._release(conn, live["team_id"], call_id, release_to)
        payload = events.AssignmentWithdrawn(
            assignment_id=str(live["id"]),
            call_id=call_id,
            agency_id=live["agency_id"],
            team_id=live["team_id"],
            reason=reason,
        )
        return await self._emit(conn, topics.ASSIGNMENTS_WITHDRAWN, call, payload, cause)

    async def lock_offer_of(self, conn: asyncpg.Connection, team_id: str) -> str | None:
        """Lock the call a team is being offered, if any, before anything locks the team row.

        Every handler locks the call row before the team row; the roster API does the same, so a
        roster change and an answer to the same offer apply one after the other, never deadlock.
        """
        call_id = await repository.offered_call_of_team(conn, team_id)
        if call_id is None or await repository.get_call(conn, call_id) is None:
            return None
        return call_id

    async def take_off_roster(
        self, conn: asyncpg.Connection, team_id: str, call_id: str, release_to: str
    ) -> None:
        """An agency took away an offered team's capacity: withdraw the offer, offer the next team.

        `call_id` must be locked already (lock_offer_of); an offer accepted meanwhile is left alone.
        """
        call = await repository.get_call(conn, call_id)
        live = await repository.active_assignment(conn, call_id)
        if call is None or live is None or live["status"] != "offered" or live["team_id"] != team_id:
            return
        withdrawn = await self._withdraw(conn, call, "team_taken_off_roster", None, release_to)
        assert withdrawn is not None
        await self.offer_next(conn, call_id, withdrawn)

    async def on_call_cancelled(
        self, conn: asyncpg.Connection, event: Envelope, cancel: events.CallCancelled
    ) -> None:
        """The PSAP cancelled: withdraw any live assignment and free the team."""
        call = await repository.get_call(conn, cancel.call_id)
        if call is None:
            return
        await repository.set_call_status(conn, cancel.call_id, "cancelled")
        await self._withdraw(conn, call, "cancelled_by_psap", event)

    async def on_call_updated(
        self, conn: asyncpg.Connection, event: Envelope, update: events.CallUpdated
    ) -> None:
        """A PSAP update: routed away or a raised safety flag withdraws the team and hands the call
        back; a call newly routed to `community` (a newer version, a call-taker's override) is placed."""
        call = await repository.get_call(conn, update.call_id)
        if call is None:
            if update.decision.route == events.Route.community:
                await self._place(conn, event, update)
            return
        if call["status"] in FINISHED:
            return
        old = events.OfferDetails.model_validate_json(call["offer"])
        if _takes_call_away(update, old.safety):
            await self._withdraw(conn, call, "withdrawn_by_psap_update", event)
            explanation = {
                "inputs": {"safety": update.safety.model_dump(mode="json"), "route": update.decision.route},
                "detail": "; ".join(update.decision.reasons),
                "decided_by": self.config.instance,
            }
            await self._hand_back(
                conn, call, "withdrawn_by_psap_update", event, explanation, update.decision.rules_version
            )
            return
        # Still a community call: later offers carry the newer details.
        offer = _offer_details(update)
        offer = offer.model_copy(update={"callback_number": offer.callback_number or old.callback_number})
        await repository.update_offer(
            conn, update.call_id, offer.model_dump(mode="json"), update.decision.rules_version
        )

    def table(self) -> dict[str, Any]:
        """Topic -> handler."""
        return {
            topics.CALLS_RECEIVED: self.on_call_received,
            topics.CALLS_UPDATED: self.on_call_updated,
            topics.CALLS_CANCELLED: self.on_call_cancelled,
            topics.ASSIGNMENTS_RESPONDED: self.on_responded,
            topics.ASSIGNMENTS_STATUS_CHANGED: self.on_status_changed,
        }


def match_view(decisions: list[asyncpg.Record], assignments: list[asyncpg.Record]) -> dict[str, Any]:
    """Every decision made for a call and every offer, with why, for oversight."""
    return {
        "decisions": [
            {
                "attempt": d["attempt"],
                "outcome": d["outcome"],
                "team_id": d["team_id"],
                "reason": d["reason"],
                "rules_version": d["rules_version"],
                "decided_at": d["decided_at"],
                "explanation": json.loads(d["explanation"]),
            }
            for d in decisions
        ],
        "offers": [
            {
                "assignment_id": str(a["id"]),
                "team_id": a["team_id"],
                "agency_id": a["agency_id"],
                "attempt": a["attempt"],
                "status": a["status"],
                "reason": a["reason"],
                "deadline": a["deadline"],
                "offered_at": a["created_at"],
                "decided_at": a["decided_at"],
                "explanation": json.loads(a["explanation"]),
            }
            for a in assignments
        ],
    }
