"""A 911 call from POST to the agency's topic, the agency's acceptance, and the audit trail."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from services.topology import TOPOLOGY
from shared.db import connect
from shared.topics import AGENCY_TOPIC_PREFIX, agency_topic
from tests.e2e.system import System, running_system
from tests.support import eventually, read_topic

pytestmark = pytest.mark.e2e

CLEAR = {
    "weapon": "no",
    "violence": "no",
    "medical": "no",
    "self_harm_imminent": "no",
    "crime_in_progress": "no",
}
# Downtown, near the Riverbend 1 team's home; the caller speaks Spanish.
CALL = {
    "incident_type": "10-96",
    "location": {"lat": 44.0503, "lon": -123.0889, "address": "100 W 10th Ave"},
    "safety": CLEAR,
    "language": "es",
    "callback_number": "+15415550123",
    "caller_name": "Never leaves intake",
    "narrative": "Never leaves intake either",
}


async def walk_one_call(system: System) -> None:
    """The thin end-to-end path of the foundation issue, asserted at each hop."""
    async with httpx.AsyncClient(timeout=15) as http:
        psap = system.token("valley-ecc")
        signed = system.psap_auth("valley-ecc")
        body = {"external_id": f"CAD-{uuid.uuid4().hex[:8]}", **CALL}
        answer = await http.post(f"{system.url('intake')}/v1/calls", json=body, auth=signed)
        assert answer.status_code == 202, answer.text
        accepted = answer.json()
        assert accepted["decision"]["route"] == "community"
        assert accepted["decision"]["rules_version"] == "2026-11-01"
        call_id = accepted["call_id"]

        again = await http.post(f"{system.url('intake')}/v1/calls", json=body, auth=signed)
        assert again.status_code == 202 and again.json()["call_id"] == call_id and again.json()["duplicate"]

        topic = system.settings.topic(agency_topic("riverbend-crisis"))
        [record] = await read_topic(system.settings, topic, 1, timeout_s=30)
        offer = json.loads(record.value)
        assert record.key.decode() == call_id and offer["subject"] == call_id
        assert offer["data"]["kind"] == "offered" and offer["data"]["team_id"] == "rb-1"
        details = offer["data"]["details"]
        assert details["language"] == "es" and details["callback_number"] == "+15415550123"
        assert "Never leaves intake" not in record.value.decode()

        assignment = offer["data"]["assignment_id"]
        agency = system.token("riverbend-crisis")
        other_agency = system.token("valley-behavioral")
        url = f"{system.url('notify')}/v1/assignments/{assignment}"
        assert (await http.post(f"{url}/accept", headers=other_agency)).status_code == 404
        accept = await http.post(f"{url}/accept", headers=agency)
        assert accept.status_code == 200, accept.text
        assert accept.json()["status"] == "accepted"

        async def trail() -> list[str]:
            r = await http.get(
                f"{system.url('audit')}/v1/audit/calls/{call_id}",
                headers=system.token("civilian-review-board"),
            )
            return [e["type"] for e in r.json()["events"]] if r.status_code == 200 else []

        types = await eventually(trail, lambda t: "assignments.responded.v1" in t, what="the audit trail")
        # Notify's delivery records (who was told what, when) are interleaved in the trail.
        told = [t for t in types if t.startswith("notifications.")]
        assert told and set(told) == {"notifications.delivered.v1"}, types
        calls = [t for t in types if not t.startswith("notifications.")]
        # Each step once. The trail keeps the order audit read them in, and the call and its offer
        # come on two topics: read in one fetch, the offer may be chained first.
        assert sorted(calls) == ["assignments.offered.v1", "assignments.responded.v1", "calls.received.v1"]

        async def status() -> str:
            r = await http.get(f"{system.url('intake')}/v1/calls/{call_id}", headers=psap)
            return str(r.json()["status"])

        await eventually(status, lambda s: s == "assigned", what="status assigned")
        other_psap = system.token("springfield-pd-psap")
        assert (
            await http.get(f"{system.url('intake')}/v1/calls/{call_id}", headers=other_psap)
        ).status_code == 404

        verify = await http.get(
            f"{system.url('audit')}/v1/audit/verify", headers=system.token("careroute-operator")
        )
        assert verify.status_code == 200 and verify.json()["ok"] is True, verify.text
    await assert_published_as_declared(system)


async def assert_published_as_declared(system: System) -> None:
    """Every topic each service's outbox published is one the topology says it produces."""
    conn = await connect(system.settings.database_url.get_secret_value())
    try:
        for service, node in TOPOLOGY.items():
            rows = await conn.fetch(f"SELECT DISTINCT topic FROM {service}.outbox")
            published = {r["topic"] for r in rows}
            agency = {t for t in published if t.startswith(AGENCY_TOPIC_PREFIX)}
            assert published, f"{service} published nothing"
            assert published - agency <= node.produces, (service, published - agency - node.produces)
            assert not agency or node.produces_agency_topics, (service, agency)
    finally:
        await conn.close()


async def test_a_call_reaches_the_agency_topic_is_accepted_and_is_audited(system: System):
    await walk_one_call(system)


async def test_the_same_path_works_on_tansu_the_demo_broker(tansu_stack, tmp_path):
    async with running_system(tansu_stack, tmp_path) as system:
        await walk_one_call(system)
        # SIGTERM: servers stop, consumers finish and commit, the relay flushes, connections close.
        assert system.stop() == [0]


async def test_the_same_path_works_with_one_process_per_service(stack, tmp_path):
    async with running_system(stack, tmp_path, separate=True) as system:
        assert len(system.processes) == 4
        await walk_one_call(system)
        assert system.stop() == [0, 0, 0, 0]
