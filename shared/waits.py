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


class _Shared:
    """The one LISTEN connection of a pool's background jobs, taken again when it is lost.

    PostgreSQL wakes every listening backend of the database at each NOTIFY, whatever its channel
    (15's async.c): one listening connection per process instead of one per job makes every
    NOTIFY wake a backend per process, not one per job.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.conn: Any = None
        self.users: set[Listener] = set()
        self._lock = asyncio.Lock()
        self._tries = 0

    def _terminated(self, _conn: object) -> None:
        # Every job wakes and listens again at once, instead of sleeping through its poll unaware.
        for user in self.users:
            user.woken.set()

    async def listen(self, user: Listener) -> bool:
        """Whether `user` is LISTENing now, taking the connection again first if it was lost;
        False while PostgreSQL cannot be reached. One at a time: a connection runs one statement."""
        tried = self._tries
        async with self._lock:
            if self.conn is None or lost(self.conn):
                if self._tries != tried:
                    return False  # another job tried while this one waited for the lock, and failed
                await self.release()
                try:
                    conn = await self.pool.acquire()
                except _LOST:
                    return False
                finally:
                    self._tries += 1  # an attempt finished
                conn.add_termination_listener(self._terminated)
                self.conn = conn
            if user.on is not self.conn:
                try:
                    await self.conn.add_listener(user.channel, user.notified)
                except _LOST:
                    return False
                user.on = self.conn
            return True

    async def unlisten(self, user: Listener) -> None:
        """`user` stops listening; the last one gives the connection back."""
        async with self._lock:
            conn, user.on = user.on, None
            if conn is not None and conn is self.conn and not lost(conn):
                with contextlib.suppress(*_LOST):
                    await conn.remove_listener(user.channel, user.notified)
            self.users.discard(user)
            if not self.users:
                if _SHARED.get(id(self.pool)) is self:
                    del _SHARED[id(self.pool)]
                await self.release()

    async def release(self) -> None:
        """Give the connection back to the pool (its LISTENs end with it)."""
        conn, self.conn = self.conn, None
        if conn is None:
            return
        with contextlib.suppress(*_LOST):
            conn.remove_termination_listener(self._terminated)  # raises when the pool took it back
        with contextlib.suppress(*_LOST):
            await self.pool.release(conn)


# One per pool, while any of its jobs listens (the entry holds the pool, so its id stays its own).
_SHARED: dict[int, _Shared] = {}


class Listener:
    """A background job's LISTEN on one channel, on the connection its pool's jobs share, listening
    again when that is lost (PostgreSQL restarted, the backend terminated): `woken` is set by each
    NOTIFY and by the loss. `on_payload`, when given, hears each NOTIFY's payload."""

    def __init__(
        self, pool: asyncpg.Pool, channel: str, on_payload: Callable[[str], None] | None = None
    ) -> None:
        if (shared := _SHARED.get(id(pool))) is None:
            shared = _SHARED[id(pool)] = _Shared(pool)
        self._shared = shared
        self._shared.users.add(self)
        self.channel = channel
        self._on_payload = on_payload
        self.on: Any = None  # the connection this LISTEN was made on
        self.woken = asyncio.Event()

    def notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        """asyncpg's callback for a NOTIFY on the channel."""
        self.woken.set()
        if self._on_payload is not None:
            self._on_payload(payload)

    async def listening(self) -> bool:
        """Whether a NOTIFY can wake the job now, listening again first if the connection was
        lost; False while PostgreSQL cannot be reached (the job then polls at its shortest)."""
        return await self._shared.listen(self)

    async def close(self) -> None:
        """Stop listening; the last of a pool's listeners gives the connection back."""
        await self._shared.unlisten(self)


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
