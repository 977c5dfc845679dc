"""A real PostgreSQL outage (immediate stop, down longer than any retry budget, started again):
consumers wait it out in order, nothing is dead-lettered, and HTTP answers 503, never 500."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from shared import events, outbox, runtime, topics
from shared.consumer import EventConsumer
from shared.db import create_pool, migrate
from shared.envelope import Envelope, new_event
from shared.http import make_app
from shared.kafka import client_options, ensure_topics
from shared.outbox import OutboxRelay
from shared.settings import Settings
from shared.topics import dlq_topic
from tests.conftest import RUN_DIR
from tests.integration import messaging
from tests.integration.private_pg import PrivatePostgres
from tests.integration.test_messaging import committed_offset
from tests.support import eventually, read_topic
from tools.infra import InfraEndpoints
from tools.system import System

pytestmark = pytest.mark.integration

SCHEMA = "t_outage"
# Longer than the consumer's old retry budget (five attempts from 0.2 s, about 3 s) by far.
DOWN_S = 9


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres(RUN_DIR / f"private-pg-{uuid.uuid4().hex[:8]}")
    pg.start()
    try:
        yield pg
    finally:
        pg.close()


def _settings(stack: InfraEndpoints, pg: PrivatePostgres, namespace: str) -> Settings:
    return Settings(
        database_url=pg.url,
        kafka_bootstrap_servers=stack.kafka_bootstrap_servers,
        kafka_broker=stack.broker,
        kafka_namespace=namespace,
        kafka_session_timeout_ms=3000,
        log_json=False,
    )


async def _in_order(conn: asyncpg.Connection, event: Envelope, _: object) -> None:
    await conn.execute(
        f"INSERT INTO {SCHEMA}.effects (event_id, subject) VALUES ($1, $2)", event.id, event.subject
    )


def _cancelled(subject: str) -> Envelope:
    return new_event(
        topics.CALLS_CANCELLED, "intake", subject, events.CallCancelled(call_id=subject, psap_id="p")
    )


async def test_a_postgresql_crash_longer_than_the_retry_budget_loses_nothing_and_keeps_order(
    stack: InfraEndpoints, namespace: str, private_pg: PrivatePostgres, producer: AIOKafkaProducer
) -> None:
    """Tried: PostgreSQL stopped with `-m immediate` under a running consumer and outbox relay,
    kept down 9 s while twelve events of one call arrive, then started again. Before the change the
    consumer gave up after five attempts (~3 s), dead-lettered the first event and parked the call
    in memory, so the other eleven followed it to `dlq.<group>` and none was applied."""
    settings = _settings(stack, private_pg, namespace)
    group = settings.group("outage")
    await ensure_topics(settings, [settings.topic(topics.CALLS_CANCELLED), dlq_topic(group)])
    pool = await create_pool(private_pg.url)
    await migrate(pool, SCHEMA, [])
    await pool.execute(
        f"CREATE TABLE {SCHEMA}.effects (seq bigserial, event_id uuid NOT NULL, subject text NOT NULL)"
    )
    consumer = EventConsumer(
        group=group,
        schema=SCHEMA,
        pool=pool,
        publisher=producer,
        kafka=client_options(settings),
        handlers={topics.CALLS_CANCELLED: _in_order},
        topic_name=settings.topic,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        fetch_max_wait_ms=50,
    )
    # Polling once a minute: within the test only a NOTIFY on a LISTEN connection can wake it.
    relay = OutboxRelay(pool, SCHEMA, producer, settings.topic, poll_interval_s=60)
    stop = asyncio.Event()
    await consumer.start()
    tasks = [
        asyncio.create_task(runtime.supervise("consumer", consumer.run, stop)),
        asyncio.create_task(runtime.supervise("relay", relay.run, stop)),
    ]
    try:
        warm = _cancelled(f"warm-{uuid.uuid4().hex[:6]}")
        await producer.send_and_wait(
            settings.topic(topics.CALLS_CANCELLED), warm.to_bytes(), key=warm.subject.encode()
        )
        await eventually(lambda: pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.effects"), lambda n: n == 1)

        await asyncio.to_thread(private_pg.crash)
        crashed = time.monotonic()
        call = f"call-{uuid.uuid4().hex[:6]}"
        sent = [_cancelled(call) for _ in range(12)]
        for event in sent:
            await producer.send_and_wait(
                settings.topic(topics.CALLS_CANCELLED), event.to_bytes(), key=call.encode()
            )
            await asyncio.sleep(0.5)
        await asyncio.sleep(max(0.0, DOWN_S - (time.monotonic() - crashed)))
        await asyncio.to_thread(private_pg.start)

        def applied() -> asyncpg.Record:
            return pool.fetch(f"SELECT event_id FROM {SCHEMA}.effects WHERE subject = $1 ORDER BY seq", call)

        rows = await eventually(
            applied, lambda r: len(r) >= len(sent), timeout_s=30, what="every event applied"
        )
        assert [r["event_id"] for r in rows] == [e.id for e in sent]  # each once, in order
        assert await pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.dead_letters") == 0

        # The relay's LISTEN connection came back: a new row is published long before its 60 s poll.
        published = _cancelled(f"after-{uuid.uuid4().hex[:6]}")
        async with pool.acquire() as conn, conn.transaction():
            await outbox.enqueue(conn, SCHEMA, published)
        await eventually(
            lambda: pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.effects WHERE event_id = $1", published.id),
            lambda n: n == 1,
            timeout_s=15,
            what="the relay woken by NOTIFY after the restart",
        )
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await consumer.stop()
        await pool.close()
    assert await read_topic(settings, dlq_topic(group), 1, timeout_s=3) == []


async def test_http_answers_503_with_retry_after_while_postgresql_is_down_and_while_it_starts(
    stack: InfraEndpoints, namespace: str, private_pg: PrivatePostgres
) -> None:
    """Tried: audit run through the runtime on a private PostgreSQL, asked for a call's trail with
    an unknown token (401 while the database answers: the token is looked up in it) while
    PostgreSQL is stopped with `-m immediate`, then while it starts up. The startup window of a
    real crash recovery is a fraction of a second, so the cluster is started held in recovery
    (standby.signal, hot_standby off): it listens and refuses every connection with the real
    CannotConnectNowError (57P03) for as long as the test needs, then is promoted. Before the
    change 57P03 answered 500 (it was not among the errors mapped to 503)."""
    async with (
        System.start(_settings(stack, private_pg, namespace), ["audit"], jurisdiction=None) as system,
        httpx.AsyncClient(base_url=system.url("audit"), timeout=10) as http,
    ):

        async def ask() -> httpx.Response:
            return await http.get("/v1/audit/calls/c-1", headers={"Authorization": "Bearer nobody"})

        assert (await ask()).status_code == 401

        await asyncio.to_thread(private_pg.crash)
        down = await ask()
        assert (down.status_code, down.json()["code"]) == (503, "unavailable"), down.text
        assert down.headers["retry-after"] == "1"

        await asyncio.to_thread(private_pg.start_held_in_startup)
        refused = await private_pg.wait_refusing_with_57p03()
        assert refused.sqlstate == "57P03"
        for _ in range(5):
            starting = await ask()
            assert (starting.status_code, starting.json()["code"]) == (503, "unavailable"), starting.text
            assert starting.headers["retry-after"] == "1"

        await asyncio.to_thread(private_pg.promote)
        await eventually(lambda: ask(), lambda r: r.status_code == 401, timeout_s=30, what="back to 401")


@pytest.mark.parametrize(
    ("sqlstate", "status", "code"),
    [
        ("57P03", 503, "unavailable"),  # cannot connect now: starting up, shutting down, in recovery
        ("57P01", 503, "unavailable"),  # admin shutdown
        ("57P02", 503, "unavailable"),  # crash shutdown
        ("53300", 503, "unavailable"),  # too many connections
        ("08006", 503, "unavailable"),  # connection failure
        ("40P01", 503, "conflict_retry"),  # deadlock detected
        ("40001", 503, "conflict_retry"),  # serialization failure
        ("23505", 500, None),  # a unique violation is a bug here, and stays a 500
    ],
)
async def test_each_error_the_server_raises_answers_by_its_sqlstate(
    database_url: str, sqlstate: str, status: int, code: str | None
) -> None:
    """Tried: the real PostgreSQL raises each SQLSTATE (RAISE ... USING ERRCODE) inside a route of
    the services' shared app, so asyncpg raises its own class for it, as it does in an outage.
    Before the change 57P03, 57P02, 53300 and both races answered 500."""
    pool = await create_pool(database_url, max_size=1)
    app = make_app("test", {})

    @app.get("/raise")
    async def raise_it() -> None:
        await pool.execute(f"DO $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = '{sqlstate}'; END $$")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            r = await http.get("/raise")
    finally:
        await pool.close()
    assert r.status_code == status
    if code is not None:
        assert r.json()["code"] == code and r.headers["retry-after"] == "1"


async def test_a_consumer_waiting_out_an_outage_stops_at_once_without_passing_the_record(
    settings: Settings, database_url: str, producer: AIOKafkaProducer
) -> None:
    """Tried: a handler whose store is away for good (ConnectionError on every attempt), far past
    the old five attempts; then shutdown. Before the change the event was dead-lettered within a
    second (retry base 0.05 s here) and its offset committed; now it is neither, and the stop is
    honoured within the backoff's cap."""
    attempts = 0

    async def away(conn: asyncpg.Connection, event: Envelope, payload: object) -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionError("the store is away")

    pool = await create_pool(database_url)
    await messaging.prepare(pool)
    await ensure_topics(
        settings,
        [settings.topic(messaging.TOPIC), dlq_topic(settings.group("messaging"))],
    )
    consumer = messaging.consumer(settings, pool, producer, away)
    stop = asyncio.Event()
    await consumer.start()
    task = asyncio.create_task(consumer.run(stop))
    try:
        event = _cancelled("call-away")
        await producer.send_and_wait(settings.topic(messaging.TOPIC), event.to_bytes(), key=b"call-away")
        await eventually(
            lambda: asyncio.sleep(0, attempts), lambda n: n >= 8, what="attempts past the old budget"
        )
        stopping = time.monotonic()
        stop.set()
        await asyncio.wait_for(task, 10)
        assert time.monotonic() - stopping < 6
    finally:
        stop.set()
        await consumer.stop()
    assert await pool.fetchval(f"SELECT count(*) FROM {messaging.SCHEMA}.dead_letters") == 0
    await pool.close()
    assert await committed_offset(settings) in (None, -1)
