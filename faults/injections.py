"""The faults, one function each: inject in the middle of a load phase, then heal."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable

import asyncpg

from faults.cluster import Cluster
from shared import topics
from shared.kafka import make_producer

Fault = Callable[[Cluster], Awaitable[str]]


def kill_service(name: str) -> Fault:
    """SIGKILL one service mid-stream and restart it."""

    async def inject(cluster: Cluster) -> str:
        cluster.kill_and_restart(name)
        await cluster.wait_ready()
        return f"SIGKILL {name}, restarted at once"

    return inject


async def kill_broker(cluster: Cluster) -> str:
    """SIGKILL the broker and restart it (Apache Kafka's log is durable)."""
    os.kill(cluster.broker_pid(), signal.SIGKILL)
    await asyncio.sleep(5)
    await asyncio.to_thread(cluster.infra_up)
    return "SIGKILL broker, restarted after 5 s"


async def pause_broker(cluster: Cluster) -> str:
    """SIGSTOP the broker for 30 s, then SIGCONT."""
    pid = cluster.broker_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(30)
    finally:
        os.kill(pid, signal.SIGCONT)
    return "SIGSTOP broker 30 s, SIGCONT"


async def terminate_connections(cluster: Cluster) -> str:
    """pg_terminate_backend on every connection of the system's database, every 2 s for 20 s."""
    killed = 0
    for _ in range(10):
        conn = await asyncpg.connect(cluster.endpoints.database_url)
        try:
            killed += int(
                await conn.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = $1 AND pid <> pg_backend_pid()",
                    cluster.db,
                )
            )
        finally:
            await conn.close()
        await asyncio.sleep(2)
    return f"pg_terminate_backend x10 over 20 s ({killed} connections ended)"


async def pause_consumer(cluster: Cluster) -> str:
    """SIGSTOP one matching replica past its 6 s session timeout, so the group rebalances."""
    cluster.signal("matching", signal.SIGSTOP)
    try:
        await asyncio.sleep(15)
    finally:
        cluster.signal("matching", signal.SIGCONT)
    return "SIGSTOP matching (one of two replicas) 15 s, SIGCONT"


async def poison(cluster: Cluster) -> str:
    """Undecodable and unknown-type messages mixed into two topics."""
    s = cluster.settings
    producer = make_producer(s.kafka_bootstrap_servers)
    await producer.start()
    try:
        for n in range(10):
            for topic in (topics.CALLS_RECEIVED, topics.ASSIGNMENTS_RESPONDED):
                await producer.send_and_wait(s.topic(topic), b"\x00poison " + str(n).encode(), key=b"poison")
    finally:
        await producer.stop()
    return "20 poison messages into calls.received.v1 and assignments.responded.v1"


FAULTS: dict[str, Fault] = {
    **{f"kill-{name}": kill_service(name) for name in ("intake", "matching", "notify", "audit")},
    "kill-broker": kill_broker,
    "pause-broker": pause_broker,
    "terminate-db-connections": terminate_connections,
    "pause-consumer": pause_consumer,
    "poison-messages": poison,
}
