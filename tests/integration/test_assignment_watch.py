"""The watch after "accepted": each timer an agency lets run out re-pages it, then tells the PSAP with
a signed Overdue callback and is an event in the trail; an answer in time, a clearance or a
withdrawal stops it; a restart of notify and matching while it runs still fires it. All four
services as their own processes on the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from services.jurisdiction import Deployment
from shared import topics
from tests.integration.intake_harness import CallbackServer, native_call
from tests.integration.webhook_receiver import SPEC_SECRET, Receiver, serving
from tests.support import TEST_SETTINGS, eventually, read_topic
from tools import infra
from tools.psap import bearer, verify
from tools.system import System

pytestmark = pytest.mark.integration

PSAP_SECRET = "watch-psap-signing-secret-4e1d7a"
REVIEWER = "test-oversight-watch-8c2f1b"
# Seconds, as the jurisdiction's minutes: long enough for a test to answer in time, short enough
# to run out while it waits.
EN_ROUTE_S, CHECK_IN_S, GRACE_S, MARGIN_S = 4.0, 6.0, 3.0, 6.0
# A missed en-route timer, as the trail tells it: the agency re-paged, then its PSAP told.
EN_ROUTE_MISSED = [("en_route", "agency_repaged"), ("en_route", "psap_told")]
ENV = {
    "NOTIFY_WATCH_INTERVAL_S": "0.2",
    "NOTIFY_REPAGE_EVERY_S": "3600",
    "INTAKE_CALLBACK_POLL_S": "0.1",
    "INTAKE_CALLBACK_RETRY_BASE_S": "0.1",
}


def jurisdiction(callbacks: int, hooks: Receiver) -> Deployment:
    """One PSAP whose callbacks reach the test's server; `crisis` takes every call (`other`'s one
    team has no capacity) and hears on its topic, its webhook and its stream; the watch's timers
    in seconds."""
    webhook = {"url": hooks.url("crisis"), "secret": SPEC_SECRET, "allow_private": True}
    team = {"name": "T", "home": {"lat": 44.05, "lon": -123.09}, "radius_km": 20}
    return Deployment.model_validate(
        {
            "jurisdiction": {"id": "test", "name": "Test", "timezone": "UTC"},
            "triage": {"version": "t", "eligible_types": ["MNTL"], "exclude": {"weapon": "police"}},
            "psaps": [
                {
                    "id": "psap",
                    "name": "PSAP",
                    "token": "test-psap-watch-token-61a9",
                    "signing_secret": PSAP_SECRET,
                    "callback_url": f"http://127.0.0.1:{callbacks}/psap",
                }
            ],
            "agencies": [
                {
                    "id": "crisis",
                    "name": "Crisis",
                    "token": "test-agency-crisis-watch-2b7e",
                    "channels": ["kafka", "webhook", "sse"],
                    "webhook": webhook,
                },
                {
                    "id": "other",
                    "name": "Other",
                    "token": "test-agency-other-watch-5c3d",
                    "channels": ["kafka"],
                },
            ],
            "teams": [
                {**team, "id": "crisis-1", "agency": "crisis", "capacity": 20},
                {**team, "id": "other-1", "agency": "other", "capacity": 0},
            ],
            "oversight": [{"id": "board", "name": "Board", "token": REVIEWER}],
            "watch": {
                "en_route_within_min": EN_ROUTE_S / 60,
                "on_scene_margin_min": MARGIN_S / 60,
                "check_in_every_min": CHECK_IN_S / 60,
                "psap_after_min": GRACE_S / 60,
            },
        }
    )


@pytest.fixture(scope="module")
async def system(stack: infra.InfraEndpoints) -> AsyncIterator[tuple[System, CallbackServer, Receiver]]:
    callbacks = CallbackServer(infra.free_port(), fail_first=0)
    hooks = Receiver(secrets={"crisis": SPEC_SECRET}, fail_first={}, always={})
    await callbacks.start()
    try:
        async with (
            serving(hooks),
            System.start(
                stack,
                ["intake", "matching", "notify", "audit"],
                jurisdiction=jurisdiction(callbacks.port, hooks),
                mode="per-service",
                settings=TEST_SETTINGS,
                env=ENV,
                prefix="watch",
            ) as running,
        ):
            yield running, callbacks, hooks
    finally:
        await callbacks.stop()


class Team:
    """The crisis team as its agency's client of notify."""

    def __init__(self, system: System, http: httpx.AsyncClient, agency: str = "crisis") -> None:
        self.system, self.http, self.auth = system, http, system.token(agency)
        self.base = f"{system.url('notify')}/v1/assignments"

    async def post(
        self, assignment_id: str, action: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        """POST one answer, report or check-in of an assignment."""
        return await self.http.post(f"{self.base}/{assignment_id}/{action}", json=body, headers=self.auth)

    async def ok(self, assignment_id: str, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """The same, answered 200: the assignment as the agency sees it."""
        r = await self.post(assignment_id, action, body)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def clear(self, assignment_id: str) -> dict[str, Any]:
        """Report the assignment cleared (settled by contact)."""
        return await self.ok(assignment_id, "status", {"status": "cleared", "disposition": "18"})

    async def offered(self, call_id: str) -> str:
        """The assignment id of the call's offer, once notify holds it."""

        async def find() -> list[dict[str, Any]]:
            r = await self.http.get(self.base, headers=self.auth)
            return [a for a in r.json() if a["call_id"] == call_id and a["status"] == "offered"]

        [offer] = await eventually(find, bool, what="the offer at notify")
        return str(offer["assignment_id"])


async def new_call(system: System, http: httpx.AsyncClient) -> str:
    """A community call of the PSAP; its id."""
    r = await system.psap_client(http, "psap").post("/v1/calls", native_call(f"W-{uuid.uuid4().hex[:8]}"))
    assert r.status_code == 202 and r.json()["decision"]["route"] == "community", r.text
    return str(r.json()["call_id"])


async def accepted_call(system: System, team: Team, http: httpx.AsyncClient) -> tuple[str, str]:
    """A call offered to the crisis team and accepted: (call id, assignment id)."""
    call_id = await new_call(system, http)
    assignment_id = await team.offered(call_id)
    view = await team.ok(assignment_id, "accept")
    assert view["watch"]["timer"] == "en_route" and view["watch"]["stage"] == "running"
    return call_id, assignment_id


async def misses(system: System, assignment_id: str) -> list[dict[str, Any]]:
    """The assignment's `assignments.timer_missed.v1` events published so far."""
    trail = await read_topic(system.settings, system.settings.topic(topics.ASSIGNMENTS_TIMER_MISSED), 1000, 2)
    found = [json.loads(r.value)["data"] for r in trail]
    return [m for m in found if m["assignment_id"] == assignment_id]


async def told_overdue(callbacks: CallbackServer, call_id: str) -> list[dict[str, Any]]:
    """overdue_callbacks, as a probe for `eventually`."""
    return overdue_callbacks(callbacks, call_id)


def overdue_callbacks(callbacks: CallbackServer, call_id: str) -> list[dict[str, Any]]:
    """The Overdue callbacks the PSAP received for a call, each checked for intake's signature."""
    told = []
    for r in callbacks.received:
        body = json.loads(r.body)
        if body.get("call_id") == call_id and body.get("unitStatus") == "Overdue":
            assert verify(PSAP_SECRET, r.headers, r.body), "an unsigned Overdue callback"
            told.append(body)
    return told


async def test_a_missed_en_route_timer_re_pages_the_agency_then_tells_the_psap_overdue(system):
    running, callbacks, hooks = system
    async with httpx.AsyncClient(timeout=15) as http:
        team = Team(running, http)
        call_id, assignment_id = await accepted_call(running, team, http)
        # Nobody reports en route: the agency hears of it first, on its own topic.
        agency_topic = running.settings.topic(topics.agency_topic("crisis"))

        async def repages() -> list[dict[str, Any]]:
            records = await read_topic(running.settings, agency_topic, 1000, 2, key=call_id)
            return [d for r in records if (d := json.loads(r.value)["data"])["kind"] == "timer_missed"]

        [repage] = await eventually(repages, bool, timeout_s=30, what="the re-page")
        assert repage["assignment_id"] == assignment_id and repage["timer"] == "en_route"

        # The same on its webhook, signed, and on its stream.
        async def hooked() -> list[Any]:
            return [
                h
                for h in hooks.answered("crisis")
                if h.kind == "timer_missed" and h.assignment_id == assignment_id
            ]

        [hook] = await eventually(hooked, bool, what="the re-page on the webhook")
        assert hook.signed and hook.data["timer"] == "en_route"
        async with running.pool() as pool:
            streamed = await pool.fetch(
                "SELECT data FROM notify.feed WHERE assignment_id = $1::uuid AND kind = 'timer_missed'",
                assignment_id,
            )
        assert [r["data"]["watch"]["stage"] for r in streamed] == ["repaged"]
        assert overdue_callbacks(callbacks, call_id) == []  # the grace still runs
        # Still nothing after the grace: the PSAP is told, signed, naming the timer.
        [overdue] = await eventually(
            lambda: told_overdue(callbacks, call_id), bool, timeout_s=30, what="Overdue"
        )
        assert overdue["timer"] == "en_route" and overdue["agency_id"] == "crisis"
        assert overdue["team_id"] == "crisis-1" and overdue["status"] == "overdue"

        # Each step is in the trail, every field shown to oversight.
        async def trail() -> list[dict[str, Any]]:
            r = await http.get(f"{running.url('audit')}/v1/audit/calls/{call_id}", headers=bearer(REVIEWER))
            events = r.json()["events"] if r.status_code == 200 else []
            return [e["data"] for e in events if e["type"] == topics.ASSIGNMENTS_TIMER_MISSED]

        missed = await eventually(trail, lambda m: len(m) == 2, what="both misses in the trail")
        assert [(m["timer"], m["escalation"]) for m in missed] == EN_ROUTE_MISSED
        assert missed[0]["agency_id"] == "crisis" and missed[0]["due_at"] == missed[1]["due_at"]
        view = (await http.get(team.base, headers=team.auth)).json()
        [mine] = [a for a in view if a["assignment_id"] == assignment_id]
        assert mine["watch"]["stage"] == "overdue"
        # The oversight summary counts the miss under its agency.
        r = await http.get(f"{running.url('audit')}/v1/reports/summary", headers=bearer(REVIEWER))
        assert r.status_code == 200, r.text
        assert r.json()["missed_timers"]["crisis"]["en_route"] >= 1
        assert r.json()["missed_timers"]["crisis"]["psap_told"] >= 1
        # A late en route still counts, and starts the next timer afresh.
        late = await team.ok(assignment_id, "status", {"status": "en_route"})
        assert late["watch"]["timer"] == "on_scene" and late["watch"]["stage"] == "running"
        await team.clear(assignment_id)


async def test_steps_and_check_ins_in_time_stop_each_miss(system):
    running, callbacks, _ = system
    async with httpx.AsyncClient(timeout=15) as http:
        team = Team(running, http)
        call_id, assignment_id = await accepted_call(running, team, http)
        before = datetime.now().astimezone()
        en_route = await team.ok(assignment_id, "status", {"status": "en_route", "eta_min": 1})
        # The team's own ETA plus the margin.
        due = datetime.fromisoformat(en_route["watch"]["due_at"])
        assert en_route["watch"]["timer"] == "on_scene"
        assert (
            before + timedelta(seconds=60 + MARGIN_S - 1)
            <= due
            <= before + timedelta(seconds=60 + MARGIN_S + 5)
        )
        on_scene = await team.ok(assignment_id, "status", {"status": "on_scene"})
        assert on_scene["watch"]["timer"] == "check_in"
        first_due = datetime.fromisoformat(on_scene["watch"]["due_at"])
        # Two check-ins, each before the one before it ran out, carry the team past the first due.
        for _ in range(2):
            await asyncio.sleep(CHECK_IN_S / 2)
            checked = await team.ok(assignment_id, "check-in", {"code": "all_well"})
            assert checked["watch"] == {**checked["watch"], "timer": "check_in", "stage": "running"}
        assert datetime.now().astimezone() > first_due
        await team.clear(assignment_id)
        await asyncio.sleep(CHECK_IN_S + GRACE_S)  # every due has passed since
        assert await misses(running, assignment_id) == []
        assert overdue_callbacks(callbacks, call_id) == []


async def test_clearing_and_withdrawal_stop_every_timer(system):
    running, callbacks, _ = system
    async with httpx.AsyncClient(timeout=15) as http:
        team = Team(running, http)
        cleared_call, cleared = await accepted_call(running, team, http)
        view = await team.clear(cleared)
        assert view["watch"] is None
        # The PSAP cancels the other call: matching withdraws it from the team, and its timer stops.
        cancelled_call, withdrawn = await accepted_call(running, team, http)
        r = await running.psap_client(http, "psap").post(
            f"/v1/calls/{cancelled_call}/cancel", {"reason": "resolved"}
        )
        assert r.status_code in (200, 202), r.text

        async def state() -> dict[str, Any]:
            [mine] = [
                a
                for a in (await http.get(team.base, headers=team.auth)).json()
                if a["assignment_id"] == withdrawn
            ]
            return dict(mine)

        gone = await eventually(state, lambda a: a["status"] == "withdrawn", what="the withdrawal")
        assert gone["watch"] is None
        await asyncio.sleep(EN_ROUTE_S + GRACE_S + 1)
        for call_id, assignment_id in ((cleared_call, cleared), (cancelled_call, withdrawn)):
            assert await misses(running, assignment_id) == []
            assert overdue_callbacks(callbacks, call_id) == []


async def test_a_timer_running_while_notify_and_matching_restart_still_fires(system):
    """Both SIGKILLed while the en-route timer runs, started again after it ran out: notify fires it
    from the database when it is back, once."""
    running, callbacks, _ = system
    async with httpx.AsyncClient(timeout=15) as http:
        team = Team(running, http)
        call_id, assignment_id = await accepted_call(running, team, http)
        running.kill("notify")
        running.kill("matching")
        await asyncio.sleep(EN_ROUTE_S + 1)
        running.spawn("notify")
        running.spawn("matching")
        await running.wait_ready()
        await eventually(lambda: told_overdue(callbacks, call_id), bool, timeout_s=60, what="Overdue")
        missed = await misses(running, assignment_id)
        assert [(m["timer"], m["escalation"]) for m in missed] == EN_ROUTE_MISSED
        await team.clear(assignment_id)


async def test_bad_check_ins_answer_a_4xx_with_a_code(system):
    running, _, _ = system
    async with httpx.AsyncClient(timeout=15) as http:
        team = Team(running, http)
        _, assignment_id = await accepted_call(running, team, http)
        url = f"{team.base}/{assignment_id}/check-in"
        json_type = {"content-type": "application/json"}
        cases: list[tuple[str, dict[str, str], bytes, int, str | None]] = [
            ("no token", {}, b'{"code": "all_well"}', 401, None),
            ("another agency", running.token("other"), b'{"code": "all_well"}', 404, None),
            ("not on scene yet", team.auth, b'{"code": "all_well"}', 409, "invalid_transition"),
            ("text for a code", team.auth, b'{"code": "we are fine, I think"}', 422, None),
            ("a number for a code", team.auth, b'{"code": 1e400}', 422, "inexact_number"),
            ("a huge integer", team.auth, b'{"code": 123456789012345678901234567890}', 422, "inexact_number"),
            ("an unknown field", team.auth, b'{"code": "all_well", "note": "x"}', 422, None),
            ("not json", team.auth, b"all well", 422, None),
            ("a huge body", team.auth, b'{"code": "' + b"a" * 2_000_000 + b'"}', 413, None),
        ]
        for what, headers, body, status, code in cases:
            r = await http.post(url, content=body, headers={**json_type, **headers})
            assert r.status_code == status, (what, r.status_code, r.text[:200])
            assert r.json().get("code"), (what, r.text[:200])
            if code is not None:
                assert r.json()["code"] == code, (what, r.text[:200])
        for what, target in (("unknown", str(uuid.uuid4())), ("not an id", "not-a-uuid")):
            r = await http.post(
                f"{team.base}/{target}/check-in", json={"code": "all_well"}, headers=team.auth
            )
            assert r.status_code == 404 and r.json()["code"], (what, r.text)
        # And an ETA that is no whole number of minutes, or with another status, is refused too.
        reports: list[dict[str, Any]] = [
            {"status": "en_route", "eta_min": "soon"},
            {"status": "on_scene", "eta_min": 5},
            {"status": "en_route", "eta_min": 0},
            {"status": "en_route", "eta_min": 10**6},
        ]
        for report in reports:
            r = await team.post(assignment_id, "status", report)
            assert r.status_code == 422 and r.json()["code"], (report, r.text)
        await team.clear(assignment_id)
