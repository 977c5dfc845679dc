"""SQL for audit's schema."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from services.audit import domain
from shared.auth import Credential, replace_credentials
from shared.envelope import Envelope
from shared.jurisdiction import Jurisdiction

SCHEMA = "audit"


async def load_jurisdiction(conn: asyncpg.Connection, j: Jurisdiction) -> None:
    """Store the oversight bodies' and admins' tokens (idempotent)."""
    await replace_credentials(conn, SCHEMA, [Credential(o.token, o.id, o.role) for o in j.oversight])


async def append(conn: asyncpg.Connection, event: Envelope, recorded_at: datetime) -> int:
    """Append one event at the head of the chain; returns its sequence number."""
    head = await conn.fetchrow("SELECT seq, hash FROM audit.chain_head WHERE id = 1 FOR UPDATE")
    seq = head["seq"] + 1
    prev = bytes(head["hash"])
    envelope = json.loads(event.to_bytes())
    stamp = recorded_at.isoformat()
    digest = domain.row_hash(prev, seq, stamp, envelope)
    agency = envelope.get("data", {}).get("agency_id")
    await conn.execute(
        "INSERT INTO audit.events (seq, event_id, type, subject, agency_id, source, event_time,"
        " recorded_at, envelope, prev_hash, row_hash)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11)",
        seq,
        event.id,
        event.type,
        event.subject,
        agency,
        event.source,
        event.time,
        recorded_at,
        json.dumps(envelope),
        prev,
        digest,
    )
    await conn.execute("UPDATE audit.chain_head SET seq = $1, hash = $2 WHERE id = 1", seq, digest)
    return seq


def _stored(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "seq": row["seq"],
        "recorded_at": row["recorded_at"],
        "envelope": json.loads(row["envelope"]),
        "row_hash": bytes(row["row_hash"]).hex(),
    }


async def events_of_call(conn: asyncpg.Connection, call_id: str) -> list[dict[str, Any]]:
    """Every stored event of one call, in trail order."""
    rows = await conn.fetch(
        "SELECT seq, recorded_at, envelope, row_hash FROM audit.events WHERE subject = $1 ORDER BY seq",
        call_id,
    )
    return [_stored(r) for r in rows]


async def search(
    conn: asyncpg.Connection,
    *,
    call_id: str | None,
    agency_id: str | None,
    type_: str | None,
    since: datetime | None,
    until: datetime | None,
    after_seq: int,
    limit: int,
) -> list[dict[str, Any]]:
    """Events matching the filters, in trail order, after a cursor."""
    rows = await conn.fetch(
        "SELECT seq, recorded_at, envelope, row_hash FROM audit.events WHERE seq > $1"
        " AND ($2::text IS NULL OR subject = $2) AND ($3::text IS NULL OR agency_id = $3)"
        " AND ($4::text IS NULL OR type = $4) AND ($5::timestamptz IS NULL OR recorded_at >= $5)"
        " AND ($6::timestamptz IS NULL OR recorded_at < $6) ORDER BY seq LIMIT $7",
        after_seq,
        call_id,
        agency_id,
        type_,
        since,
        until,
        limit,
    )
    return [_stored(r) for r in rows]


async def chain_rows(conn: asyncpg.Connection, first: int, last: int | None) -> list[domain.ChainRow]:
    """Stored rows from `first` to `last` (inclusive) for verification."""
    rows = await conn.fetch(
        "SELECT seq, recorded_at, envelope, prev_hash, row_hash FROM audit.events"
        " WHERE seq >= $1 AND ($2::bigint IS NULL OR seq <= $2) ORDER BY seq",
        first,
        last,
    )
    return [
        domain.ChainRow(
            seq=r["seq"],
            recorded_at=r["recorded_at"].isoformat(),
            envelope=json.loads(r["envelope"]),
            prev_hash=bytes(r["prev_hash"]),
            row_hash=bytes(r["row_hash"]),
        )
        for r in rows
    ]


async def hash_before(conn: asyncpg.Connection, seq: int) -> bytes | None:
    """The row hash just before `seq` (the genesis hash before the first row)."""
    if seq <= 1:
        return domain.GENESIS
    raw = await conn.fetchval("SELECT row_hash FROM audit.events WHERE seq = $1", seq - 1)
    return bytes(raw) if raw is not None else None


async def head(conn: asyncpg.Connection) -> tuple[int, bytes]:
    """The chain head's sequence and hash."""
    row = await conn.fetchrow("SELECT seq, hash FROM audit.chain_head WHERE id = 1")
    return int(row["seq"]), bytes(row["hash"])
