"""Routes by incident type: the jurisdiction's type and prefix rules and its fallback, through
intake's HTTP API on the real broker and PostgreSQL, with EIDO documents and native calls."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.intake.settings import IntakeSettings
from shared import topics
from tests.integration.intake_harness import Intake, native_call, running_intake
from tests.integration.intake_harness import eido_incident as incident

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def intake(stack) -> AsyncIterator[Intake]:
    async with running_intake(stack, IntakeSettings()) as running:
        yield running


def _codes(answer: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    return [(c["code"], c["params"]) for c in answer["decision"]["codes"]]


async def test_an_overdose_goes_to_ems_by_its_own_rule_not_to_police(intake: Intake):
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/incidents", "valley-ecc", incident("OD"))
        assert r.status_code == 202, r.text
        answer = r.json()
        assert answer["decision"]["route"] == "ems" and answer["status"] == "routed_ems"
        assert "incident type OD -> ems" in answer["decision"]["reasons"]
        assert ("type_routed", {"incident_type": "OD", "rule": "OD", "route": "ems"}) in _codes(answer)
        url = f"{intake.url}/v1/calls/{answer['call_id']}"
        shown = (await http.get(url, headers=intake.headers("valley-ecc", b""))).json()
        assert shown["status"] == "routed_ems"
    [event] = await intake.events(topics.CALLS_RECEIVED, answer["call_id"], 1)
    assert event["data"]["decision"]["route"] == "ems"
    assert event["data"]["decision"]["codes"][0]["code"] == "type_routed"


async def test_a_fire_type_goes_to_fire_and_an_exact_type_beats_a_prefix(intake: Intake):
    async with httpx.AsyncClient(timeout=15) as http:
        fire = await intake.post(http, "/v1/incidents", "valley-ecc", incident("FSTRU"))
        assert fire.status_code == 202 and fire.json()["decision"]["route"] == "fire", fire.text
        assert fire.json()["status"] == "routed_fire"
        gas = await intake.post(http, "/v1/calls", "valley-ecc", native_call("R-1", "GASLEAKI"))
        assert gas.json()["decision"]["route"] == "fire"
        assert ("type_routed", {"rule": "GASLEAK*", "route": "fire"}) in _codes(gas.json())
        burglary = await intake.post(http, "/v1/calls", "valley-ecc", native_call("R-2", "ALRBA"))
        assert burglary.json()["decision"]["route"] == "police"
        assert "incident type ALRBA -> police (rule ALR*)" in burglary.json()["decision"]["reasons"]
        alarm = await intake.post(http, "/v1/calls", "valley-ecc", native_call("R-3", "ALRF"))
        assert alarm.json()["decision"]["route"] == "fire"
        assert ("type_routed", {"incident_type": "ALRF", "rule": "ALRF", "route": "fire"}) in _codes(
            alarm.json()
        )
        medical = await intake.post(http, "/v1/calls", "valley-ecc", native_call("R-4", "ALRMED"))
        assert medical.json()["decision"]["route"] == "ems"


async def test_an_unmapped_type_takes_the_fallback_and_says_so(intake: Intake):
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/calls", "valley-ecc", native_call("R-5", "BURGLARY"))
        assert r.status_code == 202 and r.json()["decision"]["route"] == "police", r.text
        assert ("type_not_eligible", {"route": "police", "rule": "fallback"}) in _codes(r.json())
        assert any("fallback -> police" in reason for reason in r.json()["decision"]["reasons"])
        review = await intake.post(http, "/v1/incidents", "valley-ecc", incident("NONEMERG"))
        assert review.json()["decision"]["route"] == "review"


async def test_a_weapon_still_sends_a_routed_type_to_police(intake: Intake):
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/incidents", "valley-ecc", incident("OD", weapon="yes"))
        decision = r.json()["decision"]
        assert decision["route"] == "police"
        assert {c["code"] for c in decision["codes"]} >= {"type_routed", "safety_yes"}


async def test_an_eligible_type_still_goes_to_a_community_team(intake: Intake):
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/incidents", "valley-ecc", incident("MNTL"))
        assert r.json()["decision"]["route"] == "community"
        assert ("type_eligible", {"incident_type": "MNTL", "rule": "MNTL"}) in _codes(r.json())
