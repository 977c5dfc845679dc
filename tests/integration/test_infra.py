"""Integration tests of tools.infra: real PostgreSQL and real brokers on loopback, no Docker."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
import uuid
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.kafka import client_options
from shared.settings import Settings
from tools.infra import (
    InfraEndpoints,
    InfraError,
    choose_broker,
    down,
    free_port,
    read_endpoints,
    status,
    up,
)

pytestmark = pytest.mark.integration


def _free_port_pair() -> int:
    """A free port whose successor is free too (Apache Kafka's controller takes port + 1)."""
    for _ in range(50):
        port = free_port()
        if port < 65535:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _pids(run_dir: Path) -> dict[str, int]:
    report = status(run_dir)
    pids: dict[str, int] = {}
    for name, info in report.items():
        assert isinstance(info, dict)
        assert info["alive"] is True, (name, info)
        pids[name] = int(info["pid"])
    return pids


async def _select_one(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()


async def _round_trip(bootstrap: str) -> bytes:
    topic = f"infra-smoke-{uuid.uuid4().hex[:8]}"
    kafka = client_options(Settings(kafka_bootstrap_servers=bootstrap))
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**kafka, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"hello careroute", key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(**kafka, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
        assert record.value is not None
        return record.value
    finally:
        await consumer.stop()


def _assert_port_taken_fails(run_dir: Path, broker: str, *, pg: bool) -> None:
    """A port held by a foreign listener fails fast, names the port, and starts nothing."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        pg_port, kafka_port = (taken, _free_port_pair()) if pg else (free_port(), taken)
        started = time.monotonic()
        with pytest.raises(InfraError) as caught:
            up(run_dir, broker, pg_port=pg_port, kafka_port=kafka_port)
        assert time.monotonic() - started < 5
        assert str(taken) in str(caught.value)
        assert "taken" in str(caught.value)
    assert status(run_dir) == {}
    assert down(run_dir) == []


def _exercise(tmp_path: Path, broker: str) -> None:
    run_dir = tmp_path / "run"
    pg_port = free_port()
    kafka_port = _free_port_pair()
    all_pids: set[int] = set()
    try:
        first = up(run_dir, broker, pg_port=pg_port, kafka_port=kafka_port)
        assert first == InfraEndpoints(
            database_url=f"postgresql://postgres@127.0.0.1:{pg_port}/postgres",
            kafka_bootstrap_servers=f"127.0.0.1:{kafka_port}",
            broker=broker,
        )
        assert read_endpoints(run_dir) == first
        pids = _pids(run_dir)
        broker_component = "kafka" if broker == "apache" else "tansu"
        assert set(pids) == {"postgres", broker_component}
        all_pids.update(pids.values())

        assert asyncio.run(_select_one(first.database_url)) == 1
        assert asyncio.run(_round_trip(first.kafka_bootstrap_servers)) == b"hello careroute"

        started = time.monotonic()
        second = up(run_dir, broker, pg_port=pg_port, kafka_port=kafka_port)
        assert time.monotonic() - started < 10
        assert second == first
        assert _pids(run_dir) == pids

        _assert_port_taken_fails(tmp_path / "other-pg", broker, pg=True)
        _assert_port_taken_fails(tmp_path / "other-kafka", broker, pg=False)
    finally:
        stopped = down(run_dir)
    assert len(stopped) == 2, stopped
    assert not [pid for pid in all_pids if _running(pid)]
    assert status(run_dir) == {}
    assert read_endpoints(run_dir) is None
    assert down(run_dir) == []


def test_choose_broker_by_name() -> None:
    assert choose_broker("TANSU") == "tansu"
    assert choose_broker(" apache ") == "apache"
    assert choose_broker("external") == "external"
    with pytest.raises(InfraError, match="KAFKA_BROKER"):
        choose_broker("redpanda")


@pytest.mark.parametrize(
    ("on_path", "expected"),
    [({"java", "mvn"}, "apache"), ({"java"}, "tansu"), ({"mvn"}, "tansu"), (set(), "tansu")],
)
@pytest.mark.parametrize("requested", [None, "", "auto", "AUTO"])
def test_choose_broker_auto_is_apache_only_with_java_and_mvn(
    monkeypatch: pytest.MonkeyPatch, on_path: set[str], expected: str, requested: str | None
) -> None:
    """Unset, empty or `auto`: Apache Kafka exactly when both java and mvn are on the PATH."""
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}" if name in on_path else None)
    assert choose_broker(requested) == expected


# Tansu always, and the main broker when it is another one (Apache Kafka where java and mvn exist).
@pytest.mark.parametrize("broker", sorted({"tansu", choose_broker(None)}))
def test_postgres_and_broker(tmp_path: Path, broker: str) -> None:
    _exercise(tmp_path, broker)
