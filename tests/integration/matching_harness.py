"""Matching under test: a roster in a real database, the service running, events on the real broker."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from services.matching.service import build
from services.matching.settings import MatchingSettings
from shared import events, topics
from shared.envelope import Envelope, new_event
from shared.jurisdiction import Jurisdiction
from shared.settings import Settings
from tests.support import eventually, read_topic
from tools import system
from tools.jurisdictions import small

CLEAR = dict.fromkeys(("weapon", "violence", "medical", "self_harm_imminent", "crime_in_progress"), "no")
AGENCY_TOKENS = {"north": "agency-north-token-0001", "south": "agency-south-token-0002"}
OVERSIGHT_TOKEN = "oversight-board-token-0003"
# Downtown Eugene; every test team's home is within a few km of it.
HERE = {"lat": 44.0503, "lon": -123.0889}


def team(id_: str, agency: str = "north", km_north: float = 1.0, **kw: Any) -> dict[str, Any]:
    """A team `km_north` km north of HERE, covering it."""
    home = {"lat": HERE["lat"] + km_north / 111.2, "lon": HERE["lon"]}
    return {"id": id_, "agency": agency, "name": id_, "home": home, "radius_km": 20, **kw}


def jurisdiction(teams: list[dict[str, Any]], **extra: Any) -> Jurisdiction:
    """A small deployment: one PSAP, two agencies, the given teams, an oversight body."""
    return small(
        psap_token="psap-token-0000000001",
        agencies=[
            {"id": a, "name": a, "token": tok, "contracted_share": 0.5} for a, tok in AGENCY_TOKENS.items()
        ],
        teams=teams,
        timezone="America/Los_Angeles",
        triage_version="t1",
        oversight=[{"id": "board", "name": "Board", "token": OVERSIGHT_TOKEN}],
        **extra,
    )


async def load(settings: Settings, j: Jurisdiction) -> None:
    """Migrate every schema and store the jurisdiction, as `careroute load` does."""
    await system.load(settings, j, topics=False)


@contextlib.asynccontextmanager
async def running_matching(settings: Settings, own: MatchingSettings) -> AsyncIterator[str]:
    """Matching alone, in this process, through the same runtime production uses; yields its URL."""
    builders = {"matching": partial(build, matching=own)}
    async with system.System.start(settings, ["matching"], jurisdiction=None, builders=builders) as running:
        yield running.url("matching")


def call_received(
    call_id: str,
    *,
    language: str | None = None,
    incident_type: str = "MNTL",
    km_north: float = 0.0,
) -> Envelope:
    """The event intake publishes for a new community call at HERE (or `km_north` of it)."""
    payload = events.CallReceived(
        call_id=call_id,
        psap_id="psap",
        external_id=f"CAD-{call_id[:8]}",
        incident_type=incident_type,
        location=events.Location(lat=HERE["lat"] + km_north / 111.2, lon=HERE["lon"]),
        language=language,
        safety=events.SafetyScreen(**CLEAR),
        callback_number="+15415550100",
        decision=events.TriageDecision(route=events.Route.community, reasons=["test"], rules_version="t1"),
        received_at=datetime.now(UTC),
    )
    return new_event(topics.CALLS_RECEIVED, "intake", call_id, payload)


def call_updated(call_id: str, route: str, *, reason: str, **answers: str) -> Envelope:
    """A newer version of a call at HERE, as intake publishes it, with its new triage decision."""
    payload = events.CallUpdated(
        call_id=call_id,
        psap_id="psap",
        incident_type="MNTL",
        location=events.Location(**HERE),
        safety=events.SafetyScreen(**{**CLEAR, **answers}),
        decision=events.TriageDecision(route=events.Route(route), reasons=[reason], rules_version="t1"),
        updated_at=datetime.now(UTC),
    )
    return new_event(topics.CALLS_UPDATED, "intake", call_id, payload)


def responded(offer: dict[str, Any], response: str, reason_code: str | None = None) -> Envelope:
    """The agency's answer to an offer, as notify publishes it."""
    payload = events.AssignmentResponded(
        **{k: offer[k] for k in ("assignment_id", "call_id", "agency_id", "team_id")},
        response=response,
        reason_code=reason_code,
        responded_at=datetime.now(UTC),
    )
    return new_event(topics.ASSIGNMENTS_RESPONDED, "notify", offer["call_id"], payload)


def expired(offer: dict[str, Any]) -> Envelope:
    """Notify's expiry of an unanswered offer at its deadline (notify decides deadlines)."""
    payload = events.AssignmentExpired(
        **{k: offer[k] for k in ("assignment_id", "call_id", "agency_id", "team_id")}
    )
    return new_event(topics.ASSIGNMENTS_EXPIRED, "notify", offer["call_id"], payload)


def call_cancelled(call_id: str) -> Envelope:
    """The PSAP's cancel, as intake publishes it."""
    payload = events.CallCancelled(call_id=call_id, psap_id="psap", reason="caller called back")
    return new_event(topics.CALLS_CANCELLED, "intake", call_id, payload)


def status_changed(offer: dict[str, Any], status: str) -> Envelope:
    """A team's progress report, as notify publishes it."""
    payload = events.AssignmentStatusChanged(
        **{k: offer[k] for k in ("assignment_id", "call_id", "agency_id", "team_id")},
        status=events.TeamStatus(status),
        reported_at=datetime.now(UTC),
    )
    return new_event(topics.ASSIGNMENTS_STATUS_CHANGED, "notify", offer["call_id"], payload)


def new_call_id() -> str:
    """A fresh call id."""
    return str(uuid.uuid4())


async def publish(producer: AIOKafkaProducer, settings: Settings, event: Envelope) -> None:
    """Put one event on its topic, keyed by call id."""
    await producer.send_and_wait(
        settings.topic(event.type), value=event.to_bytes(), key=event.subject.encode()
    )


async def topic_events(
    settings: Settings, topic: str, count: int, timeout_s: float = 30
) -> list[dict[str, Any]]:
    """The payloads of the first `count` events on a topic (fewer if they do not come in time)."""
    records = await read_topic(settings, settings.topic(topic), count, timeout_s)
    return [json.loads(r.value)["data"] for r in records]


class Db:
    """Reads of matching's schema for assertions."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def offers(self, call_id: str) -> list[dict[str, Any]]:
        """The call's offers in order, shaped like the payload of assignments.offered.v1."""
        rows = await self.pool.fetch(
            "SELECT id, call_id, agency_id, team_id, attempt, status, reason FROM matching.assignments"
            " WHERE call_id = $1::uuid ORDER BY attempt",
            call_id,
        )
        return [{**dict(r), "assignment_id": str(r["id"]), "call_id": str(r["call_id"])} for r in rows]

    async def call_status(self, call_id: str) -> str | None:
        """Where matching is with a call."""
        return await self.pool.fetchval("SELECT status FROM matching.calls WHERE call_id = $1::uuid", call_id)

    async def team_status(self, team_id: str) -> str:
        """A team's status."""
        return str(await self.pool.fetchval("SELECT status FROM matching.teams WHERE id = $1", team_id))

    async def wait_offers(self, call_id: str, n: int, timeout_s: float = 30) -> list[dict[str, Any]]:
        """Wait until the call has had `n` offers."""
        return await eventually(
            lambda: self.offers(call_id), lambda o: len(o) >= n, timeout_s, what=f"{n} offers for {call_id}"
        )

    async def wait_call(self, call_id: str, status: str, timeout_s: float = 30) -> None:
        """Wait until the call reaches `status` in matching."""
        await eventually(
            lambda: self.call_status(call_id), lambda s: s == status, timeout_s, what=f"call {status}"
        )

    async def wait_team(self, team_id: str, status: str, timeout_s: float = 30) -> None:
        """Wait until a team reaches `status`."""
        await eventually(
            lambda: self.team_status(team_id), lambda s: s == status, timeout_s, what=f"{team_id} {status}"
        )

    async def refusals(self, call_id: str) -> list[tuple[str, str, str, str]]:
        """The steps matching refused about a call: (event type, from state, step, code)."""
        rows = await self.pool.fetch(
            "SELECT event_type, from_state, step, code FROM matching.refusals"
            " WHERE call_id = $1::uuid ORDER BY id",
            call_id,
        )
        return [(r["event_type"], r["from_state"], r["step"], r["code"]) for r in rows]

    async def processed(self, event: Envelope) -> bool:
        """Whether matching's consumer has applied (or dropped) an event."""
        n = await self.pool.fetchval(
            "SELECT count(*) FROM matching.processed_events WHERE event_id = $1", event.id
        )
        return bool(n)

    async def wait_processed(self, *sent: Envelope, timeout_s: float = 30) -> None:
        """Wait until matching has processed every one of `sent`."""
        for event in sent:
            await eventually(partial(self.processed, event), bool, timeout_s, what=f"{event.type} processed")

    async def hand_back_reason(self, call_id: str) -> str | None:
        """The reason of the call's hand-back decision."""
        return await self.pool.fetchval(
            "SELECT reason FROM matching.decisions WHERE call_id = $1::uuid AND outcome = 'handed_back'",
            call_id,
        )


async def place_call(
    producer: AIOKafkaProducer, settings: Settings, db: Db, language: str | None = None
) -> tuple[str, dict[str, Any]]:
    """Publish a new community call and wait for its first offer."""
    call_id = new_call_id()
    await publish(producer, settings, call_received(call_id, language=language))
    [offer] = await db.wait_offers(call_id, 1)
    return call_id, offer
