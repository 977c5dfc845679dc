"""The 911 center stays informed: signed status callbacks, retried, in order, delivered or failed."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.intake import eido, repository
from services.intake.settings import IntakeSettings
from shared import events, topics
from tests.integration.intake_harness import (
    Agency,
    Intake,
    community_call,
    running_intake,
)
from tests.support import eventually
from tools.psap import verify

pytestmark = pytest.mark.integration

SETTINGS = IntakeSettings(callback_retry_base_s=0.2, callback_max_attempts=4, callback_poll_s=0.1)


@pytest.fixture(scope="module")
async def intake(stack) -> AsyncIterator[Intake]:
    async with running_intake(stack, SETTINGS) as running:
        yield running


@pytest.fixture
async def producer(intake: Intake) -> AsyncIterator[AIOKafkaProducer]:
    async with intake.producer() as p:
        yield p


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
                "_signed": verify(secret[psap], r.headers, r.body),
            }
        )
    return out


async def test_status_callbacks_arrive_signed_in_order_and_retry_after_failures(intake: Intake, producer):
    call_id = await community_call(intake, "valley-ecc")
    agency = Agency(intake, producer, call_id, "valley-ecc")
    await agency.publish(topics.ASSIGNMENTS_OFFERED, agency.offered(), "offered")
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


async def test_an_idle_sender_sleeps_until_the_head_of_a_calls_line_falls_due(intake: Intake):
    # Tried: a call whose oldest pending callback retries in 60 s and a newer one, due now, behind it.
    # The newer one waits its turn, so the queue is next due in 60 s, not now (a sender woken for it
    # would find nothing to do, again and again); its supervisor's alerts are due in 5 s.
    call_id = await community_call(intake, "valley-ecc")
    pool = await asyncpg.create_pool(intake.settings.database_url.get_secret_value(), min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM intake.callbacks WHERE state = 'pending'") == 0
            assert (
                await conn.fetchval("SELECT count(*) FROM intake.supervisor_alerts WHERE state = 'pending'")
                == 0
            )
            head = await conn.fetchval(
                "WITH line AS (INSERT INTO intake.callbacks (call_id, psap_id, payload, next_attempt_at)"
                " VALUES ($1, 'valley-ecc', '{}', now() + interval '60 s'), ($1, 'valley-ecc', '{}', now())"
                " RETURNING id) SELECT min(id) FROM line",
                uuid.UUID(call_id),
            )
            assert 55 < (await repository.next_due_in_s(conn, "callbacks") or 0) <= 60
            assert await repository.next_due_in_s(conn, "supervisor_alerts") is None
            await conn.execute(
                "INSERT INTO intake.supervisor_alerts"
                " (callback_id, call_id, psap_id, payload, next_attempt_at)"
                " VALUES ($2, $1, 'valley-ecc', '{}', now() + interval '5 s')",
                uuid.UUID(call_id),
                head,
            )
            assert 0 < (await repository.next_due_in_s(conn, "supervisor_alerts") or 0) <= 5
            await conn.execute("DELETE FROM intake.supervisor_alerts WHERE call_id = $1", uuid.UUID(call_id))
            await conn.execute("DELETE FROM intake.callbacks WHERE call_id = $1", uuid.UUID(call_id))
    finally:
        await pool.close()
