"""An agency's own topic read by an independent client (librdkafka): its own messages, the minimum."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from services.notify.delivery import delivered_id
from services.notify.settings import NotifySettings
from shared.events import SafetyScreen
from shared.kafka import confluent_config
from shared.settings import Settings
from shared.topics import ASSIGNMENTS_OFFERED, NOTIFICATIONS_DELIVERED, agency_topic
from tests.integration.notify_system import Notify, jurisdiction, running_notify
from tests.support import eventually, read_topic

pytestmark = pytest.mark.integration

# What an offer may carry: identifiers to answer with, the deadline, and the minimum a team needs.
MESSAGE_KEYS = {
    *("kind", "assignment_id", "call_id", "team_id", "deadline", "details", "reason", "changed"),
    *("timer", "due_at"),  # a missed timer's
    "offered_with",  # how many teams an offer went to at once (no other team named)
}
DETAIL_KEYS = {"location", "presenting_problem", "language", "safety", "callback_number", "cautions"}
SAFETY_KEYS = set(SafetyScreen.model_fields)


@pytest.fixture
async def notify(settings: Settings) -> AsyncIterator[Notify]:
    agencies: list[dict[str, Any]] = [
        {"id": "north", "channels": ["kafka"], "partitions": 2},
        {"id": "south", "channels": ["kafka"]},
    ]
    async with running_notify(
        settings, jurisdiction(agencies), NotifySettings(repage_every_s=3600, expiry_interval_s=0.2)
    ) as n:
        yield n


@dataclass
class Read:
    """One message as the agency's consumer saw it."""

    key: bytes
    value: bytes
    partition: int
    offset: int

    @property
    def data(self) -> dict[str, Any]:
        return dict(json.loads(self.value)["data"])


def follow(settings: Settings, topic: str, count: int, timeout_s: float = 60) -> list[Read]:
    """Read `count` messages from the start of `topic` as an agency's own librdkafka consumer would."""
    consumer = Consumer(
        {
            **confluent_config(settings),
            "group.id": f"agency-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
        }
    )
    consumer.subscribe([topic])
    messages: list[Read] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(messages) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            assert message.error() is None, message.error()
            key, value = message.key(), message.value()
            assert isinstance(key, bytes) and isinstance(value, bytes)
            messages.append(Read(key, value, message.partition() or 0, message.offset() or 0))
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        total = 0
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            total += high - low
        assert total == len(messages), f"{topic} holds {total} messages, {len(messages)} were expected"
    finally:
        consumer.close()
    return messages


async def test_the_agency_topic_carries_only_its_own_offers_withdrawals_and_expiries_and_only_the_minimum(
    notify: Notify,
):
    leaky = {"caller_name": "Jane Roe", "narrative": "free text that must stay in intake"}
    first = await notify.offer("north", extra=leaky)
    other = await notify.offer("south")
    # Notify expires an unanswered offer at its deadline itself, and tells the agency.
    second = await notify.offer("north", deadline_s=3)
    for offer in (first, second):
        await eventually(partial(notify.status, offer.assignment_id), lambda s: s == "offered")
    await notify.withdraw(first)
    await eventually(
        partial(notify.status, second.assignment_id), lambda s: s == "expired", what="the expiry"
    )
    # A withdrawal that overtakes its offer (another topic) keeps the offer from ever going out.
    overtaken = await notify.offer("north", publish=False)
    await notify.withdraw(overtaken)
    await eventually(
        lambda: notify.pool.fetchval(
            "SELECT count(*) FROM notify.taken_back WHERE assignment_id = $1::uuid", overtaken.assignment_id
        ),
        lambda n: n == 1,
    )
    await notify.publish(ASSIGNMENTS_OFFERED, overtaken.event)
    await eventually(lambda: notify.status(overtaken.assignment_id), lambda s: s == "withdrawn")

    south = await asyncio.to_thread(follow, notify.settings, notify.settings.topic(agency_topic("south")), 1)
    assert [m.data["assignment_id"] for m in south] == [other.assignment_id]
    north = await asyncio.to_thread(follow, notify.settings, notify.settings.topic(agency_topic("north")), 4)

    seen = sorted((m.data["assignment_id"], m.data["kind"]) for m in north)
    assert seen == sorted(
        [
            (first.assignment_id, "offered"),
            (first.assignment_id, "withdrawn"),
            (second.assignment_id, "offered"),
            (second.assignment_id, "expired"),
        ]
    )
    for message in north:
        envelope = json.loads(message.value)
        data = envelope["data"]
        assert message.key.decode() == data["call_id"] == envelope["subject"]
        assert envelope["type"] == "agency.assignments.v1"
        assert set(data) <= MESSAGE_KEYS, set(data) - MESSAGE_KEYS
        assert b"Jane Roe" not in message.value and b"free text" not in message.value
        if data["kind"] == "offered":
            assert data["deadline"] and set(data["details"]) == DETAIL_KEYS
            assert set(data["details"]["safety"]) == SAFETY_KEYS
            shown = {k for k, v in data["details"]["location"].items() if v is not None}
            assert shown <= {"lat", "lon", "address", "coordinates_known", "uncertainty_m"}, shown
            assert data["details"]["language"] == "es"
            assert data["details"]["callback_number"] == "+15415550123"
        else:
            assert data.get("details") is None
    # A call's messages keep their order: one call, one partition.
    by_call: dict[bytes, list[str]] = {}
    for message in sorted(north, key=lambda m: (m.partition, m.offset)):
        by_call.setdefault(message.key, []).append(message.data["kind"])
    assert sorted(by_call.values()) == [["offered", "expired"], ["offered", "withdrawn"]]

    # Each message handed to an agency topic is recorded and published for the audit trail.
    delivered = await read_topic(notify.settings, notify.settings.topic(NOTIFICATIONS_DELIVERED), 5)
    outcomes = {
        (d["assignment_id"], d["kind"], d["channel"], d["agency_id"])
        for d in (json.loads(r.value)["data"] for r in delivered)
    }
    assert (first.assignment_id, "offered", "kafka", "north") in outcomes
    assert (second.assignment_id, "expired", "kafka", "north") in outcomes
    assert (other.assignment_id, "offered", "kafka", "south") in outcomes
    rows = await notify.pool.fetch(
        "SELECT channel, kind, outcome FROM notify.deliveries WHERE assignment_id = $1::uuid ORDER BY id",
        first.assignment_id,
    )
    assert [tuple(r) for r in rows] == [
        ("kafka", "offered", "delivered"),
        ("kafka", "withdrawn", "delivered"),
    ]
    # Published by the relay's pass that delivered the message, never queued for a second pass,
    # with the id its message gives: a pass made again after a failure repeats it unchanged.
    queued = "SELECT count(*) FROM notify.outbox WHERE topic = $1"
    assert await notify.pool.fetchval(queued, NOTIFICATIONS_DELIVERED) == 0
    for record in delivered:
        event = json.loads(record.value)
        assert event["id"] == str(delivered_id("kafka", event["data"]["notification_id"]))


DOMAIN_AGENCY = "crisis.metro.example.gov"


@pytest.fixture
async def notify_by_domain(settings: Settings) -> AsyncIterator[Notify]:
    agencies: list[dict[str, Any]] = [
        {"id": DOMAIN_AGENCY, "channels": ["kafka"]},
        {"id": "metro.example.gov", "channels": ["kafka"]},
    ]
    async with running_notify(settings, jurisdiction(agencies), NotifySettings(repage_every_s=3600)) as n:
        yield n


async def test_an_agency_named_by_domain_name_gets_its_own_topic_and_delivery_records(
    notify_by_domain: Notify,
):
    notify = notify_by_domain
    offer = await notify.offer(DOMAIN_AGENCY)
    await eventually(partial(notify.status, offer.assignment_id), lambda s: s == "offered")
    topic = notify.settings.topic(agency_topic(DOMAIN_AGENCY))
    [message] = await asyncio.to_thread(follow, notify.settings, topic, 1)
    assert message.data["assignment_id"] == offer.assignment_id and message.data["kind"] == "offered"
    # The agency id read back from the dotted topic name is the agency's, not a part of it.
    delivered = await read_topic(notify.settings, notify.settings.topic(NOTIFICATIONS_DELIVERED), 1)
    assert {json.loads(r.value)["data"]["agency_id"] for r in delivered} == {DOMAIN_AGENCY}
