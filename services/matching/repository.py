"""SQL for matching's schema."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from services.matching.domain import TeamSnapshot
from shared.auth import Credential, replace_credentials
from shared.jurisdiction import Jurisdiction, Shift

SCHEMA = "matching"
ACTIVE = ("offered", "accepted", "en_route", "on_scene")


async def load_jurisdiction(conn: asyncpg.Connection, j: Jurisdiction) -> None:
    """Store the roster and the credentials matching accepts (idempotent; statuses are kept)."""
    await conn.execute(
        "INSERT INTO matching.config (key, value) VALUES ('timezone', $1::jsonb)"
        " ON CONFLICT (key) DO UPDATE SET value = $1::jsonb",
        json.dumps(j.jurisdiction.timezone),
    )
    for a in j.agencies:
        await conn.execute(
            "INSERT INTO matching.agencies (id, name, contracted_share) VALUES ($1, $2, $3)"
            " ON CONFLICT (id) DO UPDATE SET name = $2, contracted_share = $3",
            a.id,
            a.name,
            a.contracted_share,
        )
    for t in j.teams:
        await conn.execute(
            "INSERT INTO matching.teams (id, agency_id, name, skills, languages, home_lat, home_lon,"
            " radius_km, capacity, shifts, lat, lon) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
            " $10::jsonb, $6, $7) ON CONFLICT (id) DO UPDATE SET agency_id = $2, name = $3,"
            " skills = $4, languages = $5, home_lat = $6, home_lon = $7, radius_km = $8,"
            " capacity = $9, shifts = $10::jsonb, updated_at = now()",
            t.id,
            t.agency,
            t.name,
            t.skills,
            t.languages,
            t.home.lat,
            t.home.lon,
            t.radius_km,
            t.capacity,
            json.dumps([s.model_dump(mode="json") for s in t.shifts]),
        )
    await replace_credentials(
        conn,
        SCHEMA,
        [Credential(a.token, a.id, "agency") for a in j.agencies]
        + [Credential(o.token, o.id, o.role) for o in j.oversight],
    )


async def timezone(conn: asyncpg.Connection) -> str:
    """The jurisdiction's time zone."""
    raw = await conn.fetchval("SELECT value FROM matching.config WHERE key = 'timezone'")
    return str(json.loads(raw)) if raw else "UTC"


async def team_snapshots(conn: asyncpg.Connection) -> list[TeamSnapshot]:
    """Every team as ranking sees it."""
    rows = await conn.fetch(
        "SELECT id, agency_id, coalesce(lat, home_lat) AS lat, coalesce(lon, home_lon) AS lon,"
        " radius_km, status, languages, shifts FROM matching.teams WHERE capacity > 0"
    )
    return [
        TeamSnapshot(
            id=r["id"],
            agency_id=r["agency_id"],
            lat=r["lat"],
            lon=r["lon"],
            radius_km=r["radius_km"],
            status=r["status"],
            languages=tuple(r["languages"]),
            shifts=tuple(Shift.model_validate(s) for s in json.loads(r["shifts"])),
        )
        for r in rows
    ]


async def reserve_team(conn: asyncpg.Connection, team_id: str, call_id: str) -> bool:
    """Atomically take an available team for a call; False if another call got it first.

    Under READ COMMITTED a concurrent reservation of the same row makes this UPDATE wait and then
    re-check `status = 'available'`, so two calls (or two matching processes) never hold one team.
    """
    got = await conn.fetchval(
        "UPDATE matching.teams SET status = 'offered', current_call = $2::uuid, updated_at = now()"
        " WHERE id = $1 AND status = 'available' AND current_call IS NULL RETURNING true",
        team_id,
        call_id,
    )
    return bool(got)


async def release_team(conn: asyncpg.Connection, team_id: str, call_id: str) -> None:
    """Free a team held for a call (a no-op if it holds another call by now)."""
    await conn.execute(
        "UPDATE matching.teams SET status = 'available', current_call = NULL, updated_at = now()"
        " WHERE id = $1 AND current_call = $2::uuid",
        team_id,
        call_id,
    )


async def set_team_status(conn: asyncpg.Connection, team_id: str, call_id: str, status: str) -> None:
    """Move the team working a call to `status`."""
    await conn.execute(
        "UPDATE matching.teams SET status = $3, updated_at = now() WHERE id = $1 AND current_call = $2::uuid",
        team_id,
        call_id,
        status,
    )


async def insert_call(
    conn: asyncpg.Connection, call_id: str, psap_id: str, offer: dict[str, Any], correlation: str
) -> bool:
    """Remember a call to place; False if it was already known."""
    return bool(
        await conn.fetchval(
            "INSERT INTO matching.calls (call_id, psap_id, offer, status, correlation)"
            " VALUES ($1::uuid, $2, $3::jsonb, 'matching', $4) ON CONFLICT DO NOTHING RETURNING true",
            call_id,
            psap_id,
            json.dumps(offer),
            correlation,
        )
    )


async def get_call(conn: asyncpg.Connection, call_id: str) -> asyncpg.Record | None:
    """A call being placed, locked for this transaction so its events apply one at a time."""
    return await conn.fetchrow("SELECT * FROM matching.calls WHERE call_id = $1::uuid FOR UPDATE", call_id)


async def set_call_status(
    conn: asyncpg.Connection, call_id: str, status: str, tried: str | None = None
) -> None:
    """Move a call; record a team that was tried."""
    await conn.execute(
        "UPDATE matching.calls SET status = $2,"
        " tried_teams = CASE WHEN $3::text IS NULL THEN tried_teams ELSE tried_teams || $3::text END"
        " WHERE call_id = $1::uuid",
        call_id,
        status,
        tried,
    )


async def insert_assignment(conn: asyncpg.Connection, row: dict[str, Any]) -> None:
    """Record an offer."""
    await conn.execute(
        "INSERT INTO matching.assignments (id, call_id, team_id, agency_id, attempt, status,"
        " deadline, explanation) VALUES ($1::uuid, $2::uuid, $3, $4, $5, 'offered', $6, $7::jsonb)",
        row["id"],
        row["call_id"],
        row["team_id"],
        row["agency_id"],
        row["attempt"],
        row["deadline"],
        json.dumps(row["explanation"]),
    )


async def get_assignment(conn: asyncpg.Connection, assignment_id: str) -> asyncpg.Record | None:
    """One assignment."""
    return await conn.fetchrow("SELECT * FROM matching.assignments WHERE id = $1::uuid", assignment_id)


async def active_assignment(conn: asyncpg.Connection, call_id: str) -> asyncpg.Record | None:
    """The call's live assignment, if any."""
    return await conn.fetchrow(
        "SELECT * FROM matching.assignments WHERE call_id = $1::uuid AND status = ANY($2::text[])",
        call_id,
        list(ACTIVE),
    )


async def set_assignment_status(conn: asyncpg.Connection, assignment_id: str, status: str) -> None:
    """Move an assignment."""
    await conn.execute(
        "UPDATE matching.assignments SET status = $2, decided_at = coalesce(decided_at, now())"
        " WHERE id = $1::uuid",
        assignment_id,
        status,
    )


async def assignments_of_call(conn: asyncpg.Connection, call_id: str) -> list[asyncpg.Record]:
    """Every offer made for a call, in order."""
    return await conn.fetch(
        "SELECT * FROM matching.assignments WHERE call_id = $1::uuid ORDER BY attempt", call_id
    )


async def teams_of(conn: asyncpg.Connection, agency_id: str | None) -> list[asyncpg.Record]:
    """An agency's teams (all teams for None)."""
    return await conn.fetch(
        "SELECT id, agency_id, name, skills, languages, status, current_call, lat, lon, updated_at"
        " FROM matching.teams WHERE $1::text IS NULL OR agency_id = $1 ORDER BY id",
        agency_id,
    )


async def update_team(
    conn: asyncpg.Connection,
    team_id: str,
    agency_id: str,
    status: str | None,
    lat: float | None,
    lon: float | None,
) -> asyncpg.Record | None:
    """Change an agency's own team; None when it is not theirs. A busy team keeps its call."""
    return await conn.fetchrow(
        "UPDATE matching.teams SET"
        " status = CASE WHEN $3::text IS NULL OR current_call IS NOT NULL THEN status ELSE $3 END,"
        " lat = coalesce($4, lat), lon = coalesce($5, lon), updated_at = now()"
        " WHERE id = $1 AND agency_id = $2"
        " RETURNING id, agency_id, name, skills, languages, status, current_call, lat, lon, updated_at",
        team_id,
        agency_id,
        status,
        lat,
        lon,
    )
