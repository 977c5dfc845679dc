"""Small helpers the integration and end-to-end tests share."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from shared.kafka import client_options
from shared.settings import Settings

T = TypeVar("T")
# What every test's Settings change: failures noticed and retried fast, logs readable.
TEST_SETTINGS: dict[str, Any] = {
    "kafka_session_timeout_ms": 3000,
    "consumer_retry_base_s": 0.05,
    "log_json": False,
}


async def eventually(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout_s: float = 30, what: str = ""
) -> T:
    """Poll `probe` until `done(result)`; fail with the last result after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await probe()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or 'condition'}; last: {result!r}")
        await asyncio.sleep(0.2)


async def read_topic(
    settings: Settings, topic: str, count: int, timeout_s: float = 30, *, key: str | None = None
) -> list[ConsumerRecord[Any, Any]]:
    """Read `count` records (only those with `key`, when given) from the start of `topic`."""
    consumer = AIOKafkaConsumer(
        topic,
        **client_options(settings),
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        fetch_max_wait_ms=50,
        session_timeout_ms=3000,
        heartbeat_interval_ms=1000,
    )
    await consumer.start()
    records: list[ConsumerRecord[Any, Any]] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for part in batch.values():
                records.extend(r for r in part if key is None or r.key == key.encode())
    finally:
        await consumer.stop()
    return records


class Calls:
    """Counts the calls of one async method of an object, which it wraps in place (a test's probe)."""

    def __init__(self, owner: object, method: str) -> None:
        self.count = 0
        inner = getattr(owner, method)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await inner(*args, **kwargs)

        setattr(owner, method, counted)
