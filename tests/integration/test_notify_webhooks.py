"""Signed webhooks, checked by an independent Standard Webhooks verifier in a local test server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

import pytest

from services.notify import repository
from services.notify.settings import NotifySettings
from shared.settings import Settings
from shared.topics import NOTIFICATIONS_FAILED
from tests.integration.notify_system import Notify, jurisdiction, running_notify
from tests.integration.webhook_receiver import PLAIN_SECRET, SPEC_SECRET, Receiver, serving
from tests.support import eventually, read_topic

pytestmark = pytest.mark.integration


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    agencies = ("ordered", "plain", "gone", "down", "guarded", "slow", "prompt")
    receiver = Receiver(
        secrets={a: PLAIN_SECRET if a == "plain" else SPEC_SECRET for a in agencies},
        fail_first={"plain": 2},
        always={"gone": 410, "down": 503},
        held={"ordered"},
        stall={"slow"},
    )
    async with serving(receiver):
        yield receiver


@pytest.fixture
async def notify(settings: Settings, receiver: Receiver) -> AsyncIterator[Notify]:
    def agency(id_: str, allow_private: bool = True) -> dict[str, Any]:
        hook = {"url": receiver.url(id_), "secret": receiver.secrets[id_], "allow_private": allow_private}
        return {"id": id_, "channels": ["webhook"], "webhook": hook}

    agencies = [agency(a) for a in ("ordered", "plain", "gone", "down", "slow")] + [agency("guarded", False)]
    tuned = NotifySettings(
        repage_every_s=3600,
        webhook_backoff_base_s=0.05,
        webhook_backoff_max_s=0.3,
        webhook_retry_for_s=5,
        webhook_poll_s=0.05,
        webhook_timeout_s=0.5,
    )
    async with running_notify(settings, jurisdiction(agencies), tuned) as n:
        yield n


async def outcomes(notify: Notify, assignment_id: str) -> list[tuple[Any, ...]]:
    rows = await notify.pool.fetch(
        "SELECT kind, attempt, outcome FROM notify.deliveries"
        " WHERE assignment_id = $1::uuid AND channel = 'webhook' ORDER BY id",
        assignment_id,
    )
    return [tuple(r) for r in rows]


async def test_a_request_that_times_out_is_tried_again(notify: Notify, receiver: Receiver):
    offer = await notify.offer("slow")
    record = await eventually(
        partial(outcomes, notify, offer.assignment_id), lambda r: bool(r) and r[-1][2] == "delivered"
    )
    assert record == [("offered", 1, "retrying"), ("offered", 2, "delivered")]
    error = await notify.pool.fetchval(
        "SELECT error FROM notify.deliveries WHERE assignment_id = $1::uuid AND attempt = 1",
        offer.assignment_id,
    )
    assert "Timeout" in error


def failed_at_once(record: list[tuple[Any, ...]]) -> bool:
    return record == [("offered", 1, "failed")]


async def test_webhooks_are_signed_and_retried_after_failures(notify: Notify, receiver: Receiver):
    offer = await notify.offer("plain")
    await eventually(partial(receiver.taken, "plain"), lambda s: len(s) == 1, what="the message taken")
    seen = [(s.assignment_id, s.kind, s.status, s.signed) for s in receiver.seen]
    assert seen == [(offer.assignment_id, "offered", status, True) for status in (503, 503, 200)]
    assert len({s.msg_id for s in receiver.seen}) == 1  # one webhook-id across retries
    assert {s.host for s in receiver.seen} == {f"localhost:{receiver.port}"}
    record = await eventually(partial(outcomes, notify, offer.assignment_id), lambda r: len(r) == 3)
    assert record == [("offered", 1, "retrying"), ("offered", 2, "retrying"), ("offered", 3, "delivered")]


async def test_a_calls_webhooks_arrive_in_order_even_when_the_first_needs_retries(
    notify: Notify, receiver: Receiver
):
    offer = await notify.offer("ordered")
    # The offer is failing at the endpoint (held) when its withdrawal is queued behind it.
    await eventually(partial(outcomes, notify, offer.assignment_id), bool, what="a failed attempt")
    await notify.withdraw(offer)

    async def queued() -> int:
        return int(
            await notify.pool.fetchval(
                "SELECT count(*) FROM notify.webhook_queue WHERE assignment_id = $1::uuid",
                offer.assignment_id,
            )
        )

    await eventually(queued, lambda n: n == 2, what="the withdrawal queued")
    receiver.held.clear()
    await eventually(partial(receiver.taken, "ordered"), lambda s: len(s) == 2, what="both messages")
    assert all(s.signed for s in receiver.seen)
    kinds = [(s.kind, s.status) for s in receiver.seen]
    assert kinds[0] == ("offered", 503)
    assert kinds[-2:] == [("offered", 200), ("withdrawn", 200)], kinds
    assert ("withdrawn", 503) not in kinds, kinds


async def test_a_410_disables_the_endpoint_and_later_messages_are_not_sent(
    notify: Notify, receiver: Receiver
):
    first = await notify.offer("gone")
    await eventually(partial(outcomes, notify, first.assignment_id), failed_at_once)
    second = await notify.offer("gone")
    await eventually(partial(outcomes, notify, second.assignment_id), failed_at_once)
    assert [(s.assignment_id, s.status) for s in receiver.seen] == [(first.assignment_id, 410)]
    assert await notify.pool.fetchval("SELECT webhook_disabled_at FROM notify.agencies WHERE id = 'gone'")


async def test_a_private_address_is_refused_unless_the_jurisdiction_allows_it(
    notify: Notify, receiver: Receiver
):
    offer = await notify.offer("guarded")
    await eventually(partial(outcomes, notify, offer.assignment_id), failed_at_once)
    assert receiver.seen == []
    error = await notify.pool.fetchval(
        "SELECT error FROM notify.deliveries WHERE assignment_id = $1::uuid", offer.assignment_id
    )
    assert "not allowed" in error and "127.0.0.1" in error


async def test_an_endpoint_that_keeps_failing_is_given_up_after_a_bounded_time_with_an_alert(
    notify: Notify, receiver: Receiver
):
    offer = await notify.offer("down")
    record = await eventually(
        partial(outcomes, notify, offer.assignment_id),
        lambda r: bool(r) and r[-1][2] == "failed",
        what="the final failure",
    )
    assert all(outcome == "retrying" for _, _, outcome in record[:-1]) and len(record) >= 2
    assert len(receiver.answered("down", 503)) == len(record)

    topic = notify.settings.topic(NOTIFICATIONS_FAILED)

    async def failed() -> list[dict[str, Any]]:
        records = await read_topic(notify.settings, topic, 1000, timeout_s=1)
        data = [json.loads(r.value)["data"] for r in records]
        return [d for d in data if d["assignment_id"] == offer.assignment_id]

    published = await eventually(failed, lambda d: len(d) == len(record))
    assert [d["will_retry"] for d in published] == [True] * (len(record) - 1) + [False]
    async with notify.http() as http:
        metrics = (await http.get("/metrics")).text
    assert 'careroute_notifications_total{channel="webhook",outcome="failed"}' in metrics


async def test_a_queued_message_wakes_the_sender_which_otherwise_sleeps_until_the_next_is_due(
    settings: Settings, receiver: Receiver
):
    # Tried: a sender whose poll is 30 s (so asleep between messages for its 5 s check at most).
    # Each of three offers is sent within a second of being queued: the queuing transaction's
    # NOTIFY woke it (asleep for the check alone, each would wait 0-5 s, all three under a second
    # about one time in a hundred). Then, idle with a head retrying in 60 s and a message due now
    # queued behind it, the sender is next due in about 60 s, not now.
    hook = {"url": receiver.url("prompt"), "secret": receiver.secrets["prompt"], "allow_private": True}
    agencies = [{"id": "prompt", "channels": ["webhook"], "webhook": hook}]
    tuned = NotifySettings(repage_every_s=3600, webhook_poll_s=30)
    async with running_notify(settings, jurisdiction(agencies), tuned) as notify:
        for n in range(3):
            offer = await notify.offer("prompt")
            await eventually(partial(receiver.taken, "prompt"), partial(_has, n + 1))
            waited = await notify.pool.fetchval(
                "SELECT extract(epoch FROM d.at - q.created_at) FROM notify.deliveries d"
                " JOIN notify.webhook_queue q USING (notification_id) WHERE d.assignment_id = $1::uuid",
                offer.assignment_id,
            )
            assert waited < 1, (n, waited)
        await eventually(
            partial(
                notify.pool.fetchval, "SELECT count(*) FROM notify.webhook_queue WHERE state = 'pending'"
            ),
            lambda left: left == 0,
        )
        call, assignment = offer.call_id, offer.assignment_id
        await notify.pool.execute(
            "INSERT INTO notify.webhook_queue"
            " (notification_id, agency_id, call_id, assignment_id, kind, body, next_attempt_at) VALUES"
            " (gen_random_uuid(), 'prompt', $1::uuid, $2::uuid, 'updated', '', now() + interval '60 s'),"
            " (gen_random_uuid(), 'prompt', $1::uuid, $2::uuid, 'updated', '', now())",
            call,
            assignment,
        )
        assert 55 < (await repository.next_webhook_due_in_s(notify.pool) or 0) <= 60
        await notify.pool.execute("DELETE FROM notify.webhook_queue WHERE state = 'pending'")


def _has(count: int, seen: list[Any]) -> bool:
    return len(seen) == count
