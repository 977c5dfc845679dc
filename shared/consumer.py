"""The consumer loop: manual commits, the inbox, retries with backoff, and durable dead letters."""

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

from shared import dead_letters, inbox
from shared.envelope import Envelope
from shared.failures import is_transient, wait_backoff
from shared.kafka import Publisher
from shared.metrics import (
    DEAD_LETTERS_OPEN,
    EVENTS_DEAD_LETTERED,
    EVENTS_DUPLICATE,
    EVENTS_PROCESSED,
    EVENTS_RETRIED,
)
from shared.topics import UndecodableEvent, decode, dlq_topic

log = structlog.get_logger(__name__)

Handler = Callable[[asyncpg.Connection, Envelope, Any], Awaitable[None]]
# Takes a run of events at once, in order, in one transaction (audit appends them in one statement).
BatchHandler = Callable[[asyncpg.Connection, list[tuple[Envelope, Any]]], Awaitable[None]]
# Called in the transaction that records a dead letter of a decodable event (e.g. to hand the call back).
DeadLetterHook = Callable[[asyncpg.Connection, Envelope], Awaitable[None]]
Decoded = tuple[ConsumerRecord[Any, Any], Envelope, Any]

# A gathering consumer's fetch is answered once this much is there or its wait is over: at low
# rates the wait ends it, at high rates the size (aiokafka's default partition fetch is 1 MiB).
GATHER_BYTES = 1024 * 1024

# How long one read of fetched records waits: briefly while records flow or a commit is owed (the
# loop commits between reads), long when idle, where each return is a wakeup of an idle service.
BUSY_WAIT_MS = 200
IDLE_WAIT_MS = 5000
# aiokafka's fetch routine re-plans its fetches this often besides when a fetch returns or records
# are taken (200 ms by default): another wakeup a fifth of a second, and only a safety net.
FETCHER_REPLAN_MS = 1000

# Waits between attempts at an outage: doubling from the consumer's retry base up to this.
OUTAGE_BACKOFF_CAP_S = 5.0


class PermanentError(Exception):
    """A handler's verdict that this event can never succeed: dead-letter it without retrying."""


class _Parked(Exception):
    """A run holds an event of a parked subject: it is applied again record by record."""


class EventConsumer:
    """Consumes logical topics into handlers, each effect in one transaction with its inbox row.

    The offset of a record is committed only after its transaction committed, so a crash between
    the two redelivers the record, and the inbox makes the second delivery a no-op.

    Fetched records are applied in runs of up to `batch_size` in one transaction
    (one BEGIN, one inbox insert and one COMMIT for the run instead of for each record). If a run
    fails, it is rolled back whole and its records are applied again one at a time, with retries
    and dead-lettering, so one bad event never takes its neighbours with it.

    A transient failure (`shared.failures.is_transient`: the database or broker away, a deadlock)
    is retried with capped backoff for as long as it lasts, and the consumer never moves past the
    record: an outage is never a reason to dead-letter. Only an event that can never succeed
    (undecodable, `PermanentError`, or any other error `max_attempts` times) becomes a dead letter:
    recorded in `<schema>.dead_letters` in one transaction with the service's `on_dead_letter`
    hook, then copied to `dlq.<group>`. Its subject stays parked (its later events follow it) for
    as long as the row is open, across restarts, until a replay's copy comes back.

    A consumer off every call's path may `gather`: each fetch then waits `fetch_max_wait_ms` or
    for `GATHER_BYTES`, so one run (one transaction, one commit, one broker round trip) takes what
    arrived meanwhile instead of each record alone.
    """

    def __init__(
        self,
        *,
        group: str,
        schema: str,
        pool: asyncpg.Pool,
        publisher: Publisher,
        kafka: Mapping[str, Any],
        handlers: Mapping[str, Handler],
        topic_name: Callable[[str], str],
        max_attempts: int = 5,
        retry_base_s: float = 0.2,
        fetch_max_wait_ms: int = 20,
        gather: bool = False,
        session_timeout_ms: int = 6000,
        batch_size: int = 100,
        batch_handler: BatchHandler | None = None,
        commit_interval_s: float = 0.2,
        on_dead_letter: DeadLetterHook | None = None,
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
        self.on_dead_letter = on_dead_letter
        self.running = False
        self._consumer = AIOKafkaConsumer(
            *self._by_physical,
            **kafka,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=fetch_max_wait_ms,
            fetch_min_bytes=GATHER_BYTES if gather else 1,
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(300, session_timeout_ms // 3),
            max_poll_records=200,
            consumer_timeout_ms=FETCHER_REPLAN_MS,
        )

    async def is_running(self) -> bool:
        """Readiness: the consume loop is running."""
        return self.running

    def assigned(self) -> bool:
        """Whether the group has given this consumer partitions to read."""
        return bool(self._consumer.assignment())

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
        await self._count_open()  # the gauge of a process that restarts with letters open
        await self._rewind()
        stopping = asyncio.ensure_future(stop.wait())
        records: list[ConsumerRecord[Any, Any]] = []
        try:
            while not stop.is_set():
                if records or pending:
                    batches = await self._consumer.getmany(timeout_ms=BUSY_WAIT_MS)
                else:
                    batches = await self._idle_fetch(stopping)
                records = [r for partition in batches.values() for r in partition]
                pending.update(await self._process_records(records, stop))
                if pending and clock() - last_commit >= self._commit_interval_s:
                    if await self.commit_offsets(pending):
                        pending = {}
                    last_commit = clock()
            if pending:
                await self.commit_offsets(pending)
        finally:
            stopping.cancel()
            self.running = False

    async def _idle_fetch(self, stopping: asyncio.Future[Any]) -> dict[TopicPartition, list[Any]]:
        """Wait for records as long as IDLE_WAIT_MS when nothing is owed a commit; `stop` ends the
        wait at once (a fetched record is never lost by that: its offset was not committed)."""
        fetch = asyncio.ensure_future(self._consumer.getmany(timeout_ms=IDLE_WAIT_MS))
        await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if fetch.done():
            return fetch.result()
        fetch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await fetch
        return {}

    async def _rewind(self) -> None:
        """Go back to the committed offsets: when an error ended the last run (and its supervisor
        started this one), the records it had fetched but not finished are fetched again."""
        if not self._consumer.assignment():
            return
        committed = await self._consumer.seek_to_committed()
        never = [tp for tp, offset in committed.items() if not offset]
        if never:
            await self._consumer.seek_to_beginning(*never)

    async def _process_records(
        self, records: list[ConsumerRecord[Any, Any]], stop: asyncio.Event
    ) -> dict[TopicPartition, int]:
        """Apply fetched records in order (runs across partitions; order matters only within one);
        the offset to commit for each partition, past its last record done. When `stop` comes
        while a record waits out an outage, that record and the rest are left for the next start."""
        done: dict[TopicPartition, int] = {}
        run: list[Decoded] = []

        def mark(*finished: ConsumerRecord[Any, Any]) -> None:
            for r in finished:
                done[TopicPartition(r.topic, r.partition)] = r.offset + 1

        async def flush() -> bool:
            nonlocal run
            applied = await self._apply_run(run, stop)
            if applied:
                mark(*(r for r, _, _ in run))
            run = []
            return applied

        for record in records:
            if stop.is_set():
                break
            decoded = self._decode(record)
            if isinstance(decoded, str) or dead_letters.replay_of(record) is not None:
                # Undecodable or a replayed copy: what came before is applied first, then this alone.
                if not await flush() or not await self._apply_one(record, decoded, stop):
                    return done
                mark(record)
            else:
                run.append(decoded)
                if len(run) >= self._batch_size and not await flush():
                    return done
        await flush()
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

    async def _apply_run(self, run: list[Decoded], stop: asyncio.Event) -> bool:
        """A run in one transaction, retried whole while the failure is transient; if it fails
        otherwise (or holds a parked subject), each record on its own. False: stopped first."""
        if not run:
            return True
        if len(run) > 1:
            outage = 0
            while True:
                try:
                    await self._apply_many(run)
                    return True
                except _Parked:
                    break
                except Exception as exc:  # noqa: BLE001 - whatever failed, the records go one by one
                    if not is_transient(exc):
                        log.info("a run of events failed together; applying them one by one", error=repr(exc))
                        break
                    outage += 1
                    self._log_outage(exc, outage, run[0][1])
                    if not await self._wait_out(stop, outage):
                        return False
        for record, envelope, payload in run:
            if not await self._apply_one(record, (record, envelope, payload), stop):
                return False
        return True

    async def _apply_many(self, run: list[Decoded], letter: int | None = None) -> None:
        """Apply a run in one transaction; `_Parked` (rolled back) when a subject of it is parked.
        With `letter`, the run is that dead letter's replayed copy and resumes it."""
        items = [(envelope, payload) for _, envelope, payload in run]
        events = [envelope for envelope, _ in items]
        async with self._pool.acquire() as conn, conn.transaction():
            if letter is None:
                maybe = await inbox.claim_unless_parked(conn, self._schema, self.group, events)
                if maybe is None:
                    raise _Parked
                claimed = maybe
            else:
                await dead_letters.resume(conn, self._schema, letter)
                claimed = await inbox.claim(conn, self._schema, events)
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

    async def commit_offsets(self, offsets: dict[TopicPartition, int]) -> bool:
        """Commit partitions' offsets in one request; whether they were. A lost partition's commit
        fails harmlessly (its records come again to the new owner, whose inbox drops them); one
        the broker could not take now is kept and tried again with the next."""
        try:
            await self._consumer.commit(offsets)
        except CommitFailedError as exc:
            log.warning("offset commit failed after a rebalance", group=self.group, error=str(exc))
        except KafkaError as exc:
            if not is_transient(exc):
                raise
            log.warning("offset commit failed; the broker is unavailable", group=self.group, error=repr(exc))
            return False
        return True

    async def _apply_one(
        self, record: ConsumerRecord[Any, Any], decoded: Decoded | str, stop: asyncio.Event
    ) -> bool:
        """One record in its own transaction: retried through any outage, retried `max_attempts`
        times on another error, else dead-lettered. False: `stop` came first, nothing was done."""
        replayed = dead_letters.replay_of(record)
        if replayed is not None and replayed[0] != self.group:
            # Another group's replay: this group applied the original already, or will reach it.
            return True
        letter = replayed[1] if replayed else None
        if isinstance(decoded, str):
            return await self._dead_letter(record, None, "undecodable", decoded, stop, letter)
        envelope = decoded[1]
        outage = failures = 0
        while True:
            try:
                verdict = await (self._apply_copy(decoded, letter) if letter else self._apply_single(decoded))
            except PermanentError as exc:
                return await self._dead_letter(record, envelope, "rejected", str(exc), stop, letter)
            except Exception as exc:
                EVENTS_RETRIED.labels(group=self.group).inc()
                if is_transient(exc):
                    outage += 1
                    self._log_outage(exc, outage, envelope)
                    if not await self._wait_out(stop, outage):
                        return False
                    continue
                failures += 1
                if failures >= self._max_attempts:
                    log.exception("handler failed; giving up", group=self.group, type=envelope.type)
                    return await self._dead_letter(record, envelope, "failed", repr(exc), stop, letter)
                delay = self._retry_base_s * 2 ** (failures - 1)
                log.warning(
                    "handler failed; retrying",
                    group=self.group,
                    type=envelope.type,
                    attempt=failures,
                    delay_s=delay,
                    error=repr(exc),
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                if stop.is_set():
                    return False
                continue
            if verdict == "park":
                reason = "an earlier event of this subject is a dead letter"
                return await self._dead_letter(record, envelope, "parked", reason, stop, letter)
            if verdict == "drop":
                EVENTS_DUPLICATE.labels(group=self.group, type=envelope.type).inc()
            return True

    async def _apply_single(self, decoded: Decoded) -> str:
        """'applied', or 'park' when its subject is parked."""
        try:
            await self._apply_many([decoded])
        except _Parked:
            return "park"
        return "applied"

    async def _apply_copy(self, decoded: Decoded, letter: int) -> str:
        """A replayed copy of `letter`: 'applied' (and the letter resumed), 'park' or 'drop'."""
        async with self._pool.acquire() as conn, conn.transaction():
            verdict = await dead_letters.claim_copy(conn, self._schema, self.group, letter)
        if verdict == "apply":
            await self._apply_many([decoded], letter)
            await self._count_open()
            return "applied"
        return verdict

    def _log_outage(self, exc: BaseException, attempt: int, envelope: Envelope | None) -> None:
        # The log says it once, then every 20th attempt: an outage of minutes is not a flood.
        if attempt == 1 or attempt % 20 == 0:
            log.warning(
                "a dependency is unavailable; waiting for it, in order",
                group=self.group,
                type=envelope.type if envelope else None,
                attempt=attempt,
                error=repr(exc),
            )

    async def _wait_out(self, stop: asyncio.Event, attempt: int) -> bool:
        return await wait_backoff(stop, attempt, base_s=self._retry_base_s, cap_s=OUTAGE_BACKOFF_CAP_S)

    async def _count_open(self) -> None:
        """Set the gauge of open dead letters from the table (left as it was while the database is away)."""
        try:
            count = await dead_letters.open_count(self._pool, self._schema, self.group)
        except Exception as exc:
            if not is_transient(exc):
                raise
            return
        DEAD_LETTERS_OPEN.labels(group=self.group).set(count)

    async def _dead_letter(
        self,
        record: ConsumerRecord[Any, Any],
        envelope: Envelope | None,
        reason: str,
        error: str,
        stop: asyncio.Event,
        letter: int | None = None,
    ) -> bool:
        """Record the dead letter (and run the service's hook) in one transaction, then copy it to
        `dlq.<group>` and raise the alarm; both wait out an outage. False: `stop` came first."""
        outage = 0
        while True:
            try:
                await self._record_dead_letter(record, envelope, reason, error, letter)
                break
            except Exception as exc:
                if not is_transient(exc):
                    raise
                outage += 1
                self._log_outage(exc, outage, envelope)
                if not await self._wait_out(stop, outage):
                    return False
        headers = [
            ("dlq-origin-topic", record.topic.encode()),
            ("dlq-origin-partition", str(record.partition).encode()),
            ("dlq-origin-offset", str(record.offset).encode()),
            ("dlq-group", self.group.encode()),
            ("dlq-reason", reason.encode()),
            ("dlq-error", error[:2000].encode()),
            ("dlq-failed-at", datetime.now(UTC).isoformat().encode()),
            *dead_letters.original_headers(record.headers),
        ]
        # Wait for the broker's acknowledgement before the offset can move past this record.
        outage = 0
        while True:
            try:
                future = await self._publisher.send(
                    dlq_topic(self.group), value=record.value, key=record.key, headers=headers
                )
                await future
                break
            except KafkaError as exc:
                outage += 1
                log.warning("dead-letter publish failed; retrying", error=repr(exc))
                if not await self._wait_out(stop, outage):
                    return False
        EVENTS_DEAD_LETTERED.labels(group=self.group, reason=reason).inc()
        await self._count_open()
        log.error(
            "event dead-lettered",
            group=self.group,
            reason=reason,
            error=error,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            subject=envelope.subject if envelope else None,
            type=envelope.type if envelope else None,
        )
        return True

    async def _record_dead_letter(
        self,
        record: ConsumerRecord[Any, Any],
        envelope: Envelope | None,
        reason: str,
        error: str,
        letter: int | None,
    ) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            if letter is not None:
                await dead_letters.resume(conn, self._schema, letter)
            new = await dead_letters.record(conn, self._schema, self.group, record, reason, error, envelope)
            if new is None or envelope is None or self.on_dead_letter is None:
                return
            try:
                # A savepoint: a hook that fails for good leaves the dead letter recorded without it.
                async with conn.transaction():
                    await self.on_dead_letter(conn, envelope)
            except Exception as exc:
                if is_transient(exc):
                    raise
                log.exception("dead-letter hook failed", group=self.group, type=envelope.type)


async def stop_quietly(consumer: EventConsumer) -> None:
    """Stop a consumer during shutdown without masking the error that caused it."""
    with contextlib.suppress(KafkaError, OSError):
        await consumer.stop()
