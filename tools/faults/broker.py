"""What the broker holds for the checker: every record of some topics, committed offsets and lag."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from shared.kafka import client_options
from shared.settings import Settings


@dataclass(frozen=True)
class Record:
    """One record as read back: where it was, its key, headers and value."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


async def _reader(settings: Settings) -> tuple[AIOKafkaConsumer, set[str]]:
    """A started consumer of no group, and the names of every topic."""
    consumer = AIOKafkaConsumer(**client_options(settings), enable_auto_commit=False, group_id=None)
    await consumer.start()
    return consumer, await consumer.topics()


async def partitions(settings: Settings, names: list[str] | set[str]) -> list[TopicPartition]:
    """Every partition of `names` (a consumer of no group knows no topic's partitions until it reads)."""
    if not names:
        return []
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        described = await admin.describe_topics(sorted(names))
    finally:
        await admin.close()
    return sorted(
        (TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]),
        key=lambda tp: (tp.topic, tp.partition),
    )


async def stop_reader(consumer: AIOKafkaConsumer) -> None:
    """Stop a consumer that may have lived through an outage.

    aiokafka's fetcher, stopped while a fetch is backing off after the broker went away, raises
    the CancelledError of its own cancelled fetch task; that one is not ours to pass on.
    """
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise


async def topic_names(settings: Settings, prefix: str) -> list[str]:
    """Every topic whose name starts with `prefix`."""
    consumer, known = await _reader(settings)
    try:
        return sorted(t for t in known if t.startswith(prefix))
    finally:
        await consumer.stop()


async def read_all(settings: Settings, names: list[str], timeout_s: float = 60) -> list[Record]:
    """Every record of `names`, from the beginning to the end offsets as they were when asked."""
    if not names:
        return []
    tps = await partitions(settings, names)
    if not tps:
        return []
    consumer, _ = await _reader(settings)
    out: list[Record] = []
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        left = {tp for tp, end in ends.items() if end > 0}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while left and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500, max_records=2000)
            for tp, records in batch.items():
                out += [_record(r) for r in records if r.offset < ends[tp]]
                if records and records[-1].offset >= ends[tp] - 1:
                    left.discard(tp)
            for tp in list(left):
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
        if left:
            raise TimeoutError(f"could not read {sorted(str(tp) for tp in left)} to the end")
        return out
    finally:
        await consumer.stop()


def _record(r: ConsumerRecord[Any, Any]) -> Record:
    return Record(
        topic=r.topic,
        partition=r.partition,
        offset=r.offset,
        key=r.key,
        value=r.value,
        headers={k: v for k, v in (r.headers or ())},
    )


async def committed(settings: Settings, group: str) -> dict[TopicPartition, int]:
    """A consumer group's committed offset of each partition it has committed."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        # Bounded: with the group's coordinator unavailable the admin client would retry forever.
        offsets: dict[TopicPartition, OffsetAndMetadata] = await asyncio.wait_for(
            admin.list_consumer_group_offsets(group), 60
        )
    finally:
        await admin.close()
    return {tp: o.offset for tp, o in offsets.items() if o.offset >= 0}


async def lags(
    settings: Settings, groups: dict[str, set[str]], settle_s: float = 0.0
) -> dict[str, dict[str, int]]:
    """Records of each group's topics (group -> names) it has not committed past, by topic
    (uncommitted partitions count whole): the records published before the call that the group
    has still not committed `settle_s` later, so a record a timer publishes (the capacity
    snapshot) just before the read is not taken for a group that stopped."""
    consumer, known = await _reader(settings)
    try:
        tps = await partitions(settings, set().union(*groups.values()) & known) if groups else []
        ends = await consumer.end_offsets(tps) if tps else {}
    finally:
        await consumer.stop()
    await asyncio.sleep(settle_s)
    behind: dict[str, dict[str, int]] = {}
    for group, names in groups.items():
        done = await committed(settings, group)
        mine = behind.setdefault(group, {})
        for tp, end in ends.items():
            if tp.topic in names:
                mine[tp.topic] = mine.get(tp.topic, 0) + max(0, end - done.get(tp, 0))
    return behind


async def end_offsets(settings: Settings, prefix: str) -> dict[str, int]:
    """The sum of the end offsets of each topic under `prefix` (what has been published so far)."""
    consumer, known = await _reader(settings)
    try:
        tps = await partitions(settings, {t for t in known if t.startswith(prefix)})
        ends = await consumer.end_offsets(tps) if tps else {}
    finally:
        await consumer.stop()
    total: dict[str, int] = {}
    for tp, end in ends.items():
        total[tp.topic] = total.get(tp.topic, 0) + end
    return total


async def rewind(settings: Settings, group: str) -> int:
    """Commit offset 0 for every partition `group` has committed (the group must have no members);
    how many partitions were rewound."""
    done = await committed(settings, group)
    if not done:
        return 0
    consumer = AIOKafkaConsumer(**client_options(settings), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(done))
        for attempt in range(20):
            try:
                await consumer.commit({tp: 0 for tp in done})
                break
            except KafkaError:  # the coordinator may still be forgetting the stopped members
                if attempt == 19:
                    raise
                await asyncio.sleep(1)
    finally:
        with contextlib.suppress(KafkaError):
            await consumer.stop()
    return len(done)
