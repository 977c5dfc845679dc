"""SQL for intake's schema."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from shared.auth import Credential, replace_credentials
from shared.jurisdiction import Jurisdiction, Triage

SCHEMA = "intake"


async def load_jurisdiction(conn: asyncpg.Connection, j: Jurisdiction) -> None:
    """Store the PSAPs, their tokens and the triage rules (idempotent)."""
    for p in j.psaps:
        await conn.execute(
            "INSERT INTO intake.psaps (id, name, callback_url, signing_secret, local_codes)"
            " VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (id) DO UPDATE SET name = $2,"
            " callback_url = $3, signing_secret = $4, local_codes = $5::jsonb",
            p.id,
            p.name,
            p.callback_url,
            p.signing_secret,
            json.dumps(p.local_codes),
        )
    await replace_credentials(conn, SCHEMA, [Credential(p.token, p.id, "psap") for p in j.psaps])
    await conn.execute("UPDATE intake.triage_rules SET active = false WHERE active")
    await conn.execute(
        "INSERT INTO intake.triage_rules (version, rules, active) VALUES ($1, $2::jsonb, true)"
        " ON CONFLICT (version) DO UPDATE SET rules = $2::jsonb, active = true, loaded_at = now()",
        j.triage.version,
        j.triage.model_dump_json(),
    )


async def active_rules(conn: asyncpg.Connection) -> Triage | None:
    """The triage rules in force."""
    raw = await conn.fetchval("SELECT rules FROM intake.triage_rules WHERE active")
    return None if raw is None else Triage.model_validate_json(raw)


async def local_codes(conn: asyncpg.Connection, psap_id: str) -> dict[str, str]:
    """A PSAP's local call codes mapped to common incident types."""
    raw = await conn.fetchval("SELECT local_codes FROM intake.psaps WHERE id = $1", psap_id)
    return dict(json.loads(raw)) if raw else {}


async def find_by_external_id(
    conn: asyncpg.Connection, psap_id: str, external_id: str
) -> asyncpg.Record | None:
    """A PSAP's call by its own id."""
    return await conn.fetchrow(
        "SELECT * FROM intake.calls WHERE psap_id = $1 AND external_id = $2", psap_id, external_id
    )


async def get_call(conn: asyncpg.Connection, call_id: str) -> asyncpg.Record | None:
    """One call."""
    return await conn.fetchrow("SELECT * FROM intake.calls WHERE id = $1::uuid", call_id)


async def insert_call(conn: asyncpg.Connection, row: dict[str, Any]) -> bool:
    """Store a new call; False when the PSAP's id was taken by a concurrent request."""
    inserted = await conn.fetchval(
        "INSERT INTO intake.calls (id, psap_id, external_id, incident_type, origin, location,"
        " language, safety, callback_number, caller_name, narrative, consent_non_police,"
        " decision, status, received_at)"
        " VALUES ($1::uuid, $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb, $9, $10, $11, $12,"
        " $13::jsonb, $14, $15)"
        " ON CONFLICT (psap_id, external_id) DO NOTHING RETURNING true",
        row["id"],
        row["psap_id"],
        row["external_id"],
        row["incident_type"],
        row["origin"],
        json.dumps(row["location"]),
        row["language"],
        json.dumps(row["safety"]),
        row["callback_number"],
        row["caller_name"],
        row["narrative"],
        row["consent_non_police"],
        json.dumps(row["decision"]),
        row["status"],
        row["received_at"],
    )
    return bool(inserted)


async def set_status(
    conn: asyncpg.Connection,
    call_id: str,
    status: str,
    detail: dict[str, Any],
    *,
    assignment: dict[str, Any] | None = None,
    clear_assignment: bool = False,
) -> None:
    """Move a call to `status` and add the step to its timeline."""
    if assignment is not None:
        await conn.execute(
            "UPDATE intake.calls SET status = $2, assignment = $3::jsonb, updated_at = now()"
            " WHERE id = $1::uuid",
            call_id,
            status,
            json.dumps(assignment),
        )
    elif clear_assignment:
        await conn.execute(
            "UPDATE intake.calls SET status = $2, assignment = NULL, updated_at = now() WHERE id = $1::uuid",
            call_id,
            status,
        )
    else:
        await conn.execute(
            "UPDATE intake.calls SET status = $2, updated_at = now() WHERE id = $1::uuid",
            call_id,
            status,
        )
    await add_timeline(conn, call_id, status, detail)


async def add_timeline(conn: asyncpg.Connection, call_id: str, status: str, detail: dict[str, Any]) -> None:
    """Append one step to a call's timeline."""
    await conn.execute(
        "INSERT INTO intake.call_timeline (call_id, status, detail) VALUES ($1::uuid, $2, $3::jsonb)",
        call_id,
        status,
        json.dumps(detail),
    )


async def timeline(conn: asyncpg.Connection, call_id: str) -> list[asyncpg.Record]:
    """A call's timeline in order."""
    return await conn.fetch(
        "SELECT at, status, detail FROM intake.call_timeline WHERE call_id = $1::uuid ORDER BY id",
        call_id,
    )
