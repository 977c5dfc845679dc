"""Intake alone on the real broker and PostgreSQL, in this process, beside a PSAP's callback server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import yaml
from aiokafka import AIOKafkaProducer

from services.intake import eido
from services.intake.service import build
from services.intake.settings import IntakeSettings
from services.jurisdiction import Deployment
from shared import events, topics
from shared.db import connect
from shared.envelope import CONTENT_TYPE, Envelope, new_event, utcnow
from shared.jurisdiction import Jurisdiction
from shared.kafka import make_producer
from shared.settings import Settings
from tests.support import TEST_SETTINGS, eventually, read_topic
from tools import infra
from tools.jurisdictions import EXAMPLE
from tools.psap import PsapClient, signed_headers
from tools.system import System

# The public NENA EIDO samples, and the triage extension's screen with every answer "no".
SAMPLES = Path(__file__).parents[1] / "fixtures" / "eido"
CLEAR = {"weapon": "no", "violence": "no", "medical": "no", "selfHarmImminent": "no", "crimeInProgress": "no"}
OLD_VALLEY_SECRET = "valley-ecc-retired-secret-2026"
METRO = "psap.metro.example.gov"
SETTINGS = {**TEST_SETTINGS, "outbox_poll_interval_s": 0.2}
SHADOW = {
    # A draft that trusts "unknown" answers and no longer excludes crimes in progress.
    "version": "2026-12-draft",
    "eligible_types": ["MNTL", "EDP", "SUICTHRT", "WELFARE", "INTOX", "TRESPASS", "NONEMERG"],
    "exclude": {"weapon": "police", "violence": "police", "medical": "ems", "self_harm_imminent": "ems"},
    "unknown_means": "eligible",
}


def native_call(external_id: str, incident_type: str = "MNTL", **answers: str) -> dict[str, Any]:
    """A native call downtown with every safety answer "no" except the `answers` given."""
    questions = ("weapon", "violence", "medical", "self_harm_imminent", "crime_in_progress")
    return {
        "external_id": external_id,
        "incident_type": incident_type,
        "location": {"lat": 44.0503, "lon": -123.0889},
        "safety": {q: "no" for q in questions} | answers,
    }


CLEAR_SCREEN = {
    "weapon": "no",
    "violence": "no",
    "medical": "no",
    "selfHarmImminent": "no",
    "crimeInProgress": "no",
}


def eido_incident(incident_type: str = "MNTL", **screen: str) -> dict[str, Any]:
    """An EIDO (NENA-STA-021) of its own incident id and one common incident type, with our triage
    extension's screen all "no" except the `screen` answers given."""
    doc = eido.example()
    doc["$id"] = f"urn:emergency:uid:incidentid:{uuid.uuid4().hex[:12]}:psap.example.org"
    doc["incidentComponent"] = {"incidentTypeCommonRegistryText": [incident_type]}
    doc[eido.EXTENSION_KEY]["safetyScreen"] = {**CLEAR_SCREEN, **screen}
    return doc


@dataclass
class Received:
    """One request the PSAP's callback server got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CallbackServer:
    """A PSAP's status endpoint on 127.0.0.1: fails the first `fail_first` requests for each call."""

    port: int
    fail_first: int = 2
    received: list[Received] = field(default_factory=list)
    _server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.received.append(Received(path, headers, body))
            call_id = json.loads(body or b"{}").get("call_id")
            attempts = [r for r in self.received if json.loads(r.body or b"{}").get("call_id") == call_id]
            failing = path.endswith("/always-fail") or len(attempts) <= self.fail_first
            status = b"503 Service Unavailable" if failing else b"204 No Content"
            writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            await writer.drain()
        finally:
            writer.close()

    async def start(self) -> None:
        """Listen on 127.0.0.1:port."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


@dataclass
class Intake:
    """A running intake and what a test needs to talk to it."""

    settings: Settings
    jurisdiction: Jurisdiction
    callbacks: CallbackServer
    url: str

    def psap(self, psap_id: str) -> Any:
        """One PSAP of the test jurisdiction."""
        return next(p for p in self.jurisdiction.psaps if p.id == psap_id)

    def headers(self, psap_id: str, body: bytes, **signing: Any) -> dict[str, str]:
        """Bearer token and, when the PSAP has a secret, a fresh signature over `body`."""
        return signed_headers(self.psap(psap_id), body, **signing)

    async def post(
        self, http: httpx.AsyncClient, path: str, psap_id: str, document: Any, **signing: Any
    ) -> httpx.Response:
        """POST `document` as JSON, signed as the PSAP signs."""
        return await PsapClient(http, self.url, self.psap(psap_id)).post(path, document, **signing)

    async def events(
        self, topic: str, call_id: str, count: int, timeout_s: float = 20
    ) -> list[dict[str, Any]]:
        """The first `count` events of one call on one topic, read from the start of the topic."""
        records = await read_topic(self.settings, self.settings.topic(topic), count, timeout_s, key=call_id)
        assert len(records) >= count, f"expected {count} {topic} events for {call_id}, got {len(records)}"
        return [json.loads(r.value) for r in records]

    @contextlib.asynccontextmanager
    async def producer(self) -> AsyncIterator[AIOKafkaProducer]:
        """A started producer on this intake's broker, playing the other services."""
        p = make_producer(self.settings)
        await p.start()
        try:
            yield p
        finally:
            await p.stop()

    async def db(self) -> asyncpg.Connection:
        """A connection to this intake's database (close it)."""
        return await connect(self.settings.database_url.get_secret_value())


# Who publishes each assignment topic, and so whose clock stamps it.
PRODUCER = {
    topics.ASSIGNMENTS_OFFERED: "matching",
    topics.ASSIGNMENTS_WITHDRAWN: "matching",
    topics.CALLS_UNASSIGNED: "matching",
    topics.ASSIGNMENTS_EXPIRED: "notify",
    topics.ASSIGNMENTS_RESPONDED: "notify",
    topics.ASSIGNMENTS_STATUS_CHANGED: "notify",
}


class Agency:
    """Plays matching and notify for one assignment of a call (matching's offer number `attempt`;
    None plays a producer older than the attempt number), each on a clock `skew` off true time."""

    def __init__(
        self,
        intake: Intake,
        producer: AIOKafkaProducer,
        call_id: str,
        psap_id: str,
        attempt: int | None = 1,
        skew: dict[str, timedelta] | None = None,
    ) -> None:
        self.intake, self.producer, self.call_id, self.psap_id = intake, producer, call_id, psap_id
        self.attempt, self.skew = attempt, skew or {}
        self.ref = {
            "assignment_id": str(uuid.uuid4()),
            "call_id": call_id,
            "agency_id": "riverbend-crisis",
            "team_id": "rb-1",
        }
        self.numbered: dict[str, Any] = {**self.ref, "attempt": attempt}

    def now(self, service: str) -> datetime:
        """The time by `service`'s clock."""
        return utcnow() + self.skew.get(service, timedelta(0))

    def event(self, topic: str, payload: events.Payload) -> Envelope:
        """An event of this call, stamped by its producer's clock (now), to be sent at any time."""
        service = PRODUCER.get(topic, "notify")
        return new_event(topic, service, self.call_id, payload).model_copy(update={"time": self.now(service)})

    async def send(self, event: Envelope, expect_status: str | None = None) -> None:
        """Publish an event and, given `expect_status`, wait until intake shows that status."""
        await self.producer.send_and_wait(
            self.intake.settings.topic(event.type),
            event.to_bytes(),
            key=self.call_id.encode(),
            headers=[("content-type", CONTENT_TYPE.encode())],
        )
        if expect_status is not None:
            await eventually(self.status, lambda s: s == expect_status, what=f"status {expect_status}")

    async def publish(self, topic: str, payload: events.Payload, expect_status: str) -> None:
        """Publish one event and wait until intake has applied it (events of several topics have no
        order between them, so the next one waits, as it does in life)."""
        await self.send(self.event(topic, payload), expect_status)

    async def step(self, status: str) -> dict[str, Any]:
        """The first step with `status` of this assignment (or of the call as a whole, as a hand-back
        is) in the call's timeline, once intake has recorded it."""
        mine = (self.ref["assignment_id"], None)

        async def steps() -> list[dict[str, Any]]:
            return [
                s
                for s in (await self.view())["timeline"]
                if s["status"] == status and s["detail"].get("assignment_id") in mine
            ]

        found = await eventually(steps, bool, what=f"a {status} step of {self.ref['assignment_id']}")
        return found[0]

    async def status(self) -> str:
        """The call's status as its PSAP sees it."""
        return str((await self.view())["status"])

    async def view(self) -> dict[str, Any]:
        """GET /v1/calls/{id} as the call's PSAP."""
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.get(
                f"{self.intake.url}/v1/calls/{self.call_id}", headers=self.intake.headers(self.psap_id, b"")
            )
        assert r.status_code == 200, r.text
        return dict(r.json())

    def offered(self) -> events.AssignmentOffered:
        """Matching's offer of the call to this team."""
        return events.AssignmentOffered(
            **self.ref,
            attempt=self.attempt or 1,  # the offer always carries it
            deadline=self.now("matching") + timedelta(seconds=120),
            offer=events.OfferDetails(
                location=events.Location(lat=44.05, lon=-123.09),
                presenting_problem="MNTL",
                safety=events.SafetyScreen(),
            ),
        )

    def accepted(self) -> events.AssignmentResponded:
        """The agency's acceptance of the offer."""
        return events.AssignmentResponded(
            **self.numbered, response="accepted", responded_at=self.now("notify")
        )

    def declined(self) -> events.AssignmentResponded:
        """The agency's decline of the offer."""
        return events.AssignmentResponded(
            **self.numbered, response="declined", reason_code="no_capacity", responded_at=self.now("notify")
        )

    def expired(self) -> events.AssignmentExpired:
        """The offer's deadline passed unanswered."""
        return events.AssignmentExpired(**self.numbered)

    def withdrawn(self, reason: str) -> events.AssignmentWithdrawn:
        """Matching took the offer or assignment back."""
        return events.AssignmentWithdrawn(**self.numbered, reason=reason)

    def unassigned(self, reason_code: str = "no_acceptance_in_time") -> events.CallUnassigned:
        """Matching handed the call back after this offer (its attempt is the count of offers made)."""
        return events.CallUnassigned(
            call_id=self.call_id, psap_id=self.psap_id, reason_code=reason_code, attempts=self.attempt
        )

    def reported(self, status: str, disposition: str | None = None) -> events.AssignmentStatusChanged:
        """The team's status report."""
        return events.AssignmentStatusChanged(
            **self.numbered,
            status=events.TeamStatus(status),
            disposition=disposition,
            reported_at=self.now("notify"),
        )

    async def accept(self) -> None:
        """Accept and wait for intake to show the call assigned."""
        await self.publish(topics.ASSIGNMENTS_RESPONDED, self.accepted(), "assigned")

    async def report(self, status: str, disposition: str | None = None) -> None:
        """Report a status and wait for intake to record it (a backup request moves no status)."""
        if status == events.TeamStatus.backup_requested:
            await self.send(self.event(topics.ASSIGNMENTS_STATUS_CHANGED, self.reported(status)))
            await self.step(status)
            return
        await self.publish(topics.ASSIGNMENTS_STATUS_CHANGED, self.reported(status, disposition), status)


async def community_call(intake: Intake, psap_id: str) -> str:
    """A call triaged to a community response; its id."""
    body = native_call(f"CB-{uuid.uuid4().hex[:8]}")
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/calls", psap_id, body)
    assert r.status_code == 202 and r.json()["decision"]["route"] == "community", r.text
    return str(r.json()["call_id"])


def test_jurisdiction(callback_port: int) -> Jurisdiction:
    """The example region with a shadow rule set, callback URLs on the test server and test PSAPs."""
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["triage"]["shadow"] = SHADOW
    valley, springfield, university = raw["psaps"]
    valley["callback_url"] = f"http://127.0.0.1:{callback_port}/valley/status"
    valley["previous_signing_secrets"] = [OLD_VALLEY_SECRET]
    # The agencies NENA's public samples name as their sender, so they can be posted as this PSAP's.
    valley["eido_agencies"] = ["state.pa.us", "psap.allegheny.pa.us"]
    springfield["callback_url"] = f"http://127.0.0.1:{callback_port}/springfield/always-fail"
    university.pop("signing_secret")  # a PSAP that does not sign: bearer token only
    raw["psaps"].append(
        {
            "id": "rate-test-psap",
            "name": "A PSAP with a tiny rate limit",
            "token": "test-psap-rate-limited-0b7e2c",
            "rate_limit": "3/minute",
        }
    )
    raw["psaps"].append(
        {
            "id": METRO,
            "name": "A PSAP named as EIDO names agencies, by domain name",
            "token": "test-psap-metro-domain-4c1d9e",
            "eido_agencies": ["metro.example.gov"],
        }
    )
    return Deployment.model_validate(raw)


@contextlib.asynccontextmanager
async def running_intake(
    endpoints: infra.InfraEndpoints, intake_settings: IntakeSettings
) -> AsyncIterator[Intake]:
    """A fresh database and namespace, the test jurisdiction loaded, and intake running in this process."""
    server = CallbackServer(infra.free_port())
    await server.start()
    try:
        async with System.start(
            endpoints,
            ["intake"],
            jurisdiction=test_jurisdiction(server.port),
            settings=SETTINGS,
            builders={"intake": lambda i: build(i, intake_settings)},
            prefix="intake",
        ) as system:
            yield Intake(system.settings, system.jurisdiction, server, system.url("intake"))
    finally:
        await server.stop()
