"""The roster a matching process keeps: when it reads the database, and what a re-read changes."""

from __future__ import annotations

from typing import Any

import pytest

from services.matching import repository, roster
from services.matching.domain import DEFAULT_RULES, TeamSnapshot
from services.matching.index import LiveColumns, RosterIndex


def snapshot(team_id: str, lat: float = 44.0) -> TeamSnapshot:
    return TeamSnapshot(
        id=team_id,
        agency_id="a",
        lat=lat,
        lon=-123.0,
        radius_km=30,
        status="available",
        languages=("en",),
        shifts=(),
        skills=(),
        capacity=1,
    )


class FakeDb:
    """The repository functions the roster calls, counting what they were asked."""

    def __init__(self) -> None:
        self.status = {"t1": "available", "t2": "available", "t3": "available"}
        self.reads: list[list[str] | None] = []
        self.version = 1

    async def roster_version(self, _: Any) -> int:
        return self.version

    async def team_snapshots(self, _: Any) -> list[TeamSnapshot]:
        return [snapshot(t) for t in sorted(self.status)]

    async def rules(self, _: Any) -> Any:
        return DEFAULT_RULES

    async def timezone(self, _: Any) -> str:
        return "America/Los_Angeles"

    async def contracted_shares(self, _: Any) -> dict[str, float]:
        return {"a": 1.0}

    async def live_teams(self, _: Any, ids: list[str] | None = None) -> LiveColumns:
        self.reads.append(ids)
        chosen = sorted(self.status) if ids is None else ids
        return (
            chosen,
            [self.status[t] for t in chosen],
            [1] * len(chosen),
            [44.0] * len(chosen),
            [-123.0] * len(chosen),
            [int(self.status[t] != "available") for t in chosen],
        )


@pytest.fixture
def db(monkeypatch: pytest.MonkeyPatch) -> FakeDb:
    fake = FakeDb()
    for name in ("roster_version", "team_snapshots", "rules", "timezone", "live_teams", "contracted_shares"):
        monkeypatch.setattr(repository, name, getattr(fake, name))
    return fake


def available(index: RosterIndex) -> dict[str, bool]:
    return {str(i): bool(a) for i, a in zip(index.ids, index.available, strict=True)}


async def test_the_roster_is_read_whole_at_most_once_per_refresh_interval(db: FakeDb) -> None:
    now = [0.0]
    kept = roster.Roster(refresh_s=1.0, clock=lambda: now[0])
    await kept.index(None)
    assert db.reads == [None]
    assert str(kept.timezone) == "America/Los_Angeles"
    db.status["t2"] = "offered"  # another replica's change: not seen until the next read
    assert available(await kept.index(None))["t2"] is True
    assert db.reads == [None]
    now[0] = 1.0
    assert available(await kept.index(None))["t2"] is False
    assert db.reads == [None, None]


async def test_teams_this_process_touched_are_read_again_alone(db: FakeDb) -> None:
    kept = roster.Roster(refresh_s=60, clock=lambda: 0.0)
    await kept.index(None)
    db.status["t1"] = "offered"
    db.status["t3"] = "out_of_service"
    kept.touched("t1")
    index = await kept.index(None)
    assert db.reads == [None, ["t1"]]
    assert available(index) == {"t1": False, "t2": True, "t3": True}  # t3 was not touched
    assert bool(index.on_roster[list(index.ids).index("t1")]) is True
    kept.touched("t3")
    index = await kept.index(None)
    assert bool(index.on_roster[list(index.ids).index("t3")]) is False


async def test_a_fresh_read_or_an_invalidated_roster_reads_everything(db: FakeDb) -> None:
    kept = roster.Roster(refresh_s=60, clock=lambda: 0.0)
    await kept.index(None)
    await kept.index(None, fresh=True)
    kept.invalidate()
    await kept.index(None)
    assert db.reads == [None, None, None]


async def test_a_team_the_index_does_not_know_makes_it_index_again(db: FakeDb) -> None:
    kept = roster.Roster(refresh_s=60, clock=lambda: 0.0)
    await kept.index(None)
    db.status["t4"] = "available"  # stored after the index was built
    kept.touched("t4")
    index = await kept.index(None)
    assert "t4" in set(index.ids)


async def test_an_agencys_load_is_its_teams_holding_one_of_our_calls(db: FakeDb) -> None:
    kept = roster.Roster(refresh_s=60, clock=lambda: 0.0)
    assert (await kept.index(None)).load() == {}
    db.status["t2"] = "offered"
    kept.touched("t2")
    assert (await kept.index(None)).load() == {"a": 1}
    assert kept.shares == {"a": 1.0}
