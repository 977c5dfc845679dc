"""The 988 route through the whole system: triage transfers a call to the crisis line, only the
center is offered it, its answer is the PSAP's news, and its follow-up is closed or overdue."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import httpx
import pytest
import yaml

from services.jurisdiction import Deployment
from services.matching.service import build as build_matching
from services.matching.settings import MatchingSettings
from services.notify.service import build as build_notify
from services.notify.settings import NotifySettings
from shared.topics import agency_topic
from tests.integration.intake_harness import CallbackServer
from tests.support import TEST_SETTINGS, eventually, read_topic
from tools import infra
from tools.jurisdictions import EXAMPLE
from tools.psap import verify
from tools.system import System

pytestmark = pytest.mark.e2e

CENTER = "lane-988"
# Follow-ups are due 9 s after acceptance here, so one left open is seen overdue within the test.
FOLLOW_UP_H = 9 / 3600
SAFE = {
    "weapon": "no",
    "violence": "no",
    "medical": "no",
    "self_harm_imminent": "no",
    "crime_in_progress": "no",
    "in_person_needed": "no",
}


def jurisdiction(callback_port: int) -> Deployment:
    """The example region with a 988 center and the valley PSAP's callbacks on the test server."""
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["psaps"][0]["callback_url"] = f"http://127.0.0.1:{callback_port}/valley/status"
    raw["agencies"].append(
        {
            "id": CENTER,
            "name": "Lane County 988",
            "token": "test-agency-lane-988-5e1f0a",
            "channels": ["kafka"],
        }
    )
    raw["crisis_line"] = {
        "agency": CENTER,
        "follow_up_within": FOLLOW_UP_H,
        "when": {
            "answers": {
                "weapon": "no",
                "violence": "no",
                "self_harm_imminent": "no",
                "in_person_needed": "no",
            }
        },
    }
    return Deployment.model_validate(raw)


@pytest.fixture(scope="module")
async def callbacks() -> AsyncIterator[CallbackServer]:
    server = CallbackServer(infra.free_port(), fail_first=0)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
async def system(stack, callbacks: CallbackServer) -> AsyncIterator[System]:
    notify = NotifySettings(follow_up_check_s=0.5)
    matching = MatchingSettings(offer_timeout_s=8)
    async with System.start(
        stack,
        jurisdiction=jurisdiction(callbacks.port),
        settings=TEST_SETTINGS,
        builders={
            "notify": lambda i: build_notify(i, notify),
            "matching": lambda i: build_matching(i, matching),
        },
        prefix="c988",
    ) as running:
        yield running


def native(**changes: Any) -> dict[str, Any]:
    return {
        "external_id": f"CAD-{uuid.uuid4().hex[:8]}",
        "incident_type": "10-96",
        "location": {"lat": 44.0503, "lon": -123.0889},
        "safety": SAFE,
        "consent_non_police": True,
        "callback_number": "+15415550188",
        **changes,
    }


async def transfer(system: System, http: httpx.AsyncClient, body: dict[str, Any] | None = None) -> str:
    """Post a call triage sends to the 988 line; its id."""
    answer = await system.psap_client(http, "valley-ecc").call(body or native())
    assert answer.status_code == 202, answer.text
    decision = answer.json()["decision"]
    assert decision["route"] == "988" and answer.json()["status"] == "received", decision
    assert decision["codes"][-1] == {"code": "crisis_line_eligible", "params": {"agency": CENTER}}
    return str(answer.json()["call_id"])


async def offer_of(system: System, call_id: str) -> dict[str, Any]:
    """The offer of `call_id` on the center's own topic."""
    topic = system.settings.topic(agency_topic(CENTER))
    [record] = await read_topic(system.settings, topic, 1, timeout_s=30, key=call_id)
    data: dict[str, Any] = json.loads(record.value)["data"]
    return data


async def status(system: System, http: httpx.AsyncClient, call_id: str) -> dict[str, Any]:
    r = await http.get(f"{system.url('intake')}/v1/calls/{call_id}", headers=system.token("valley-ecc"))
    assert r.status_code == 200, r.text
    view: dict[str, Any] = r.json()
    return view


def told(callbacks: CallbackServer, system: System, call_id: str) -> list[dict[str, Any]]:
    """The signed callbacks the valley PSAP got about one call."""
    secret = system.psap("valley-ecc").signing_secret
    assert secret is not None
    found = []
    for r in callbacks.received:
        body = json.loads(r.body)
        if body.get("call_id") == call_id:
            assert verify(secret, r.headers, r.body)
            found.append(body)
    return found


async def test_a_988_call_is_offered_to_the_center_alone_and_accepted(system: System):
    async with httpx.AsyncClient(timeout=15) as http:
        call_id = await transfer(system, http)
        offer = await offer_of(system, call_id)
        assert offer["kind"] == "offered" and offer["team_id"] == "988"
        assert offer["details"]["callback_number"] == "+15415550188"
        # No team of any community agency heard of it.
        for agency in ("riverbend-crisis", "valley-behavioral"):
            topic = system.settings.topic(agency_topic(agency))
            assert await read_topic(system.settings, topic, 1, timeout_s=3, key=call_id) == []
        url = f"{system.url('notify')}/v1/assignments/{offer['assignment_id']}"
        assert (await http.post(f"{url}/accept", headers=system.token("riverbend-crisis"))).status_code == 404
        accepted = await http.post(f"{url}/accept", headers=system.token(CENTER))
        assert accepted.status_code == 200, accepted.text
        # The center takes the call on the phone: no en-route timer watches it (its follow-up does).
        assert accepted.json()["watch"] is None
        seen = await eventually(
            lambda: status(system, http, call_id), lambda v: v["status"] == "assigned", what="assigned"
        )
        assert seen["assignment"]["agency_id"] == CENTER


async def test_an_eido_call_goes_to_988_too_and_a_caution_keeps_it_from_the_line(system: System):
    from services.intake import eido

    async with httpx.AsyncClient(timeout=15) as http:
        psap = system.psap_client(http, "valley-ecc")
        doc = eido.example()
        doc["$id"] = f"urn:emergency:uid:incidentid:{uuid.uuid4().hex[:8]}:psap.example.org"
        doc[eido.EXTENSION_KEY]["safetyScreen"]["inPersonNeeded"] = "no"
        answer = await psap.incident(doc)
        assert answer.status_code == 202 and answer.json()["decision"]["route"] == "988", answer.text
        armed = {
            **doc,
            "$id": f"{doc['$id']}-2",
            "cautionComponent": [{"cautionTypeCommonRegistryText": "WEAPON"}],
        }
        answer = await psap.incident(armed)
        assert answer.status_code == 202 and answer.json()["decision"]["route"] == "police", answer.text


async def test_a_decline_hands_the_call_back_to_the_psap_with_the_reason(system: System, callbacks):
    async with httpx.AsyncClient(timeout=15) as http:
        call_id = await transfer(system, http)
        offer = await offer_of(system, call_id)
        url = f"{system.url('notify')}/v1/assignments/{offer['assignment_id']}/decline"
        declined = await http.post(url, json={"reason_code": "no_capacity"}, headers=system.token(CENTER))
        assert declined.status_code == 200, declined.text
        seen = await eventually(
            lambda: status(system, http, call_id), lambda v: v["status"] == "handed_back", what="handed back"
        )
        assert seen["non_diversion_reason"] == "crisis_line_declined"
        got = await eventually(
            lambda: _async(told(callbacks, system, call_id)),
            lambda t: any(c["status"] == "handed_back" for c in t),
            what="the hand-back told to the PSAP",
        )
        back = next(c for c in got if c["status"] == "handed_back")
        assert back["reason"] == "crisis_line_declined" and back["unitStatus"] == "AssignmentCancelled"


async def _async(value: Any) -> Any:
    return value


async def test_an_offer_the_center_lets_expire_goes_back_to_the_psap(system: System):
    async with httpx.AsyncClient(timeout=15) as http:
        call_id = await transfer(system, http)
        await offer_of(system, call_id)
        seen = await eventually(
            lambda: status(system, http, call_id),
            lambda v: v["status"] == "handed_back",
            timeout_s=40,
            what="handed back after the deadline",
        )
        assert seen["non_diversion_reason"] == "crisis_line_no_answer"


async def accepted_988_call(system: System, http: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    """A call transferred to the line and accepted by the center; its id and its follow-up."""
    call_id = await transfer(system, http)
    offer = await offer_of(system, call_id)
    url = f"{system.url('notify')}/v1/assignments/{offer['assignment_id']}/accept"
    assert (await http.post(url, headers=system.token(CENTER))).status_code == 200

    async def mine() -> list[dict[str, Any]]:
        r = await http.get(f"{system.url('notify')}/v1/follow-ups", headers=system.token(CENTER))
        assert r.status_code == 200, r.text
        return [f for f in r.json() if f["call_id"] == call_id]

    [follow_up] = await mine()
    return call_id, follow_up


async def trail(system: System, http: httpx.AsyncClient, call_id: str) -> list[dict[str, Any]]:
    r = await http.get(
        f"{system.url('audit')}/v1/audit/calls/{call_id}", headers=system.token("civilian-review-board")
    )
    return list(r.json()["events"]) if r.status_code == 200 else []


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


async def test_the_center_closes_its_follow_up_with_one_authenticated_call(system: System):
    async with httpx.AsyncClient(timeout=15) as http:
        call_id, follow_up = await accepted_988_call(system, http)
        assert follow_up["state"] == "open" and follow_up["outcome"] is None
        closed = await http.post(
            close_url(system, follow_up),
            json={"outcome": "reached", "note": "safety plan made"},
            headers=system.token(CENTER),
        )
        assert closed.status_code == 200, closed.text
        assert closed.json()["state"] == "closed" and closed.json()["outcome"] == "reached"
        again = await http.post(
            close_url(system, follow_up), json={"outcome": "reached"}, headers=system.token(CENTER)
        )
        assert again.status_code == 200 and again.json()["closed_at"] == closed.json()["closed_at"]
        changed = await http.post(
            close_url(system, follow_up), json={"outcome": "unreachable"}, headers=system.token(CENTER)
        )
        assert changed.status_code == 409 and changed.json()["code"] == "follow_up_closed"

        found = await eventually(
            lambda: trail(system, http, call_id),
            lambda t: bool(of_type(t, "follow_ups.closed.v1")),
            what="the closed follow-up in the trail",
        )
        [scheduled] = of_type(found, "follow_ups.scheduled.v1")
        [done] = of_type(found, "follow_ups.closed.v1")
        assert done["data"]["outcome"] == "reached" and done["data"]["late"] is False
        assert "safety plan made" not in json.dumps(found)  # the note stays with the center
        assert at(scheduled["data"]["due_at"]) == at(follow_up["due_at"])
        steps = [s["status"] for s in (await status(system, http, call_id))["timeline"]]
        assert "follow_up_scheduled" in steps and "follow_up_closed" in steps


def close_url(system: System, follow_up: dict[str, Any] | str) -> str:
    """The close route of a follow-up (or of an id as given)."""
    fid = follow_up if isinstance(follow_up, str) else follow_up["follow_up_id"]
    return f"{system.url('notify')}/v1/follow-ups/{fid}/close"


# What was tried against the close route, each answer a 4xx with a code (never a 500), and the
# follow-up still open after all of them: (what, headers' tenant or None, raw body, status, code).
BAD_CLOSES: list[tuple[str, str | None, bytes, int, str]] = [
    ("no token", None, b'{"outcome": "reached"}', 401, "unauthenticated"),
    ("another agency's token", "riverbend-crisis", b'{"outcome": "reached"}', 404, "not_found"),
    # Notify holds only agencies' tokens: a PSAP's or oversight's is as unknown to it as a made-up one.
    ("a PSAP's token", "valley-ecc", b'{"outcome": "reached"}', 401, "unauthenticated"),
    ("an oversight token", "civilian-review-board", b'{"outcome": "reached"}', 401, "unauthenticated"),
    (
        "free text for the outcome code",
        CENTER,
        b'{"outcome": "we talked, she is fine"}',
        422,
        "invalid_request",
    ),
    ("a number for the outcome code", CENTER, b'{"outcome": 1}', 422, "invalid_request"),
    ("an unknown field", CENTER, b'{"outcome": "reached", "caller": "Zelda"}', 422, "invalid_request"),
    ("no outcome", CENTER, b"{}", 422, "invalid_request"),
    (
        "a note over 2000 characters",
        CENTER,
        b'{"outcome": "reached", "note": "' + b"x" * 2001 + b'"}',
        422,
        "invalid_request",
    ),
    (
        "a body over the service's limit",
        CENTER,
        b'{"outcome": "reached", "note": "' + b"x" * 1_100_000 + b'"}',
        413,
        "body_too_large",
    ),
    ("a number past float's range", CENTER, b'{"outcome": 1e400}', 422, "inexact_number"),
    (
        "an integer of 400 digits",
        CENTER,
        b'{"outcome": "reached", "note": ' + b"9" * 400 + b"}",
        422,
        "inexact_number",
    ),
    ("NaN, which JSON has not", CENTER, b'{"outcome": NaN}', 422, "inexact_number"),
    ("a body that is not JSON", CENTER, b"outcome=reached", 422, "invalid_request"),
    ("a JSON list", CENTER, b'["reached"]', 422, "invalid_request"),
]


async def test_bad_closes_and_listings_are_refused_with_a_code_never_a_500(system: System):
    async with httpx.AsyncClient(timeout=15) as http:
        _, follow_up = await accepted_988_call(system, http)
        json_type = {"content-type": "application/json"}
        for what, tenant, body, want, code in BAD_CLOSES:
            headers = {**json_type, **(system.token(tenant) if tenant else {})}
            r = await http.post(close_url(system, follow_up), content=body, headers=headers)
            assert (r.status_code, r.json().get("code")) == (want, code), (
                f"{what}: {r.status_code} {r.text[:300]}"
            )
        mine = system.token(CENTER)
        for what, fid in [
            ("an id that is no uuid", "not-a-uuid"),
            ("an unknown uuid", str(uuid.uuid4())),
            ("a number past 64 bits for the id", "9" * 40),
        ]:
            r = await http.post(close_url(system, fid), json={"outcome": "reached"}, headers=mine)
            assert (r.status_code, r.json()["code"]) == (404, "not_found"), f"{what}: {r.text}"
        listing = f"{system.url('notify')}/v1/follow-ups"
        for what, query in [
            ("an unknown state", "state=later"),
            ("a limit of zero", "limit=0"),
            ("a limit past 64 bits", f"limit={'9' * 40}"),
            ("a limit past float's range", "limit=1e400"),
            ("a negative limit", "limit=-1"),
        ]:
            r = await http.get(f"{listing}?{query}", headers=mine)
            assert r.status_code == 422 and r.json()["code"] == "invalid_request", f"{what}: {r.text}"
        assert (await http.get(listing)).status_code == 401
        [still] = [
            f
            for f in (await http.get(listing, headers=mine)).json()
            if f["follow_up_id"] == follow_up["follow_up_id"]
        ]
        assert still["state"] == "open" and still["outcome"] is None


async def test_a_follow_up_left_open_goes_overdue_in_the_trail_to_the_psap_and_is_counted(
    system: System, callbacks: CallbackServer
):
    async with httpx.AsyncClient(timeout=15) as http:
        call_id, follow_up = await accepted_988_call(system, http)
        found = await eventually(
            lambda: trail(system, http, call_id),
            lambda t: bool(of_type(t, "follow_ups.overdue.v1")),
            timeout_s=40,
            what="the overdue follow-up in the trail",
        )
        [overdue] = of_type(found, "follow_ups.overdue.v1")
        assert overdue["data"]["follow_up_id"] == follow_up["follow_up_id"]
        got = await eventually(
            lambda: _async(told(callbacks, system, call_id)),
            lambda t: any(c["unitStatus"] == "FollowUpOverdue" for c in t),
            what="the overdue follow-up told to the PSAP",
        )
        told_overdue = next(c for c in got if c["unitStatus"] == "FollowUpOverdue")
        assert told_overdue["agency_id"] == CENTER and told_overdue["reason"] == "follow_up_overdue"
        listed = await http.get(
            f"{system.url('notify')}/v1/follow-ups?state=overdue", headers=system.token(CENTER)
        )
        assert follow_up["follow_up_id"] in [f["follow_up_id"] for f in listed.json()]
        metrics = (await http.get(f"{system.url('notify')}/metrics")).text
        counted = [ln for ln in metrics.splitlines() if ln.startswith("careroute_follow_ups_overdue_total")]
        assert counted and float(counted[0].split()[-1]) >= 1
        # Reported once: another pass of the watch finds nothing new to report.
        await asyncio.sleep(1.5)  # three more passes of the watch
        assert len(of_type(await trail(system, http, call_id), "follow_ups.overdue.v1")) == 1
        # Closing it late is still possible, and says it was late.
        close = f"{system.url('notify')}/v1/follow-ups/{follow_up['follow_up_id']}/close"
        assert (
            await http.post(close, json={"outcome": "unreachable"}, headers=system.token(CENTER))
        ).status_code == 200
        late = await eventually(
            lambda: trail(system, http, call_id),
            lambda t: bool(of_type(t, "follow_ups.closed.v1")),
            what="the late close in the trail",
        )
        assert of_type(late, "follow_ups.closed.v1")[0]["data"]["late"] is True


async def test_a_deadline_running_while_notify_is_down_is_reported_once_when_it_is_back(
    stack: infra.InfraEndpoints, callbacks: CallbackServer
):
    """The due time lives in notify's database: notify, its own process here, is SIGKILLed while a
    follow-up's deadline runs and started again after it passed; the follow-up is reported overdue
    once (trail, the PSAP's signed callback), not lost with the process and not reported twice."""
    env = {"NOTIFY_FOLLOW_UP_CHECK_S": "0.5", "MATCHING_OFFER_TIMEOUT_S": "8"}
    async with (
        System.start(
            stack,
            jurisdiction=jurisdiction(callbacks.port),
            mode="per-service",
            settings=TEST_SETTINGS,
            env=env,
            prefix="c988r",
        ) as system,
        system.pool() as pool,
        httpx.AsyncClient(timeout=15) as http,
    ):
        call_id, follow_up = await accepted_988_call(system, http)
        system.kill("notify")
        due = at(follow_up["due_at"])
        await asyncio.sleep(max(0.0, (due - datetime.now(due.tzinfo)).total_seconds()) + 2)
        assert of_type(await trail(system, http, call_id), "follow_ups.overdue.v1") == []
        system.spawn("notify")
        await system.wait_ready()
        found = await eventually(
            lambda: trail(system, http, call_id),
            lambda t: bool(of_type(t, "follow_ups.overdue.v1")),
            timeout_s=40,
            what="the overdue follow-up in the trail after the restart",
        )
        await eventually(
            lambda: _async(told(callbacks, system, call_id)),
            lambda t: any(c["status"] == "follow_up_overdue" for c in t),
            what="the overdue follow-up told to the PSAP",
        )
        await asyncio.sleep(1.5)  # three more passes of the restarted watch
        assert len(of_type(await trail(system, http, call_id), "follow_ups.overdue.v1")) == 1
        assert [c["status"] for c in told(callbacks, system, call_id)].count("follow_up_overdue") == 1
        overdue_at = await pool.fetchval(
            "SELECT overdue_at FROM notify.follow_ups WHERE id = $1::uuid", follow_up["follow_up_id"]
        )
        assert overdue_at is not None and overdue_at >= due
        assert of_type(found, "follow_ups.overdue.v1")[0]["data"]["follow_up_id"] == follow_up["follow_up_id"]


async def test_a_center_that_pauses_itself_is_offered_no_call_and_its_open_offer_goes_back(system: System):
    """Tried: before, a paused center kept the offer it held until it expired (its offers are no
    team's holds, so the pause withdrew nothing) and was offered new calls as if open."""
    async with httpx.AsyncClient(timeout=15) as http:
        held = await transfer(system, http)
        await offer_of(system, held)
        agency = f"{system.url('matching')}/v1/agency"
        paused = await http.post(f"{agency}/pause", json={"reason": "staffing"}, headers=system.token(CENTER))
        try:
            assert paused.status_code == 200, paused.text
            seen = await eventually(
                lambda: status(system, http, held), lambda v: v["status"] == "handed_back", what="handed back"
            )
            assert seen["non_diversion_reason"] == "crisis_line_paused"
            later = await transfer(system, http)
            seen = await eventually(
                lambda: status(system, http, later),
                lambda v: v["status"] == "handed_back",
                what="handed back",
            )
            assert seen["non_diversion_reason"] == "crisis_line_paused"
            topic = system.settings.topic(agency_topic(CENTER))
            assert await read_topic(system.settings, topic, 1, timeout_s=3, key=later) == []
        finally:
            resumed = await http.post(f"{agency}/resume", headers=system.token(CENTER))
            assert resumed.status_code == 200, resumed.text
