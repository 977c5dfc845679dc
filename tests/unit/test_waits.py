"""How long an idle background job sleeps, and how a process's jobs share their listening."""

from __future__ import annotations

import asyncio
from typing import cast

import asyncpg

from shared.waits import Listener, sleep_s


def test_an_idle_job_sleeps_until_its_next_work_is_due_within_its_bounds() -> None:
    """Tried: nothing pending, work overdue, due within the bounds, and due past the longest."""
    assert sleep_s(None, 0.5, 5.0) == 5.0
    assert sleep_s(-3.0, 0.5, 5.0) == 0.5
    assert sleep_s(2.25, 0.5, 5.0) == 2.25
    assert sleep_s(60.0, 0.5, 5.0) == 5.0


class _DownPool:
    """A pool whose database is away: every acquire fails after a moment, and is counted."""

    def __init__(self) -> None:
        self.acquires = 0

    async def acquire(self) -> None:
        self.acquires += 1
        await asyncio.sleep(0.01)
        raise ConnectionRefusedError("the database is away")


async def test_jobs_that_wait_together_for_an_away_database_try_once_between_them() -> None:
    """Tried: five jobs of one process ask to listen at the same moment while PostgreSQL is away.
    One tries to connect and all five hear no; the next round tries once again, not five times."""
    pool = _DownPool()
    jobs = [Listener(cast(asyncpg.Pool, pool), f"channel_{n}") for n in range(5)]
    try:
        assert await asyncio.gather(*(job.listening() for job in jobs)) == [False] * 5
        assert pool.acquires == 1
        assert await asyncio.gather(*(job.listening() for job in jobs)) == [False] * 5
        assert pool.acquires == 2
    finally:
        for job in jobs:
            await job.close()
