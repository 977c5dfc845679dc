"""`careroute load-addresses` and the geocoder on the real PostgreSQL: both file formats, an atomic
reload, a bad file refused with the old set intact, and each match method."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.intake import address_store, addresses
from services.intake.geocode import Geocoder
from services.loader import MIGRATIONS
from shared.db import create_pool, migrate

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
CAREROUTE = str(Path(sys.executable).with_name("careroute"))


def nena(*points: tuple[int, str, str, str, str, float, float]) -> str:
    """A NENA-STA-006 GeoJSON of (number, predir, name, type, municipality, lat, lon) points."""
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {
                "Site_NGUID": f"urn:emergency:uid:gis:ssap:{i}:lane.or.us",
                "Add_Number": number,
                "St_PreDir": predir,
                "St_Name": name,
                "St_PosTyp": type_,
                "Inc_Muni": muni,
                "State": "OR",
                "Post_Code": "97477",
            },
        }
        for i, (number, predir, name, type_, muni, lat, lon) in enumerate(points)
    ]
    return json.dumps({"type": "FeatureCollection", "features": features})


SPRINGFIELD = nena(
    (125, "North", "Main", "Street", "Springfield", 44.0461, -123.0220),
    (131, "North", "Main", "Street", "Springfield", 44.0463, -123.0220),
    (125, "South", "Main", "Street", "Springfield", 44.0401, -123.0220),
    (200, "", "Oak", "Avenue", "Springfield", 44.0500, -123.0300),
    (200, "", "Oak", "Avenue", "Eugene", 44.0520, -123.0900),
)


def careroute(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run([CAREROUTE, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, max_size=4)
    await migrate(pool, "intake", [MIGRATIONS["intake"]])
    try:
        yield pool
    finally:
        await pool.close()


async def _geocode(pool: asyncpg.Pool, geocoder: Geocoder, text: str) -> tuple[str | None, float, str | None]:
    civic = addresses.civic_from_text(text)
    assert civic is not None
    async with pool.acquire() as conn:
        active = await address_store.active_set(conn)
        found = await geocoder.geocode(conn, active.id if active else None, civic)
    return found.method or found.failure, found.score, found.matched


async def test_load_both_formats_geocode_and_reload(database_url: str, pool: asyncpg.Pool, tmp_path: Path):
    geocoder = Geocoder()
    assert (await _geocode(pool, geocoder, "125 N Main St, Springfield"))[0] == "no_address_points"

    geojson = tmp_path / "springfield.geojson"
    geojson.write_text(SPRINGFIELD)
    loaded = careroute(database_url, "load-addresses", str(geojson))
    assert loaded.returncode == 0, loaded.stderr
    assert "5 points on 4 streets" in loaded.stdout

    assert await _geocode(pool, geocoder, "125 North Main Street, Springfield, OR 97477") == (
        "exact",
        1.0,
        "125 NORTH MAIN STREET, SPRINGFIELD",
    )
    method, score, matched = await _geocode(pool, geocoder, "125 N Mian St, Springfield")
    assert (method, matched) == ("fuzzy_street", "125 NORTH MAIN STREET, SPRINGFIELD") and 0.8 < score < 1
    method, score, matched = await _geocode(pool, geocoder, "129 N Main St, Springfield")
    assert (method, matched) == ("nearest_number", "131 NORTH MAIN STREET, SPRINGFIELD") and score == 0.995
    assert (await _geocode(pool, geocoder, "125 Main St, Springfield"))[0] == "ambiguous_street"
    assert (await _geocode(pool, geocoder, "200 Oak Ave, Eugene"))[2] == "200 OAK AVENUE, EUGENE"
    assert (await _geocode(pool, geocoder, "9 Zzyzx Rd, Springfield"))[0] == "street_not_found"
    assert (await _geocode(pool, geocoder, "9 Oak Ave, Portland"))[0] == "municipality_not_found"

    csv = tmp_path / "or_lane.csv"
    csv.write_text(
        "LON,LAT,NUMBER,STREET,UNIT,CITY,DISTRICT,REGION,POSTCODE\n"
        "-123.0100,44.0600,400,W Elm Street,,Springfield,Lane,OR,97477\n"
        "-123.0102,44.0602,402,W Elm Street,,Springfield,Lane,OR,97477\n"
    )
    again = careroute(database_url, "load-addresses", str(csv))
    assert again.returncode == 0, again.stderr
    assert "2 points on 1 streets, replacing set 1" in again.stdout
    # The running geocoder moves to the new set with its next call; the old points are gone.
    assert (await _geocode(pool, geocoder, "400 W Elm St, Springfield"))[0] == "exact"
    assert (await _geocode(pool, geocoder, "125 N Main St, Springfield"))[0] == "street_not_found"
    assert await pool.fetchval("SELECT count(*) FROM intake.address_points") == 2


async def test_a_bad_file_is_refused_naming_the_line_and_stores_nothing(
    database_url: str, pool: asyncpg.Pool, tmp_path: Path
):
    good = tmp_path / "springfield.geojson"
    good.write_text(SPRINGFIELD)
    assert careroute(database_url, "load-addresses", str(good)).returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "LON,LAT,NUMBER,STREET,UNIT,CITY,DISTRICT,REGION,POSTCODE\n"
        "-123.0100,44.0600,400,W Elm Street,,Springfield,Lane,OR,97477\n"
        "-123.0100,95.0,402,W Elm Street,,Springfield,Lane,OR,97477\n"
    )
    refused = careroute(database_url, "load-addresses", str(bad))
    assert refused.returncode == 2
    assert "bad.csv: line 3: the position (95.0, -123.01) is not on the Earth" in refused.stderr
    checked = careroute(database_url, "load-addresses", "--check", str(bad))
    assert checked.returncode == 2 and "line 3" in checked.stderr
    unknown = careroute(database_url, "load-addresses", "--format", "shp", str(good))
    assert unknown.returncode == 2 and "unknown format 'shp'" in unknown.stderr
    active = await address_store.active_set(pool)
    assert active is not None and (active.source, active.points) == ("springfield.geojson", 5)
    assert await pool.fetchval("SELECT count(*) FROM intake.address_points") == 5


async def test_a_reload_is_seen_whole_or_not_at_all(pool: asyncpg.Pool):
    first = addresses.read_points("a.geojson", SPRINGFIELD)
    await address_store.replace_points(pool, first, "a.geojson", "nena-geojson", "a")
    many = [
        addresses.AddressPoint(
            n, addresses.street_from_text(f"{n % 300} St"), 44.0 + n / 1e6, -123.0, municipality="X"
        )
        for n in range(1, 60_001)
    ]
    load = asyncio.create_task(address_store.replace_points(pool, many, "b.csv", "openaddresses-csv", "b"))
    seen: set[int] = set()
    async with pool.acquire() as conn:
        while not load.done():
            seen.add(
                await conn.fetchval(
                    "SELECT count(*) FROM intake.address_points p"
                    " JOIN intake.address_sets s ON s.id = p.set_id AND s.active"
                )
            )
            await asyncio.sleep(0.01)
    await load
    assert seen <= {len(first), len(many)}
    assert await pool.fetchval("SELECT count(*) FROM intake.address_points") == len(many)
