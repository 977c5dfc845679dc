"""Matching's capacity snapshot: which teams could take a call now, published for intake's 202."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg
import numpy as np

from services.matching.index import RosterIndex
from services.matching.matcher import SERVICE
from services.matching.roster import Roster
from shared import events, topics
from shared.envelope import new_event, utcnow
from shared.outbox import enqueue


def snapshot(index: RosterIndex, now: datetime, tz: ZoneInfo, every_s: float) -> events.TeamsCapacity:
    """The teams of `index` that could take one more call at `now`, with where they reach."""
    places = index.free_places(now, tz)
    free = np.flatnonzero(places > 0)[: events.CAPACITY_TEAMS_MAX]
    areas: dict[str, list[tuple[float, float]]] = {}
    for i in free[index.has_area[free]]:
        area = index.teams[int(i)].area
        assert area is not None
        areas[str(index.ids[i])] = [(round(a, 5), round(b, 5)) for a, b in area]
    return events.TeamsCapacity(
        as_of=now,
        every_s=every_s,
        teams_on_roster=len(index.teams),
        team_ids=[str(t) for t in index.ids[free]],
        places=[int(p) for p in places[free]],
        # About 10 m: a team's position moves the snapshot only when it moves that far.
        lat_e4=np.rint(index.lat[free] * 1e4).astype(np.int64).tolist(),
        lon_e4=np.rint(index.lon[free] * 1e4).astype(np.int64).tolist(),
        radius_m=np.rint(index.radius[free] * 1000).astype(np.int64).tolist(),
        areas=areas,
    )


def digest(snap: events.TeamsCapacity) -> str:
    """What a snapshot says, without its time: equal digests need no new snapshot before `every_s`."""
    said = snap.model_dump(mode="json", exclude={"as_of"})
    return hashlib.sha256(json.dumps(said, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class CapacityTiming:
    """How often the snapshot is published: at least every `every_s`, at most every `min_interval_s`."""

    every_s: float = 30.0
    min_interval_s: float = 5.0


class CapacityPublisher:
    """Publishes `teams.capacity.v1` when this process changed a team (no more often than
    `min_interval_s`) and at least every `every_s`.

    Every replica runs one. The snapshot is read fresh from the database (every replica's changes)
    under a lock on the one row that records the last one published, so replicas that see the same
    roster publish it once, not once each.
    """

    def __init__(self, pool: asyncpg.Pool, changed: asyncio.Event, timing: CapacityTiming) -> None:
        self._pool = pool
        self._changed = changed
        self._timing = timing
        self._roster = Roster(refresh_s=0.0)

    async def publish_once(self) -> bool:
        """Publish the snapshot if it differs from the last one or that one is `every_s` old."""
        async with self._pool.acquire() as conn, conn.transaction():
            last = await conn.fetchrow(
                "SELECT digest, published_at FROM matching.capacity_published WHERE id = 1 FOR UPDATE"
            )
            index = await self._roster.index(conn, fresh=True)
            now = utcnow()
            snap = snapshot(index, now, self._roster.timezone, self._timing.every_s)
            said = digest(snap)
            # Heartbeats come a little early, so intake never sees the snapshot go stale between them.
            age = None if last is None else (now - last["published_at"]).total_seconds()
            if (
                last is not None
                and last["digest"] == said
                and age is not None
                and age < self._timing.every_s * 0.8
            ):
                return False
            await enqueue(conn, SERVICE, new_event(topics.TEAMS_CAPACITY, SERVICE, "capacity", snap))
            await conn.execute(
                "INSERT INTO matching.capacity_published (id, digest, published_at) VALUES (1, $1, $2)"
                " ON CONFLICT (id) DO UPDATE SET digest = $1, published_at = $2",
                said,
                now,
            )
            return True

    async def run(self, stop: asyncio.Event) -> None:
        """The runtime's background job: publish on change (rate-limited) and on every heartbeat."""
        t = self._timing
        while not stop.is_set():
            await self.publish_once()
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), t.min_interval_s)
            if stop.is_set():
                return
            waiting = asyncio.ensure_future(self._changed.wait())
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait(
                    {waiting, stopping},
                    timeout=max(0.0, t.every_s * 0.8 - t.min_interval_s),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                waiting.cancel()
                stopping.cancel()
