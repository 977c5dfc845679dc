"""Notify's background jobs: re-paging unanswered offers until their deadline."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

from services.notify import handlers, repository
from services.notify.settings import NotifySettings

log = structlog.get_logger(__name__)


async def repage_due(pool: asyncpg.Pool, every_s: float, max_repages: int) -> int:
    """Re-send every offer that is still unanswered before its deadline, was last sent `every_s` ago
    and was re-sent fewer than `max_repages` times."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await repository.lock_due_repages(conn, every_s, 100, max_repages)
        for row in rows:
            await handlers.repage(conn, row)
    return len(rows)


class Repager:
    """Re-pages on a cadence; an accepted, declined, withdrawn or expired offer is never re-sent."""

    def __init__(self, pool: asyncpg.Pool, settings: NotifySettings) -> None:
        self._pool = pool
        self._settings = settings

    async def run(self, stop: asyncio.Event) -> None:
        """Look for offers to re-page every `repage_check_s` until `stop`."""
        while not stop.is_set():
            try:
                s = self._settings
                paged = await repage_due(self._pool, s.repage_every_s, s.repage_max)
                if paged:
                    log.info("offers re-paged", count=paged)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("re-paging failed; will retry", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._settings.repage_check_s)
