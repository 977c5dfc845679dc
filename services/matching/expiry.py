"""The offer deadline loop: offers left unanswered past their deadline expire and move on."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

from services.matching import repository
from services.matching.handlers import MatchingHandlers
from shared.runtime import Background

log = structlog.get_logger(__name__)


async def expire_due(pool: asyncpg.Pool, handlers: MatchingHandlers) -> int:
    """Expire every offer whose deadline has passed, one call per transaction; return how many.

    Deadlines live in the database, so a process that was down expires on start what came due
    meanwhile, and several replicas share the work (each locks a different call).
    """
    expired = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            due = await repository.lock_due_offer(conn)
            if due is None:
                return expired
            await handlers.on_deadline(conn, str(due["id"]))
        expired += 1


def expiry_loop(pool: asyncpg.Pool, handlers: MatchingHandlers, interval_s: float) -> Background:
    """A runtime background job that checks deadlines every `interval_s` until stopped."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                count = await expire_due(pool, handlers)
                if count:
                    log.info("offers expired", count=count)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # The database is away for a moment: the deadlines wait in it for the next pass.
                log.warning("expiry pass failed; will retry", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)

    return run
