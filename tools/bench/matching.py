"""python -m tools.bench.matching: how long choosing a team takes at 100, 1,000 and 10,000 teams.

By default it times the choice itself over an in-memory roster. With `--database-url` it also
times the path a call takes in the service, in a scratch database it drops afterwards: the kept
roster brought up to date from PostgreSQL (the teams this process changed, and every team once a
second) and the choice; and the same with a fresh read of the whole roster.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

from services.matching import repository
from services.matching.domain import CallNeeds, TeamSnapshot
from services.matching.index import RosterIndex
from services.matching.roster import Roster
from services.matching.rules import Matching
from shared.db import create_pool, migrate
from shared.jurisdiction import Jurisdiction, Shift
from tools.jurisdictions import small
from tools.system import scratch_database


def echo(*parts: object, flush: bool = True) -> None:
    """A line of the benchmark's report on stdout (a command's output, not a service log)."""
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    if flush:
        sys.stdout.flush()


SKILLS = ("peer_support_specialist", "licensed_clinician", "social_worker", "emt", "medic", "youth")
SHIFTS = (
    (),
    (Shift(days=["mon", "tue", "wed", "thu", "fri"], start=clock(8), end=clock(20)),),
    (Shift(days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"], start=clock(19), end=clock(7)),),
)


def roster(size: int, rng: random.Random) -> list[TeamSnapshot]:
    """A synthetic region of `size` teams (about 100 km across) with mixed skills, hours and load."""
    return [
        TeamSnapshot(
            id=f"team-{i}",
            agency_id=f"agency-{i % 20}",
            lat=44.0 + rng.uniform(-0.5, 0.5),
            lon=-123.0 + rng.uniform(-0.7, 0.7),
            radius_km=rng.uniform(5, 30),
            status=rng.choice(("available", "available", "available", "offered", "on_scene")),
            languages=("en", "es") if rng.random() < 0.3 else ("en",),
            shifts=rng.choice(SHIFTS),
            skills=tuple(s for s in SKILLS if rng.random() < 0.35),
        )
        for i in range(size)
    ]


RULES = Matching(version="bench")
TZ = ZoneInfo("America/Los_Angeles")
NOW = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
SHARES = {f"agency-{a}": 0.05 for a in range(20)}
MIGRATIONS = Path(__file__).parents[2] / "services" / "matching" / "migrations"


def random_call(rng: random.Random) -> CallNeeds:
    """A call somewhere in the synthetic region with a random language and skill need."""
    return CallNeeds(
        lat=44.0 + rng.uniform(-0.4, 0.4),
        lon=-123.0 + rng.uniform(-0.5, 0.5),
        language=rng.choice((None, "en", "es")),
        required=frozenset(rng.sample(SKILLS, k=rng.choice((0, 1)))),
        preferred=frozenset(rng.sample(SKILLS, k=2)),
    )


def summary(timings: list[float]) -> dict[str, float]:
    """Median, 95th percentile and maximum of some milliseconds."""
    timings = sorted(timings)
    return {
        "median_ms": statistics.median(timings),
        "p95_ms": timings[int(0.95 * (len(timings) - 1))],
        "max_ms": timings[-1],
    }


def measure(size: int, calls: int, seed: int) -> dict[str, float]:
    """Milliseconds to index a roster once and to decide each of `calls` random calls."""
    rng = random.Random(seed)
    index_started = time.perf_counter()
    index = RosterIndex(roster(size, rng))
    build_ms = (time.perf_counter() - index_started) * 1000
    load = {a: rng.randint(0, 5) for a in SHARES}
    timings = []
    for _ in range(calls):
        needs = random_call(rng)
        t0 = time.perf_counter()
        index.decide(needs, NOW, TZ, speed_kmh=40, rules=RULES, load=load, shares=SHARES)
        timings.append((time.perf_counter() - t0) * 1000)
    return {"build_ms": build_ms, **summary(timings)}


def as_jurisdiction(teams: list[TeamSnapshot]) -> Jurisdiction:
    """The synthetic roster as a jurisdiction file would give it."""
    return small(
        psap_token="bench-psap-token-0000",
        agencies=[{"id": a, "name": a, "token": f"bench-token-{a}-000000"} for a in SHARES],
        teams=[
            {
                "id": t.id,
                "agency": t.agency_id,
                "name": t.id,
                "skills": list(t.skills),
                "languages": list(t.languages),
                "home": {"lat": t.lat, "lon": t.lon},
                "radius_km": t.radius_km,
                "shifts": [s.model_dump(mode="json") for s in t.shifts],
            }
            for t in teams
        ],
        timezone=TZ.key,
        triage_version="bench",
    )


async def measure_db(dsn: str, size: int, calls: int, seed: int) -> dict[str, float]:
    """Milliseconds per decision through PostgreSQL as the service makes it, and with a fresh read.

    As a matching process does: the roster indexed once; before each decision, the teams this
    process changed are read again (here the one chosen last) and, every second, every team's
    status, capacity and position. `fresh_*` time a full read of the roster plus the choice, which
    a process does once a second and before any hand-back.
    """
    rng = random.Random(seed)
    async with scratch_database(dsn, f"bench_{uuid.uuid4().hex[:10]}") as url:
        pool = await create_pool(url, max_size=1)
        try:
            await migrate(pool, repository.SCHEMA, [MIGRATIONS])
            conn = await pool.acquire()
            async with conn.transaction():
                await repository.load_jurisdiction(conn, as_jurisdiction(roster(size, rng)))
            await conn.execute("ANALYZE matching.teams")
            kept = Roster(refresh_s=1.0)
            await kept.index(conn, fresh=True)

            async def decide(fresh: bool) -> float:
                needs = random_call(rng)
                t0 = time.perf_counter()
                index = await kept.index(conn, fresh=fresh)
                decision = index.decide(
                    needs, NOW, TZ, speed_kmh=40, rules=RULES, load=index.load(), shares=kept.shares
                )
                elapsed = (time.perf_counter() - t0) * 1000
                if decision.candidates:
                    kept.touched(decision.candidates[0].team.id)
                return elapsed

            timings = [await decide(fresh=False) for _ in range(calls)]
            fresh = [await decide(fresh=True) for _ in range(max(10, calls // 10))]
            await pool.release(conn)
        finally:
            await pool.close()
    return {**summary(timings), **{f"fresh_{k}": v for k, v in summary(fresh).items()}}


def main(argv: list[str] | None = None) -> None:
    """Print decision times for each roster size."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300, help="decisions timed per roster size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000])
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--database-url", help="also time reading the teams around each call from PostgreSQL")
    args = parser.parse_args(argv)
    echo(f"choosing a team: {args.calls} random calls per roster, the roster indexed once")
    echo(f"{'teams':>8} {'index build':>12} {'median':>9} {'p95':>9} {'max':>9}")
    for size in args.sizes:
        r = measure(size, args.calls, args.seed)
        echo(
            f"{size:>8} {r['build_ms']:>10.1f}ms {r['median_ms']:>7.3f}ms"
            f" {r['p95_ms']:>7.3f}ms {r['max_ms']:>7.3f}ms"
        )
    if args.database_url:
        echo("\nthrough PostgreSQL, as the service does: the roster indexed once, the team chosen last")
        echo("read again before each decision, every team's status each second; and with a fresh read")
        echo(f"{'teams':>8} {'median':>9} {'p95':>9} {'max':>9} {'fresh median':>13}")
        for size in args.sizes:
            r = asyncio.run(measure_db(args.database_url, size, args.calls, args.seed))
            echo(
                f"{size:>8} {r['median_ms']:>7.3f}ms {r['p95_ms']:>7.3f}ms {r['max_ms']:>7.3f}ms"
                f" {r['fresh_median_ms']:>11.3f}ms"
            )


if __name__ == "__main__":
    main()
