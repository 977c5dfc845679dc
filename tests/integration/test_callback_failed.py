"""A hand-back the PSAP never heard of is not only logged: it is an event in the trail, a metric and
a signed alert to the PSAP's supervisor, retried a bounded number of times beside the callbacks."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.intake.service import build
from services.intake.settings import IntakeSettings
from services.jurisdiction import Deployment
from shared import topics
from shared.jurisdiction import Jurisdiction
from tests.integration.intake_harness import SETTINGS, CallbackServer, native_call
from tests.support import eventually
from tools import infra
from tools.psap import bearer, verify
from tools.system import System

pytestmark = pytest.mark.integration

# A request may take 15 s, so a supervisor that never answers holds its alert that long.
INTAKE = IntakeSettings(
    callback_retry_base_s=0.1,
    callback_max_attempts=3,
    callback_poll_s=0.1,
    supervisor_max_attempts=3,
    callback_timeout_s=15,
)
REVIEWER = "test-oversight-callbacks-5d1e0a"
RUN = uuid.uuid4().hex[:8]  # PSAP ids of this run alone: the metric counts from zero for them


@dataclass(frozen=True)
class Psap:
    """One PSAP of the test, its id and its signing secret."""

    id: str
    secret: str


WATCHED = Psap(f"watched-{RUN}", "watched-signing-secret-7c2b9e")  # supervisor answers after one failure
UNWATCHED = Psap(f"unwatched-{RUN}", "unwatched-signing-secret-3f8a1d")  # no supervisor_url
DEAF = Psap(f"deaf-{RUN}", "deaf-signing-secret-9e4c2a")  # supervisor refuses every alert
SLOW = Psap(f"slow-{RUN}", "slow-signing-secret-1a6f3e")  # supervisor takes requests and never answers


@dataclass
class Hanging:
    """A supervisor endpoint that reads each request and never answers until it is stopped."""

    port: int
    requests: int = 0
    _server: asyncio.Server | None = None
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.requests += 1
        await self._released.wait()
        writer.close()

    async def start(self) -> None:
        """Listen on 127.0.0.1:port."""
        self._server = await asyncio.start_server(self._hold, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """Let every held request go and stop listening."""
        self._released.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def jurisdiction(callbacks: int, supervisor: int, hanging: int) -> Jurisdiction:
    """PSAPs whose callback URL always fails; one team with no capacity, so every call is handed
    back at once."""

    def psap(p: Psap, supervisor_path: str | None, port: int = supervisor) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": p.id,
            "name": p.id,
            "token": f"token-{p.id}",
            "signing_secret": p.secret,
            "callback_url": f"http://127.0.0.1:{callbacks}/{p.id}/always-fail",
        }
        if supervisor_path is not None:
            entry["supervisor_url"] = f"http://127.0.0.1:{port}/{supervisor_path}"
        return entry

    return Deployment.model_validate(
        {
            "jurisdiction": {"id": "test", "name": "Test", "timezone": "UTC"},
            # Offered regardless of capacity, so matching hands each call back and a callback is owed.
            "triage": {
                "version": "t",
                "eligible_types": ["MNTL"],
                "exclude": {"weapon": "police"},
                "no_capacity": "community",
            },
            "psaps": [
                psap(WATCHED, WATCHED.id),
                psap(UNWATCHED, None),
                psap(DEAF, f"{DEAF.id}/always-fail"),
                psap(SLOW, SLOW.id, hanging),
            ],
            "agencies": [{"id": "crisis", "name": "Crisis", "token": "test-agency-crisis-token-1b2c"}],
            "teams": [
                {
                    "id": "t-1",
                    "agency": "crisis",
                    "name": "T1",
                    "home": {"lat": 44.05, "lon": -123.09},
                    "capacity": 0,
                }
            ],
            "oversight": [{"id": "board", "name": "Board", "token": REVIEWER}],
        }
    )


@dataclass
class Running:
    """The system under test and the PSAPs' two servers."""

    system: System
    callbacks: CallbackServer
    supervisor: CallbackServer
    hanging: Hanging


@pytest.fixture(scope="module")
async def running(stack: infra.InfraEndpoints) -> AsyncIterator[Running]:
    callbacks = CallbackServer(infra.free_port())
    # Fails the first alert of each call, so the one delivered is a retry.
    supervisor = CallbackServer(infra.free_port(), fail_first=1)
    hanging = Hanging(infra.free_port())
    await callbacks.start()
    await supervisor.start()
    await hanging.start()
    try:
        async with System.start(
            stack,
            ["intake", "matching", "audit"],
            jurisdiction=jurisdiction(callbacks.port, supervisor.port, hanging.port),
            settings=SETTINGS,
            builders={"intake": lambda i: build(i, INTAKE)},
            prefix="cbfail",
        ) as system:
            yield Running(system, callbacks, supervisor, hanging)
            await hanging.stop()  # before intake stops, so no alert is left waiting on it
    finally:
        await hanging.stop()
        await supervisor.stop()
        await callbacks.stop()


async def handed_back_call(system: System, psap: Psap) -> str:
    """A community call of `psap` (matching hands it back: no team has capacity); its id."""
    async with httpx.AsyncClient(timeout=15) as http:
        r = await system.psap_client(http, psap.id).post(
            "/v1/calls", native_call(f"CB-{uuid.uuid4().hex[:8]}")
        )
    assert r.status_code == 202 and r.json()["decision"]["route"] == "community", r.text
    return str(r.json()["call_id"])


async def trail_of(system: System, call_id: str) -> list[dict[str, Any]]:
    """The call's trail as an oversight body reads it (redacted to the allow-listed fields)."""
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.get(f"{system.url('audit')}/v1/audit/calls/{call_id}", headers=bearer(REVIEWER))
    return list(r.json()["events"]) if r.status_code == 200 else []


async def failure_in_trail(system: System, call_id: str) -> dict[str, Any]:
    """The call's `calls.callback_failed.v1` once audit holds it."""

    def failed(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e for e in events if e["type"] == topics.CALLS_CALLBACK_FAILED]

    events = await eventually(
        lambda: trail_of(system, call_id),
        lambda e: bool(failed(e)),
        timeout_s=60,
        what="the failure in the trail",
    )
    [event] = failed(events)
    return event


async def failed_count(system: System, psap: Psap) -> float:
    """careroute_callbacks_failed_total of one PSAP, as intake's /metrics says."""
    async with httpx.AsyncClient(timeout=10) as http:
        text = (await http.get(f"{system.url('intake')}/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "careroute_callbacks_failed_total" and sample.labels.get("psap") == psap.id:
                return float(sample.value)
    return 0.0


def alerts_of(server: CallbackServer, call_id: str) -> list[tuple[dict[str, str], bytes]]:
    """The requests the supervisor server got about one call."""
    return [(r.headers, r.body) for r in server.received if json.loads(r.body).get("call_id") == call_id]


async def test_a_failed_hand_back_is_in_the_trail_counted_and_told_to_the_supervisor_signed(running: Running):
    system = running.system
    call_id = await handed_back_call(system, WATCHED)
    event = await failure_in_trail(system, call_id)
    # Oversight sees every field of the event (all allow-listed) and nothing else.
    assert event["data"] == {
        "call_id": call_id,
        "psap_id": WATCHED.id,
        "status": "handed_back",
        "unit_status": "AssignmentCancelled",
        "attempts": INTAKE.callback_max_attempts,
        "error_class": "http_5xx",
    }
    assert await failed_count(system, WATCHED) == 1

    async def alerts() -> list[tuple[dict[str, str], bytes]]:
        return alerts_of(running.supervisor, call_id)

    tried = await eventually(alerts, lambda a: len(a) >= 2, what="the alert retried")
    # One alert (one webhook-id), refused once and delivered on its retry, each attempt signed.
    assert len({h["webhook-id"] for h, _ in tried}) == 1 and len(tried) == 2
    assert all(verify(WATCHED.secret, h, body) for h, body in tried)
    alert = json.loads(tried[-1][1])
    assert alert["type"] == "call.callback_failed" and alert["event_id"] == event["id"]
    assert alert["status"] == "handed_back" and alert["error_class"] == "http_5xx"
    assert alert["attempts"] == INTAKE.callback_max_attempts and alert["external_id"].startswith("CB-")
    assert len(alerts_of(running.supervisor, call_id)) == 2  # nothing more once delivered


async def test_a_psap_without_a_supervisor_still_gets_the_event_and_the_metric(running: Running):
    system = running.system
    call_id = await handed_back_call(system, UNWATCHED)
    event = await failure_in_trail(system, call_id)
    assert event["data"]["psap_id"] == UNWATCHED.id and event["data"]["status"] == "handed_back"
    assert await failed_count(system, UNWATCHED) == 1
    assert alerts_of(running.supervisor, call_id) == []


async def test_an_unreachable_supervisor_is_tried_a_bounded_number_of_times(running: Running):
    system = running.system
    call_id = await handed_back_call(system, DEAF)
    await failure_in_trail(system, call_id)

    async def alert_state() -> list[tuple[str, int]]:
        async with system.pool(1) as pool:
            rows = await pool.fetch(
                "SELECT state, attempts FROM intake.supervisor_alerts WHERE call_id = $1::uuid", call_id
            )
        return [(r["state"], r["attempts"]) for r in rows]

    await eventually(
        alert_state, lambda s: s == [("failed", INTAKE.supervisor_max_attempts)], what="given up"
    )
    assert len(alerts_of(running.supervisor, call_id)) == INTAKE.supervisor_max_attempts
    assert await failed_count(system, DEAF) == 1


async def test_a_supervisor_that_never_answers_holds_up_no_status_callback(running: Running):
    """While the alert about one call waits on a supervisor endpoint that does not answer, another
    call's callbacks go on at their own pace: its failure is in the trail before the alert's first
    attempt has even timed out."""
    system = running.system
    first = await handed_back_call(system, SLOW)
    await failure_in_trail(system, first)

    async def sent() -> int:
        return running.hanging.requests

    await eventually(sent, lambda n: n >= 1, what="the alert sent")
    second = await handed_back_call(system, SLOW)
    await failure_in_trail(system, second)
    async with system.pool(1) as pool:
        held = await pool.fetchrow(
            "SELECT state, attempts FROM intake.supervisor_alerts WHERE call_id = $1::uuid", first
        )
    assert held is not None and (held["state"], held["attempts"]) == ("pending", 0)
    assert await failed_count(system, SLOW) == 2
