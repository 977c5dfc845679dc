"""SQL for notify's schema."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from shared.auth import Credential, replace_credentials
from shared.jurisdiction import Jurisdiction

SCHEMA = "notify"


async def load_jurisdiction(conn: asyncpg.Connection, j: Jurisdiction) -> None:
    """Store agencies' channels and tokens (idempotent)."""
    for a in j.agencies:
        await conn.execute(
            "INSERT INTO notify.agencies (id, name, channels, partitions) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (id) DO UPDATE SET name = $2, channels = $3, partitions = $4",
            a.id,
            a.name,
            list(a.channels),
            a.partitions,
        )
    await replace_credentials(conn, SCHEMA, [Credential(a.token, a.id, "agency") for a in j.agencies])


async def agencies(conn: asyncpg.Connection | asyncpg.Pool) -> list[asyncpg.Record]:
    """Every agency with its channels."""
    return await conn.fetch("SELECT id, channels, partitions FROM notify.agencies ORDER BY id")


async def insert_assignment(conn: asyncpg.Connection, row: dict[str, Any]) -> bool:
    """Record an offer to deliver; False if already known."""
    return bool(
        await conn.fetchval(
            "INSERT INTO notify.assignments (id, call_id, agency_id, team_id, status, deadline, details,"
            " correlation) VALUES ($1::uuid, $2::uuid, $3, $4, 'offered', $5, $6::jsonb, $7)"
            " ON CONFLICT DO NOTHING RETURNING true",
            row["id"],
            row["call_id"],
            row["agency_id"],
            row["team_id"],
            row["deadline"],
            json.dumps(row["details"]),
            row["correlation"],
        )
    )


async def get_for_update(conn: asyncpg.Connection, assignment_id: str) -> asyncpg.Record | None:
    """One assignment, locked so concurrent answers apply one at a time."""
    return await conn.fetchrow(
        "SELECT * FROM notify.assignments WHERE id = $1::uuid FOR UPDATE", assignment_id
    )


async def set_status(
    conn: asyncpg.Connection, assignment_id: str, status: str, answer: dict[str, Any] | None = None
) -> None:
    """Move an assignment (and keep the agency's answer)."""
    await conn.execute(
        "UPDATE notify.assignments SET status = $2, answer = coalesce($3::jsonb, answer),"
        " updated_at = now() WHERE id = $1::uuid",
        assignment_id,
        status,
        json.dumps(answer) if answer is not None else None,
    )


async def list_for_agency(
    conn: asyncpg.Connection, agency_id: str, status: str | None, limit: int
) -> list[asyncpg.Record]:
    """An agency's assignments, newest first."""
    return await conn.fetch(
        "SELECT * FROM notify.assignments WHERE agency_id = $1 AND ($2::text IS NULL OR status = $2)"
        " ORDER BY offered_at DESC LIMIT $3",
        agency_id,
        status,
        limit,
    )
