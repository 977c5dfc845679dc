"""Run the test consumer until its first offset commit, and die right there (os._exit).

Used by test_messaging: the effect's transaction has committed, the Kafka offset has not.
"""

from __future__ import annotations

import asyncio
import os
import sys

from aiokafka import TopicPartition

from shared.db import create_pool
from shared.kafka import make_producer
from shared.settings import Settings
from tests.integration import messaging


async def main() -> None:
    settings = Settings()
    pool = await create_pool(settings.database_url.get_secret_value())
    producer = make_producer(settings)
    await producer.start()
    consumer = messaging.consumer(settings, pool, producer)

    async def die_instead_of_committing(offsets: dict[TopicPartition, int]) -> bool:
        sys.stderr.write(f"crashing before committing offsets {offsets}\n")
        os._exit(17)

    consumer.commit_offsets = die_instead_of_committing  # type: ignore[method-assign]
    await consumer.start()
    await consumer.run(asyncio.Event())


asyncio.run(main())
