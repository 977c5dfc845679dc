"""Calls located by a civic address alone (EIDO PIDF-LO, native), geocoded by intake against the
jurisdiction's address points on the real broker and PostgreSQL."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.intake import address_store, addresses, eido
from services.intake.settings import IntakeSettings
from shared import topics
from shared.db import create_pool
from tests.integration.intake_harness import CLEAR, SAMPLES, Intake, native_call, running_intake

pytestmark = pytest.mark.integration

POINTS = (
    "LON,LAT,NUMBER,STREET,UNIT,CITY,DISTRICT,REGION,POSTCODE\n"
    "-123.0220,44.0461,125,North Main Street,,Springfield,Lane,OR,97477\n"
    "-123.0221,44.0463,131,North Main Street,,Springfield,Lane,OR,97477\n"
    "-123.0890,44.0503,100,West 10th Avenue,,Eugene,Lane,OR,97401\n"
    # The civic address of the public NENA call transfer sample.
    "-75.5466,39.7459,42,West Cellular Street,,Wilmington,New Castle,DE,19801\n"
)


@pytest.fixture(scope="module")
async def intake(stack) -> AsyncIterator[Intake]:
    async with running_intake(stack, IntakeSettings()) as running:
        pool = await create_pool(running.settings.database_url.get_secret_value(), max_size=1)
        try:
            points = addresses.read_points("lane.csv", POINTS)
            await address_store.replace_points(pool, points, "lane.csv", "openaddresses-csv", "-")
        finally:
            await pool.close()
        yield running


def civic_pidf(**elements: str) -> str:
    """A PIDF-LO locating the caller by a civic address alone."""
    inner = "".join(f"<{k}>{v}</{k}>" for k, v in elements.items())
    return (
        '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10">'
        "<tuple id='t'><status><gp:geopriv><gp:location-info>"
        f'<civicAddress xmlns="urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr">{inner}</civicAddress>'
        "</gp:location-info></gp:geopriv></status></tuple></presence>"
    )


def document(**elements: str) -> dict[str, Any]:
    """A small EIDO located by a civic address, the safety screen all 'no'."""
    doc = eido.example()
    doc["$id"] = f"urn:emergency:uid:incidentid:{uuid.uuid4().hex}:psap.example.org"
    doc[eido.EXTENSION_KEY]["safetyScreen"] = dict(CLEAR)
    doc["locationComponent"][0]["locationByValue"] = civic_pidf(**elements)
    return doc


def codes(answer: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {c["code"]: c["params"] for c in answer["decision"]["codes"]}


async def test_an_eido_civic_address_is_geocoded_and_the_call_goes_to_a_team(intake: Intake):
    doc = document(HNO="125", PRD="N", RD="Main", STS="Street", A3="Springfield", A1="OR", PC="97477")
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/incidents", "valley-ecc", doc)
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["decision"]["route"] == "community"
    assert codes(answer)["geocoded"] == {"method": "exact", "score": "1.00"}
    assert any("125 NORTH MAIN STREET, SPRINGFIELD" in reason for reason in answer["decision"]["reasons"])
    [received] = await intake.events(topics.CALLS_RECEIVED, answer["call_id"], 1)
    location = received["data"]["location"]
    assert (location["lat"], location["lon"], location["coordinates_known"]) == (44.0461, -123.022, True)


async def test_a_misspelt_street_is_matched_with_its_score(intake: Intake):
    # The whole street written into RD, as some CADs do, and misspelt.
    doc = document(HNO="125", RD="N Mian St", A3="Springfield")
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/incidents", "valley-ecc", doc)
    assert r.status_code == 202, r.text
    found = codes(r.json())["geocoded"]
    assert found["method"] == "fuzzy_street" and 0.8 <= float(found["score"]) < 1
    assert r.json()["decision"]["route"] == "community"


async def test_a_geocode_below_the_threshold_goes_to_review_with_the_reason(intake: Intake):
    # 231 is 100 numbers from the nearest point on the street (131): too far to trust.
    doc = document(HNO="231", PRD="N", RD="Main", STS="St", A3="Springfield")
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/incidents", "valley-ecc", doc)
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["decision"]["route"] == "review"
    assert codes(answer)["geocode_below_threshold"] == {
        "method": "nearest_number",
        "score": "0.75",
        "threshold": "0.80",
        "route": "review",
    }
    [received] = await intake.events(topics.CALLS_RECEIVED, answer["call_id"], 1)
    assert received["data"]["location"]["coordinates_known"] is False


async def test_a_native_call_located_by_its_address(intake: Intake):
    call = native_call(f"CAD-{uuid.uuid4().hex[:8]}")
    call["location"] = {"address": "100 W 10th Ave, Eugene, OR 97401"}
    missing = native_call(f"CAD-{uuid.uuid4().hex[:8]}")
    missing["location"] = {"address": "7 Nowhere Lane, Eugene"}
    async with httpx.AsyncClient(timeout=15) as http:
        found = await intake.post(http, "/v1/calls", "valley-ecc", call)
        not_found = await intake.post(http, "/v1/calls", "valley-ecc", missing)
        half = await intake.post(http, "/v1/calls", "valley-ecc", call | {"location": {"lat": 44.05}})
    assert found.status_code == 202, found.text
    assert found.json()["decision"]["route"] == "community"
    assert codes(found.json())["geocoded"] == {"method": "exact", "score": "1.00"}
    assert not_found.status_code == 202, not_found.text
    assert not_found.json()["decision"]["route"] == "review"
    assert codes(not_found.json())["geocode_not_found"] == {"reason": "street_not_found", "route": "review"}
    assert half.status_code == 422


async def test_the_public_call_transfer_sample_is_geocoded(intake: Intake):
    sample = json.loads((SAMPLES / "nena_sample_call_transfer_eido.json").read_text())
    sample = copy.deepcopy(sample)
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/incidents", "valley-ecc", sample)
    assert r.status_code == 202, r.text
    answer = r.json()
    # 42 W Cellular Street, Wilmington: found; the sample has no incident type, so a person reviews.
    assert codes(answer)["geocoded"] == {"method": "exact", "score": "1.00"}
    assert answer["decision"]["route"] == "review" and "no_incident_type" in codes(answer)
