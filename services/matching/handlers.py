"""Matching's event handlers: place a call, follow answers and status, free teams."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from services.matching import domain, repository
from shared import events, topics
from shared.envelope import Envelope, new_event, utcnow
from shared.outbox import enqueue

SERVICE = "matching"


@dataclass(frozen=True)
class MatchingConfig:
    """The knobs of matching."""

    offer_timeout_s: int = 120
    speed_kmh: float = 40.0
    max_attempts: int = 3


class MatchingHandlers:
    """Event handlers of matching, each run in the consumer's transaction."""

    def __init__(self, config: MatchingConfig) -> None:
        self.config = config

    async def on_call_received(
        self, conn: asyncpg.Connection, event: Envelope, call: events.CallReceived
    ) -> None:
        """A community call: remember it and offer it to the best team."""
        if call.decision.route != events.Route.community:
            return
        offer = events.OfferDetails(
            location=call.location,
            presenting_problem=call.incident_type,
            language=call.language,
            safety=call.safety,
            callback_number=call.callback_number,
        )
        if await repository.insert_call(
            conn, call.call_id, call.psap_id, offer.model_dump(mode="json"), event.correlationid
        ):
            await self.offer_next(conn, call.call_id, event)

    async def offer_next(self, conn: asyncpg.Connection, call_id: str, cause: Envelope) -> None:
        """Reserve the best free team and offer it the call, or hand the call back."""
        call = await repository.get_call(conn, call_id)
        assert call is not None
        offer = events.OfferDetails.model_validate_json(call["offer"])
        tried = list(call["tried_teams"])
        if len(tried) >= self.config.max_attempts:
            await self._hand_back(
                conn, call, "no_acceptance_in_time", cause, f"{len(tried)} teams were offered the call"
            )
            return
        tz = ZoneInfo(await repository.timezone(conn))
        now = utcnow()
        teams = await repository.team_snapshots(conn)
        loc = offer.location
        candidates = domain.rank(
            teams,
            loc.lat,
            loc.lon,
            offer.language,
            now,
            tz,
            speed_kmh=self.config.speed_kmh,
            exclude=frozenset(tried),
        )
        for rank_no, candidate in enumerate(candidates, start=1):
            team = candidate.team
            if not await repository.reserve_team(conn, team.id, call_id):
                continue  # taken by a concurrent call a moment ago; try the next best
            assignment_id = str(uuid.uuid4())
            deadline = now + timedelta(seconds=self.config.offer_timeout_s)
            explanation = {
                "rank": rank_no,
                "candidates": len(candidates),
                "distance_km": round(candidate.distance_km, 3),
                "eta_min": round(candidate.eta_min, 1),
                "language_match": candidate.language_match,
                "speed_kmh": self.config.speed_kmh,
                "excluded_already_tried": tried,
            }
            await repository.insert_assignment(
                conn,
                {
                    "id": assignment_id,
                    "call_id": call_id,
                    "team_id": team.id,
                    "agency_id": team.agency_id,
                    "attempt": len(tried) + 1,
                    "deadline": deadline,
                    "explanation": explanation,
                },
            )
            await repository.set_call_status(conn, call_id, "offered", tried=team.id)
            payload = events.AssignmentOffered(
                assignment_id=assignment_id,
                call_id=call_id,
                agency_id=team.agency_id,
                team_id=team.id,
                attempt=len(tried) + 1,
                deadline=deadline,
                offer=offer,
                distance_km=round(candidate.distance_km, 3),
            )
            await enqueue(
                conn,
                SERVICE,
                new_event(
                    topics.ASSIGNMENTS_OFFERED,
                    SERVICE,
                    call_id,
                    payload,
                    cause=cause,
                    correlationid=call["correlation"],
                ),
            )
            return
        reason = (
            "all_busy"
            if tried and not candidates
            else domain.no_candidate_reason(teams, loc.lat, loc.lon, now, tz)
        )
        await self._hand_back(conn, call, reason, cause, None)

    async def _hand_back(
        self,
        conn: asyncpg.Connection,
        call: asyncpg.Record,
        reason: str,
        cause: Envelope,
        detail: str | None,
    ) -> None:
        call_id = str(call["call_id"])
        await repository.set_call_status(conn, call_id, "unassigned")
        payload = events.CallUnassigned(
            call_id=call_id, psap_id=call["psap_id"], reason_code=reason, detail=detail
        )
        await enqueue(
            conn,
            SERVICE,
            new_event(
                topics.CALLS_UNASSIGNED,
                SERVICE,
                call_id,
                payload,
                cause=cause,
                correlationid=call["correlation"],
            ),
        )

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
            await repository.set_team_status(conn, answer.team_id, answer.call_id, "assigned")
            await repository.set_call_status(conn, answer.call_id, "assigned")
            return
        await repository.set_assignment_status(conn, answer.assignment_id, "declined")
        await repository.release_team(conn, answer.team_id, answer.call_id)
        await self.offer_next(conn, answer.call_id, event)

    async def on_status_changed(
        self, conn: asyncpg.Connection, event: Envelope, change: events.AssignmentStatusChanged
    ) -> None:
        """Move the team with its reports; cleared frees it."""
        if await repository.get_call(conn, change.call_id) is None:
            return
        if change.status == events.TeamStatus.cleared:
            await repository.set_assignment_status(conn, change.assignment_id, "cleared")
            await repository.release_team(conn, change.team_id, change.call_id)
            await repository.set_call_status(conn, change.call_id, "closed")
        elif change.status in (events.TeamStatus.en_route, events.TeamStatus.on_scene):
            await repository.set_assignment_status(conn, change.assignment_id, change.status.value)
            await repository.set_team_status(conn, change.team_id, change.call_id, change.status.value)

    async def on_call_cancelled(
        self, conn: asyncpg.Connection, event: Envelope, cancel: events.CallCancelled
    ) -> None:
        """The PSAP cancelled: withdraw any live assignment and free the team."""
        call = await repository.get_call(conn, cancel.call_id)
        if call is None:
            return
        await repository.set_call_status(conn, cancel.call_id, "cancelled")
        live = await repository.active_assignment(conn, cancel.call_id)
        if live is None:
            return
        await repository.set_assignment_status(conn, str(live["id"]), "withdrawn")
        await repository.release_team(conn, live["team_id"], cancel.call_id)
        payload = events.AssignmentWithdrawn(
            assignment_id=str(live["id"]),
            call_id=cancel.call_id,
            agency_id=live["agency_id"],
            team_id=live["team_id"],
            reason="cancelled_by_psap",
        )
        await enqueue(
            conn,
            SERVICE,
            new_event(
                topics.ASSIGNMENTS_WITHDRAWN,
                SERVICE,
                cancel.call_id,
                payload,
                cause=event,
                correlationid=call["correlation"],
            ),
        )

    def table(self) -> dict[str, Any]:
        """Topic -> handler."""
        return {
            topics.CALLS_RECEIVED: self.on_call_received,
            topics.CALLS_CANCELLED: self.on_call_cancelled,
            topics.ASSIGNMENTS_RESPONDED: self.on_responded,
            topics.ASSIGNMENTS_STATUS_CHANGED: self.on_status_changed,
        }


def match_view(assignments: list[asyncpg.Record]) -> list[dict[str, Any]]:
    """Why each team was offered a call, for oversight."""
    return [
        {
            "assignment_id": str(a["id"]),
            "team_id": a["team_id"],
            "agency_id": a["agency_id"],
            "attempt": a["attempt"],
            "status": a["status"],
            "deadline": a["deadline"],
            "offered_at": a["created_at"],
            "decided_at": a["decided_at"],
            "explanation": json.loads(a["explanation"]),
        }
        for a in assignments
    ]
