"""Notify's background jobs: re-paging unanswered offers until their deadline, expiring them at it,
and firing the timers that watch accepted assignments."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from services.notify import follow_ups, handlers, repository
from services.notify.settings import NotifySettings
from shared.envelope import utcnow
from shared.failures import retry_conflicts
from shared.runtime import Background

log = structlog.get_logger(__name__)
# Offers handled in one transaction at most.
BATCH = 100


async def _per_agency(
    pool: asyncpg.Pool,
    agency_ids: list[str],
    work: Callable[[asyncpg.Connection, str], Awaitable[int]],
    committed: Callable[[int], None] | None = None,
) -> int:
    """Run `work` for each agency in a transaction of its own that locks the agency's row first;
    `committed` hears each transaction's count once it has committed."""
    done = 0
    for agency_id in agency_ids:

        async def one(agency_id: str = agency_id) -> int:
            async with pool.acquire() as conn, conn.transaction():
                await repository.lock_agency(conn, agency_id)
                return await work(conn, agency_id)

        count = await retry_conflicts(one)
        if committed is not None:
            committed(count)
        done += count
    return done


async def repage_due(pool: asyncpg.Pool, every_s: float, max_repages: int) -> int:
    """Re-send every offer that is still unanswered before its deadline, was last sent `every_s` ago
    and was re-sent fewer than `max_repages` times."""

    async def repage(conn: asyncpg.Connection, agency_id: str) -> int:
        rows = await repository.lock_due_repages(conn, agency_id, every_s, BATCH, max_repages)
        for row in rows:
            await handlers.repage(conn, row)
        return len(rows)

    return await _per_agency(
        pool, await repository.agencies_with_due_repages(pool, every_s, max_repages), repage
    )


async def expire_due(pool: asyncpg.Pool) -> int:
    """Expire every unanswered offer past its deadline by notify's clock; return how many.

    Deadlines live in the database, so a process that was down expires on start what came due
    meanwhile; replicas wait on the agency's lock and find the offer expired already.
    """
    now = utcnow()

    async def expire(conn: asyncpg.Connection, agency_id: str) -> int:
        rows = await repository.lock_due_offers(conn, agency_id, now, BATCH)
        return sum([await handlers.expire(conn, row) for row in rows])

    return await _per_agency(pool, await repository.agencies_with_due_offers(pool, now), expire)


async def report_overdue_follow_ups(pool: asyncpg.Pool) -> int:
    """Report every open 988 follow-up past its due time, once each; return how many.

    Due times live in the database, so a process that was down reports on start what came due
    meanwhile; replicas wait on the agency's lock and find the follow-up reported already.
    """
    now = utcnow()

    async def report(conn: asyncpg.Connection, agency_id: str) -> int:
        rows = await repository.lock_due_follow_ups(conn, agency_id, now, BATCH)
        for row in rows:
            await follow_ups.report_overdue(conn, row, now)
        return len(rows)

    due = await repository.agencies_with_due_follow_ups(pool, now)
    # Counted as each transaction commits, so one redone after a lost race is counted once.
    return await _per_agency(pool, due, report, follow_ups.FOLLOW_UPS_OVERDUE.inc)


async def watch_due(pool: asyncpg.Pool) -> int:
    """Fire every timer due by notify's clock (an assignment's, or its miss's grace); return how many.

    Like offer deadlines they live in the database: a notify that was down fires on start what came
    due meanwhile, and replicas wait on the agency's lock and find the timer moved on already.
    """
    now = utcnow()

    async def fire(conn: asyncpg.Connection, agency_id: str) -> int:
        rows = await repository.lock_due_watches(conn, agency_id, now, BATCH)
        if not rows:
            return 0
        rules = await repository.watch_config(conn)
        return sum([await handlers.timer_missed(conn, row, rules, now) for row in rows])

    return await _per_agency(pool, await repository.agencies_with_due_watches(pool, now), fire)


def _loop(name: str, work: Callable[[], Awaitable[int]], every_s: Callable[[], float]) -> Background:
    """A runtime background job running `work` every `every_s()` until stopped."""

    async def run(stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                count = await work()
                if count:
                    log.info(name, count=count)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # The database is away for a moment: the offers wait in it for the next pass.
                log.warning(f"{name} pass failed; will retry", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s())

    return run


class Repager:
    """Re-pages on a cadence; an accepted, declined, withdrawn or expired offer is never re-sent."""

    def __init__(self, pool: asyncpg.Pool, settings: NotifySettings) -> None:
        s = settings
        self.run = _loop(
            "offers re-paged",
            lambda: repage_due(pool, s.repage_every_s, s.repage_max),
            lambda: s.repage_check_s,
        )


class Expirer:
    """Expires unanswered offers at their deadline, every `expiry_interval_s`."""

    def __init__(self, pool: asyncpg.Pool, settings: NotifySettings) -> None:
        self.run = _loop("offers expired", lambda: expire_due(pool), lambda: settings.expiry_interval_s)


class FollowUpWatch:
    """Reports 988 follow-ups left open past their due time, every `follow_up_check_s`."""

    def __init__(self, pool: asyncpg.Pool, settings: NotifySettings) -> None:
        self.run = _loop(
            "follow-ups overdue", lambda: report_overdue_follow_ups(pool), lambda: settings.follow_up_check_s
        )


class Watcher:
    """Fires the timers of accepted assignments (and their misses' graces), every `watch_interval_s`."""

    def __init__(self, pool: asyncpg.Pool, settings: NotifySettings) -> None:
        self.run = _loop("timers fired", lambda: watch_due(pool), lambda: settings.watch_interval_s)
