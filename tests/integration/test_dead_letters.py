"""A dead letter is durable: recorded with the service's hook, parking its call across restarts,
alarmed, and brought back in order by `careroute dead-letters replay` once the cause is fixed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

from shared import runtime
from shared.consumer import EventConsumer, PermanentError
from shared.db import create_pool, migrate
from shared.envelope import Envelope
from shared.http import make_app
from shared.kafka import client_options, ensure_topics, make_producer
from shared.settings import Settings
from shared.topics import CALLS_CANCELLED, dlq_topic
from tests.integration.test_messaging import Running, cancelled, publish
from tests.support import eventually, read_topic
from tools.system import System

pytestmark = pytest.mark.integration

# The CLI finds dead letters by service; the consumer under test keeps its effects in audit's schema.
SCHEMA, SERVICE = "audit", "audit"
OTHER = "t_other"
ROOT = Path(__file__).parents[2]
CAREROUTE = str(Path(sys.executable).with_name("careroute"))


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.database_url.get_secret_value())
    for schema in (SCHEMA, OTHER):
        await migrate(pool, schema, [])
        await pool.execute(
            f"CREATE TABLE {schema}.effects (seq bigserial, event_id uuid NOT NULL, subject text NOT NULL)"
        )
    await pool.execute(f"CREATE TABLE {SCHEMA}.hook_calls (event_id uuid NOT NULL, xid bigint NOT NULL)")
    yield pool
    await pool.close()


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    groups = [settings.group(SERVICE), settings.group("other")]
    await ensure_topics(settings, [settings.topic(CALLS_CANCELLED), *map(dlq_topic, groups)])
    producer = make_producer(settings)
    await producer.start()
    yield producer
    await producer.stop()


def _consumer(
    settings: Settings,
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
    broken: set[str],
    *,
    service: str = SERVICE,
    schema: str = SCHEMA,
) -> EventConsumer:
    """A consumer of the test topic whose handler refuses the `broken` calls' events; the
    service's hook records each call of it with its transaction id (audit's schema only)."""

    async def apply(conn: asyncpg.Connection, event: Envelope, _: object) -> None:
        if event.subject in broken:
            raise PermanentError("this call's events cannot be applied by this version")
        await conn.execute(
            f"INSERT INTO {schema}.effects (event_id, subject) VALUES ($1, $2)", event.id, event.subject
        )

    return EventConsumer(
        group=settings.group(service),
        schema=schema,
        pool=pool,
        publisher=producer,
        kafka=client_options(settings),
        handlers={CALLS_CANCELLED: apply},
        topic_name=settings.topic,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        fetch_max_wait_ms=50,
        on_dead_letter=_hand_back if schema == SCHEMA else None,
    )


async def _hand_back(conn: asyncpg.Connection, event: Envelope) -> None:
    await conn.execute(f"INSERT INTO {SCHEMA}.hook_calls VALUES ($1, txid_current() % 4294967296)", event.id)


def _other_group(settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer) -> EventConsumer:
    return _consumer(settings, pool, producer, set(), service="other", schema=OTHER)


async def _careroute(settings: Settings, tmp_path: Path, *args: str) -> str:
    env = {**os.environ, **settings.process_env(), "CAREROUTE_RUN_DIR": str(tmp_path / "run")}
    done = await asyncio.to_thread(
        subprocess.run, [CAREROUTE, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _applied(pool: asyncpg.Pool, schema: str, subject: str) -> list[object]:
    rows = await pool.fetch(f"SELECT event_id FROM {schema}.effects WHERE subject = $1 ORDER BY seq", subject)
    return [r["event_id"] for r in rows]


def _open_gauge(settings: Settings) -> float | None:
    return REGISTRY.get_sample_value("careroute_dead_letters_open", {"group": settings.group(SERVICE)})


async def test_a_dead_letter_is_recorded_parks_its_call_across_a_restart_and_replays_in_order(
    settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    """Tried: a handler refuses every event of one call (PermanentError). Its first event is a
    dead letter (row, hook once in that transaction, dlq topic, gauge), the second follows it
    (parked); the consumer restarts and a third event of the call is still parked; the cause is
    fixed and `careroute dead-letters replay --id <the second>` runs as a subprocess: the call's
    three letters come back together, applied once each in order, another group of the topic
    ignores the copies, the park is lifted and a second replay (--all) does nothing. Before the
    change nothing was recorded (no table, no command) and the park lived in memory, so a restart
    applied the third event ahead of the first two."""
    call, other_call = "call-dl", "call-fine"
    first, second, third, after = (cancelled(call) for _ in range(4))
    fine = cancelled(other_call)
    broken = {call}
    async with Running(_other_group(settings, pool, producer)):
        async with Running(_consumer(settings, pool, producer, broken)):
            for event in (first, second, fine):
                await publish(producer, settings, event.to_bytes(), event.subject)
            await eventually(lambda: _applied(pool, SCHEMA, other_call), lambda ids: ids == [fine.id])
            await eventually(
                lambda: pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.dead_letters"), lambda n: n == 2
            )
        letters = await pool.fetch(f"SELECT * FROM {SCHEMA}.dead_letters ORDER BY id")
        assert [(r["event_id"], r["reason"], r["subject"]) for r in letters] == [
            (first.id, "rejected", call),
            (second.id, "parked", call),
        ]
        assert letters[0]["consumer_group"] == settings.group(SERVICE)
        assert letters[0]["origin_topic"] == settings.topic(CALLS_CANCELLED)
        assert bytes(letters[0]["value"]) == first.to_bytes()
        assert "cannot be applied" in letters[0]["error"]
        # The hook ran once per dead letter, in the very transaction that recorded it.
        hooks = await pool.fetch(
            f"SELECT h.event_id, h.xid = d.xmin::text::bigint AS same_tx FROM {SCHEMA}.hook_calls h"
            f" JOIN {SCHEMA}.dead_letters d USING (event_id) ORDER BY d.id"
        )
        assert [(h["event_id"], h["same_tx"]) for h in hooks] == [(first.id, True), (second.id, True)]
        assert _open_gauge(settings) == 2

        # A restarted consumer reads the park from the table: the call's next event waits too.
        async with Running(_consumer(settings, pool, producer, broken)):
            await publish(producer, settings, third.to_bytes(), call)
            await eventually(
                lambda: pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.dead_letters"), lambda n: n == 3
            )
            assert _open_gauge(settings) == 3
        assert await _applied(pool, SCHEMA, call) == []
        dead = await read_topic(settings, dlq_topic(settings.group(SERVICE)), 3)
        assert [dict(r.headers)["dlq-reason"] for r in dead] == [b"rejected", b"parked", b"parked"]
        listed = await _careroute(settings, tmp_path, "dead-letters", "list", "--service", SERVICE)
        assert "3 dead letters, 3 open" in listed and str(first.id) in listed

        broken.clear()  # the cause is fixed
        async with Running(_consumer(settings, pool, producer, broken)):
            replayed = await _careroute(
                settings,
                tmp_path,
                "dead-letters",
                "replay",
                "--service",
                SERVICE,
                "--id",
                str(letters[1]["id"]),
            )
            assert "3 dead letters replayed" in replayed
            await eventually(lambda: _applied(pool, SCHEMA, call), lambda ids: len(ids) >= 3, what="replayed")
            await publish(producer, settings, after.to_bytes(), call)  # the park is lifted
            await eventually(lambda: _applied(pool, SCHEMA, call), lambda ids: len(ids) >= 4, what="after")
            again = await _careroute(
                settings, tmp_path, "dead-letters", "replay", "--service", SERVICE, "--all"
            )
            assert "0 dead letters replayed" in again
            await asyncio.sleep(1)
        assert await _applied(pool, SCHEMA, call) == [first.id, second.id, third.id, after.id]
        assert (
            await pool.fetchval(
                f"SELECT count(*) FROM {SCHEMA}.dead_letters WHERE replayed_at IS NULL OR resumed_at IS NULL"
            )
            == 0
        )
        assert await pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.hook_calls") == 3
        assert _open_gauge(settings) == 0
        # The other group applied every original once and dropped the copies.
        assert await _applied(pool, OTHER, call) == [first.id, second.id, third.id, after.id]


async def test_the_runtime_hands_a_services_on_dead_letter_hook_to_its_consumer(
    settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    """Tried: a service run by the runtime whose ServiceParts carry `on_dead_letter` and whose
    handler refuses an event: the hook runs once, in the transaction that records the letter.
    Before the change ServiceParts had no such field and nothing was recorded."""

    async def refuse(conn: asyncpg.Connection, event: Envelope, _: object) -> None:
        raise PermanentError("never")

    (tmp_path / "migrations").mkdir()

    def build(infra: runtime.Infra) -> runtime.ServiceParts:
        return runtime.ServiceParts(
            name=SERVICE,
            schema=SCHEMA,
            migrations=tmp_path / "migrations",
            app=make_app(SERVICE, {}),
            consumer=infra.consumer(SCHEMA, SERVICE, {CALLS_CANCELLED: refuse}),
            on_dead_letter=_hand_back,
        )

    async with System.start(settings, [SERVICE], jurisdiction=None, builders={SERVICE: build}):
        event = cancelled("call-runtime")
        await publish(producer, settings, event.to_bytes(), event.subject)
        await eventually(
            lambda: pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.dead_letters"), lambda n: n == 1
        )
    hooks = await pool.fetch(
        f"SELECT h.event_id, h.xid = d.xmin::text::bigint AS same_tx FROM {SCHEMA}.hook_calls h"
        f" JOIN {SCHEMA}.dead_letters d USING (event_id)"
    )
    assert [(h["event_id"], h["same_tx"]) for h in hooks] == [(event.id, True)]


async def test_a_replay_that_fails_again_leaves_new_letters_in_order_and_replays_once_fixed(
    settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    """Tried: a call's two dead letters replayed while the cause is still there: the first copy
    fails again and the second must not overtake it, so both become new letters (the old ones
    done with); replayed again once fixed, the two events are applied once, in order."""
    call = "call-twice"
    first, second = cancelled(call), cancelled(call)
    broken = {call}
    async with Running(_consumer(settings, pool, producer, broken)):
        for event in (first, second):
            await publish(producer, settings, event.to_bytes(), call)
        count = f"SELECT count(*) FROM {SCHEMA}.dead_letters"
        await eventually(lambda: pool.fetchval(count), lambda n: n == 2)
        await _careroute(settings, tmp_path, "dead-letters", "replay", "--all")
        await eventually(
            lambda: pool.fetchval(count), lambda n: n == 4, what="the copies dead-lettered again"
        )
        rows = await pool.fetch(
            f"SELECT event_id, reason, replayed_at IS NOT NULL AS replayed, resumed_at IS NOT NULL AS resumed"
            f" FROM {SCHEMA}.dead_letters ORDER BY id"
        )
        assert [tuple(r) for r in rows] == [
            (first.id, "rejected", True, True),
            (second.id, "parked", True, True),
            (first.id, "rejected", False, False),
            (second.id, "parked", False, False),
        ]
        assert _open_gauge(settings) == 2
        broken.clear()
        await _careroute(settings, tmp_path, "dead-letters", "replay", "--all")
        await eventually(lambda: _applied(pool, SCHEMA, call), lambda ids: len(ids) >= 2, what="applied")
        await asyncio.sleep(1)
    assert await _applied(pool, SCHEMA, call) == [first.id, second.id]
    assert await pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.dead_letters WHERE resumed_at IS NULL") == 0
