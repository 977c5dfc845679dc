"""The bare baseline: three plain aiokafka produce/consume hops on the same broker, no logic."""

from __future__ import annotations

import asyncio
import struct
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.kafka import client_options, ensure_topics, make_producer
from shared.settings import Settings
from tools.bench.stats import summary

HOPS = 3


async def _forward(
    consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, next_topic: str, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        batch = await consumer.getmany(timeout_ms=100)
        for records in batch.values():
            for record in records:
                await producer.send(next_topic, record.value, key=record.key)


async def bare_latency(
    settings: Settings, rate: int, duration_s: float, fetch_max_wait_ms: int
) -> dict[str, float]:
    """Send `rate` messages a second for `duration_s` through three hops; latency of the last hop's read."""
    prefix = f"bare-{uuid.uuid4().hex[:8]}"
    topics = [f"{prefix}.hop{i}" for i in range(HOPS + 1)]
    await ensure_topics(settings, topics, partitions=3)
    # Same producer and consumer settings as the services (acks=all, manual group, same fetch wait).
    producer = make_producer(settings)
    await producer.start()
    consumers = [
        AIOKafkaConsumer(
            topic,
            **client_options(settings),
            group_id=f"{topic}-group",
            auto_offset_reset="earliest",
            fetch_max_wait_ms=fetch_max_wait_ms,
        )
        for topic in topics
    ]
    for consumer in consumers:
        await consumer.start()
    stop = asyncio.Event()
    forwarders = [
        asyncio.create_task(_forward(consumers[i], producer, topics[i + 1], stop)) for i in range(HOPS)
    ]
    latencies: list[float] = []
    total = int(rate * duration_s)

    async def collect() -> None:
        while len(latencies) < total and not stop.is_set():
            batch = await consumers[HOPS].getmany(timeout_ms=100)
            now = time.perf_counter()
            for records in batch.values():
                for record in records:
                    (sent,) = struct.unpack("!d", record.value[:8])
                    latencies.append((now - sent) * 1000)

    collector = asyncio.create_task(collect())
    try:
        await asyncio.sleep(2)  # group joins
        start = time.perf_counter()
        for n in range(total):
            # Hold the schedule: message n leaves at start + n / rate.
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            payload = struct.pack("!d", time.perf_counter()) + b"x" * 400
            await producer.send(topics[0], payload, key=str(n % 64).encode())
        await asyncio.wait_for(collector, timeout=duration_s + 30)
    finally:
        stop.set()
        collector.cancel()
        await asyncio.gather(*forwarders, collector, return_exceptions=True)
        for consumer in consumers:
            await consumer.stop()
        await producer.stop()
    return summary(latencies)
