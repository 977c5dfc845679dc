"""Assignment events reach intake out of order across topics and from producers whose clocks
disagree; the call's status and its PSAP callbacks follow causal order (attempt, then the step's
place in its assignment's life), never the events' times."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from services.intake.settings import IntakeSettings
from shared import topics
from shared.envelope import Envelope
from tests.integration.intake_harness import Agency, Intake, community_call, running_intake
from tests.support import eventually

pytestmark = pytest.mark.integration

PSAP = "valley-ecc"  # has a callback URL: a status change queues a callback
MINUTE = timedelta(seconds=60)
# One producer's clock a minute off, each way: the skews the fault suite applies.
SKEWS = {
    "notify 60 s behind": {"notify": -MINUTE},
    "notify 60 s ahead": {"notify": MINUTE},
    "matching 60 s behind": {"matching": -MINUTE},
    "matching 60 s ahead": {"matching": MINUTE},
}


@pytest.fixture(scope="module")
async def intake(stack) -> AsyncIterator[Intake]:
    async with running_intake(stack, IntakeSettings()) as running:
        yield running


@pytest.fixture
async def producer(intake: Intake) -> AsyncIterator[AIOKafkaProducer]:
    async with intake.producer() as p:
        yield p


async def offered_call(intake: Intake, producer: AIOKafkaProducer, **clocks: Any) -> tuple[str, Agency]:
    """A community call whose first offer intake has applied."""
    call_id = await community_call(intake, PSAP)
    first = Agency(intake, producer, call_id, PSAP, attempt=1, **clocks)
    await first.publish(topics.ASSIGNMENTS_OFFERED, first.offered(), "offered")
    return call_id, first


async def cancel(intake: Intake, call_id: str) -> None:
    async with httpx.AsyncClient(timeout=15) as http:
        r = await intake.post(http, f"/v1/calls/{call_id}/cancel", PSAP, {"reason": "caller called back"})
    assert r.status_code == 202, r.text


def callbacks(view: dict[str, Any]) -> list[str]:
    """The unit statuses queued for the PSAP, whether delivered yet or not."""
    return [c["unitStatus"] for c in view["callbacks"]]


def timeline(view: dict[str, Any]) -> list[str]:
    return [s["status"] for s in view["timeline"]]


async def test_the_next_offer_consumed_before_the_last_expiry_leaves_the_call_offered(intake, producer):
    """Matching writes the expiry of attempt 1 and the offer of attempt 2 together; they travel on
    two topics and intake read the offer first. The expiry is stamped a minute later than the offer
    (notify expires, its clock ahead): the old rule, by event time, applied it over the offer."""
    call_id, first = await offered_call(intake, producer, skew={"notify": MINUTE})
    second = Agency(intake, producer, call_id, PSAP, attempt=2, skew={"notify": MINUTE})
    expired = first.event(topics.ASSIGNMENTS_EXPIRED, first.expired())
    await second.publish(topics.ASSIGNMENTS_OFFERED, second.offered(), "offered")
    await first.send(expired)
    late = await first.step("offer_expired")

    view = await first.view()
    assert view["status"] == "offered"
    assert late["detail"]["late"] is True and late["detail"]["late_because"] == "earlier_attempt"
    # The timeline reads in causal order, not the order things arrived nor their clocks.
    assert timeline(view) == ["received", "offered", "offer_expired", "offered"]
    assert view["timeline"][-1]["detail"]["assignment_id"] == second.ref["assignment_id"]


async def test_a_late_decline_after_the_hand_back_leaves_the_call_handed_back(intake, producer):
    """Item 5: the agency's decline reaches intake after matching's hand-back, stamped a minute
    later (notify's clock ahead). The old rule ranked them equal and applied the decline: the PSAP
    saw "offer_declined" about a call already handed back."""
    _, first = await offered_call(intake, producer, skew={"notify": MINUTE})
    declined = first.event(topics.ASSIGNMENTS_RESPONDED, first.declined())
    await first.publish(topics.CALLS_UNASSIGNED, first.unassigned(), "handed_back")
    await first.send(declined)
    late = await first.step("offer_declined")

    view = await first.view()
    assert view["status"] == "handed_back"
    assert view["non_diversion_reason"] == "no_acceptance_in_time"
    assert callbacks(view) == ["AssignmentCancelled"]
    assert late["detail"]["late"] is True and late["detail"]["late_because"] == "call_handed_back"
    assert timeline(view) == ["received", "offered", "offer_declined", "handed_back"]


async def test_a_hand_back_consumed_before_the_last_expiry_leaves_the_call_handed_back(intake, producer):
    """Clocks agree here, so the old rule also kept handed_back; it failed only on why the expiry
    was late (older_than_status, a clock comparison; now call_handed_back)."""
    _, first = await offered_call(intake, producer)
    expired = first.event(topics.ASSIGNMENTS_EXPIRED, first.expired())
    await first.publish(topics.CALLS_UNASSIGNED, first.unassigned(), "handed_back")
    await first.send(expired)
    late = await first.step("offer_expired")

    view = await first.view()
    assert view["status"] == "handed_back"
    assert callbacks(view) == ["AssignmentCancelled"]
    assert late["detail"]["late"] is True and late["detail"]["late_because"] == "call_handed_back"


async def test_an_accept_consumed_before_its_offer_leaves_the_call_assigned(intake, producer):
    """The accept is stamped before the offer is sent, so the old rule called the offer late by
    time (older_than_status) where now its assignment is further along; the status was right."""
    call_id = await community_call(intake, PSAP)
    agency = Agency(intake, producer, call_id, PSAP, attempt=1)
    offered = agency.event(topics.ASSIGNMENTS_OFFERED, agency.offered())
    await agency.send(agency.event(topics.ASSIGNMENTS_RESPONDED, agency.accepted()), "assigned")
    await agency.send(offered)
    late = await agency.step("offered")

    view = await agency.view()
    assert view["status"] == "assigned"
    assert view["assignment"] == {k: agency.ref[k] for k in ("assignment_id", "agency_id", "team_id")}
    assert callbacks(view) == ["Assigned"]
    assert late["detail"]["late_because"] == "assignment_further_along"
    assert timeline(view) == ["received", "offered", "assigned"]


async def test_an_answer_from_before_a_cancel_changes_nothing_and_the_withdrawal_still_reaches_the_psap(
    intake, producer
):
    """Matching's clock runs a minute behind intake's: the old rule dropped its withdrawal as older
    than the cancel, and the PSAP never heard the team was stood down."""
    call_id, agency = await offered_call(intake, producer, skew={"matching": -MINUTE, "notify": -MINUTE})
    accepted = agency.event(topics.ASSIGNMENTS_RESPONDED, agency.accepted())
    await cancel(intake, call_id)
    await agency.send(accepted)
    late = await agency.step("assigned")

    view = await agency.view()
    assert view["status"] == "cancelled" and view["assignment"] is None
    assert callbacks(view) == []  # the PSAP is never told "Assigned" for a call it cancelled
    assert late["detail"]["late"] is True and late["detail"]["late_because"] == "call_cancelled"

    # Matching answers the cancel by withdrawing the offer: that still reaches the PSAP.
    await agency.send(agency.event(topics.ASSIGNMENTS_WITHDRAWN, agency.withdrawn("cancelled_by_psap")))
    await agency.step("withdrawn")
    # A report published after the withdrawal (the agency had not heard of it) moves nothing.
    await agency.send(agency.event(topics.ASSIGNMENTS_STATUS_CHANGED, agency.reported("en_route")))
    behind = await agency.step("en_route")

    view = await agency.view()
    assert view["status"] == "cancelled"  # stood down, and still cancelled: nothing reopens it
    # Each step sits where its assignment's life puts it, whenever it arrived.
    assert timeline(view) == ["received", "offered", "cancelled", "assigned", "en_route", "withdrawn"]
    assert callbacks(view) == ["AssignmentCancelled"]
    assert behind["detail"]["late"] is True and behind["detail"]["late_because"] == "call_cancelled"


async def test_what_matching_did_before_it_heard_of_a_cancel_leaves_the_call_cancelled(intake, producer):
    """Kept from the old suite (it passed there too): the expiry and hand-back after a cancel."""
    call_id, first = await offered_call(intake, producer)
    await cancel(intake, call_id)
    # The deadline passed before matching consumed the cancel: the offer expired and it handed back.
    await first.send(first.event(topics.ASSIGNMENTS_EXPIRED, first.expired()))
    await first.step("offer_expired")
    await first.send(first.event(topics.CALLS_UNASSIGNED, first.unassigned()))
    step = await first.step("handed_back")

    view = await first.view()
    assert view["status"] == "cancelled"
    assert view["non_diversion_reason"] == "cancelled_by_psap"
    assert callbacks(view) == []
    assert step["detail"]["late"] is True and step["detail"]["late_because"] == "call_cancelled"


async def _declined_then_second_team(intake: Intake, producer: AIOKafkaProducer, skew: Any) -> Agency:
    """Attempt 1 declined; attempt 2 accepted, en route, on scene, cleared; each step applied
    before the next is published, as in life. The second team's Agency."""
    call_id, first = await offered_call(intake, producer, skew=skew)
    await first.publish(topics.ASSIGNMENTS_RESPONDED, first.declined(), "offer_declined")
    second = Agency(intake, producer, call_id, PSAP, attempt=2, skew=skew)
    await second.publish(topics.ASSIGNMENTS_OFFERED, second.offered(), "offered")
    await second.accept()
    for status in ("en_route", "on_scene"):
        await second.report(status)
    await second.report("cleared", disposition="18")
    return second


@pytest.mark.parametrize("skew", list(SKEWS))
async def test_a_minute_of_skew_on_one_producer_changes_nothing_the_psap_sees(intake, producer, skew: str):
    """Item 6: with notify's clock 60 s behind, the old rule kept all of notify's steps "older" than
    matching's offer, so the call stayed "offered" while the team had cleared (this test timed out
    waiting for offer_declined); ahead, the next offer was older than the decline."""
    second = await _declined_then_second_team(intake, producer, SKEWS[skew])
    view = await second.view()
    assert view["status"] == "cleared"
    assert callbacks(view) == ["Assigned", "EnRoute", "OnScene", "Cleared"]
    expected = ["received", "offered", "offer_declined", "offered", "assigned", "en_route", "on_scene"]
    assert timeline(view) == [*expected, "cleared"]
    assert not any(s["detail"].get("late") for s in view["timeline"])
    # The producers' times are kept for display, as they stamped them.
    shown = {s["status"]: s["event_time"] for s in view["timeline"]}
    assert shown["cleared"] is not None


@pytest.mark.parametrize("skew", list(SKEWS))
async def test_a_minute_of_skew_never_turns_a_hand_back_into_a_decline(intake, producer, skew: str):
    """Item 6, the hand-back side: notify 60 s ahead made the hand-back "older" than the decline at
    the old rule, and 3 to 7 calls of 30 stayed "offer declined" at the PSAP."""
    _, first = await offered_call(intake, producer, skew=SKEWS[skew])
    await first.publish(topics.ASSIGNMENTS_RESPONDED, first.declined(), "offer_declined")
    await first.publish(topics.CALLS_UNASSIGNED, first.unassigned(), "handed_back")
    view = await first.view()
    assert view["status"] == "handed_back" and callbacks(view) == ["AssignmentCancelled"]


@pytest.mark.parametrize("skew", list(SKEWS))
async def test_a_call_s_steps_published_at_once_across_topics_end_where_causal_order_says(
    intake, producer, skew: str
):
    """Every step of a call published together, so intake reads its topics in any order, with one
    producer's clock a minute off: the final status is the causal last step and the callbacks
    the PSAP gets are in causal order, whichever arrived first (the old rule ended wherever the
    latest clock stamp said)."""
    call_id = await community_call(intake, PSAP)
    first = Agency(intake, producer, call_id, PSAP, attempt=1, skew=SKEWS[skew])
    second = Agency(intake, producer, call_id, PSAP, attempt=2, skew=SKEWS[skew])
    burst: list[Envelope] = [
        first.event(topics.ASSIGNMENTS_OFFERED, first.offered()),
        first.event(topics.ASSIGNMENTS_EXPIRED, first.expired()),
        second.event(topics.ASSIGNMENTS_OFFERED, second.offered()),
        second.event(topics.ASSIGNMENTS_RESPONDED, second.accepted()),
        *(
            second.event(topics.ASSIGNMENTS_STATUS_CHANGED, second.reported(s))
            for s in ("en_route", "on_scene")
        ),
        second.event(topics.ASSIGNMENTS_STATUS_CHANGED, second.reported("cleared", "18")),
    ]
    await asyncio.gather(*(first.send(e) for e in burst))

    async def steps() -> dict[str, Any]:
        return await first.view()

    view = await eventually(steps, lambda v: len(v["timeline"]) == 1 + len(burst), what="every step")
    assert view["status"] == "cleared"
    told = callbacks(view)
    order = ["Assigned", "EnRoute", "OnScene", "Cleared"]
    assert told[-1] == "Cleared" and told == [s for s in order if s in told]
    expected = ["received", "offered", "offer_expired", "offered", "assigned", "en_route", "on_scene"]
    assert timeline(view) == [*expected, "cleared"]


async def test_steps_without_an_attempt_take_it_from_their_offer(intake, producer):
    """An older notify sends no attempt; its clock is a minute behind. Each answer takes its
    attempt from the offer intake recorded, and a late one of attempt 1 stays late after
    attempt 2 (the old rule kept the call "offered": every answer was older than the offer)."""
    skew = {"notify": -MINUTE}
    call_id, first = await offered_call(intake, producer, skew=skew)
    old_first = Agency(intake, producer, call_id, PSAP, attempt=None, skew=skew)
    old_first.ref = old_first.numbered = first.ref | {"attempt": None}
    second = Agency(intake, producer, call_id, PSAP, attempt=2, skew=skew)
    old_second = Agency(intake, producer, call_id, PSAP, attempt=None, skew=skew)
    old_second.ref = second.ref
    old_second.numbered = second.ref | {"attempt": None}

    await old_first.publish(topics.ASSIGNMENTS_RESPONDED, old_first.declined(), "offer_declined")
    await second.publish(topics.ASSIGNMENTS_OFFERED, second.offered(), "offered")
    await old_second.accept()
    await old_second.report("en_route")
    await old_first.send(old_first.event(topics.ASSIGNMENTS_EXPIRED, old_first.expired()))
    late = await old_first.step("offer_expired")

    view = await second.view()
    assert view["status"] == "en_route" and callbacks(view) == ["Assigned", "EnRoute"]
    assert late["detail"]["attempt"] == 1 and late["detail"]["late_because"] == "earlier_attempt"
    assert [s["detail"].get("attempt") for s in view["timeline"][1:]] == [1, 1, 1, 2, 2, 2]
