"""Dead letters kept in the service's schema: recording one, the parks they hold, listing and replay."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from aiokafka import ConsumerRecord

from shared.db import check_identifier
from shared.envelope import Envelope
from shared.kafka import Publisher

# A replayed copy names the group and the letter it replays: only that group applies it (every
# other group already applied the original, or will when it reaches it, and drops the copy).
REPLAY_GROUP = "careroute-replay-group"
REPLAY_ID = "careroute-replay-id"
_OURS = ("dlq-", "careroute-replay-")

_COLUMNS = (
    "id, consumer_group, origin_topic, origin_partition, origin_offset, key, subject, event_id,"
    " event_type, reason, error, dead_lettered_at, replayed_at, resumed_at"
)


@dataclass(frozen=True)
class Letter:
    """One dead letter as an operator sees it."""

    id: int
    consumer_group: str
    origin_topic: str
    origin_partition: int
    origin_offset: int
    key: str | None
    subject: str | None
    event_id: str | None
    event_type: str | None
    reason: str
    error: str
    dead_lettered_at: datetime
    replayed_at: datetime | None
    resumed_at: datetime | None

    @classmethod
    def of(cls, row: asyncpg.Record) -> Letter:
        """The letter of a row selected with `_COLUMNS`."""
        values: dict[str, Any] = dict(row)
        if values["event_id"] is not None:
            values["event_id"] = str(values["event_id"])
        return cls(**values)


def original_headers(headers: Any) -> list[tuple[str, bytes]]:
    """A record's headers without the ones dead-lettering and replay add."""
    return [(k, bytes(v)) for k, v in (headers or ()) if not k.startswith(_OURS)]


def replay_of(record: ConsumerRecord[Any, Any]) -> tuple[str, int] | None:
    """The (group, letter id) a replayed copy stands for, or None for an original record."""
    found = {k: bytes(v) for k, v in (record.headers or ()) if k in (REPLAY_GROUP, REPLAY_ID)}
    if len(found) != 2 or not found[REPLAY_ID].isdigit():
        return None
    return found[REPLAY_GROUP].decode(), int(found[REPLAY_ID])


async def record(
    conn: asyncpg.Connection,
    schema: str,
    group: str,
    rec: ConsumerRecord[Any, Any],
    reason: str,
    error: str,
    envelope: Envelope | None,
) -> int | None:
    """Store a dead letter in the caller's transaction; its id, or None if this record already is one."""
    headers = original_headers(rec.headers)
    key = rec.key.decode(errors="replace") if isinstance(rec.key, bytes) else None
    value = await conn.fetchval(
        f"INSERT INTO {check_identifier(schema)}.dead_letters (consumer_group, origin_topic,"
        " origin_partition, origin_offset, key, subject, event_id, event_type, reason, error, value,"
        " header_keys, header_values) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        " ON CONFLICT (consumer_group, origin_topic, origin_partition, origin_offset) DO NOTHING"
        " RETURNING id",
        group,
        rec.topic,
        rec.partition,
        rec.offset,
        key,
        envelope.subject if envelope else None,
        envelope.id if envelope else None,
        envelope.type if envelope else None,
        reason,
        error,
        rec.value,
        [k for k, _ in headers],
        [v for _, v in headers],
    )
    return int(value) if value is not None else None


async def claim_copy(conn: asyncpg.Connection, schema: str, group: str, letter_id: int) -> str:
    """What to do with the replayed copy of a letter: 'apply', 'park' (an earlier letter of its
    subject is still open or on its way back), or 'drop' (a copy already handled, or one whose
    replay never committed: the letter is still open and will be replayed again)."""
    s = check_identifier(schema)
    # FOR UPDATE waits for a replay still committing, so its copy is never taken for an orphan.
    row = await conn.fetchrow(
        f"SELECT subject, replayed_at, resumed_at FROM {s}.dead_letters"
        " WHERE id = $1 AND consumer_group = $2 FOR UPDATE",
        letter_id,
        group,
    )
    if row is None or row["replayed_at"] is None or row["resumed_at"] is not None:
        return "drop"
    earlier = await conn.fetchval(
        f"SELECT EXISTS (SELECT 1 FROM {s}.dead_letters WHERE consumer_group = $1 AND subject = $2"
        " AND resumed_at IS NULL AND id <> $3 AND (replayed_at IS NULL OR id < $3))",
        group,
        row["subject"],
        letter_id,
    )
    return "park" if earlier else "apply"


async def resume(conn: asyncpg.Connection, schema: str, letter_id: int) -> None:
    """Mark a letter's copy as back through the consumer, in the transaction that handled it."""
    await conn.execute(
        f"UPDATE {check_identifier(schema)}.dead_letters SET resumed_at = now() WHERE id = $1", letter_id
    )


async def open_count(conn: asyncpg.Connection | asyncpg.Pool, schema: str, group: str) -> int:
    """Dead letters of `group` not replayed yet."""
    return int(
        await conn.fetchval(
            f"SELECT count(*) FROM {check_identifier(schema)}.dead_letters"
            " WHERE consumer_group = $1 AND replayed_at IS NULL",
            group,
        )
    )


async def has_table(conn: asyncpg.Connection | asyncpg.Pool, schema: str) -> bool:
    """Whether `schema` has been migrated far enough to hold dead letters."""
    name = f"{check_identifier(schema)}.dead_letters"
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name))


async def list_letters(conn: asyncpg.Connection | asyncpg.Pool, schema: str) -> list[Letter]:
    """Every dead letter of `schema`, oldest first."""
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM {check_identifier(schema)}.dead_letters ORDER BY id")
    return [Letter.of(r) for r in rows]


async def replay(
    pool: asyncpg.Pool, schema: str, publisher: Publisher, ids: list[int] | None
) -> list[Letter]:
    """Publish open letters again to their origin, oldest first, and mark them replayed: all of
    them, or those of `ids` with every other open letter of the same subjects (a subject's events
    come back together and in their order, or its park would only catch them again).

    The broker acknowledges each copy before the rows are marked, so a failure leaves the letters
    open to be replayed again; a copy published twice is dropped by the consumer.
    """
    s = check_identifier(schema)
    chosen = (
        f"SELECT id, subject, consumer_group FROM {s}.dead_letters"
        " WHERE id = ANY($1::bigint[]) AND replayed_at IS NULL"
    )
    where = (
        "TRUE"
        if ids is None
        else f"(d.id IN (SELECT id FROM ({chosen}) c) OR (d.subject, d.consumer_group) IN"
        f" (SELECT subject, consumer_group FROM ({chosen}) c WHERE subject IS NOT NULL))"
    )
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            f"SELECT {_COLUMNS}, value, header_keys, header_values FROM {s}.dead_letters d"
            f" WHERE d.replayed_at IS NULL AND {where} ORDER BY d.id FOR UPDATE",
            *([] if ids is None else [ids]),
        )
        for row in rows:
            headers = list(zip(row["header_keys"], [bytes(v) for v in row["header_values"]], strict=True))
            headers += [(REPLAY_GROUP, row["consumer_group"].encode()), (REPLAY_ID, str(row["id"]).encode())]
            # One at a time: without idempotence a retried batch could land after the next one.
            future = await publisher.send(
                row["origin_topic"],
                value=bytes(row["value"]) if row["value"] is not None else None,
                key=row["key"].encode() if row["key"] is not None else None,
                partition=row["origin_partition"],
                headers=headers,
            )
            await future
        replayed = await conn.fetch(
            f"UPDATE {s}.dead_letters SET replayed_at = now()"
            f" WHERE id = ANY($1::bigint[]) RETURNING {_COLUMNS}",
            [r["id"] for r in rows],
        )
    return sorted((Letter.of(r) for r in replayed), key=lambda letter: letter.id)
