"""The delivery rules of docs/design.md, against the real broker and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaTimeoutError

from shared import events, outbox
from shared.consumer import EventConsumer, PermanentError
from shared.db import create_pool, register_json
from shared.envelope import Envelope, new_event
from shared.kafka import client_options, ensure_topics, make_producer
from shared.outbox import OutboxRelay
from shared.settings import Settings
from shared.topics import dlq_topic
from tests.integration import messaging
from tests.support import Calls, eventually, read_topic

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.database_url.get_secret_value())
    await messaging.prepare(pool)
    yield pool
    await pool.close()


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    await ensure_topics(
        settings,
        [settings.topic(messaging.TOPIC), dlq_topic(settings.group("messaging"))],
    )
    producer = make_producer(settings)
    await producer.start()
    yield producer
    await producer.stop()


def cancelled(subject: str) -> Envelope:
    return new_event(messaging.TOPIC, "intake", subject, events.CallCancelled(call_id=subject, psap_id="p"))


async def publish(producer: AIOKafkaProducer, settings: Settings, value: bytes, key: str) -> None:
    await producer.send_and_wait(settings.topic(messaging.TOPIC), value=value, key=key.encode())


class Running:
    """A consumer running in the background for the duration of a block."""

    def __init__(self, consumer: EventConsumer) -> None:
        self.consumer = consumer
        self.stop = asyncio.Event()

    async def __aenter__(self) -> Running:
        await self.consumer.start()
        self.task = asyncio.create_task(self.consumer.run(self.stop))
        return self

    async def __aexit__(self, *_: object) -> None:
        self.stop.set()
        await self.task
        await self.consumer.stop()


async def test_a_redelivered_event_has_no_second_effect(settings, pool, producer):
    event, sentinel = cancelled("call-1"), cancelled("call-1")
    # The same event delivered twice (as a producer retry or a replay would), then a marker behind it.
    for value in (event.to_bytes(), event.to_bytes(), sentinel.to_bytes()):
        await publish(producer, settings, value, "call-1")
    async with Running(messaging.consumer(settings, pool, producer)):
        await eventually(lambda: messaging.effects(pool, sentinel.id), lambda n: n == 1, what="sentinel")
    assert await messaging.effects(pool, event.id) == 1


async def test_a_transient_failure_is_retried_and_then_processed_once(settings, pool, producer):
    attempts = 0

    async def flaky(conn: asyncpg.Connection, event: Envelope, payload: object) -> None:
        nonlocal attempts
        attempts += 1
        await messaging.record_effect(conn, event, payload)
        if attempts < 3:
            raise ConnectionError("the downstream store blinked")  # rolls the effect back

    event = cancelled("call-2")
    await publish(producer, settings, event.to_bytes(), "call-2")
    async with Running(messaging.consumer(settings, pool, producer, flaky)):
        await eventually(lambda: messaging.effects(pool, event.id), lambda n: n == 1, what="effect")
    assert attempts == 3
    assert await messaging.effects(pool, event.id) == 1


async def test_an_undecodable_message_goes_to_the_dead_letter_topic_and_the_consumer_goes_on(
    settings, pool, producer
):
    after = cancelled("call-3")
    await publish(producer, settings, b"{not json at all", "call-3")
    await publish(producer, settings, after.to_bytes(), "call-3")
    async with Running(messaging.consumer(settings, pool, producer)):
        await eventually(lambda: messaging.effects(pool, after.id), lambda n: n == 1, what="next event")
    [dead] = await read_topic(settings, dlq_topic(settings.group("messaging")), 1)
    headers = {k: v.decode() for k, v in dead.headers}
    assert dead.value == b"{not json at all"
    assert headers["dlq-origin-topic"] == settings.topic(messaging.TOPIC)
    assert headers["dlq-origin-offset"] == "0"
    assert headers["dlq-reason"] == "undecodable"
    assert "not a CloudEvent" in headers["dlq-error"]


async def test_an_outbox_row_that_commits_after_a_later_one_is_still_published(settings, pool, producer):
    early, late = cancelled("call-4"), cancelled("call-5")
    relay = OutboxRelay(pool, messaging.SCHEMA, producer, settings.topic)
    slow = await pool.acquire()
    slow_tx = slow.transaction()
    await slow_tx.start()
    await outbox.enqueue(slow, messaging.SCHEMA, early)  # takes the lower id, commits last
    async with pool.acquire() as fast, fast.transaction():
        await outbox.enqueue(fast, messaging.SCHEMA, late)
    ids = await pool.fetch(f"SELECT id FROM {messaging.SCHEMA}.outbox ORDER BY id")
    assert len(ids) == 1  # the early row is not visible yet
    assert await relay.relay_once() == 1  # publishes the later row
    await slow_tx.commit()
    await pool.release(slow)
    assert await relay.relay_once() == 1  # the early row, committed late, is not skipped
    assert await relay.relay_once() == 0
    records = await read_topic(settings, settings.topic(messaging.TOPIC), 2)
    assert {Envelope.from_bytes(r.value).id for r in records} == {early.id, late.id}
    rows = await pool.fetch(f"SELECT id, sent_at FROM {messaging.SCHEMA}.outbox ORDER BY id")
    assert rows[0]["id"] < rows[1]["id"]
    assert all(r["sent_at"] is not None for r in rows)


class HeldPublisher:
    """A publisher whose acknowledgements wait until the test lets them go, or fail with `error`
    (those of records with `only_key` alone, when given)."""

    def __init__(
        self, producer: AIOKafkaProducer, error: Exception | None = None, only_key: bytes | None = None
    ) -> None:
        self.producer = producer
        self.error = error
        self.only_key = only_key
        self.sending = asyncio.Event()
        self.release = asyncio.Event()

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[object]:
        self.sending.set()
        sent = await self.producer.send(topic, value=value, key=key, headers=headers)

        async def acknowledged() -> object:
            await self.release.wait()
            if self.error is not None and self.only_key in (None, key):
                raise self.error
            return await sent

        return asyncio.ensure_future(acknowledged())


async def unsent(pool: asyncpg.Pool) -> int:
    return await pool.fetchval(f"SELECT count(*) FROM {messaging.SCHEMA}.outbox WHERE sent_at IS NULL")


async def test_while_one_relay_publishes_another_takes_nothing_and_does_not_wait(settings, pool, producer):
    # The rows are marked sent before the broker is asked: until the first relay's acks commit, a
    # second relay (another replica) must neither publish them nor block on them.
    events = [cancelled("call-two-relays") for _ in range(3)]
    async with pool.acquire() as conn, conn.transaction():
        await outbox.enqueue_many(conn, messaging.SCHEMA, events)
    held = HeldPublisher(producer)
    first = asyncio.create_task(OutboxRelay(pool, messaging.SCHEMA, held, settings.topic).relay_once())
    second = OutboxRelay(pool, messaging.SCHEMA, producer, settings.topic)
    try:
        await asyncio.wait_for(held.sending.wait(), 10)
        assert await asyncio.wait_for(second.relay_once(), 2) == 0
        assert await unsent(pool) == 3  # the marks are not visible before the acks
        held.release.set()
        assert await first == 3
    finally:
        held.release.set()
        await asyncio.gather(first, return_exceptions=True)
    assert await second.relay_once() == 0
    records = await read_topic(settings, settings.topic(messaging.TOPIC), 3, key="call-two-relays")
    assert [Envelope.from_bytes(r.value).id for r in records] == [e.id for e in events]


async def test_a_publish_the_broker_refuses_leaves_the_rows_to_go_again(settings, pool, producer):
    event = cancelled("call-refused")
    async with pool.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, messaging.SCHEMA, event)
    refusing = HeldPublisher(producer, error=KafkaTimeoutError())
    refusing.release.set()
    with pytest.raises(KafkaTimeoutError):
        await OutboxRelay(pool, messaging.SCHEMA, refusing, settings.topic).relay_once()
    assert await unsent(pool) == 1
    assert await OutboxRelay(pool, messaging.SCHEMA, producer, settings.topic).relay_once() == 1
    assert await unsent(pool) == 0


async def committed_offset(settings: Settings) -> int | None:
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        # Naming the partitions: Tansu drops the connection when asked for a group's offsets without them.
        topic = settings.topic(messaging.TOPIC)
        partitions = [TopicPartition(topic, p) for p in range(settings.kafka_partitions)]
        offsets = await admin.list_consumer_group_offsets(settings.group("messaging"), partitions=partitions)
    finally:
        await admin.close()
    known = [meta.offset for tp, meta in offsets.items() if tp.topic == settings.topic(messaging.TOPIC)]
    return max(known) if known else None


async def test_a_consumer_killed_before_its_commit_is_redelivered_with_exactly_one_effect(
    settings, pool, producer
):
    event = cancelled("call-6")
    await publish(producer, settings, event.to_bytes(), "call-6")
    env = {
        **os.environ,
        **settings.process_env(),
        "KAFKA_SESSION_TIMEOUT_MS": str(settings.kafka_session_timeout_ms),
    }
    crashed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "tests.integration.crash_consumer"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert crashed.returncode == 17, crashed.stderr.decode()[-2000:]
    # The effect committed, the offset did not: the broker still owes this group the record.
    assert await messaging.effects(pool, event.id) == 1
    assert await committed_offset(settings) in (None, -1)
    async with Running(messaging.consumer(settings, pool, producer)):
        # The new member is redelivered the record and commits past it only after the inbox check.
        await eventually(lambda: committed_offset(settings), lambda o: o == 1, timeout_s=60, what="commit")
    assert await messaging.effects(pool, event.id) == 1
    assert (
        await pool.fetchval(
            f"SELECT count(*) FROM {messaging.SCHEMA}.processed_events WHERE event_id = $1", event.id
        )
        == 1
    )


async def test_a_calls_later_events_do_not_overtake_one_that_failed(settings, pool, producer):
    poisoned, later, other = cancelled("call-7"), cancelled("call-7"), cancelled("call-8")

    async def refuse_first(conn: asyncpg.Connection, event: Envelope, payload: object) -> None:
        if event.id == poisoned.id:
            raise PermanentError("this event can never be applied")
        await messaging.record_effect(conn, event, payload)

    for event in (poisoned, later, other):
        await publish(producer, settings, event.to_bytes(), event.subject)
    async with Running(messaging.consumer(settings, pool, producer, refuse_first)):
        await eventually(lambda: messaging.effects(pool, other.id), lambda n: n == 1, what="other call")
        dead = await read_topic(settings, dlq_topic(settings.group("messaging")), 2)
    # The failed event and the same call's later event wait together in the dead-letter topic, in order.
    assert [Envelope.from_bytes(r.value).id for r in dead] == [poisoned.id, later.id]
    assert [dict(r.headers)["dlq-reason"] for r in dead] == [b"rejected", b"parked"]
    assert await messaging.effects(pool, later.id) == 0


async def test_the_relay_tells_its_service_which_rows_the_broker_acknowledged(settings, pool, producer):
    acknowledged: list[str] = []

    async def on_published(conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> list[Envelope]:
        # Runs in the relay's transaction, after the broker's ack and the rows being marked sent.
        sent = await conn.fetchval(
            f"SELECT count(*) FROM {messaging.SCHEMA}.outbox"
            " WHERE sent_at IS NOT NULL AND id = ANY($1::bigint[])",
            [r["id"] for r in rows],
        )
        assert sent == len(rows)
        acknowledged.extend(str(Envelope.from_bytes(bytes(r["value"])).id) for r in rows)
        return []

    first, second = cancelled("call-9"), cancelled("call-10")
    async with pool.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, messaging.SCHEMA, first, headers={"careroute-page": "2"})
        await outbox.enqueue(conn, messaging.SCHEMA, second)
    relay = OutboxRelay(pool, messaging.SCHEMA, producer, settings.topic, on_published=on_published)
    assert await relay.relay_once() == 2
    assert acknowledged == [str(first.id), str(second.id)]
    records = await read_topic(settings, settings.topic(messaging.TOPIC), 2)
    paged = next(r for r in records if Envelope.from_bytes(r.value).id == first.id)
    assert dict(paged.headers)["careroute-page"] == b"2"


async def test_a_run_of_records_is_applied_in_one_transaction_each_exactly_once(settings, pool, producer):
    transactions: list[int] = []

    async def record_with_txid(conn: asyncpg.Connection, event: Envelope, payload: object) -> None:
        await messaging.record_effect(conn, event, payload)
        transactions.append(await conn.fetchval("SELECT txid_current()"))

    burst = [cancelled(f"call-run-{n}") for n in range(40)]
    for event in burst:  # one key: one partition, fetched together by the consumer that starts next
        await publish(producer, settings, event.to_bytes(), "one-key")
    async with Running(messaging.consumer(settings, pool, producer, record_with_txid)):
        await eventually(lambda: messaging.effects(pool, burst[-1].id), lambda n: n == 1, what="last")
    assert [await messaging.effects(pool, e.id) for e in burst] == [1] * 40
    # Far fewer transactions than records (a transaction per record would give 40).
    assert len(set(transactions)) <= 4, sorted(set(transactions))


@pytest.mark.parametrize("gather_ms", [0, 3000])
async def test_a_gathering_consumer_takes_records_that_trickle_in_as_one_run(
    settings, pool, producer, gather_ms
):
    # Six records 150 ms apart to a consumer already waiting: a plain consumer is answered at
    # each one (a run, a transaction, a commit each); a gathering one (audit's) waits to fill.
    transactions: list[int] = []

    async def record_with_txid(conn: asyncpg.Connection, event: Envelope, payload: object) -> None:
        await messaging.record_effect(conn, event, payload)
        transactions.append(await conn.fetchval("SELECT txid_current()"))

    trickle = [cancelled(f"call-trickle-{gather_ms}-{n}") for n in range(6)]
    consumer = messaging.consumer(settings, pool, producer, record_with_txid, gather_ms=gather_ms)
    async with Running(consumer):
        await eventually(lambda: asyncio.sleep(0, consumer.assigned()), bool, what="partitions assigned")
        await asyncio.sleep(1)  # its first fetch is waiting
        for event in trickle:
            await publish(producer, settings, event.to_bytes(), "one-key")
            await asyncio.sleep(0.15)
        await eventually(lambda: messaging.effects(pool, trickle[-1].id), lambda n: n == 1, what="last")
    assert [await messaging.effects(pool, e.id) for e in trickle] == [1] * 6
    runs = len(set(transactions))
    if gather_ms:
        assert runs <= 2, sorted(set(transactions))
    else:
        assert runs >= 4, sorted(set(transactions))


async def test_a_run_that_fails_is_rolled_back_and_applied_again_record_by_record(settings, pool, producer):
    burst = [cancelled(f"call-redo-{n}") for n in range(30)]
    troubled = burst[17]
    failures = 0

    async def fail_once_at_one(conn: asyncpg.Connection, event: Envelope, payload: object) -> None:
        nonlocal failures
        await messaging.record_effect(conn, event, payload)
        if event.id == troubled.id and failures == 0:
            failures += 1
            raise ConnectionError("the store blinked in the middle of a run")

    for event in burst:
        await publish(producer, settings, event.to_bytes(), "one-key")
    async with Running(messaging.consumer(settings, pool, producer, fail_once_at_one)):
        await eventually(lambda: messaging.effects(pool, burst[-1].id), lambda n: n == 1, what="last")
    # The 17 effects written before the failure were rolled back with it and written once again.
    assert failures == 1
    assert [await messaging.effects(pool, e.id) for e in burst] == [1] * 30


async def test_events_queued_together_are_published_in_their_order_and_wake_the_relay(
    settings, pool, producer
):
    woken = asyncio.Event()

    def wake(*_: object) -> None:
        woken.set()

    listener = await pool.acquire()
    await listener.add_listener(outbox.channel(messaging.SCHEMA), wake)
    try:
        # Eight events of one subject: the relay must publish them in the order they were given.
        batch = [cancelled("call-20") for _ in range(8)]
        async with pool.acquire() as conn, conn.transaction():
            await outbox.enqueue_many(conn, messaging.SCHEMA, batch)
            await outbox.enqueue_many(conn, messaging.SCHEMA, [])  # nothing queued, nothing fails
        await asyncio.wait_for(woken.wait(), 10)
    finally:
        await listener.remove_listener(outbox.channel(messaging.SCHEMA), wake)
        await pool.release(listener)
    relay = OutboxRelay(pool, messaging.SCHEMA, producer, settings.topic)
    assert await relay.relay_once() == 8
    records = await read_topic(settings, settings.topic(messaging.TOPIC), 8)
    assert [Envelope.from_bytes(r.value).id for r in records] == [e.id for e in batch]


async def test_offsets_are_committed_at_most_every_interval_and_when_the_consumer_stops(
    settings, pool, producer
):
    burst = [cancelled(f"call-commit-{n}") for n in range(5)]
    for event in burst:
        await publish(producer, settings, event.to_bytes(), "one-key")
    async with Running(messaging.consumer(settings, pool, producer, commit_interval_s=3600)):
        await eventually(lambda: messaging.effects(pool, burst[-1].id), lambda n: n == 1, what="last")
        await asyncio.sleep(1)  # several passes of the loop: a commit after each run would be there by now
        assert await committed_offset(settings) in (None, -1)
    # Stopping commits what was applied.
    assert await committed_offset(settings) == 5


async def test_a_relay_woken_by_notify_polls_only_as_a_safety_net(settings, pool, producer):
    # The poll is every 0.1 s without a LISTEN connection; with one alive, every 30 s: for 2 s at
    # rest the relay makes its first pass and no more, and a queued row still goes out at once.
    relay = OutboxRelay(
        pool, messaging.SCHEMA, producer, settings.topic, poll_interval_s=0.1, listening_poll_s=30
    )
    passes = Calls(relay, "relay_once")
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(2)
        assert passes.count == 1
        event = cancelled("call-safety-net")
        async with pool.acquire() as conn, conn.transaction():
            await outbox.enqueue(conn, messaging.SCHEMA, event)
        topic = settings.topic(messaging.TOPIC)
        records = await read_topic(settings, topic, 1, timeout_s=10, key="call-safety-net")
        assert [Envelope.from_bytes(r.value).id for r in records] == [event.id]
        # The row was a partial batch: its pass is the only one, no second pass to find nothing.
        await asyncio.sleep(0.5)
        assert passes.count == 2
    finally:
        stop.set()
        await task


async def test_a_relay_goes_on_after_a_full_batch_without_waiting_for_a_wake(settings, pool, producer):
    # Five rows queued together send one NOTIFY. In batches of two, the relay must take three
    # passes at once: the 30 s poll would leave the last three behind.
    relay = OutboxRelay(pool, messaging.SCHEMA, producer, settings.topic, listening_poll_s=30, batch_size=2)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(0.5)
        events = [cancelled("call-full-batch") for _ in range(5)]
        async with pool.acquire() as conn, conn.transaction():
            await outbox.enqueue_many(conn, messaging.SCHEMA, events)
        topic = settings.topic(messaging.TOPIC)
        records = await read_topic(settings, topic, 5, timeout_s=10, key="call-full-batch")
        assert [Envelope.from_bytes(r.value).id for r in records] == [e.id for e in events]
    finally:
        stop.set()
        await task


@pytest.fixture
async def durable_pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """One connection that commits as a deployment's do: the test cluster's default is not to wait."""
    pool = await asyncpg.create_pool(
        settings.database_url.get_secret_value(),
        min_size=1,
        max_size=1,
        init=register_json,
        server_settings={"synchronous_commit": "on"},
    )
    assert pool is not None
    yield pool
    await pool.close()


async def wal_writes(pool: asyncpg.Pool) -> int:
    """How often WAL was written out, this connection's own writes counted so far included."""
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_stat_force_next_flush()")
        return int(await conn.fetchval("SELECT wal_write FROM pg_stat_wal"))


async def test_a_pass_that_only_marks_rows_sent_does_not_wait_for_the_wal(
    settings, pool, producer, durable_pool
):
    # A committing transaction that waits writes the WAL out itself: 40 passes of one row would be
    # 40 writes at least. Not waiting, the WAL writer writes them out a few times a second.
    async with pool.acquire() as conn, conn.transaction():
        await outbox.enqueue_many(conn, messaging.SCHEMA, [cancelled("call-lazy") for _ in range(40)])
    relay = OutboxRelay(durable_pool, messaging.SCHEMA, producer, settings.topic, batch_size=1)
    before = await wal_writes(durable_pool)
    for _ in range(40):
        assert await relay.relay_once() == 1
    assert await wal_writes(durable_pool) - before < 20
    assert await unsent(pool) == 0


async def test_what_the_service_publishes_for_acknowledged_rows_goes_in_the_same_pass(
    settings, pool, producer
):
    # Notify's delivered events: published after the rows' acks and before the commit, so a refusal
    # of one leaves the rows to go again, and the event goes again with its id unchanged.
    leader, follower = cancelled("call-leader"), cancelled("call-follower")

    async def on_published(conn: asyncpg.Connection, rows: list[asyncpg.Record]) -> list[Envelope]:
        return [follower]

    async with pool.acquire() as conn, conn.transaction():
        await outbox.enqueue(conn, messaging.SCHEMA, leader)
    refuses = HeldPublisher(producer, KafkaTimeoutError(), only_key=b"call-follower")
    refuses.release.set()
    refusing = OutboxRelay(pool, messaging.SCHEMA, refuses, settings.topic, on_published=on_published)
    with pytest.raises(KafkaTimeoutError):
        await refusing.relay_once()
    assert await unsent(pool) == 1
    relay = OutboxRelay(pool, messaging.SCHEMA, producer, settings.topic, on_published=on_published)
    assert await relay.relay_once() == 1
    assert await unsent(pool) == 0
    topic = settings.topic(messaging.TOPIC)
    # Both passes sent both: the first one's follower went out, its acknowledgement failed.
    leaders = await read_topic(settings, topic, 2, key="call-leader")
    followers = await read_topic(settings, topic, 2, key="call-follower")
    assert [Envelope.from_bytes(r.value).id for r in leaders] == [leader.id, leader.id]
    assert [Envelope.from_bytes(r.value).id for r in followers] == [follower.id, follower.id]
    assert followers[1].timestamp >= leaders[1].timestamp  # sent after the rows were acknowledged


async def test_an_idle_consumer_takes_a_record_as_it_comes_and_stops_at_once(settings, pool, producer):
    # Idle, the consumer waits for records up to IDLE_WAIT_MS (5 s) at a time: neither a record
    # arriving nor the stop may wait that out.
    consumer = messaging.consumer(settings, pool, producer)
    event = cancelled("call-idle")
    stop = asyncio.Event()
    await consumer.start()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await eventually(lambda: asyncio.sleep(0, consumer.assigned()), bool, what="partitions assigned")
        await asyncio.sleep(1.5)  # into an idle wait
        sent = time.monotonic()
        await publish(producer, settings, event.to_bytes(), "call-idle")
        await eventually(lambda: messaging.effects(pool, event.id), lambda n: n == 1, timeout_s=10)
        assert time.monotonic() - sent < 3
        await asyncio.sleep(1.5)  # idle again
        told = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 10)
        assert time.monotonic() - told < 3
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await consumer.stop()
