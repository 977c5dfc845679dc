"""Rules per PSAP and by MPDS determinant, through intake's HTTP API on the real broker and
PostgreSQL, with EIDO documents and native calls."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.intake import eido
from services.intake.settings import IntakeSettings
from shared import topics
from tests.integration.intake_harness import Intake, eido_incident, native_call, running_intake

pytestmark = pytest.mark.integration

REGION = "2026-11-01"
UNIVERSITY = "2026-11-15-university"


@pytest.fixture(scope="module")
async def intake(stack) -> AsyncIterator[Intake]:
    async with running_intake(stack, IntakeSettings()) as running:
        yield running


def incident(
    incident_type: str, determinant: str | None = None, stamp: str = "2026-11-26T10:00:00Z"
) -> dict[str, Any]:
    """An EIDO (NENA-STA-021) of one incident type, with the MPDS determinant the CAD assigned."""
    doc = eido_incident(incident_type)
    doc["lastUpdateTimeStamp"] = stamp
    if determinant is not None:
        doc[eido.EXTENSION_KEY]["mpdsDeterminant"] = determinant
    return doc


def _codes(decision: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {c["code"]: c["params"] for c in decision["codes"]}


async def test_a_psap_with_its_own_rules_is_decided_by_them_and_others_by_the_regions(intake: Intake):
    async with httpx.AsyncClient(timeout=15) as http:
        own = await intake.post(http, "/v1/calls", "university-psap", native_call("U-1", "NOISE"))
        assert own.status_code == 202, own.text
        decision = own.json()["decision"]
        assert decision["route"] == "community" and decision["rules_version"] == UNIVERSITY
        assert decision["reasons"][0] == f"the rules of PSAP university-psap apply (version {UNIVERSITY})"
        assert _codes(decision)["psap_rules"] == {"psap": "university-psap", "version": UNIVERSITY}
        # The region's draft is still evaluated beside the PSAP's rules.
        assert own.json()["shadow_decision"]["rules_version"] == "2026-12-draft"
        region = await intake.post(http, "/v1/calls", "valley-ecc", native_call("V-1", "NOISE"))
        assert region.json()["decision"]["route"] == "police"
        assert region.json()["decision"]["rules_version"] == REGION
        assert "psap_rules" not in _codes(region.json()["decision"])
        # What the university's set does not give it inherits: a weapon still goes to police.
        armed = await intake.post(
            http, "/v1/calls", "university-psap", native_call("U-2", "NOISE", weapon="yes")
        )
        assert armed.json()["decision"]["route"] == "police"
    [event] = await intake.events(topics.CALLS_RECEIVED, own.json()["call_id"], 1)
    assert event["data"]["decision"]["rules_version"] == UNIVERSITY


async def test_a_determinant_decides_in_place_of_the_incident_type(intake: Intake):
    async with httpx.AsyncClient(timeout=15) as http:
        not_alert = await intake.post(http, "/v1/incidents", "valley-ecc", incident("MNTL", "25-D-1"))
        assert not_alert.status_code == 202, not_alert.text
        decision = not_alert.json()["decision"]
        assert decision["route"] == "ems"
        assert _codes(decision)["determinant_routed"] == {
            "determinant": "25-D-1",
            "rule": "25-D",
            "route": "ems",
        }
        # A type no rule makes eligible, with a determinant the region opens to community teams.
        alert = await intake.post(http, "/v1/incidents", "valley-ecc", incident("SUICIDE", "25A01"))
        assert alert.json()["decision"]["route"] == "community", alert.text
        assert _codes(alert.json()["decision"])["determinant_eligible"]["determinant"] == "25-A-1"
        unknown = {**native_call("V-2", "MNTL"), "mpds_determinant": "25-B-6"}
        r = await intake.post(http, "/v1/calls", "valley-ecc", unknown)
        assert r.json()["decision"]["route"] == "review"
        assert _codes(r.json()["decision"])["determinant_routed"]["rule"] == "25-B-6"
        # A determinant no rule names leaves the type's rules to decide.
        other = await intake.post(http, "/v1/incidents", "valley-ecc", incident("MNTL", "10-C-1"))
        assert other.json()["decision"]["route"] == "community"
        assert "type_eligible" in _codes(other.json()["decision"])


async def test_a_newer_version_with_a_worse_determinant_triages_the_call_again(intake: Intake):
    first = incident("MNTL", "25-A-1")
    newer = {**first, "lastUpdateTimeStamp": "2026-11-26T10:05:00Z"}
    newer[eido.EXTENSION_KEY] = {**first[eido.EXTENSION_KEY], "mpdsDeterminant": "25-D-2"}
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/incidents", "valley-ecc", first)
        assert r.json()["decision"]["route"] == "community"
        r = await intake.post(http, "/v1/incidents", "valley-ecc", newer)
        assert r.json()["outcome"] == "updated" and r.json()["decision"]["route"] == "ems", r.text
    [update] = await intake.events(topics.CALLS_UPDATED, r.json()["call_id"], 1)
    assert update["data"]["decision"]["route"] == "ems" and update["data"]["previous_route"] == "community"


@pytest.mark.parametrize("determinant", ["25-X-1", "twenty-five", "25-A-1-B", "", 25])
async def test_a_determinant_that_is_not_one_is_refused_with_a_code(intake: Intake, determinant: Any):
    async with httpx.AsyncClient(timeout=15) as http:
        doc = incident("MNTL")
        doc[eido.EXTENSION_KEY]["mpdsDeterminant"] = determinant
        r = await intake.post(http, "/v1/incidents", "valley-ecc", doc)
        assert r.status_code == 422 and r.json()["code"], r.text
        native = {**native_call(f"BAD-{uuid.uuid4().hex[:6]}"), "mpds_determinant": determinant}
        r = await intake.post(http, "/v1/calls", "valley-ecc", native)
        assert r.status_code == 422 and r.json()["code"], r.text
