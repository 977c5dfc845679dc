"""EIDO's own fields, read: the caller's language from NIEM person fields, PSAPs named by domain
name, the sender checked against the token's PSAP, and every incident component; through intake's
HTTP API on the real broker and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.intake import eido
from services.intake.settings import IntakeSettings
from shared import topics
from tests.integration.intake_harness import METRO, Intake, eido_incident, running_intake
from tests.support import read_topic

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def intake(stack) -> AsyncIterator[Intake]:
    async with running_intake(stack, IntakeSettings()) as running:
        yield running


def document(sender: str | None = None, *, language: Any = None, **extension: Any) -> dict[str, Any]:
    """An EIDO as NENA-STA-021 writes it: the sending agency in updatedByAgencyReference and in
    agencyComponent, the caller in personComponent with their NIEM person fields."""
    doc = eido_incident()
    doc[eido.EXTENSION_KEY] = {"safetyScreen": doc[eido.EXTENSION_KEY]["safetyScreen"], **extension}
    doc[eido.EXTENSION_KEY]["consentToNonPoliceResponse"] = True
    if sender is not None:
        doc["updatedByAgencyReference"] = {"$ref": sender}
        doc["agencyComponent"] = [
            {
                "$id": sender,
                "lastUpdateTimeStamp": doc["lastUpdateTimeStamp"],
                "updatedByAgencyReference": {"$ref": sender},
                "agencyRoleDescriptionRegistryText": ["CallReceiving"],
                "agencyType": ["psap"],
            }
        ]
    if language is not None:
        doc["personComponent"] = [
            {
                "$id": "person-1",
                "lastUpdateTimeStamp": doc["lastUpdateTimeStamp"],
                "personIncidentRoleRegistryText": ["Caller"],
                "ncPersonComponent": {"PersonPrimaryLanguage": language},
            }
        ]
    return doc


@pytest.mark.parametrize(
    ("spoken", "tag"),
    [
        ({"LanguageCode": "spa"}, "es"),
        ({"nc:LanguageName": "Vietnamese"}, "vi"),
        ("zh", "zh"),
        (["xx", "eng"], "en"),
    ],
)
async def test_the_callers_language_comes_from_the_niem_person_fields(intake: Intake, spoken: Any, tag: str):
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/incidents", "valley-ecc", document(language=spoken))
        assert r.status_code == 202, r.text
    [event] = await intake.events(topics.CALLS_RECEIVED, r.json()["call_id"], 1)
    assert event["data"]["language"] == tag


async def test_the_extensions_language_wins_and_an_unknown_one_is_reported(intake: Intake):
    async with httpx.AsyncClient(timeout=15) as http:
        both = document(language={"LanguageCode": "spa"}, preferredLanguage="vi")
        r = await intake.post(http, "/v1/incidents", "valley-ecc", both)
        [event] = await intake.events(topics.CALLS_RECEIVED, r.json()["call_id"], 1)
        assert event["data"]["language"] == "vi"
        r = await intake.post(
            http, "/v1/incidents", "valley-ecc", document(language={"LanguageName": "Martian"})
        )
        assert r.status_code == 202
        assert any("'Martian' was not understood" in w for w in r.json()["warnings"])
        [event] = await intake.events(topics.CALLS_RECEIVED, r.json()["call_id"], 1)
        assert event["data"]["language"] is None


async def test_a_psap_named_by_domain_name_sends_as_itself_and_its_agency(intake: Intake):
    async with httpx.AsyncClient(timeout=15) as http:
        for sender in (METRO, "metro.example.gov", "METRO.Example.gov"):
            r = await intake.post(http, "/v1/incidents", METRO, document(sender))
            assert r.status_code == 202, r.text
    [event] = await intake.events(topics.CALLS_RECEIVED, r.json()["call_id"], 1)
    assert event["data"]["psap_id"] == METRO


async def _calls_of(intake: Intake, psap_id: str) -> int:
    conn = await intake.db()
    try:
        return int(await conn.fetchval("SELECT count(*) FROM intake.calls WHERE psap_id = $1", psap_id))
    finally:
        await conn.close()


async def test_an_eido_naming_another_sender_is_refused_and_recorded(intake: Intake):
    before = await _calls_of(intake, METRO)
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/incidents", METRO, document("psap.elsewhere.example.gov"))
        assert r.status_code == 403 and r.json()["code"] == "sender_mismatch", r.text
        assert "psap.elsewhere.example.gov" in r.json()["detail"]
        # The PSAP in agencyComponent counts too, even when the reference names the right one.
        doc = document(METRO)
        doc["agencyComponent"][0]["$id"] = "psap.elsewhere.example.gov"
        r = await intake.post(http, "/v1/incidents", METRO, doc)
        assert r.status_code == 403 and r.json()["code"] == "sender_mismatch"
        # Another PSAP of the region is not this one either.
        r = await intake.post(http, "/v1/incidents", "valley-ecc", document(METRO))
        assert r.status_code == 403 and r.json()["code"] == "sender_mismatch"
    records = await read_topic(
        intake.settings, intake.settings.topic(topics.ACCESS_RECORDED), 2, 20, key=METRO
    )
    refused = [r for r in records if b"sender_mismatch" in r.value]
    assert len(refused) >= 2
    # Nothing of a refused document is stored.
    assert await _calls_of(intake, METRO) == before


async def test_every_incident_component_is_read_and_the_most_recent_decides(intake: Intake):
    doc = document()
    doc["incidentComponent"] = [
        {
            "$id": "inc-1",
            "lastUpdateTimeStamp": "2026-11-26T09:58:00Z",
            "incidentTypeCommonRegistryText": ["ASSAULT"],
        },
        {
            "$id": "inc-2",
            "lastUpdateTimeStamp": "2026-11-26T09:59:30Z",
            "incidentTypeCommonRegistryText": ["MNTL"],
        },
        {
            "$id": "inc-3",
            "lastUpdateTimeStamp": "2026-11-26T09:59:00Z",
            "incidentTypeCommonRegistryText": ["MNTL"],
        },
        {"$id": "inc-4", "incidentTypeCommonRegistryText": ["OD"]},
    ]
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/incidents", "valley-ecc", doc)
        assert r.status_code == 202, r.text
        assert r.json()["decision"]["route"] == "community"
        assert any("disagree with the most recent one" in w for w in r.json()["warnings"])
        url = f"{intake.url}/v1/calls/{r.json()['call_id']}"
        view = (await http.get(url, headers=intake.headers("valley-ecc", b""))).json()
    assert view["incident_type"] == "MNTL"
    assert view["other_incidents"] == [
        {"id": "inc-1", "incident_type": "ASSAULT", "lastUpdateTimeStamp": "2026-11-26T09:58:00+00:00"},
        {"id": "inc-4", "incident_type": "OD", "lastUpdateTimeStamp": None},
    ]


async def test_an_incident_component_stamped_in_the_future_is_refused(intake: Intake):
    doc = document()
    doc["incidentComponent"] = [
        {"incidentTypeCommonRegistryText": ["MNTL"]},
        {"incidentTypeCommonRegistryText": ["MNTL"], "lastUpdateTimeStamp": "2999-01-01T00:00:00Z"},
    ]
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/incidents", "valley-ecc", doc)
    assert r.status_code == 422 and r.json()["code"] == "timestamp_in_future"
    assert "incidentComponent[1]" in r.json()["detail"]


@pytest.mark.parametrize(
    "bad",
    [
        {"updatedByAgencyReference": "psap.metro.example.gov"},
        {"updatedByAgencyReference": {"$ref": 5}},
        {"agencyComponent": {"$id": "x"}},
        {"personComponent": [{"ncPersonComponent": "spanish"}]},
        {"incidentComponent": [{"incidentTypeCommonRegistryText": "MNTL"}] * 51},
    ],
)
async def test_malformed_standard_fields_are_refused_with_a_code(intake: Intake, bad: dict[str, Any]):
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/incidents", METRO, document() | bad)
    assert r.status_code == 422 and r.json()["code"], r.text
