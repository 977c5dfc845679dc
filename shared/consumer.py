"""The consumer loop: manual commits, the inbox, bounded retries with backoff, and a dead-letter topic."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from shared import inbox
from shared.envelope import Envelope
from shared.kafka import Publisher
from shared.metrics import EVENTS_DEAD_LETTERED, EVENTS_DUPLICATE, EVENTS_PROCESSED, EVENTS_RETRIED
from shared.topics import UndecodableEvent, decode, dlq_topic

log = structlog.get_logger(__name__)

Handler = Callable[[asyncpg.Connection, Envelope, Any], Awaitable[None]]
# Takes a run of events at once, in order, in one transaction (audit appends them in one statement).
BatchHandler = Callable[[asyncpg.Connection, list[tuple[Envelope, Any]]], Awaitable[None]]
Decoded = tuple[ConsumerRecord[Any, Any], Envelope, Any]


class PermanentError(Exception):
    """A handler's verdict that this event can never succeed: dead-letter it without retrying."""


class EventConsumer:
    """Consumes logical topics into handlers, each effect in one transaction with its inbox row.

    The offset of a record is committed only after its transaction committed, so a crash between
    the two redelivers the record, and the inbox makes the second delivery a no-op.

    Fetched records are applied in runs of up to `batch_size` in one transaction
    (one BEGIN, one inbox insert and one COMMIT for the run instead of for each record). If a run
    fails, it is rolled back whole and its records are applied again one at a time, with retries
    and dead-lettering, so one bad event never takes its neighbours with it.
    """

    def __init__(
        self,
        *,
        group: str,
        schema: str,
        pool: asyncpg.Pool,
        publisher: Publisher,
        bootstrap_servers: str,
        handlers: Mapping[str, Handler],
        topic_name: Callable[[str], str],
        max_attempts: int = 5,
        retry_base_s: float = 0.2,
        fetch_max_wait_ms: int = 20,
        session_timeout_ms: int = 6000,
        batch_size: int = 100,
        batch_handler: BatchHandler | None = None,
        commit_interval_s: float = 0.2,
    ) -> None:
        self.group = group
        self._schema = schema
        self._pool = pool
        self._publisher = publisher
        self._handlers = dict(handlers)
        self._by_physical = {topic_name(t): t for t in handlers}
        self._max_attempts = max_attempts
        self._retry_base_s = retry_base_s
        self._batch_size = max(1, batch_size)
        self._batch_handler = batch_handler
        self._commit_interval_s = commit_interval_s
        # Subjects (call ids) with a dead-lettered event: their later events follow it to the
        # dead-letter topic rather than overtake it.
        self._parked: set[str] = set()
        self.running = False
        self._consumer = AIOKafkaConsumer(
            *self._by_physical,
            bootstrap_servers=bootstrap_servers,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=fetch_max_wait_ms,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(300, session_timeout_ms // 3),
            max_poll_records=200,
        )

    async def is_running(self) -> bool:
        """Readiness: the consume loop is running."""
        return self.running

    async def start(self) -> None:
        """Connect and join the group."""
        await self._consumer.start()

    async def stop(self) -> None:
        """Leave the group and close the connection."""
        self.running = False
        await self._consumer.stop()

    async def run(self, stop: asyncio.Event) -> None:
        """Process batches until `stop` is set; the current run finishes and is committed.

        Offsets are committed at most every `commit_interval_s` (and when stopping): each commit
        is a broker request, and under load one per run cost more broker CPU than the records.
        A crash loses only the commit, never an effect: the records come again and the inbox
        drops them.
        """
        self.running = True
        clock = asyncio.get_running_loop().time
        pending: dict[TopicPartition, int] = {}
        last_commit = clock()
        try:
            while not stop.is_set():
                batches = await self._consumer.getmany(timeout_ms=200)
                records = [r for partition in batches.values() for r in partition]
                pending.update(await self._process_records(records, stop))
                if pending and clock() - last_commit >= self._commit_interval_s:
                    await self.commit_offsets(pending)
                    pending, last_commit = {}, clock()
            if pending:
                await self.commit_offsets(pending)
        finally:
            self.running = False

    async def _process_records(
        self, records: list[ConsumerRecord[Any, Any]], stop: asyncio.Event
    ) -> dict[TopicPartition, int]:
        """Apply fetched records in order (runs across partitions; order matters only within one);
        the offset to commit for each partition, past its last record applied."""
        done: dict[TopicPartition, int] = {}
        run: list[Decoded] = []
        for record in records:
            if stop.is_set():
                break
            decoded = self._decode(record)
            if isinstance(decoded, str) or decoded[1].subject in self._parked:
                # Undecodable or parked: what came before is applied first, then this goes alone.
                await self._apply_run(run)
                run = []
                await self._apply_one(record, decoded)
            else:
                run.append(decoded)
                if len(run) >= self._batch_size:
                    await self._apply_run(run)
                    run = []
            done[TopicPartition(record.topic, record.partition)] = record.offset + 1
        await self._apply_run(run)
        return done

    def _decode(self, record: ConsumerRecord[Any, Any]) -> Decoded | str:
        """The record with its envelope and payload, or why it cannot be read."""
        logical = self._by_physical.get(record.topic, record.topic)
        try:
            envelope, payload = decode(record.value)
        except UndecodableEvent as exc:
            return str(exc)
        if envelope.type != logical:
            return f"event type {envelope.type!r} on topic {logical!r}"
        return record, envelope, payload

    async def _apply_run(self, run: list[Decoded]) -> None:
        """A run in one transaction; if that fails, each record on its own (retries, dead letters)."""
        if not run:
            return
        if len(run) > 1:
            try:
                await self._apply_many([(envelope, payload) for _, envelope, payload in run])
                return
            except Exception as exc:  # noqa: BLE001 - whatever failed, the records go one by one
                log.info("a run of events failed together; applying them one by one", error=repr(exc))
        for decoded in run:
            await self._apply_one(decoded[0], decoded)

    async def _apply_many(self, items: list[tuple[Envelope, Any]]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            claimed = await inbox.claim(conn, self._schema, [envelope for envelope, _ in items])
            fresh: list[tuple[Envelope, Any]] = []
            for envelope, payload in items:
                if str(envelope.id) in claimed:
                    claimed.discard(str(envelope.id))  # a second copy in the same run is a duplicate
                    fresh.append((envelope, payload))
            if self._batch_handler is not None:
                if fresh:
                    await self._batch_handler(conn, fresh)
            else:
                for envelope, payload in fresh:
                    await self._handlers[envelope.type](conn, envelope, payload)
        applied = {id(envelope) for envelope, _ in fresh}
        for envelope, _ in items:
            counter = EVENTS_PROCESSED if id(envelope) in applied else EVENTS_DUPLICATE
            counter.labels(group=self.group, type=envelope.type).inc()

    async def commit_offsets(self, offsets: dict[TopicPartition, int]) -> None:
        """Commit partitions' offsets in one request; a lost partition's commit fails harmlessly
        (its records come again to the new owner, whose inbox drops them)."""
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError as exc:
            log.warning("offset commit failed after a rebalance", group=self.group, error=str(exc))

    async def _apply_one(self, record: ConsumerRecord[Any, Any], decoded: Decoded | str) -> None:
        """One record in its own transaction, retried with backoff, else dead-lettered."""
        if isinstance(decoded, str):
            await self._dead_letter(record, "undecodable", decoded)
            return
        _, envelope, payload = decoded
        if envelope.subject in self._parked:
            await self._dead_letter(record, "parked", "an earlier event of this subject failed")
            return
        for attempt in range(1, self._max_attempts + 1):
            try:
                await self._apply_many([(envelope, payload)])
                return
            except PermanentError as exc:
                await self._dead_letter(record, "rejected", str(exc), envelope.subject)
                return
            except Exception as exc:
                EVENTS_RETRIED.labels(group=self.group).inc()
                if attempt == self._max_attempts:
                    log.exception("handler failed; giving up", group=self.group, type=envelope.type)
                    await self._dead_letter(record, "failed", repr(exc), envelope.subject)
                    return
                delay = self._retry_base_s * 2 ** (attempt - 1)
                log.warning(
                    "handler failed; retrying",
                    group=self.group,
                    type=envelope.type,
                    attempt=attempt,
                    delay_s=delay,
                    error=repr(exc),
                )
                await asyncio.sleep(delay)

    async def _dead_letter(
        self, record: ConsumerRecord[Any, Any], reason: str, error: str, subject: str | None = None
    ) -> None:
        if subject is not None and reason != "parked":
            self._parked.add(subject)
        headers = [
            ("dlq-origin-topic", record.topic.encode()),
            ("dlq-origin-partition", str(record.partition).encode()),
            ("dlq-origin-offset", str(record.offset).encode()),
            ("dlq-group", self.group.encode()),
            ("dlq-reason", reason.encode()),
            ("dlq-error", error[:2000].encode()),
            ("dlq-failed-at", datetime.now(UTC).isoformat().encode()),
            *[(k, v) for k, v in (record.headers or ()) if not k.startswith("dlq-")],
        ]
        # Wait for the broker's acknowledgement before the offset can move past this record.
        while True:
            try:
                future = await self._publisher.send(
                    dlq_topic(self.group), value=record.value, key=record.key, headers=headers
                )
                await future
                break
            except KafkaError as exc:
                log.warning("dead-letter publish failed; retrying", error=repr(exc))
                await asyncio.sleep(1)
        EVENTS_DEAD_LETTERED.labels(group=self.group, reason=reason).inc()
        log.error(
            "event dead-lettered",
            group=self.group,
            reason=reason,
            error=error,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )


async def stop_quietly(consumer: EventConsumer) -> None:
    """Stop a consumer during shutdown without masking the error that caused it."""
    with contextlib.suppress(KafkaError, OSError):
        await consumer.stop()
