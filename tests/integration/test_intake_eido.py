"""EIDO in, versions, triage with shadow rules, and overrides: intake on the real broker and PostgreSQL."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.intake import eido
from services.intake.settings import IntakeSettings
from shared import topics
from tests.integration.intake_harness import CLEAR, SAMPLES, Intake, native_call, running_intake

pytestmark = pytest.mark.integration

POINT = (
    '<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:gp="urn:ietf:params:xml:ns:pidf:geopriv10"'
    ' xmlns:gml="http://www.opengis.net/gml" xmlns:gs="http://www.opengis.net/pidflo/1.0">'
    "<tuple id='t'><status><gp:geopriv><gp:location-info>{shape}</gp:location-info></gp:geopriv>"
    "</status></tuple></presence>"
)
SHAPES = {
    "point": "<gml:Point><gml:pos>44.0503 -123.0889</gml:pos></gml:Point>",
    "circle": "<gs:Circle><gml:pos>44.0503 -123.0889</gml:pos><gs:radius uom='m'>30</gs:radius></gs:Circle>",
    "ellipse": (
        "<gs:Ellipse><gml:pos>44.0503 -123.0889</gml:pos><gs:semiMajorAxis>40</gs:semiMajorAxis>"
        "<gs:semiMinorAxis>10</gs:semiMinorAxis><gs:orientation>20</gs:orientation></gs:Ellipse>"
    ),
}
BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    '<presence xmlns="urn:ietf:params:xml:ns:pidf">&lol3;</presence>'
)
XXE = (
    '<?xml version="1.0"?><!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    '<presence xmlns="urn:ietf:params:xml:ns:pidf">&xxe;</presence>'
)


@pytest.fixture(scope="module")
async def intake(stack) -> AsyncIterator[Intake]:
    async with running_intake(stack, IntakeSettings()) as running:
        yield running


def document(incident_id: str, stamp: str = "2026-11-26T10:00:00Z", **screen: str) -> dict[str, Any]:
    """A small EIDO with our triage extension, the screen all 'no' unless told otherwise."""
    doc = eido.example()
    doc["$id"] = incident_id
    doc["lastUpdateTimeStamp"] = stamp
    doc[eido.EXTENSION_KEY]["safetyScreen"] = {**CLEAR, **screen}
    return doc


async def test_every_public_sample_is_accepted(intake: Intake):
    expected = {
        # No incident type: a person reviews; a civic address and a reference, but no coordinates.
        "nena_sample_call_transfer_eido.json": ("created", "review"),
        # The same incident and version as the call transfer sample, spelled lastUpdateTimestamp.
        "phrsite_eido_with_jcard.json": ("duplicate", "review"),
        # CU1 (civil unrest) is not eligible; its PIDF-LO is not well-formed and is reported, not fatal.
        "nena_sample_eido_2020_draft.json": ("created", "police"),
    }
    assert sorted(p.name for p in SAMPLES.glob("*.json")) == sorted(expected)
    async with httpx.AsyncClient(timeout=15) as http:
        for name, (outcome, route) in expected.items():
            sample = json.loads((SAMPLES / name).read_text())
            r = await intake.post(http, "/v1/incidents", "valley-ecc", sample)
            assert r.status_code == 202, f"{name}: {r.status_code} {r.text[:300]}"
            answer = r.json()
            assert (answer["outcome"], answer["decision"]["route"]) == (outcome, route), name
        transfer = json.loads((SAMPLES / "nena_sample_call_transfer_eido.json").read_text())
        r = await intake.post(http, "/v1/incidents", "valley-ecc", transfer)
        call_id = r.json()["call_id"]
        assert "no incident type: a person must review" in r.json()["decision"]["reasons"]
    [event] = await intake.events(topics.CALLS_RECEIVED, call_id, 1)
    location = event["data"]["location"]
    assert location["coordinates_known"] is False and "Wilmington" in location["address"]
    assert location["reference_url"].startswith("https://lrf.osp.com")
    assert event["data"]["callback_number"] == "8195551212"


VARIANTS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "incidentComponent as an object": lambda d: d,
    "incidentComponent as a one-element array": lambda d: d | {"incidentComponent": [d["incidentComponent"]]},
    "lastUpdateTimestamp spelling": lambda d: _rename(d, "lastUpdateTimeStamp", "lastUpdateTimestamp"),
    "LastUpdateTimeStamp spelling": lambda d: _rename(d, "lastUpdateTimeStamp", "LastUpdateTimeStamp"),
    "EIDOVersion spelling": lambda d: _rename(d, "eidoVersion", "EIDOVersion"),
    "legacy incidentTrackingIdentifier": lambda d: (
        d | {"incidentTrackingIdentifier": d["$id"], "$id": "header:0"}
    ),
    "local code in incidentTypeInternalCode": lambda d: (
        d | {"incidentComponent": {"incidentTypeInternalCode": "10-96"}}
    ),
    "circle": lambda d: _shape(d, "circle"),
    "ellipse": lambda d: _shape(d, "ellipse"),
    "unknown members kept, not refused": lambda d: d | {"vendorThing": {"x": [1, 2]}, "agencyComponent": []},
}


def _rename(d: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    d = dict(d)
    d[new] = d.pop(old)
    return d


def _shape(d: dict[str, Any], shape: str) -> dict[str, Any]:
    d = copy.deepcopy(d)
    d["locationComponent"][0]["locationByValue"] = POINT.format(shape=SHAPES[shape])
    return d


@pytest.mark.parametrize("variant", list(VARIANTS))
async def test_variants_and_aliases_normalise_to_the_same_call(intake: Intake, variant: str):
    doc = VARIANTS[variant](document(f"urn:emergency:uid:incidentid:{variant.replace(' ', '-')}:test"))
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/incidents", "valley-ecc", doc)
        assert r.status_code == 202, f"{variant}: {r.text[:300]}"
        answer = r.json()
        assert answer["outcome"] == "created" and answer["decision"]["route"] == "community", variant
        view = await http.get(
            f"{intake.url}/v1/calls/{answer['call_id']}", headers=intake.headers("valley-ecc", b"")
        )
    assert view.json()["incident_type"] == "MNTL" and view.json()["source_format"] == "eido", variant
    assert view.json()["version"].startswith("2026-11-26T10:00:00"), variant


async def test_duplicate_newer_and_older_versions(intake: Intake):
    incident = "urn:emergency:uid:incidentid:versions:test"
    async with httpx.AsyncClient(timeout=15) as http:
        first = await intake.post(
            http, "/v1/incidents", "valley-ecc", document(incident, "2026-11-26T10:00:00Z")
        )
        assert first.status_code == 202 and first.json()["outcome"] == "created"
        call_id = first.json()["call_id"]
        assert first.json()["decision"]["route"] == "community"
        # The same version (written with another offset) is a no-op answering the same call.
        same = await intake.post(
            http, "/v1/incidents", "valley-ecc", document(incident, "2026-11-26T05:00:00-05:00")
        )
        assert same.status_code == 202 and same.json()["outcome"] == "duplicate"
        assert same.json()["call_id"] == call_id and same.json()["decision"] == first.json()["decision"]
        # A newer version raising a safety flag re-triages the call and publishes calls.updated.v1.
        newer = await intake.post(
            http, "/v1/incidents", "valley-ecc", document(incident, "2026-11-26T10:05:00Z", weapon="yes")
        )
        assert newer.status_code == 202 and newer.json()["outcome"] == "updated"
        assert newer.json()["call_id"] == call_id and newer.json()["decision"]["route"] == "police"
        assert "safety screen: weapon = yes -> police" in newer.json()["decision"]["reasons"]
        # An older one is acknowledged, ignored, and says so.
        older = await intake.post(
            http, "/v1/incidents", "valley-ecc", document(incident, "2026-11-26T09:00:00Z")
        )
        assert older.status_code == 202 and older.json()["outcome"] == "ignored_older"
        assert "older" in older.json()["detail"] and older.json()["decision"]["route"] == "police"
        view = await http.get(f"{intake.url}/v1/calls/{call_id}", headers=intake.headers("valley-ecc", b""))
    assert view.json()["status"] == "routed_police"
    assert view.json()["non_diversion_reason"] == "retriaged_police"
    [updated] = await intake.events(topics.CALLS_UPDATED, call_id, 1)
    conn = await intake.db()
    try:
        published = await conn.fetch("SELECT topic FROM intake.outbox WHERE key = $1 ORDER BY id", call_id)
    finally:
        await conn.close()
    # One call, one calls.received.v1; the duplicate and the older version published nothing.
    assert [r["topic"] for r in published] == [topics.CALLS_RECEIVED, topics.CALLS_UPDATED]
    data = updated["data"]
    assert data["reason"] == "eido_update" and data["previous_route"] == "community"
    assert data["decision"]["route"] == "police" and data["safety"]["weapon"] == "yes"


@pytest.mark.parametrize(
    ("question", "route"),
    [
        ("weapon", "police"),
        ("violence", "police"),
        ("crime_in_progress", "police"),
        ("medical", "ems"),
        ("self_harm_imminent", "ems"),
    ],
)
async def test_each_safety_exclusion_routes_away_from_community_with_the_reason(
    intake: Intake, question: str, route: str
):
    body = native_call(f"SAFETY-{question}", "10-96", **{question: "yes"})
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/calls", "valley-ecc", body)
    assert r.status_code == 202, r.text
    decision = r.json()["decision"]
    assert decision["route"] == route and decision["rules_version"] == "2026-11-01"
    assert f"safety screen: {question} = yes -> {route}" in decision["reasons"]


async def test_an_eido_caution_feeds_triage(intake: Intake):
    doc = document("urn:emergency:uid:incidentid:caution:test")
    doc["cautionComponent"] = [
        {"cautionTypeInternalText": "Subject armed with knife", "cautionTypeCommonRegistryText": "Weapons"}
    ]
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/incidents", "valley-ecc", doc)
    assert r.status_code == 202 and r.json()["decision"]["route"] == "police"
    assert any(
        reason.startswith("caution ") and "weapon = yes" in reason
        for reason in r.json()["decision"]["reasons"]
    )


async def test_shadow_decisions_are_recorded_in_the_answer_the_database_and_the_event(intake: Intake):
    # The active rules send an unanswered screen to review; the shadow draft reads unknown as eligible.
    body = {k: v for k, v in native_call("SHADOW-1").items() if k != "safety"}
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/calls", "valley-ecc", body)
    assert r.status_code == 202
    answer = r.json()
    assert answer["decision"]["route"] == "review" and answer["decision"]["rules_version"] == "2026-11-01"
    assert answer["shadow_decision"]["route"] == "community"
    assert answer["shadow_decision"]["rules_version"] == "2026-12-draft"
    conn = await intake.db()
    try:
        stored = await conn.fetchval(
            "SELECT shadow_decision FROM intake.calls WHERE id = $1::uuid", answer["call_id"]
        )
    finally:
        await conn.close()
    assert stored["route"] == "community"
    [event] = await intake.events(topics.CALLS_RECEIVED, answer["call_id"], 1)
    assert event["data"]["shadow_decision"]["rules_version"] == "2026-12-draft"


async def test_overrides_require_a_reason_and_are_recorded(intake: Intake):
    body = native_call("OVERRIDE-1")
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/calls", "valley-ecc", body)
        call_id = r.json()["call_id"]
        assert r.json()["decision"]["route"] == "community"
        url = f"/v1/calls/{call_id}/override"
        for tried, payload in [
            ("no reason", {"route": "police"}),
            ("a reason not on the list", {"route": "police", "reason_code": "bored"}),
            ("other without text", {"route": "police", "reason_code": "other"}),
            ("other with blank text", {"route": "police", "reason_code": "other", "reason_text": "  "}),
            ("no route", {"reason_code": "caller_declined"}),
        ]:
            bad = await intake.post(http, url, "valley-ecc", payload)
            assert bad.status_code == 422 and bad.json()["code"] == "invalid_request", tried
        ok = await intake.post(http, url, "valley-ecc", {"route": "police", "reason_code": "caller_declined"})
        assert ok.status_code == 200, ok.text
        assert ok.json()["route"] == "police" and ok.json()["recommended"]["route"] == "community"
        other = await intake.post(
            http,
            f"/v1/calls/{call_id}/override",
            "springfield-pd-psap",
            {"route": "ems", "reason_code": "other", "reason_text": "x"},
        )
        assert other.status_code == 404
        view = (
            await http.get(f"{intake.url}/v1/calls/{call_id}", headers=intake.headers("valley-ecc", b""))
        ).json()
    assert view["status"] == "routed_police" and view["override"]["reason_code"] == "caller_declined"
    assert view["non_diversion_reason"] == "caller_declined"
    [updated] = await intake.events(topics.CALLS_UPDATED, call_id, 1)
    assert (
        updated["data"]["reason"] == "override"
        and updated["data"]["override_reason_code"] == "caller_declined"
    )
    assert updated["data"]["decision"]["route"] == "police"
    # Tried: the override's decision replaced triage's reasons, so oversight lost the recommendation
    # and the call's class; both stay beside the override's own code now.
    decision = updated["data"]["decision"]
    assert [c["code"] for c in decision["codes"]][:2] == ["override", "type_eligible"]
    assert decision["behavioural_health"] is True and updated["data"]["previous_route"] == "community"


@pytest.mark.parametrize(("tried", "xml"), [("billion laughs", BILLION_LAUGHS), ("external entity", XXE)])
async def test_xml_entity_attacks_are_refused_and_store_nothing(intake: Intake, tried: str, xml: str):
    doc = document(f"urn:emergency:uid:incidentid:{tried.replace(' ', '-')}:attack")
    doc["locationComponent"][0]["locationByValue"] = xml
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/incidents", "valley-ecc", doc)
    assert r.status_code == 422 and r.json()["code"] == "unsafe_xml", f"{tried}: {r.text[:300]}"
    conn = await intake.db()
    try:
        assert (
            await conn.fetchval("SELECT count(*) FROM intake.calls WHERE external_id = $1", doc["$id"]) == 0
        )
    finally:
        await conn.close()


async def test_bad_eido_documents_get_a_clear_4xx(intake: Intake):
    cases = [
        ("not an object", [1, 2]),
        ("no id at all", {"lastUpdateTimeStamp": "2026-11-26T10:00:00Z"}),
        ("timestamp not a date", document("x:1", stamp="yesterday")),
        (
            "more incident components than any incident has",
            document("x:2") | {"incidentComponent": [{}] * 51},
        ),
        ("extension with a typo", document("x:3") | {eido.EXTENSION_KEY: {"safetyscreen": {}}}),
        ("screen answer not yes/no/unknown", document("x:4", weapon="maybe")),
    ]
    async with httpx.AsyncClient(timeout=15) as http:
        for tried, doc in cases:
            r = await intake.post(http, "/v1/incidents", "valley-ecc", doc)
            assert r.status_code == 422, f"{tried}: {r.status_code} {r.text[:200]}"
            assert r.json()["code"] in ("invalid_request", "invalid_eido") and r.json()["detail"], tried


async def test_an_override_stands_across_updates_until_a_safety_flag_is_raised(intake: Intake):
    incident = "urn:emergency:uid:incidentid:override-stands:test"
    unknown = document(incident, "2026-11-26T10:00:00Z", weapon="unknown")
    async with httpx.AsyncClient(timeout=15) as http:
        first = await intake.post(http, "/v1/incidents", "valley-ecc", unknown)
        call_id = first.json()["call_id"]
        assert first.json()["decision"]["route"] == "review"
        # A call sent to review owes a person's decision within the jurisdiction's deadline.
        deadline = datetime.fromisoformat(first.json()["decision"]["review_deadline"])
        assert abs((deadline - datetime.now(UTC)).total_seconds() - 30 * 60) < 60
        ok = await intake.post(
            http,
            f"/v1/calls/{call_id}/override",
            "valley-ecc",
            {"route": "community", "reason_code": "dispatcher_judgement"},
        )
        assert ok.status_code == 200
        same_screen = document(incident, "2026-11-26T10:01:00Z", weapon="unknown")
        assert (await intake.post(http, "/v1/incidents", "valley-ecc", same_screen)).json()[
            "outcome"
        ] == "updated"
        flagged = document(incident, "2026-11-26T10:02:00Z", weapon="yes")
        assert (await intake.post(http, "/v1/incidents", "valley-ecc", flagged)).json()[
            "outcome"
        ] == "updated"
        view = (
            await http.get(f"{intake.url}/v1/calls/{call_id}", headers=intake.headers("valley-ecc", b""))
        ).json()
    # override (community), the update that keeps it, the update whose weapon flag sends it to police
    updates = await intake.events(topics.CALLS_UPDATED, call_id, 3)
    assert [u["data"]["decision"]["route"] for u in updates] == ["community", "community", "police"]
    assert "override to community stands" in updates[1]["data"]["decision"]["reasons"][0]
    assert view["status"] == "routed_police" and view["override"] is None
    assert view["non_diversion_reason"] == "retriaged_police"


async def test_cancelling_a_community_call_before_a_team_took_it_records_why(intake: Intake):
    body = native_call("CANCEL-1")
    async with httpx.AsyncClient(timeout=15) as http:
        call_id = (await intake.post(http, "/v1/calls", "valley-ecc", body)).json()["call_id"]
        r = await intake.post(http, f"/v1/calls/{call_id}/cancel", "valley-ecc", {"reason": "caller hung up"})
        assert r.status_code == 202 and r.json()["status"] == "cancelled"
        late = await intake.post(
            http,
            f"/v1/calls/{call_id}/override",
            "valley-ecc",
            {"route": "police", "reason_code": "safety_concern"},
        )
        assert late.status_code == 409 and late.json()["code"] == "cancelled"
        view = (
            await http.get(f"{intake.url}/v1/calls/{call_id}", headers=intake.headers("valley-ecc", b""))
        ).json()
    assert view["status"] == "cancelled" and view["non_diversion_reason"] == "cancelled_by_psap"
    [cancelled] = await intake.events(topics.CALLS_CANCELLED, call_id, 1)
    assert cancelled["data"]["reason"] == "caller hung up"


def _stamp(offset: timedelta) -> str:
    return (datetime.now(UTC) + offset).isoformat().replace("+00:00", "Z")


async def _stored(intake: Intake, external_id: str) -> tuple[int, int]:
    """How many calls and outbox rows intake holds for one PSAP call id."""
    conn = await intake.db()
    try:
        calls = await conn.fetchval("SELECT count(*) FROM intake.calls WHERE external_id = $1", external_id)
        ids = [
            str(r["id"])
            for r in await conn.fetch("SELECT id FROM intake.calls WHERE external_id = $1", external_id)
        ]
        events = await conn.fetchval("SELECT count(*) FROM intake.outbox WHERE key = ANY($1::text[])", ids)
    finally:
        await conn.close()
    return int(calls), int(events)


@pytest.mark.parametrize(
    ("tried", "field"),
    [
        ("the document's version", "lastUpdateTimeStamp"),
        ("the version, spelled LastUpdateTimeStamp", "LastUpdateTimeStamp"),
        ("a caution component's time", "cautionComponent[0].lastUpdateTimeStamp"),
        ("the incident component's time", "incidentComponent.lastUpdateTimeStamp"),
    ],
)
async def test_a_timestamp_an_hour_ahead_is_refused_and_stores_nothing(
    intake: Intake, tried: str, field: str
):
    """Item 7: a PSAP clock an hour fast. Before, the document was accepted (202 created) with a
    version an hour ahead, and every real update after it was "older"."""
    incident = f"urn:emergency:uid:incidentid:{uuid.uuid4().hex[:8]}:future"
    doc = document(incident, _stamp(timedelta(0)))
    ahead = _stamp(timedelta(hours=1))
    if field in ("lastUpdateTimeStamp", "LastUpdateTimeStamp"):
        doc.pop("lastUpdateTimeStamp")
        doc[field] = ahead
    elif field.startswith("caution"):
        doc["cautionComponent"] = [
            {"cautionTypeInternalText": "dog on premises", "lastUpdateTimeStamp": ahead}
        ]
    else:
        doc["incidentComponent"]["lastUpdateTimeStamp"] = ahead
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/incidents", "valley-ecc", doc)
    assert r.status_code == 422 and r.json()["code"] == "timestamp_in_future", f"{tried}: {r.text[:300]}"
    shown = field.replace("LastUpdateTimeStamp", "lastUpdateTimeStamp")
    assert shown in r.json()["detail"] and "intake's clock" in r.json()["detail"], tried
    assert await _stored(intake, incident) == (0, 0), tried


async def test_after_a_refused_future_version_the_next_real_update_still_applies(intake: Intake):
    """Before, the version an hour ahead was stored and the later update adding a weapon caution
    was answered ignored_older while the team's offer stood."""
    incident = f"urn:emergency:uid:incidentid:{uuid.uuid4().hex[:8]}:fast-clock"
    async with httpx.AsyncClient(timeout=15) as http:
        first = await intake.post(
            http, "/v1/incidents", "valley-ecc", document(incident, _stamp(timedelta(minutes=-2)))
        )
        assert first.json()["outcome"] == "created" and first.json()["decision"]["route"] == "community"
        fast = await intake.post(
            http, "/v1/incidents", "valley-ecc", document(incident, _stamp(timedelta(hours=1)))
        )
        assert fast.status_code == 422 and fast.json()["code"] == "timestamp_in_future"
        # Within the tolerance (a clock a little fast) is still a version.
        armed = document(incident, _stamp(timedelta(minutes=2)))
        armed["cautionComponent"] = [{"cautionTypeInternalText": "Subject armed with knife"}]
        update = await intake.post(http, "/v1/incidents", "valley-ecc", armed)
    assert update.json()["outcome"] == "updated" and update.json()["decision"]["route"] == "police"
    [published] = await intake.events(topics.CALLS_UPDATED, first.json()["call_id"], 1)
    assert published["data"]["safety"]["weapon"] == "yes"


async def test_an_older_version_adding_a_weapon_caution_raises_the_flag_and_publishes_an_update(
    intake: Intake,
):
    """Item 7: before, an older version was acknowledged and ignored whatever it said
    (outcome ignored_older, nothing published), so a weapon caution in it never reached the team."""
    incident = f"urn:emergency:uid:incidentid:{uuid.uuid4().hex[:8]}:older-caution"
    older = document(incident, "2026-11-26T10:00:00Z")
    older["cautionComponent"] = [{"cautionTypeInternalText": "Subject armed with knife"}]
    async with httpx.AsyncClient(timeout=15) as http:
        first = await intake.post(
            http, "/v1/incidents", "valley-ecc", document(incident, "2026-11-26T10:05:00Z")
        )
        call_id = first.json()["call_id"]
        r = await intake.post(http, "/v1/incidents", "valley-ecc", older)
        again = await intake.post(http, "/v1/incidents", "valley-ecc", older)
        view = (
            await http.get(f"{intake.url}/v1/calls/{call_id}", headers=intake.headers("valley-ecc", b""))
        ).json()
    answer = r.json()
    assert r.status_code == 202 and answer["outcome"] == "safety_raised_from_older_version", r.text
    assert answer["call_id"] == call_id and answer["decision"]["route"] == "police"
    assert "weapon" in answer["detail"] and "older" in answer["detail"]
    assert answer["version"].startswith("2026-11-26T10:05:00")  # the version in force stays
    # Flags only go up: the same older version again raises nothing more.
    assert again.json()["outcome"] == "ignored_older"
    assert view["status"] == "routed_police" and view["non_diversion_reason"] == "retriaged_police"
    [updated] = await intake.events(topics.CALLS_UPDATED, call_id, 1)
    data = updated["data"]
    assert data["safety"]["weapon"] == "yes" and data["decision"]["route"] == "police"
    assert data["previous_route"] == "community" and data["reason"] == "eido_update"
    conn = await intake.db()
    try:
        published = await conn.fetch("SELECT topic FROM intake.outbox WHERE key = $1 ORDER BY id", call_id)
    finally:
        await conn.close()
    assert [p["topic"] for p in published] == [topics.CALLS_RECEIVED, topics.CALLS_UPDATED]


@pytest.mark.parametrize(
    ("question", "route"),
    [
        ("weapon", "police"),
        ("violence", "police"),
        ("crimeInProgress", "police"),
        ("medical", "ems"),
        ("selfHarmImminent", "ems"),
    ],
)
async def test_an_older_version_answering_a_safety_question_yes_raises_it(
    intake: Intake, question: str, route: str
):
    """Before: ignored_older, the call stayed with the community team."""
    incident = f"urn:emergency:uid:incidentid:{uuid.uuid4().hex[:8]}:older-{question}"
    async with httpx.AsyncClient(timeout=15) as http:
        first = await intake.post(
            http, "/v1/incidents", "valley-ecc", document(incident, "2026-11-26T10:05:00Z")
        )
        older = document(incident, "2026-11-26T10:00:00Z", **{question: "yes"})
        r = await intake.post(http, "/v1/incidents", "valley-ecc", older)
    assert r.json()["outcome"] == "safety_raised_from_older_version", r.text
    assert r.json()["decision"]["route"] == route
    [updated] = await intake.events(topics.CALLS_UPDATED, first.json()["call_id"], 1)
    assert updated["data"]["decision"]["route"] == route


async def test_a_native_resend_raising_a_flag_raises_it_and_a_plain_resend_is_a_duplicate(intake: Intake):
    """The native format carries no version and no client timestamp (its only one, the signature's,
    is held to 300 s): a resend of a call id was a duplicate whatever it said, so a weapon answered
    yes on the resend was ignored (before: outcome duplicate, nothing published)."""
    external_id = f"NATIVE-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=15) as http:
        first = await intake.post(http, "/v1/calls", "valley-ecc", native_call(external_id))
        call_id = first.json()["call_id"]
        same = await intake.post(http, "/v1/calls", "valley-ecc", native_call(external_id))
        flagged = await intake.post(http, "/v1/calls", "valley-ecc", native_call(external_id, weapon="yes"))
        stamped = await intake.post(
            http,
            "/v1/calls",
            "valley-ecc",
            native_call(external_id) | {"version": _stamp(timedelta(hours=1))},
        )
    assert same.json()["outcome"] == "duplicate" and same.json()["call_id"] == call_id
    assert flagged.json()["outcome"] == "safety_raised_from_duplicate", flagged.text
    assert flagged.json()["decision"]["route"] == "police" and "weapon" in flagged.json()["detail"]
    assert stamped.status_code == 422 and stamped.json()["code"] == "invalid_request"
    [updated] = await intake.events(topics.CALLS_UPDATED, call_id, 1)
    assert updated["data"]["safety"]["weapon"] == "yes" and updated["data"]["decision"]["route"] == "police"


async def test_an_update_tells_the_team_its_new_callback_number_and_cautions_cut_to_the_contract(
    intake: Intake,
):
    """A newer version adds a callback number and cautions that raise no flag: the call stays with
    community and calls.updated.v1 carries the number and the caution words for the team. A hostile
    CAD's 50 caution components of two words each (EIDO's own limit is 50 components), one word of
    1,900 characters (EIDO allows 2,000), still answer 202: the event carries the first 50 words,
    each cut to 200. (Before, an update carried neither, so matching could not tell the team.)"""
    incident = "urn:emergency:uid:incidentid:update-details:test"
    async with httpx.AsyncClient(timeout=15) as http:
        first = await intake.post(http, "/v1/incidents", "valley-ecc", document(incident))
        assert first.status_code == 202 and first.json()["decision"]["route"] == "community"
        call_id = first.json()["call_id"]
        newer = document(incident, "2026-11-26T10:05:00Z")
        newer["callbackComponent"] = [{"callBackInformationUri": "tel:+15415550199"}]
        newer["cautionComponent"] = [{"cautionTypeInternalText": "dog on premises"}] + [
            {
                "cautionTypeInternalText": f"gate code {n} " + "x" * (1900 if n == 1 else 0),
                "cautionTypeCommonSubRegistryText": f"note {n}",
            }
            for n in range(49)
        ]
        r = await intake.post(http, "/v1/incidents", "valley-ecc", newer)
        assert r.status_code == 202, r.text
        assert r.json()["outcome"] == "updated" and r.json()["decision"]["route"] == "community"
    [updated] = await intake.events(topics.CALLS_UPDATED, call_id, 1)
    data = updated["data"]
    assert data["callback_number"] == "+15415550199"
    assert data["cautions"][0] == "DOG ON PREMISES" and len(data["cautions"]) == 50
    assert max(len(c) for c in data["cautions"]) == 200
