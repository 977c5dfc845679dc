"""Kafka helpers: the one producer of a process, topic creation from the registry."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

log = structlog.get_logger(__name__)


class Publisher(Protocol):
    """What the outbox relay and the dead-letter path need from a producer."""

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[object]: ...


def make_producer(bootstrap_servers: str) -> AIOKafkaProducer:
    """A producer that waits for all in-sync replicas (acks=all), without idempotence.

    Idempotence and transactions are off on purpose (DESIGN.md section 4): Tansu lacks them and
    they would not cover the Postgres write; consumers' inboxes make delivery exact instead.
    """
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=False,
        linger_ms=5,
        request_timeout_ms=15000,
        max_request_size=2 * 1024 * 1024,
    )


async def ensure_topics(
    bootstrap_servers: str, names: Iterable[str], *, partitions: int = 3, timeout_s: float = 30.0
) -> None:
    """Create the topics that do not exist yet (replication factor 1 on the local broker)."""
    wanted = sorted(set(names))
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=15000)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in wanted if n not in existing]
        if missing:
            try:
                await admin.create_topics(
                    [NewTopic(n, num_partitions=partitions, replication_factor=1) for n in missing]
                )
            except TopicAlreadyExistsError:
                pass  # another process created them between our list and create
            except KafkaError as exc:
                # Some brokers report per-topic errors as one failure; check what exists now.
                still = [n for n in missing if n not in set(await admin.list_topics())]
                if still:
                    raise RuntimeError(f"could not create topics {still}: {exc!r}") from exc
            log.info("topics created", topics=missing)
    finally:
        await admin.close()
