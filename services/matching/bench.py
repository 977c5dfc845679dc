"""python -m services.matching.bench: how long choosing a team takes at 100, 1,000 and 10,000 teams."""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime
from datetime import time as clock
from zoneinfo import ZoneInfo

from services.matching.domain import CallNeeds, RosterIndex, TeamSnapshot
from shared.jurisdiction import Matching, Shift

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


def measure(size: int, calls: int, seed: int) -> dict[str, float]:
    """Milliseconds to index a roster once and to decide each of `calls` random calls."""
    rng = random.Random(seed)
    teams = roster(size, rng)
    shares = {f"agency-{a}": 0.05 for a in range(20)}
    load = {f"agency-{a}": rng.randint(0, 5) for a in range(20)}
    rules = Matching(version="bench")
    tz = ZoneInfo("America/Los_Angeles")
    now = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
    started = time.perf_counter()
    index = RosterIndex(teams)
    build_ms = (time.perf_counter() - started) * 1000
    timings = []
    for _ in range(calls):
        needs = CallNeeds(
            lat=44.0 + rng.uniform(-0.4, 0.4),
            lon=-123.0 + rng.uniform(-0.5, 0.5),
            language=rng.choice((None, "en", "es")),
            required=frozenset(rng.sample(SKILLS, k=rng.choice((0, 1)))),
            preferred=frozenset(rng.sample(SKILLS, k=2)),
        )
        t0 = time.perf_counter()
        index.decide(needs, now, tz, speed_kmh=40, rules=rules, load=load, shares=shares)
        timings.append((time.perf_counter() - t0) * 1000)
    timings.sort()
    return {
        "build_ms": build_ms,
        "median_ms": statistics.median(timings),
        "p95_ms": timings[int(0.95 * (len(timings) - 1))],
        "max_ms": timings[-1],
    }


def main(argv: list[str] | None = None) -> None:
    """Print decision times for each roster size."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300, help="decisions timed per roster size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1_000, 10_000])
    parser.add_argument("--seed", type=int, default=4)
    args = parser.parse_args(argv)
    print(f"matching decision time ({args.calls} random calls per roster; index built once per roster)")
    print(f"{'teams':>8} {'index build':>12} {'median':>9} {'p95':>9} {'max':>9}")
    for size in args.sizes:
        r = measure(size, args.calls, args.seed)
        print(
            f"{size:>8} {r['build_ms']:>10.1f}ms {r['median_ms']:>7.3f}ms"
            f" {r['p95_ms']:>7.3f}ms {r['max_ms']:>7.3f}ms"
        )


if __name__ == "__main__":
    main()
