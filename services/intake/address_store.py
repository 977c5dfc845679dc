"""SQL for intake's address points: replace the whole set atomically, read its streets and the
points of a street near a house number."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.intake.addresses import AddressPoint, Street
from shared.db import as_row, columns

_POINT_COLUMNS = (
    "set_id",
    "street",
    "number",
    "number_suffix",
    "unit",
    "municipality",
    "community",
    "postcode",
    "state",
    "lat",
    "lon",
)
_STREET_COLUMNS = (
    "set_id",
    "municipality",
    "community",
    "postcode",
    "predir",
    "pretype",
    "name",
    "type",
    "posdir",
)
# Points read on each side of the number asked for: enough for its units and both sides of the street.
_EACH_SIDE = 6


# Two short index scans per street: the numbers from `number` up and those below it.
POINTS_NEAR = (
    "SELECT s.street, p.number, p.number_suffix, p.unit, p.lat, p.lon"
    " FROM unnest($2::text[]) AS s (street) CROSS JOIN LATERAL ("
    "  (SELECT number, number_suffix, unit, lat, lon FROM intake.address_points"
    "   WHERE set_id = $1 AND street = s.street AND number >= $3"
    "   AND ($4 = '' OR municipality = $4 OR community = $4) AND ($5 = '' OR postcode = $5)"
    f"   ORDER BY number LIMIT {_EACH_SIDE})"
    "  UNION ALL"
    "  (SELECT number, number_suffix, unit, lat, lon FROM intake.address_points"
    "   WHERE set_id = $1 AND street = s.street AND number < $3"
    "   AND ($4 = '' OR municipality = $4 OR community = $4) AND ($5 = '' OR postcode = $5)"
    f"   ORDER BY number DESC LIMIT {_EACH_SIDE})"
    " ) p"
)


@dataclass(frozen=True)
class NearPoint:
    """An address point of one street near the number asked for."""

    number: int
    number_suffix: str
    unit: str
    lat: float
    lon: float


@dataclass(frozen=True)
class AddressSet:
    """A loaded set of address points: where it came from, its size and when it was loaded."""

    id: int
    source: str
    format: str
    sha256: str
    points: int
    streets: int
    loaded_at: datetime


@dataclass(frozen=True)
class LoadedSet:
    """What one load stored."""

    set_id: int
    points: int
    streets: int
    replaced: int | None  # the set it replaced, if any


async def replace_points(
    pool: asyncpg.Pool, points: Sequence[AddressPoint], source: str, fmt: str, sha256: str
) -> LoadedSet:
    """Store `points` as the new active address set and drop the one before, in one transaction:
    a call is geocoded against the old set or the new one, never a mix, and a failed load leaves
    the old one in force."""
    streets = sorted(
        {(p.municipality, p.community, p.postcode, p.street) for p in points},
        key=lambda s: (s[0], s[1], s[2], s[3].key),
    )
    async with pool.acquire() as conn, conn.transaction():
        # Two loads at once would each drop the other's points: one waits for the other.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('intake.address_sets'))")
        replaced = await conn.fetchval("SELECT id FROM intake.address_sets WHERE active")
        set_id = await conn.fetchval(
            "INSERT INTO intake.address_sets (source, format, sha256, points, streets)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id",
            source,
            fmt,
            sha256,
            len(points),
            len(streets),
        )
        await conn.copy_records_to_table(
            "address_points",
            schema_name="intake",
            columns=_POINT_COLUMNS,
            records=(
                (
                    set_id,
                    p.street.key,
                    p.number,
                    p.number_suffix,
                    p.unit,
                    p.municipality,
                    p.community,
                    p.postcode,
                    p.state,
                    p.lat,
                    p.lon,
                )
                for p in points
            ),
        )
        await conn.copy_records_to_table(
            "address_streets",
            schema_name="intake",
            columns=_STREET_COLUMNS,
            records=(
                (set_id, m, c, pc, s.predir, s.pretype, s.name, s.type, s.posdir) for m, c, pc, s in streets
            ),
        )
        await conn.execute("UPDATE intake.address_sets SET active = false WHERE active")
        await conn.execute("UPDATE intake.address_sets SET active = true WHERE id = $1", set_id)
        await conn.execute("DELETE FROM intake.address_points WHERE set_id <> $1", set_id)
        await conn.execute("DELETE FROM intake.address_streets WHERE set_id <> $1", set_id)
        # The planner's statistics of the new rows, so the first calls use the index.
        await conn.execute("ANALYZE intake.address_points")
    return LoadedSet(set_id, len(points), len(streets), replaced)


async def active_set(conn: asyncpg.Connection | asyncpg.Pool) -> AddressSet | None:
    """The address set in force: its id, source, counts and when it was loaded."""
    record = await conn.fetchrow(f"SELECT {columns(AddressSet)} FROM intake.address_sets WHERE active")
    return as_row(AddressSet, record)


async def streets(conn: asyncpg.Connection, set_id: int) -> list[tuple[str, str, str, Street]]:
    """Every street of a set with the places it runs through."""
    rows = await conn.fetch(
        "SELECT municipality, community, postcode, predir, pretype, name, type, posdir"
        " FROM intake.address_streets WHERE set_id = $1",
        set_id,
    )
    return [
        (
            r["municipality"],
            r["community"],
            r["postcode"],
            Street(r["name"], r["predir"], r["pretype"], r["type"], r["posdir"]),
        )
        for r in rows
    ]


async def points_near(
    conn: asyncpg.Connection,
    set_id: int,
    street_keys: Sequence[str],
    number: int,
    municipality: str,
    postcode: str,
) -> dict[str, list[NearPoint]]:
    """The points of each street in the place around house number `number`, by street, in one
    query (two short index scans per street)."""
    rows = await conn.fetch(
        POINTS_NEAR,
        set_id,
        list(street_keys),
        number,
        municipality,
        postcode,
    )
    found: dict[str, list[NearPoint]] = {}
    for street, *point in rows:
        found.setdefault(street, []).append(NearPoint(*point))
    return found
