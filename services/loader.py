"""Loading a jurisdiction file into every service's schema at once (`careroute load`)."""

from __future__ import annotations

import importlib
from pathlib import Path

import asyncpg

from shared.db import create_pool, migrate
from shared.jurisdiction import Jurisdiction
from shared.kafka import ensure_topics
from shared.settings import SERVICE_NAMES, Settings
from shared.topics import agency_topic

MIGRATIONS = {name: Path(__file__).parent / name / "migrations" for name in SERVICE_NAMES}


async def apply(pool: asyncpg.Pool, jurisdiction: Jurisdiction) -> None:
    """Migrate every schema, then store the jurisdiction in one transaction: all or nothing."""
    for name in SERVICE_NAMES:
        await migrate(pool, name, [MIGRATIONS[name]])
    async with pool.acquire() as conn, conn.transaction():
        for name in SERVICE_NAMES:
            repository = importlib.import_module(f"services.{name}.repository")
            await repository.load_jurisdiction(conn, jurisdiction)


async def load(settings: Settings, jurisdiction: Jurisdiction) -> None:
    """Store the jurisdiction and create each agency's own topic with its partitions."""
    pool = await create_pool(settings.database_url.get_secret_value(), max_size=2)
    try:
        await apply(pool, jurisdiction)
    finally:
        await pool.close()
    for agency in jurisdiction.agencies:
        await ensure_topics(
            settings,
            [settings.topic(agency_topic(agency.id))],
            partitions=agency.partitions,
        )
