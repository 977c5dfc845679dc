"""A tiny service used by the messaging tests: one table of effects, one consumer on a real topic."""

from __future__ import annotations

import asyncpg

from shared import topics
from shared.consumer import EventConsumer, Handler
from shared.db import migrate
from shared.envelope import Envelope
from shared.kafka import Publisher, client_options
from shared.settings import Settings

SCHEMA = "t_consumer"
TOPIC = topics.CALLS_CANCELLED


async def prepare(pool: asyncpg.Pool) -> None:
    """The platform tables plus a table where each handled event leaves its effect."""
    await migrate(pool, SCHEMA, [])
    await pool.execute(
        f"CREATE TABLE IF NOT EXISTS {SCHEMA}.effects (event_id uuid NOT NULL, subject text NOT NULL)"
    )


async def record_effect(conn: asyncpg.Connection, event: Envelope, _: object) -> None:
    """The effect: one row per handled event (no uniqueness: a second effect would show)."""
    await conn.execute(f"INSERT INTO {SCHEMA}.effects VALUES ($1, $2)", event.id, event.subject)


async def effects(pool: asyncpg.Pool, event_id: object) -> int:
    """How many times an event took effect."""
    return int(await pool.fetchval(f"SELECT count(*) FROM {SCHEMA}.effects WHERE event_id = $1", event_id))


def consumer(
    settings: Settings,
    pool: asyncpg.Pool,
    publisher: Publisher,
    handler: Handler = record_effect,
    commit_interval_s: float = 0.2,
    gather_ms: int = 0,
) -> EventConsumer:
    """A consumer of the test topic in the test's namespace (gathering with `gather_ms`)."""
    return EventConsumer(
        group=settings.group("messaging"),
        schema=SCHEMA,
        pool=pool,
        publisher=publisher,
        kafka=client_options(settings),
        handlers={TOPIC: handler},
        topic_name=settings.topic,
        max_attempts=settings.consumer_max_attempts,
        retry_base_s=settings.consumer_retry_base_s,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        commit_interval_s=commit_interval_s,
        fetch_max_wait_ms=gather_ms or 20,
        gather=gather_ms > 0,
    )
