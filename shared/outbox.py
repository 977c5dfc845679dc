"""The transactional outbox: events written with the state change, published later by a relay."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import structlog
from aiokafka.errors import KafkaError

from shared.db import check_identifier
from shared.envelope import CONTENT_TYPE, Envelope
from shared.failures import backoff_s, is_transient
from shared.kafka import Publisher
from shared.metrics import OUTBOX_PUBLISHED
from shared.waits import Listener, first_of

log = structlog.get_logger(__name__)


def channel(schema: str) -> str:
    """The NOTIFY channel that wakes `schema`'s relay."""
    return f"{schema}_outbox"


def queue_cte(schema: str, first: int, source: str | None = None) -> str:
    """`queued AS (...)`: a CTE adding one outbox row from parameters $first to $first+3
    (`row_values`), once for each row of the CTE `source` when one is named."""
    select = f"SELECT ${first}, ${first + 1}, ${first + 2}, ${first + 3}::jsonb"
    return (
        f"queued AS (INSERT INTO {check_identifier(schema)}.outbox (topic, key, value, headers)"
        f" {select}{f' FROM {source}' if source else ''} RETURNING id)"
    )


def queue_and_wake(schema: str, first: int) -> str:
    """The end of a WITH statement queuing one event (parameters $first to $first+3, `row_values`)
    and waking the relay at commit (parameter $first+4, `channel(schema)`)."""
    return f"{queue_cte(schema, first)} SELECT pg_notify(${first + 4}, '') FROM queued"


def row_values(event: Envelope, topic: str | None = None, headers: dict[str, str] | None = None) -> list[Any]:
    """The four parameters of `queue_cte` for `event` (topic defaults to its type)."""
    return [
        topic or event.type,
        event.subject,
        event.to_bytes(),
        {"content-type": CONTENT_TYPE, **(headers or {})},
    ]


async def enqueue(
    conn: asyncpg.Connection,
    schema: str,
    event: Envelope,
    *,
    topic: str | None = None,
    headers: dict[str, str] | None = None,
) -> None:
    """Add `event` to the outbox inside the caller's transaction (topic defaults to its type)."""
    # NOTIFY is delivered only when the transaction commits: it wakes the relay at the right moment.
    # One statement for both: a round trip less for every event any service publishes.
    await conn.execute(
        f"WITH {queue_and_wake(schema, 1)}",
        *row_values(event, topic, headers),
        channel(schema),
    )


async def enqueue_many(conn: asyncpg.Connection, schema: str, events: list[Envelope]) -> None:
    """Add `events` to the outbox in this order, in one statement (topics are their types)."""
    if not events:
        return
    rows = [row_values(event) for event in events]
    await conn.execute(
        f"WITH queued AS (INSERT INTO {check_identifier(schema)}.outbox (topic, key, value, headers)"
        " SELECT topic, key, value, headers FROM unnest($1::text[], $2::text[], $3::bytea[], $4::jsonb[])"
        " WITH ORDINALITY AS e (topic, key, value, headers, n) ORDER BY n RETURNING id)"
        " SELECT pg_notify($5, '') FROM (SELECT 1 FROM queued LIMIT 1) any_queued",
        *[list(column) for column in zip(*rows, strict=True)],
        channel(schema),
    )


# What a lost database or broker connection raises: retried, never fatal to the relay.
TRANSIENT: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    KafkaError,
)

# Called in the relay's transaction with the rows the broker has just acknowledged; the events it
# returns are published in the same pass, before the commit. It must write nothing that a later
# pass would publish, and give each event an id that is the same when the rows go again: a pass
# that fails after publishing them is made again, and the consumers' inboxes drop the repeat.
OnPublished = Callable[[asyncpg.Connection, list[asyncpg.Record]], Awaitable[list[Envelope]]]


class OutboxRelay:
    """Publishes one schema's unsent outbox rows with acks=all and marks them sent."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        schema: str,
        publisher: Publisher,
        topic_name: Callable[[str], str],
        *,
        poll_interval_s: float = 1.0,
        listening_poll_s: float = 10.0,
        batch_size: int = 200,
        on_published: OnPublished | None = None,
    ) -> None:
        self._pool = pool
        self._schema = check_identifier(schema)
        self._publisher = publisher
        self._topic_name = topic_name
        self._poll_interval_s = poll_interval_s
        self._listening_poll_s = max(poll_interval_s, listening_poll_s)
        self._batch_size = batch_size
        self._on_published = on_published
        # One statement tries the lead (once, before any row is read) and takes the oldest unsent
        # rows, marked sent. `sent_at IS NULL` again on the row itself: a row another relay marked
        # after this statement's snapshot is checked again at its lock, and skipped.
        # The pass commits without waiting for the WAL flush: what it writes (the marks, and what
        # `on_published` records) is all written again if a crash loses it, when the rows go again,
        # which the consumers' inboxes absorb. set_config in the statement: no round trip more.
        self._take = (
            f"UPDATE {self._schema}.outbox o SET sent_at = now()"
            " WHERE (SELECT pg_try_advisory_xact_lock(hashtext($1)))"
            " AND (SELECT set_config('synchronous_commit', 'off', true) = 'off') AND o.sent_at IS NULL"
            f" AND o.id = ANY(ARRAY(SELECT id FROM {self._schema}.outbox"
            " WHERE sent_at IS NULL ORDER BY id LIMIT $2))"
            " RETURNING o.id, o.topic, o.key, o.value, o.headers"
        )

    async def relay_once(self) -> int:
        """Publish up to one batch of unsent rows, oldest first; return how many were published.

        Rows are picked by `sent_at IS NULL`, never by `id > last_seen`: ids are taken at insert
        time but rows become visible at commit, so a row that commits after a higher id was already
        published is still found on a later pass. The advisory lock keeps one relay per schema
        active, so two replicas never publish the same call's events out of order.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            # RETURNING keeps no order: sorted, the rows go out oldest first.
            rows = sorted(
                await conn.fetch(self._take, f"outbox:{self._schema}", self._batch_size),
                key=lambda r: r["id"],
            )
            if not rows:
                return 0
            # The marks commit only after the broker acknowledged every record (acks=all); a failure
            # rolls back, and the rows go again: at-least-once, made exact by consumers' inboxes.
            await self._publish([(r["topic"], r["key"], bytes(r["value"]), r["headers"]) for r in rows])
            if self._on_published is not None:
                followers = await self._on_published(conn, rows)
                await self._publish([row_values(event) for event in followers])
        OUTBOX_PUBLISHED.labels(schema=self._schema).inc(len(rows))
        return len(rows)

    async def _publish(self, messages: list[Sequence[Any]]) -> None:
        """Send each (topic, key, value, headers), in this order, and wait for every acknowledgement."""
        futures = []
        for topic, key, value, headers in messages:
            futures.append(
                await self._publisher.send(
                    self._topic_name(topic),
                    value=value,
                    key=key.encode(),
                    headers=[(k, str(v).encode()) for k, v in headers.items()],
                )
            )
        await asyncio.gather(*futures)

    async def purge_sent(self, older_than_s: int = 3600) -> None:
        """Delete rows published long ago."""
        async with self._pool.acquire() as conn:
            await conn.execute(
                f"DELETE FROM {self._schema}.outbox"
                " WHERE sent_at IS NOT NULL AND sent_at < now() - make_interval(secs => $1)",
                older_than_s,
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Relay until `stop` is set, woken by NOTIFY and by a periodic poll.

        Every transaction that queues a row sends the NOTIFY, so while the LISTEN connection lives
        the poll is only a safety net (`listening_poll_s`); without it, `poll_interval_s` is all.
        """
        listener = Listener(self._pool, channel(self._schema))
        passes = failures = 0
        try:
            while not stop.is_set():
                # A terminated connection (failover, pg_terminate_backend) is replaced, not fatal.
                listening = await listener.listening()
                listener.woken.clear()
                try:
                    published = await self.relay_once()
                    passes += 1
                    failures = 0
                    if passes % 1000 == 0:
                        await self.purge_sent()
                except TRANSIENT as exc:
                    # The database or broker is away: keep the rows and try again after a backoff
                    # (doubling to 5 s); NOTIFY cannot wake us then, the LISTEN connection is lost.
                    failures += 1
                    level = log.warning if is_transient(exc) else log.error
                    level("outbox relay failed; will retry", schema=self._schema, error=repr(exc))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=backoff_s(failures, base_s=0.2))
                    continue
                # A full batch may have more behind it. After a partial one, a row committed since
                # the pass's snapshot has sent a NOTIFY that set the wake: another pass for nothing
                # would be three round trips per event at low rates.
                if published >= self._batch_size:
                    continue
                poll_s = self._listening_poll_s if listening else self._poll_interval_s
                await first_of(stop, listener.woken, timeout_s=poll_s)
            # One last pass publishes what the final requests before shutdown wrote.
            with contextlib.suppress(*TRANSIENT):
                await self.relay_once()
        finally:
            await listener.close()
