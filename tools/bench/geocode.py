"""Benchmark of intake's geocoder: time per civic address against a county of address points.

python -m tools.bench.geocode [--points 500000] [--samples 5000] [--keep]

Generates a synthetic county (municipalities with numbered and named streets, every type and
directional of USPS Publication 28 in use, house numbers on both sides), loads it with the same
code as `careroute load-addresses` into a throw-away database, then times geocoding one-line
civic addresses as intake does (parse, match, one indexed query) on a warm street catalogue:
exact addresses, misspelt streets, numbers between two points, and streets that do not exist.
Never part of `make test`. Needs a PostgreSQL (`careroute infra up`, or DATABASE_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from typing import Any

import asyncpg

from services.intake import address_store, addresses
from services.intake.geocode import Geocoder, Place
from services.loader import MIGRATIONS
from shared.db import create_pool, migrate
from shared.settings import Settings
from tools import infra
from tools.bench.stats import summary
from tools.system import scratch_database

TOWNS = ("SPRINGFIELD", "EUGENE", "COBURG", "CRESWELL", "VENETA", "JUNCTION CITY", "OAKRIDGE", "FLORENCE")
NAMES = [
    "MAIN",
    "OAK",
    "PINE",
    "MAPLE",
    "CEDAR",
    "ELM",
    "WILLOW",
    "ASH",
    "BIRCH",
    "SPRUCE",
    "HEMLOCK",
    "ALDER",
    "LAUREL",
    "MADRONE",
    "HAWTHORNE",
    "WASHINGTON",
    "JEFFERSON",
    "LINCOLN",
    "MADISON",
    "MONROE",
    "ADAMS",
    "JACKSON",
    "GRANT",
    "HARRISON",
    "POLK",
    "TYLER",
    "PIERCE",
    "HIGH",
    "PARK",
    "LAKE",
    "HILL",
    "RIVER",
    "VALLEY",
    "MEADOW",
    "SPRING",
    "SUMMIT",
    "RIDGE",
    "CANYON",
    "FOREST",
    "ORCHARD",
    "GARDEN",
    "WILLAMETTE",
    "MCKENZIE",
    "COBURG",
    "PEARL",
    "OLIVE",
    "CHARNELTON",
    "LAWRENCE",
    "MONROE",
    "FRIENDLY",
    "AGATE",
    "KINCAID",
]
TYPES = ("ST", "AVE", "RD", "DR", "LN", "CT", "WAY", "PL", "BLVD", "LOOP", "CIR", "TER")
DIRS = ("", "", "N", "S", "E", "W")


def echo(text: str) -> None:
    """A line of the benchmark's report on stdout."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def county(target: int, rng: random.Random) -> list[addresses.AddressPoint]:
    """About `target` address points: each town's streets, every street 60-120 points long."""
    points: list[addresses.AddressPoint] = []
    streets: list[tuple[str, addresses.Street]] = []
    for t, town in enumerate(TOWNS):
        for n in range(1, 60):
            name = f"{n}{'TH' if 10 <= n % 100 <= 20 else {1: 'ST', 2: 'ND', 3: 'RD'}.get(n % 10, 'TH')}"
            streets.append((town, addresses.Street(name, predir=DIRS[(n + t) % 6], type=TYPES[n % 3])))
        for name in NAMES:
            for type_ in TYPES:
                streets.append((town, addresses.Street(name, predir=rng.choice(DIRS), type=type_)))
    rng.shuffle(streets)
    lat0, lon0 = 44.05, -123.09
    while len(points) < target:
        for i, (town, street) in enumerate(streets):
            if len(points) >= target:
                break
            base = 100 * rng.randint(1, 40)
            for k in range(rng.randint(30, 60)):
                for number in (base + 2 * k * 2, base + 2 * k * 2 + 1):
                    points.append(
                        addresses.AddressPoint(
                            number,
                            street,
                            lat0 + (i % 300) * 0.001 + k * 0.00005,
                            lon0 + (i // 300) * 0.001,
                            municipality=town,
                            postcode=f"97{400 + TOWNS.index(town):03d}",
                            state="OR",
                        )
                    )
    return points[:target]


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 4 or word[0].isdigit():
        return word + "E"
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def queries(points: list[addresses.AddressPoint], count: int, rng: random.Random) -> list[tuple[str, str]]:
    """(kind, one-line address) pairs: 60% exact, 20% a misspelt street, 15% a number between
    points, 5% a street the county does not have."""
    out: list[tuple[str, str]] = []
    for _ in range(count):
        p = rng.choice(points)
        s = p.street
        roll = rng.random()
        number, name, kind = p.number, s.name, "exact"
        if roll < 0.20:
            name, kind = _typo(s.name, rng), "misspelt_street"
        elif roll < 0.35:
            number, kind = p.number + 2 * rng.randint(2, 6) + 4, "between_numbers"
        elif roll < 0.40:
            name, kind = "ZZYZX", "no_such_street"
        street = " ".join(
            w for w in (addresses.expand_directional(s.predir), name, addresses.expand_suffix(s.type)) if w
        )
        out.append((kind, f"{number} {street}, {p.municipality.title()}, OR {p.postcode}"))
    return out


async def _executions(
    conn: asyncpg.Connection, geocoder: Geocoder, set_id: int, asked: list[tuple[str, str]]
) -> list[float]:
    """PostgreSQL's execution time of the points query for each address that reaches it."""
    catalogue = await geocoder.catalogue(conn, set_id)
    times: list[float] = []
    for _, text in asked:
        civic = addresses.civic_from_text(text)
        assert civic is not None
        place = catalogue.place(civic)
        if not isinstance(place, Place) or civic.number is None:
            continue
        keys = [s.key for s, _ in catalogue.candidates(place, civic.street)]
        if not keys:
            continue
        plan = await conn.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {address_store.POINTS_NEAR}",
            set_id,
            keys,
            civic.number,
            place.municipality,
            place.postcode,
        )
        times.append(float(plan[0]["Execution Time"]))  # the pool decodes json
    return times


async def bench(database_url: str, count: int, samples: int, keep: bool) -> dict[str, Any]:
    """Load a synthetic county and time geocoding against it."""
    rng = random.Random(15)
    points = county(count, rng)
    async with scratch_database(database_url, f"bench_geocode_{uuid.uuid4().hex[:8]}", keep=keep) as url:
        pool = await create_pool(url, max_size=2)
        try:
            await migrate(pool, "intake", [MIGRATIONS["intake"]])
            started = time.perf_counter()
            loaded = await address_store.replace_points(pool, points, "synthetic", "nena-geojson", "-")
            load_s = time.perf_counter() - started
            geocoder = Geocoder()
            async with pool.acquire() as conn:
                started = time.perf_counter()
                await geocoder.catalogue(conn, loaded.set_id)
                catalogue_s = time.perf_counter() - started
                asked = queries(points, samples, rng)
                for _, text in asked[:200]:  # warm the connection's prepared statement and caches
                    civic = addresses.civic_from_text(text)
                    assert civic is not None
                    await geocoder.geocode(conn, loaded.set_id, civic)
                timings: dict[str, list[float]] = {}
                cpu: list[float] = []
                bare: list[float] = []
                methods: dict[str, dict[str, int]] = {}
                for kind, text in asked:
                    started, used = time.perf_counter(), time.process_time()
                    civic = addresses.civic_from_text(text)
                    assert civic is not None
                    found = await geocoder.geocode(conn, loaded.set_id, civic)
                    elapsed = (time.perf_counter() - started) * 1000
                    cpu.append((time.process_time() - used) * 1000)
                    # The floor on this machine at this moment: one bare round trip, interleaved.
                    started = time.perf_counter()
                    await conn.fetchval("SELECT 1")
                    bare.append((time.perf_counter() - started) * 1000)
                    timings.setdefault(kind, []).append(elapsed)
                    outcome = found.method or found.failure or "?"
                    methods.setdefault(kind, {}).setdefault(outcome, 0)
                    methods[kind][outcome] += 1
                executed = await _executions(conn, geocoder, loaded.set_id, asked[:300])
        finally:
            await pool.close()
    every = [t for ts in timings.values() for t in ts]
    return {
        "points": loaded.points,
        "streets": loaded.streets,
        "load_s": round(load_s, 1),
        "catalogue_load_s": round(catalogue_s, 2),
        "geocode_ms": summary(every),
        # This process's CPU per geocode (parse, catalogue, the query's client side): apart from
        # waiting for PostgreSQL and for a core on a busy machine.
        "geocode_cpu_ms": summary(cpu),
        # A bare `SELECT 1` round trip after each geocode, on the same connection: what any query
        # costs here and now, so a noisy machine's figure can be read against it.
        "bare_round_trip_ms": summary(bare),
        "load_average": [round(v, 1) for v in os.getloadavg()],
        # PostgreSQL's own time for the points query (EXPLAIN ANALYZE): the rest of a geocode's
        # time is this process and the round trip.
        "points_query_execution_ms": summary(executed),
        "by_kind_ms": {kind: summary(ts) for kind, ts in sorted(timings.items())},
        "outcomes": methods,
    }


def main() -> None:
    """Parse arguments, run the benchmark, print the figures as JSON."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=500_000, help="address points in the county")
    parser.add_argument("--samples", type=int, default=5_000, help="civic addresses to geocode")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    settings = Settings()
    url = infra.database_url(settings.database_url.get_secret_value(), settings.run_dir)
    echo(f"geocode benchmark: {args.points:,} address points in {url.rpartition('@')[2]}")
    echo(json.dumps(asyncio.run(bench(url, args.points, args.samples, args.keep)), indent=2))


if __name__ == "__main__":
    main()
