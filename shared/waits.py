"""Waiting in background jobs: woken by a NOTIFY, told to stop, or when the time is up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

_LOST = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
# The longest an idle queue's job sleeps without a NOTIFY: the check for a row whose NOTIFY went
# with a lost connection.
IDLE_CHECK_S = 5.0


async def first_of(*events: asyncio.Event, timeout_s: float) -> None:
    """Return when any of `events` is set or after `timeout_s`, whichever comes first."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


def sleep_s(due_in_s: float | None, shortest_s: float, longest_s: float) -> float:
    """How long an idle job sleeps: until its next work falls due (`due_in_s`; None: none is
    pending), but at least `shortest_s` and at most `longest_s`."""
    if due_in_s is None:
        return longest_s
    return min(longest_s, max(shortest_s, due_in_s))


def lost(conn: asyncpg.Connection) -> bool:
    """Whether a pooled connection is gone (a terminated one is taken back by the pool)."""
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:
        return True


class Listener:
    """A pool connection LISTENing on one channel for a background job, replaced when it is lost
    (PostgreSQL restarted, the backend terminated): `woken` is set by each NOTIFY."""

    def __init__(self, pool: asyncpg.Pool, channel: str) -> None:
        self._pool = pool
        self._channel = channel
        self._conn: Any = None
        self.woken = asyncio.Event()

    def _notified(self, *_: object) -> None:
        self.woken.set()

    async def listening(self) -> bool:
        """Whether a NOTIFY can wake the job now, listening again first if the connection was
        lost; False while PostgreSQL cannot be reached (the job then polls at its shortest)."""
        if self._conn is not None and not lost(self._conn):
            return True
        await self.close()
        try:
            conn = await self._pool.acquire()
        except _LOST:
            return False
        try:
            await conn.add_listener(self._channel, self._notified)
        except _LOST:
            with contextlib.suppress(*_LOST):
                await self._pool.release(conn)
            return False
        self._conn = conn
        return True

    async def close(self) -> None:
        """Stop listening and give the connection back."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(*_LOST):
            await conn.remove_listener(self._channel, self._notified)
        with contextlib.suppress(*_LOST):
            await self._pool.release(conn)


async def serve_queue(
    pool: asyncpg.Pool,
    channel: str,
    stop: asyncio.Event,
    *,
    work: Callable[[], Awaitable[int]],
    next_due_in_s: Callable[[], Awaitable[float | None]],
    poll_s: float,
    failed: Callable[[Exception], None],
) -> None:
    """Work through a queue until `stop`: a pass of `work` (how many rows it took) again at once
    while it finds rows; otherwise asleep until woken by a NOTIFY on `channel` or until the next
    row falls due (`sleep_s` between `poll_s` and IDLE_CHECK_S), every `poll_s` while not
    listening. A database error is handed to `failed`, and the pass is tried again after `poll_s`."""
    listener = Listener(pool, channel)
    try:
        while not stop.is_set():
            listening = await listener.listening()
            listener.woken.clear()
            wait_s = poll_s
            try:
                if await work():
                    continue
                if listening:
                    wait_s = sleep_s(await next_due_in_s(), poll_s, IDLE_CHECK_S)
            except (OSError, asyncpg.PostgresError) as exc:
                failed(exc)
            await first_of(listener.woken, stop, timeout_s=wait_s)
    finally:
        await listener.close()
