"""The roster a matching process keeps between decisions: indexed once per roster version, its
status, capacity and position kept current by re-reads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

import asyncpg

from services.matching import repository
from services.matching.domain import DEFAULT_RULES
from services.matching.index import RosterIndex
from services.matching.rules import Matching


class Roster:
    """Skills, languages, shifts and areas indexed once per roster version; status, capacity and
    position of every team read at most every `refresh_s`, and at once for the teams this process
    changed since (`touched`).

    A decision may therefore see another replica's change up to `refresh_s` late. That is safe:
    a reservation is a conditional UPDATE that fails for a team no longer free, and a decision that
    finds nobody is made again on a fresh read before the call is handed back.
    """

    def __init__(self, refresh_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._refresh_s = refresh_s
        self._clock = clock
        self._version: int | None = None
        self._index: RosterIndex | None = None
        self._live: RosterIndex | None = None
        self._read_at = float("-inf")
        self._touched: set[str] = set()
        self.rules: Matching = DEFAULT_RULES
        self.timezone = ZoneInfo("UTC")
        self.shares: dict[str, float] = {}
        # Set whenever this process changes a team or the roster, for the capacity snapshot's job.
        self.changed = asyncio.Event()

    def touched(self, team_id: str) -> None:
        """This process changed a team: read it again before the next decision."""
        self._touched.add(team_id)
        self.changed.set()

    def invalidate(self) -> None:
        """This process changed what is indexed (shifts, the roster): read all before the next decision."""
        self._read_at = float("-inf")
        self.changed.set()

    async def _reindex(self, conn: asyncpg.Connection) -> RosterIndex:
        self._version = await repository.roster_version(conn)
        self._index = RosterIndex(await repository.team_snapshots(conn))
        self.rules = await repository.rules(conn)
        self.timezone = ZoneInfo(await repository.timezone(conn))
        self.shares = await repository.contracted_shares(conn)
        return self._index

    async def index(self, conn: asyncpg.Connection, *, fresh: bool = False) -> RosterIndex:
        """Every team with its status, capacity and position: read now if `fresh` or due."""
        now = self._clock()
        live = self._live
        if fresh or live is None or now - self._read_at >= self._refresh_s:
            index = self._index
            if index is None or await repository.roster_version(conn) != self._version:
                index = await self._reindex(conn)
            columns = await repository.live_teams(conn)
            try:
                live = index.live(columns)
            except KeyError:
                # A team stored after this process read the version: index the roster again.
                live = (await self._reindex(conn)).live(columns)
            self._live, self._read_at = live, now
            self._touched.clear()
        elif self._touched:
            try:
                live.update(await repository.live_teams(conn, ids=sorted(self._touched)))
            except KeyError:
                return await self.index(conn, fresh=True)
            self._touched.clear()
        return live
