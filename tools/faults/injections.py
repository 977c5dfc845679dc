"""The faults, one function each: inject in the middle of a load phase, then heal."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from shared import topics
from shared.db import connect
from shared.jurisdiction import Jurisdiction
from shared.kafka import client_options
from tools.faults import broker, clock, snapshot
from tools.faults.cluster import Cluster
from tools.faults.races import RaceDriver
from tools.infra.procs import pid_alive, wait_gone


@dataclass
class Context:
    """What a fault hands the checker besides the load: its own calls, findings, expected poison."""

    jurisdiction: Jurisdiction
    seed: int
    call_ids: list[str] = field(default_factory=list)
    findings: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, key, text)
    poisoned: dict[str, int] = field(default_factory=dict)  # logical topic -> poison messages sent
    counts: dict[str, int] = field(default_factory=dict)
    wait_at_rest: Callable[[], Awaitable[int]] | None = None


Step = Callable[[Cluster, Context], Awaitable[str]]


@dataclass(frozen=True)
class Fault:
    """A fault: injected a third into the load (or, `quiet`, once the load is over and at rest),
    and `heal`, when given, run after the load ends."""

    inject: Step
    heal: Step | None = None
    quiet: bool = False


def kill_service(name: str) -> Step:
    """SIGKILL one service mid-stream and restart it."""

    async def inject(cluster: Cluster, ctx: Context) -> str:
        cluster.system.restart(name)
        await cluster.system.wait_ready()
        return f"SIGKILL {name}, restarted at once"

    return inject


def kill_broker(down_s: float) -> Step:
    """SIGKILL the broker and start it again after `down_s` (Apache Kafka's log is durable)."""

    async def inject(cluster: Cluster, ctx: Context) -> str:
        os.kill(cluster.broker_pid(), signal.SIGKILL)
        await asyncio.sleep(down_s)
        await asyncio.to_thread(cluster.infra_up)
        return f"SIGKILL broker, started again after {down_s:.0f} s"

    return inject


async def pause_broker(cluster: Cluster, ctx: Context) -> str:
    """SIGSTOP the broker for 30 s, then SIGCONT."""
    pid = cluster.broker_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(30)
    finally:
        os.kill(pid, signal.SIGCONT)
    return "SIGSTOP broker 30 s, SIGCONT"


def crash_postgres(down_s: float) -> Step:
    """Stop PostgreSQL in immediate mode (SIGQUIT to the postmaster, what `pg_ctl -m immediate`
    sends: no checkpoint, crash recovery at the next start) and start it again after `down_s`."""

    async def inject(cluster: Cluster, ctx: Context) -> str:
        pid = cluster.postgres_pid()
        os.kill(pid, signal.SIGQUIT)
        await asyncio.to_thread(wait_gone, pid, 30)
        if pid_alive(pid):
            raise RuntimeError(f"PostgreSQL {pid} did not stop on SIGQUIT")
        await asyncio.sleep(down_s)
        await asyncio.to_thread(cluster.infra_up)
        return f"PostgreSQL stopped immediately (SIGQUIT), started again after {down_s:.0f} s"

    return inject


async def terminate_connections(cluster: Cluster, ctx: Context) -> str:
    """pg_terminate_backend on every connection of the system's database, every 2 s for 20 s."""
    killed = 0
    for _ in range(10):
        conn = await connect(cluster.endpoints.database_url)
        try:
            killed += int(
                await conn.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = $1 AND pid <> pg_backend_pid()",
                    cluster.system.database_name,
                )
            )
        finally:
            await conn.close()
        await asyncio.sleep(2)
    return f"pg_terminate_backend x10 over 20 s ({killed} connections ended)"


async def pause_consumer(cluster: Cluster, ctx: Context) -> str:
    """SIGSTOP one matching replica past its 6 s session timeout, so the group rebalances."""
    cluster.system.signal("matching", signal.SIGSTOP)
    try:
        await asyncio.sleep(15)
    finally:
        cluster.system.signal("matching", signal.SIGCONT)
    return "SIGSTOP matching (one of two replicas) 15 s, SIGCONT"


async def poison(cluster: Cluster, ctx: Context) -> str:
    """Undecodable and unknown-type messages mixed into two topics."""
    s = cluster.system.settings
    # A plain producer: the poison comes from outside the system, not through its own clients.
    producer = AIOKafkaProducer(**client_options(s), acks="all")
    await producer.start()
    try:
        for n in range(10):
            for topic in (topics.CALLS_RECEIVED, topics.ASSIGNMENTS_RESPONDED):
                await producer.send_and_wait(s.topic(topic), b"\x00poison " + str(n).encode(), key=b"poison")
    finally:
        await producer.stop()
    # Each may land in the dead-letter topic of every group following its topic.
    ctx.poisoned = {topics.CALLS_RECEIVED: 10, topics.ASSIGNMENTS_RESPONDED: 10}
    return "20 poison messages into calls.received.v1 and assignments.responded.v1"


async def races(cluster: Cluster, ctx: Context) -> str:
    """Many calls, each cancelled, updated with a weapon, accepted and reported en route at once."""
    driver = RaceDriver(cluster.system.settings, ctx.jurisdiction, ctx.seed)
    async with driver:
        await driver.races(40)
    ctx.call_ids += driver.call_ids
    ctx.counts.update({f"race_{k}": v for k, v in driver.counts.items()})
    raced = driver.counts["races"]
    return f"40 calls: cancel, weapon update, accept and en route fired together on each ({raced} raced)"


async def create_cancel_restart(cluster: Cluster, ctx: Context) -> str:
    """Calls created and cancelled 20 ms apart while both matching replicas are killed and started
    again one after the other: the second start rebalances the group while a backlog is read, so
    a call's cancel and its creation may be read by different replicas, the cancel first."""
    driver = RaceDriver(cluster.system.settings, ctx.jurisdiction, ctx.seed)
    stop = asyncio.Event()
    async with driver:
        pairs = asyncio.create_task(driver.create_and_cancel(stop, every_s=0.25))
        await asyncio.sleep(2)
        cluster.system.kill("matching")
        cluster.system.kill("matching-2")
        await asyncio.sleep(3)
        cluster.system.spawn("matching")
        await asyncio.sleep(4)
        cluster.system.spawn("matching-2")
        await cluster.system.wait_ready()
        await asyncio.sleep(8)
        stop.set()
        await pairs
    ctx.call_ids += driver.call_ids
    ctx.counts.update({f"pairs_{k}": v for k, v in driver.counts.items()})
    n = len(driver.call_ids)
    return f"{n} calls created and cancelled 20 ms apart while both matching replicas restarted, 4 s apart"


def skew_clock(service: str, offset_s: int) -> tuple[Step, Step]:
    """Restart `service` with its wall clock `offset_s` off (libfaketime) and, after the load, without."""

    async def inject(cluster: Cluster, ctx: Context) -> str:
        env = clock.skewed_env(offset_s)
        in_python = clock.python_skew(env)
        cluster.system.restart(service, env)
        await cluster.system.wait_ready()
        served = await clock.served_skew(cluster.system.url(service))
        if abs(served - offset_s) > 3 or abs(in_python - offset_s) > 3:
            raise RuntimeError(f"the clock of {service} is {served:+.0f} s off, not {offset_s:+d} s")
        return f"{service} restarted with its clock {offset_s:+d} s (its Date header: {served:+.0f} s)"

    async def heal(cluster: Cluster, ctx: Context) -> str:
        cluster.system.restart(service)
        await cluster.system.wait_ready()
        return f"{service} restarted on the true clock"

    return inject, heal


async def replay(cluster: Cluster, ctx: Context) -> str:
    """With the system at rest: stop the services, rewind every consumer group to the beginning,
    start again, and compare every table and topic before and after (a replay has no effect)."""
    dsn = cluster.system.settings.database_url.get_secret_value()
    kafka = cluster.system.settings
    namespace = cluster.system.settings.kafka_namespace
    before = await snapshot.fingerprint(dsn)
    published = await broker.end_offsets(kafka, namespace)
    await cluster.system.stop_services()
    rewound = 0
    for service in ("intake", "matching", "notify", "audit"):
        group = cluster.system.settings.group(service)
        rewound += await broker.rewind(kafka, group)
        left = {tp: n for tp, n in (await broker.committed(kafka, group)).items() if n}
        if left:
            raise RuntimeError(f"{group} was not rewound: {left}")
    cluster.system.start_services()
    await cluster.system.wait_ready()
    if ctx.wait_at_rest is not None:
        await ctx.wait_at_rest()
    after = await snapshot.fingerprint(dsn)
    republished = await broker.end_offsets(kafka, namespace)
    for table in sorted(set(before) | set(after)):
        grew = after.get(table, 0) - before.get(table, 0)
        if grew:
            ctx.findings.append(
                ("duplicated", f"replay:{table}", f"replay: {table} changed by {grew:+d} rows")
            )
    for topic in sorted(set(published) | set(republished)):
        grew = republished.get(topic, 0) - published.get(topic, 0)
        timed = topic.removeprefix(namespace) in snapshot.TIMED_TOPICS
        if grew and not topic.startswith("dlq.") and not timed:
            ctx.findings.append(("duplicated", f"replay:{topic}", f"replay: {grew} new records on {topic}"))
    return f"services stopped, every consumer group rewound to offset 0 ({rewound} partitions), started"


_skew_plus = skew_clock("notify", 60)
_skew_minus = skew_clock("notify", -60)

FAULTS: dict[str, Fault] = {
    **{f"kill-{name}": Fault(kill_service(name)) for name in ("intake", "matching", "notify", "audit")},
    "kill-broker": Fault(kill_broker(5)),
    "pause-broker": Fault(pause_broker),
    "terminate-db-connections": Fault(terminate_connections),
    "pause-consumer": Fault(pause_consumer),
    "poison-messages": Fault(poison),
    "postgres-crash-15s": Fault(crash_postgres(15)),
    "postgres-crash-60s": Fault(crash_postgres(60)),
    "broker-down-60s": Fault(kill_broker(60)),
    "races": Fault(races),
    "create-cancel-matching-restart": Fault(create_cancel_restart),
    "skew-notify+60s": Fault(*_skew_plus),
    "skew-notify-60s": Fault(*_skew_minus),
    "replay": Fault(replay, quiet=True),
}
