"""The 911 center stays informed: signed status callbacks, retried, in order, delivered or failed."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.intake import eido
from services.intake.settings import IntakeSettings
from shared import events, topics
from shared.envelope import CONTENT_TYPE, new_event
from shared.kafka import make_producer
from tests.integration.intake_harness import Intake, independent_signature_ok, native_call, running_intake
from tests.support import eventually

pytestmark = pytest.mark.integration

SETTINGS = IntakeSettings(callback_retry_base_s=0.2, callback_max_attempts=4, callback_poll_s=0.1)


@pytest.fixture(scope="module")
async def intake(stack) -> AsyncIterator[Intake]:
    async with running_intake(stack, SETTINGS) as running:
        yield running


@pytest.fixture
async def producer(intake: Intake) -> AsyncIterator[AIOKafkaProducer]:
    p = make_producer(intake.settings.kafka_bootstrap_servers)
    await p.start()
    yield p
    await p.stop()


class Agency:
    """Plays matching and notify for one call: publishes what they would, one step at a time."""

    def __init__(self, intake: Intake, producer: AIOKafkaProducer, call_id: str, psap_id: str) -> None:
        self.intake, self.producer, self.call_id, self.psap_id = intake, producer, call_id, psap_id
        self.ref = {
            "assignment_id": str(uuid.uuid4()),
            "call_id": call_id,
            "agency_id": "riverbend-crisis",
            "team_id": "rb-1",
        }

    async def publish(self, topic: str, payload: events.Payload, expect_status: str) -> None:
        """Publish one event and wait until intake has applied it (events of several topics have no
        order between them, so the next one waits, as it does in life)."""
        event = new_event(topic, "notify", self.call_id, payload)
        await self.producer.send_and_wait(
            self.intake.settings.topic(topic),
            event.to_bytes(),
            key=self.call_id.encode(),
            headers=[("content-type", CONTENT_TYPE.encode())],
        )
        await eventually(self.status, lambda s: s == expect_status, what=f"status {expect_status}")

    async def status(self) -> str:
        return str((await self.view())["status"])

    async def view(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.get(
                f"{self.intake.url}/v1/calls/{self.call_id}", headers=self.intake.headers(self.psap_id, b"")
            )
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def accept(self) -> None:
        now = datetime.now(UTC)
        await self.publish(
            topics.ASSIGNMENTS_RESPONDED,
            events.AssignmentResponded(**self.ref, response="accepted", responded_at=now),
            "assigned",
        )

    async def report(self, status: str, disposition: str | None = None) -> None:
        payload = events.AssignmentStatusChanged(
            **self.ref,
            status=events.TeamStatus(status),
            disposition=disposition,
            reported_at=datetime.now(UTC),
        )
        await self.publish(topics.ASSIGNMENTS_STATUS_CHANGED, payload, status)


async def community_call(intake: Intake, psap_id: str) -> str:
    body = native_call(f"CB-{uuid.uuid4().hex[:8]}")
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, "/v1/calls", psap_id, body)
    assert r.status_code == 202 and r.json()["decision"]["route"] == "community", r.text
    return str(r.json()["call_id"])


def delivered_to(intake: Intake, call_id: str) -> list[dict[str, Any]]:
    """The callbacks the PSAP's server got for one call, in arrival order, with their signature checked."""
    secret = {
        "valley": intake.psap("valley-ecc").signing_secret,
        "springfield": intake.psap("springfield-pd-psap").signing_secret,
    }
    out = []
    for r in intake.callbacks.received:
        body = json.loads(r.body)
        if body["call_id"] != call_id:
            continue
        psap = r.path.split("/")[1]
        out.append(
            body
            | {
                "_id": r.headers["webhook-id"],
                "_signed": independent_signature_ok(secret[psap], r.headers, r.body),
            }
        )
    return out


async def test_status_callbacks_arrive_signed_in_order_and_retry_after_failures(intake: Intake, producer):
    call_id = await community_call(intake, "valley-ecc")
    agency = Agency(intake, producer, call_id, "valley-ecc")
    offer = events.AssignmentOffered(
        **agency.ref,
        attempt=1,
        deadline=datetime.now(UTC),
        offer=events.OfferDetails(
            location=events.Location(lat=44.05, lon=-123.09),
            presenting_problem="MNTL",
            safety=events.SafetyScreen(),
        ),
    )
    await agency.publish(topics.ASSIGNMENTS_OFFERED, offer, "offered")
    await agency.accept()
    await agency.report("en_route")
    await agency.report("on_scene")
    await agency.report("backup_requested")
    await agency.report("cleared", disposition="18")

    expected = ["Assigned", "EnRoute", "OnScene", "Backup", "Cleared"]

    async def states() -> list[str]:
        return [c["state"] for c in (await agency.view())["callbacks"]]

    await eventually(states, lambda s: s == ["delivered"] * 5, timeout_s=60, what="every callback delivered")
    got = delivered_to(intake, call_id)
    # The server refused the first two attempts; the retries carry the same webhook-id.
    assert [g["unitStatus"] for g in got] == ["Assigned", "Assigned", *expected]
    assert got[0]["_id"] == got[1]["_id"] == got[2]["_id"]
    assert len({g["_id"] for g in got}) == 5
    assert all(g["_signed"] for g in got)
    assert got[-1]["disposition"] == "18" and got[-1]["team_id"] == "rb-1"
    view = await agency.view()
    assert [c["unitStatus"] for c in view["callbacks"]] == expected
    assert view["callbacks"][0]["attempts"] == 3 and view["callbacks"][1]["attempts"] == 1


async def test_a_hand_back_is_told_with_its_reason_and_an_unreachable_psap_is_recorded_as_failed(
    intake: Intake, producer
):
    call_id = await community_call(intake, "springfield-pd-psap")
    agency = Agency(intake, producer, call_id, "springfield-pd-psap")
    unassigned = events.CallUnassigned(
        call_id=call_id,
        psap_id="springfield-pd-psap",
        reason_code="no_team_available",
        detail="3 teams declined",
    )
    await agency.publish(topics.CALLS_UNASSIGNED, unassigned, "handed_back")

    async def callbacks() -> list[dict[str, Any]]:
        return list((await agency.view())["callbacks"])

    [failed] = await eventually(
        callbacks, lambda c: bool(c) and c[0]["state"] == "failed", timeout_s=60, what="failed"
    )
    assert (
        failed["unitStatus"] == "AssignmentCancelled" and failed["attempts"] == SETTINGS.callback_max_attempts
    )
    assert failed["last_error"] == "HTTP 503"
    got = delivered_to(intake, call_id)
    assert len(got) == SETTINGS.callback_max_attempts and all(g["_signed"] for g in got)
    assert got[0]["reason"] == "no_team_available"
    assert (await agency.view())["non_diversion_reason"] == "no_team_available"


async def test_an_update_raising_a_safety_flag_re_routes_and_the_withdrawal_reaches_the_psap(
    intake: Intake, producer
):
    incident = f"urn:emergency:uid:incidentid:{uuid.uuid4().hex[:8]}:flag"
    doc = eido.example() | {"$id": incident}
    async with httpx.AsyncClient(timeout=15) as http:
        first = await intake.post(http, "/v1/incidents", "valley-ecc", doc)
        call_id = first.json()["call_id"]
        agency = Agency(intake, producer, call_id, "valley-ecc")
        await agency.accept()
        flagged = json.loads(json.dumps(doc))
        flagged["lastUpdateTimeStamp"] = "2026-11-26T10:07:00Z"
        flagged[eido.EXTENSION_KEY]["safetyScreen"]["weapon"] = "yes"
        update = await intake.post(http, "/v1/incidents", "valley-ecc", flagged)
    assert update.json()["outcome"] == "updated" and update.json()["decision"]["route"] == "police"
    [published] = await intake.events(topics.CALLS_UPDATED, call_id, 1)
    assert (
        published["data"]["decision"]["route"] == "police"
        and published["data"]["previous_route"] == "community"
    )
    # Matching reacts to calls.updated.v1 by withdrawing the assignment; intake tells the PSAP.
    withdrawn = events.AssignmentWithdrawn(**agency.ref, reason="safety_flag_raised")
    await agency.publish(topics.ASSIGNMENTS_WITHDRAWN, withdrawn, "withdrawn")

    async def told() -> list[str]:
        return [
            g["unitStatus"] for g in delivered_to(intake, call_id) if g["unitStatus"] == "AssignmentCancelled"
        ]

    await eventually(told, bool, timeout_s=60, what="AssignmentCancelled at the PSAP")
    cancelled = [g for g in delivered_to(intake, call_id) if g["unitStatus"] == "AssignmentCancelled"][-1]
    assert cancelled["reason"] == "safety_flag_raised" and cancelled["_signed"]
