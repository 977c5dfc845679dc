"""Assignment events reach intake out of order across topics; the call's status follows event time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.intake.settings import IntakeSettings
from shared import events, topics
from tests.integration.intake_harness import Agency, Intake, community_call, running_intake

pytestmark = pytest.mark.integration

PSAP = "valley-ecc"  # has a callback URL: a status change queues a callback


@pytest.fixture(scope="module")
async def intake(stack) -> AsyncIterator[Intake]:
    async with running_intake(stack, IntakeSettings()) as running:
        yield running


@pytest.fixture
async def producer(intake: Intake) -> AsyncIterator[AIOKafkaProducer]:
    async with intake.producer() as p:
        yield p


async def offered_call(intake: Intake, producer: AIOKafkaProducer) -> tuple[str, Agency]:
    """A community call whose first offer intake has applied."""
    call_id = await community_call(intake, PSAP)
    first = Agency(intake, producer, call_id, PSAP)
    await first.publish(topics.ASSIGNMENTS_OFFERED, first.offered(1), "offered")
    return call_id, first


async def cancel(intake: Intake, call_id: str) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, f"/v1/calls/{call_id}/cancel", PSAP, {"reason": "caller called back"})
    assert r.status_code == 202, r.text


def callbacks(view: dict[str, Any]) -> list[str]:
    """The unit statuses queued for the PSAP, whether delivered yet or not."""
    return [c["unitStatus"] for c in view["callbacks"]]


async def test_the_next_offer_consumed_before_the_last_expiry_leaves_the_call_offered(intake, producer):
    call_id, first = await offered_call(intake, producer)
    second = Agency(intake, producer, call_id, PSAP)
    # Matching writes both in one transaction, the expiry first; they travel on two topics.
    expired = first.event(topics.ASSIGNMENTS_EXPIRED, events.AssignmentExpired(**first.ref))
    offered = second.event(topics.ASSIGNMENTS_OFFERED, second.offered(2))
    await second.send(offered)
    await second.step("offered")
    await first.send(expired)
    late = await first.step("offer_expired")

    view = await first.view()
    assert view["status"] == "offered"
    assert late["detail"]["late"] is True and late["detail"]["late_because"] == "older_than_status"
    # The timeline reads in the order things happened, not the order they arrived.
    assert [s["status"] for s in view["timeline"]] == ["received", "offered", "offer_expired", "offered"]
    assert view["timeline"][-1]["detail"]["assignment_id"] == second.ref["assignment_id"]


async def test_a_hand_back_consumed_before_the_last_expiry_leaves_the_call_handed_back(intake, producer):
    call_id, first = await offered_call(intake, producer)
    expired = first.event(topics.ASSIGNMENTS_EXPIRED, events.AssignmentExpired(**first.ref))
    unassigned = first.event(
        topics.CALLS_UNASSIGNED,
        events.CallUnassigned(call_id=call_id, psap_id=PSAP, reason_code="no_acceptance_in_time"),
    )
    await first.send(unassigned, "handed_back")
    await first.send(expired)
    late = await first.step("offer_expired")

    view = await first.view()
    assert view["status"] == "handed_back"
    assert view["non_diversion_reason"] == "no_acceptance_in_time"
    assert callbacks(view) == ["AssignmentCancelled"]
    assert late["detail"]["late"] is True


async def test_an_accept_consumed_before_its_offer_leaves_the_call_assigned(intake, producer):
    call_id = await community_call(intake, PSAP)
    agency = Agency(intake, producer, call_id, PSAP)
    offered = agency.event(topics.ASSIGNMENTS_OFFERED, agency.offered(1))
    accepted = agency.event(topics.ASSIGNMENTS_RESPONDED, agency.accepted())
    await agency.send(accepted, "assigned")
    await agency.send(offered)
    late = await agency.step("offered")

    view = await agency.view()
    assert view["status"] == "assigned"
    assert view["assignment"] == {k: agency.ref[k] for k in ("assignment_id", "agency_id", "team_id")}
    assert callbacks(view) == ["Assigned"]
    assert late["detail"]["late"] is True


async def test_an_answer_from_before_a_cancel_changes_nothing_and_the_withdrawal_still_reaches_the_psap(
    intake, producer
):
    call_id, agency = await offered_call(intake, producer)
    accepted = agency.event(topics.ASSIGNMENTS_RESPONDED, agency.accepted())
    await cancel(intake, call_id)
    await agency.send(accepted)
    late = await agency.step("assigned")

    view = await agency.view()
    assert view["status"] == "cancelled" and view["assignment"] is None
    assert callbacks(view) == []  # the PSAP is never told "Assigned" for a call it cancelled
    assert late["detail"]["late"] is True and late["detail"]["late_because"] == "older_than_status"

    # Matching answers the cancel by withdrawing the offer: that still reaches the PSAP.
    withdrawn = events.AssignmentWithdrawn(**agency.ref, reason="cancelled_by_psap")
    await agency.send(agency.event(topics.ASSIGNMENTS_WITHDRAWN, withdrawn))
    await agency.step("withdrawn")
    # A report published after the withdrawal (the agency had not heard of it) is newer by time,
    # but its assignment is over.
    await agency.send(agency.event(topics.ASSIGNMENTS_STATUS_CHANGED, agency.reported("en_route")))
    behind = await agency.step("en_route")

    view = await agency.view()
    assert view["status"] == "cancelled"  # stood down, and still cancelled: nothing reopens it
    assert [s["status"] for s in view["timeline"]][-2:] == ["withdrawn", "en_route"]
    assert callbacks(view) == ["AssignmentCancelled"]
    assert behind["detail"]["late"] is True
    assert behind["detail"]["late_because"] == "assignment_further_along"


async def test_what_matching_did_before_it_heard_of_a_cancel_leaves_the_call_cancelled(intake, producer):
    call_id, first = await offered_call(intake, producer)
    await cancel(intake, call_id)
    # Matching's deadline passed before it consumed the cancel: it expired the offer and handed back.
    await first.send(first.event(topics.ASSIGNMENTS_EXPIRED, events.AssignmentExpired(**first.ref)))
    await first.step("offer_expired")
    unassigned = events.CallUnassigned(call_id=call_id, psap_id=PSAP, reason_code="no_acceptance_in_time")
    await first.send(first.event(topics.CALLS_UNASSIGNED, unassigned))
    step = await first.step("handed_back")

    view = await first.view()
    assert view["status"] == "cancelled"
    assert view["non_diversion_reason"] == "cancelled_by_psap"
    assert callbacks(view) == []
    assert step["detail"]["late"] is True and step["detail"]["late_because"] == "call_cancelled"
