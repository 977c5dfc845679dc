"""The roster index a matching process keeps between decisions, refreshed when the roster changes."""

from __future__ import annotations

import asyncpg

from services.matching import repository
from services.matching.domain import RosterIndex


class Roster:
    """Skills, languages, shifts and areas indexed once per roster version; status, capacity and
    position read fresh for every decision, only for the teams whose coverage box holds the call."""

    def __init__(self) -> None:
        self._version: int | None = None
        self._index: RosterIndex | None = None

    async def _reindex(self, conn: asyncpg.Connection) -> RosterIndex:
        self._version = await repository.roster_version(conn)
        self._index = RosterIndex(await repository.team_snapshots(conn))
        return self._index

    async def index(self, conn: asyncpg.Connection, near: tuple[float, float] | None) -> RosterIndex:
        """The teams whose coverage box holds `near` (lat, lon), or every team, as they are now."""
        index = self._index
        if index is None or await repository.roster_version(conn) != self._version:
            index = await self._reindex(conn)
        rows = await repository.live_teams(conn, near)
        columns = ([r[k] for r in rows] for k in ("id", "status", "capacity", "lat", "lon"))
        ids, status, capacity, lat, lon = columns
        try:
            return index.live(ids, status, capacity, lat, lon)
        except KeyError:
            # A team stored after this process read the version: index the roster again.
            return (await self._reindex(conn)).live(ids, status, capacity, lat, lon)
