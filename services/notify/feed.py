"""The SSE stream of an agency's own offers and updates, resumable with Last-Event-ID."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import structlog
from sse_starlette import ServerSentEvent

from services.notify import delivery, repository
from services.notify.settings import NotifySettings
from shared.domain_errors import Invalid
from shared.waits import IDLE_CHECK_S, Listener, first_of

log = structlog.get_logger(__name__)

CHANNEL = "notify_feed"


def parse_last_event_id(value: str | None) -> int | None:
    """The sequence number a client resumes after; Invalid for a malformed header."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not text.isdigit() or len(text) > 18:
        raise Invalid("Last-Event-ID must be the id of an event this stream sent", "invalid_last_event_id")
    return int(text)


class FeedWaker:
    """Wakes the open streams of an agency when its feed grows (one LISTEN for the process)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._waiting: dict[str, set[asyncio.Event]] = {}
        self._records: set[asyncio.Task[None]] = set()
        self.closing = asyncio.Event()

    def record_sent(self, agency_id: str, data: dict[str, Any]) -> None:
        """Record an offer the stream handed over, in a task of its own that a hang-up cannot cut short."""
        task = asyncio.create_task(_record_sse(self._pool, agency_id, data))
        self._records.add(task)
        task.add_done_callback(self._records.discard)

    @contextlib.contextmanager
    def subscribe(self, agency_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever the agency's feed may have grown, for the life of one stream."""
        wake = asyncio.Event()
        self._waiting.setdefault(agency_id, set()).add(wake)
        try:
            yield wake
        finally:
            self._waiting[agency_id].discard(wake)

    def connected(self) -> list[str]:
        """The agencies with a stream open in this process now."""
        return [agency for agency, streams in self._waiting.items() if streams]

    def _on_notify(self, agency_id: str) -> None:
        for wake in self._waiting.get(agency_id, ()):
            wake.set()

    async def close(self) -> None:
        """Shutdown has begun: end every open stream so the server can stop."""
        self.closing.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Listen for feed notifications until `stop`, listening again within IDLE_CHECK_S when the
        connection is lost; streams also re-read on a timer meanwhile. Each NOTIFY reaches its
        streams through `on_payload`, without waking this loop."""
        listener = Listener(self._pool, CHANNEL, on_payload=self._on_notify)
        try:
            while not stop.is_set():
                await listener.listening()
                await first_of(stop, timeout_s=IDLE_CHECK_S)
        finally:
            await listener.close()


async def _record_sse(pool: asyncpg.Pool, agency_id: str, data: dict[str, Any]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        assignment = await repository.get(conn, data["assignment_id"])
        if assignment is not None:
            notice = delivery.Notice.from_row({**data, "agency_id": agency_id}, "sse", assignment.correlation)
            await delivery.record(conn, notice)


async def events(
    pool: asyncpg.Pool,
    waker: FeedWaker,
    settings: NotifySettings,
    agency_id: str,
    after: int | None,
) -> AsyncIterator[ServerSentEvent]:
    """Every feed entry of the agency after `after` (or of the last replay window), then new ones live."""
    if after is None:
        after = await repository.feed_start(pool, agency_id, settings.sse_replay_s)
    with waker.subscribe(agency_id) as wake:
        while not waker.closing.is_set():
            wake.clear()
            rows = await repository.feed_after(pool, agency_id, after, 100)
            for row in rows:
                data = row.data
                yield ServerSentEvent(data=json.dumps(data), event=row.kind, id=str(row.seq), retry=2000)
                after = row.seq
                if row.kind == "offered" and data.get("notification_id"):
                    # The chunk was handed to the connection: the agency's stream was told.
                    waker.record_sent(agency_id, data)
            if not rows:
                await first_of(wake, waker.closing, timeout_s=settings.sse_wait_s)
