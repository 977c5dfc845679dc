"""A signed NENA EIDO from a 911 center through the whole system, and a forged one in the audit trail."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.intake import eido
from shared.topics import agency_topic
from tests.e2e.system import System, running_system
from tests.support import eventually, read_topic

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def system(stack, tmp_path_factory) -> AsyncIterator[System]:
    # A system of its own: the offer made here reserves a team the shared system's tests expect free.
    async with running_system(stack, Path(tmp_path_factory.mktemp("e2e-eido"))) as running:
        yield running


async def test_a_signed_eido_is_triaged_offered_to_a_team_and_audited(system: System):
    doc = eido.example() | {"$id": f"urn:emergency:uid:incidentid:{uuid.uuid4().hex[:10]}:valley-ecc"}
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.post(
            f"{system.url('intake')}/v1/incidents", json=doc, auth=system.psap_auth("valley-ecc")
        )
        assert r.status_code == 202, r.text
        answer = r.json()
        assert answer["outcome"] == "created" and answer["decision"]["route"] == "community"
        assert answer["shadow_decision"]["rules_version"] == "2026-12-draft"
        call_id = answer["call_id"]
        topic = system.settings.topic(agency_topic("riverbend-crisis"))
        offers = await read_topic(system.settings, topic, 1, timeout_s=30, key=call_id)
        [offer] = [json.loads(o.value)["data"] for o in offers]
        assert offer["kind"] == "offered" and offer["details"]["language"] == "es"

        async def trail() -> list[str]:
            reviewer = system.token("civilian-review-board")
            got = await http.get(f"{system.url('audit')}/v1/audit/calls/{call_id}", headers=reviewer)
            return [e["type"] for e in got.json()["events"]] if got.status_code == 200 else []

        # The call and its offer come on two topics: read in one fetch, audit may chain either first.
        types = await eventually(
            trail, lambda t: {"calls.received.v1", "assignments.offered.v1"} <= set(t), what="the audit trail"
        )
        assert types.count("calls.received.v1") == 1


async def test_the_callers_language_from_the_niem_person_fields_reaches_the_offer(system: System):
    doc = eido.example() | {"$id": f"urn:emergency:uid:incidentid:{uuid.uuid4().hex[:10]}:valley-ecc"}
    del doc[eido.EXTENSION_KEY]["preferredLanguage"]
    doc["personComponent"] = [
        {
            "$id": "caller-1",
            "lastUpdateTimeStamp": doc["lastUpdateTimeStamp"],
            "personIncidentRoleRegistryText": ["Caller"],
            "ncPersonComponent": {"PersonPrimaryLanguage": {"LanguageCode": "spa"}},
        }
    ]
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.post(
            f"{system.url('intake')}/v1/incidents", json=doc, auth=system.psap_auth("valley-ecc")
        )
        assert r.status_code == 202 and r.json()["decision"]["route"] == "community", r.text
        call_id = r.json()["call_id"]

        async def offered() -> list[dict[str, Any]]:
            got = await http.get(
                f"{system.url('intake')}/v1/calls/{call_id}", auth=system.psap_auth("valley-ecc")
            )
            return [s["detail"] for s in got.json()["timeline"] if s["status"] == "offered"]

        [step, *_] = await eventually(offered, bool, what="the offer in the call's timeline")
    topic = system.settings.topic(agency_topic(step["agency_id"]))
    offers = await read_topic(system.settings, topic, 1, timeout_s=30, key=call_id)
    offer = json.loads(offers[0].value)["data"]
    # Matching's language rule read it too: the team offered speaks Spanish.
    assert offer["kind"] == "offered" and offer["details"]["language"] == "es"
    assert "es" in next(t.languages for t in system.jurisdiction.teams if t.id == step["team_id"])


async def test_a_forged_signature_is_refused_and_lands_in_the_audit_trail(system: System):
    body = json.dumps(eido.example() | {"$id": f"urn:forged:{uuid.uuid4().hex[:8]}"}).encode()
    headers = system.token("valley-ecc") | {
        "content-type": "application/json",
        "webhook-id": "msg_forged",
        "webhook-timestamp": "1",
        "webhook-signature": "v1,AAAA",
    }
    async with httpx.AsyncClient(timeout=15) as http:
        r = await http.post(f"{system.url('intake')}/v1/incidents", content=body, headers=headers)
        assert r.status_code == 401 and r.json() == {
            "detail": "authentication failed",
            "code": "unauthenticated",
        }

        async def denied() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            cursor: int | None = 0
            while cursor is not None:  # every page: the reviewer's own reads are access events too
                got = await http.get(
                    f"{system.url('audit')}/v1/audit/events",
                    params={"type": "access.recorded.v1", "cursor": cursor, "limit": 1000},
                    headers=system.token("civilian-review-board"),
                )
                page = got.json()
                found += [e["data"] for e in page["events"] if e["data"]["path"] == "/v1/incidents"]
                cursor = page["next_cursor"]
            return [d for d in found if d["service"] == "intake" and d["outcome"] == "denied"]

        record = (await eventually(denied, bool, what="the denied access in the audit trail"))[-1]
    assert record["outcome"] == "denied" and record["tenant_id"] == "valley-ecc"
    assert record["reason"].startswith("signature:")
