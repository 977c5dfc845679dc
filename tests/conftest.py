"""Test infrastructure: the real broker and PostgreSQL, started once per run; isolation per test.

Each test gets its own database and its own topic and consumer-group namespace, and both are
removed afterwards. A broker or database that cannot start fails the run with the reason; no
test is skipped for missing infrastructure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared.settings import Settings
from tests.support import TEST_SETTINGS
from tools import infra
from tools.system import delete_topics, scratch_database, settings_for

ROOT = Path(__file__).parents[1]
RUN_DIR = Path(os.environ.get("CAREROUTE_TEST_RUN_DIR", ROOT / ".run" / "test"))


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _start(run_dir: Path, broker: str, kafka_port: int, database_url: str | None) -> infra.InfraEndpoints:
    try:
        return infra.up(
            run_dir,
            broker,
            pg_port=_port("CAREROUTE_TEST_PG_PORT", 55442),
            kafka_port=kafka_port,
            database_url=database_url,
        )
    except infra.InfraError as exc:
        infra.down(run_dir)
        pytest.fail(f"test infrastructure could not start ({broker}): {exc}", pytrace=False)


@pytest.fixture(scope="session")
def stack() -> Iterator[infra.InfraEndpoints]:
    """PostgreSQL and the main broker: Apache Kafka where java and mvn exist, else Tansu."""
    broker = infra.choose_broker(os.environ.get("KAFKA_BROKER"))
    endpoints = _start(
        RUN_DIR, broker, _port("CAREROUTE_TEST_KAFKA_PORT", 59192), os.environ.get("DATABASE_URL")
    )
    yield endpoints
    infra.down(RUN_DIR)


@pytest.fixture(scope="session")
def tansu_stack(stack: infra.InfraEndpoints) -> Iterator[infra.InfraEndpoints]:
    """A Tansu broker beside the main one (the demo's broker), sharing the test PostgreSQL."""
    if stack.broker == "tansu":
        yield stack
        return
    run_dir = RUN_DIR.with_name(RUN_DIR.name + "-tansu")
    endpoints = _start(run_dir, "tansu", _port("CAREROUTE_TEST_TANSU_PORT", 59292), stack.database_url)
    yield endpoints
    infra.down(run_dir)


@pytest.fixture
async def database_url(stack: infra.InfraEndpoints) -> AsyncIterator[str]:
    """A fresh database for one test, dropped afterwards."""
    async with scratch_database(stack.database_url, f"t_{uuid.uuid4().hex[:12]}") as url:
        yield url


@pytest.fixture
async def namespace(stack: infra.InfraEndpoints) -> AsyncIterator[str]:
    """A topic and consumer-group prefix no other test uses; its topics are deleted afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    yield prefix
    await delete_topics(Settings(kafka_bootstrap_servers=stack.kafka_bootstrap_servers), prefix)


@pytest.fixture
def settings(stack: infra.InfraEndpoints, database_url: str, namespace: str) -> Settings:
    """Settings pointing at this test's database and namespace on the main broker."""
    return settings_for(stack, database_url, namespace, **TEST_SETTINGS)
