"""Fixtures shared by the matching and notify integration tests (a module's own fixture of the same
name wins over these)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer

from shared.db import create_pool
from shared.kafka import make_producer
from shared.settings import Settings
from tests.integration.matching_harness import Db


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Db]:
    """Reads of matching's schema in the test's database."""
    pool = await create_pool(settings.database_url.get_secret_value(), max_size=4)
    yield Db(pool)
    await pool.close()


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A producer on the test's broker, publishing as intake or notify would."""
    producer = make_producer(settings)
    await producer.start()
    yield producer
    await producer.stop()
