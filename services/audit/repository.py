"""SQL for audit's schema."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from services.audit import domain, merkle
from services.audit.workforce import TeamHours
from shared.auth import Credential, replace_credentials
from shared.envelope import Envelope
from shared.jurisdiction import Jurisdiction, Shift, Zone

SCHEMA = "audit"


async def load_jurisdiction(conn: asyncpg.Connection, j: Jurisdiction) -> None:
    """Store the oversight bodies' and admins' tokens, and what the reports read of the file: the
    time zone, each team's capacity and shifts, the zones (idempotent)."""
    await replace_credentials(conn, SCHEMA, [Credential(o.token, o.id, o.role) for o in j.oversight])
    config = {
        "timezone": j.jurisdiction.timezone,
        "teams": [
            {"id": t.id, "capacity": t.capacity, "shifts": [s.model_dump(mode="json") for s in t.shifts]}
            for t in j.teams
        ],
        "zones": [z.model_dump(mode="json") for z in j.zones],
    }
    await conn.executemany(
        "INSERT INTO audit.config (key, value) VALUES ($1, $2::jsonb)"
        " ON CONFLICT (key) DO UPDATE SET value = $2::jsonb",
        list(config.items()),
    )


@dataclass(frozen=True)
class ReportConfig:
    """What the reports read of the loaded jurisdiction (UTC, no teams, no zones before any load)."""

    timezone: ZoneInfo
    teams: tuple[TeamHours, ...]
    zones: tuple[Zone, ...]


async def report_config(conn: asyncpg.Connection) -> ReportConfig:
    """The time zone, teams and zones `careroute load` stored, validated again as the file was."""
    stored = {r["key"]: r["value"] for r in await conn.fetch("SELECT key, value FROM audit.config")}
    teams = tuple(
        TeamHours(t["id"], int(t["capacity"]), tuple(Shift.model_validate(s) for s in t["shifts"]))
        for t in stored.get("teams", [])
    )
    zones = tuple(Zone.model_validate(z) for z in stored.get("zones", []))
    return ReportConfig(ZoneInfo(str(stored.get("timezone", "UTC"))), teams, zones)


WRITER_ROLE = "audit_writer"


# NOTIFYed at the commit of a transaction that appended to the trail: it wakes the checkpointer.
APPENDED_CHANNEL = "audit_appended"


async def act_as_writer(conn: asyncpg.Connection, *, appending: bool = False) -> None:
    """Make the rest of the caller's transaction run as the insert-only trail role; `appending`
    also tells the checkpointer at commit that the trail grew (in the same round trip)."""
    notify = f"; NOTIFY {APPENDED_CHANNEL}" if appending else ""
    await conn.execute(f"SET LOCAL ROLE {WRITER_ROLE}{notify}")


# The columns of audit.events a chained row fills, in the order `chain_rows` gives them, and the
# type each is sent as: a run's rows go in as one array per column, in one statement.
_EVENT_TYPES = {
    "seq": "bigint",
    "event_id": "uuid",
    "type": "text",
    "subject": "text",
    "agency_id": "text",
    "source": "text",
    "event_time": "timestamptz",
    "recorded_at": "timestamptz",
    "envelope": "text",
    "prev_hash": "bytea",
    "row_hash": "bytea",
    "public_event": "text",
    "nonce": "bytea",
    "flag": "text",
    "raw": "bytea",
}
EVENT_COLUMNS = tuple(_EVENT_TYPES)
_JSON_COLUMNS = ("envelope", "public_event")
# The JSON columns take the text chain_rows wrote (text first, so the pool's codec leaves it as it
# is): what is stored is what was hashed and sealed.
_INSERT_EVENTS = (
    f"INSERT INTO audit.events ({', '.join(EVENT_COLUMNS)})"
    f" SELECT {', '.join(f'{c}::jsonb' if c in _JSON_COLUMNS else c for c in EVENT_COLUMNS)}"
    f" FROM unnest({', '.join(f'${n}::{t}[]' for n, t in enumerate(_EVENT_TYPES.values(), 1))})"
    f" AS e ({', '.join(EVENT_COLUMNS)})"
)
# Why a row is flagged: audit could not encode the event canonically, so the row commits to a seal
# of the bytes it received and to a public view of the envelope's header alone.
NOT_CANONICAL = "not_canonical"
# Envelope attributes that a flagged row still shows (validated strings, safe for oversight).
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
HEADER_KEYS = ("specversion", "id", "type", "source", "subject", "time", "correlationid", "causationid")


@dataclass
class ChainHead:
    """Where the chain and the tree end: the next row links to `hash` and becomes seq + 1."""

    seq: int
    hash: bytes
    frontier: list[bytes]


# What chain_rows takes for one event: the envelope, when it was recorded, the row's nonce and the
# bytes audit received, or how to make them when a flagged row needs them (None where there are
# none, as in the benchmark's generated rows).
ChainItem = tuple[dict[str, Any], datetime, bytes, bytes | Callable[[], bytes] | None]


def _storable(envelope: dict[str, Any]) -> tuple[str, dict[str, Any], bytes] | None:
    """The envelope's JSON text, public view and canonical bytes, or None when it cannot be stored
    as it is: not canonical (a lone surrogate, an integer no double holds) or a NUL, which jsonb refuses.

    The text is the canonical JSON itself where the standard library wrote it: jsonb keeps values,
    not key order or escapes, so it stores what `json.dumps` of the envelope would have stored."""
    try:
        full, text = domain.canonical_json(envelope)
        public = domain.redact(envelope)
        if text is None:
            text = json.dumps(envelope, allow_nan=False)
    except (domain.NotCanonical, ValueError, TypeError, RecursionError):
        return None
    if "\\u0000" in text and _ESCAPED_NUL.search(text):
        return None
    return text, public, full


def flagged_view(envelope: dict[str, Any]) -> dict[str, Any]:
    """What a flagged row shows in place of the event: its header, no data, and the flag."""
    return {
        **{k: envelope[k] for k in HEADER_KEYS if isinstance(envelope.get(k), str)},
        "data": {},
        "flag": NOT_CANONICAL,
    }


def chain_rows(
    head: ChainHead, items: Iterable[ChainItem]
) -> tuple[list[tuple[Any, ...]], list[tuple[int, int, bytes]]]:
    """Chain (envelope, recorded_at, nonce, received bytes) items after `head` (moved to the new
    end): the rows for audit.events in EVENT_COLUMNS order, and the tree nodes they complete.

    Every item becomes a row: one that cannot be encoded canonically is flagged and commits to
    `SHA-256(nonce || received bytes)`, so an event audit accepted is never missing from the trail.
    """
    rows: list[tuple[Any, ...]] = []
    nodes: list[tuple[int, int, bytes]] = []
    stamped: tuple[datetime, bytes] | None = None
    for envelope, recorded_at, nonce, received in items:
        head.seq += 1
        storable = _storable(envelope)
        if storable is not None:
            text, public, full = storable
            sealed = hashlib.sha256(nonce + full).digest()
            flag, raw = None, None
        else:
            public = flagged_view(envelope)
            text = json.dumps(public)
            if callable(received):
                received = received()
            raw = received if received is not None else repr(envelope).encode()
            sealed = hashlib.sha256(nonce + raw).digest()
            flag = NOT_CANONICAL
        # Each view is encoded once: its canonical bytes go into the row hash, and its text (where
        # the standard library wrote it) into the column.
        shown, public_text = domain.canonical_json(public)
        if stamped is None or stamped[0] is not recorded_at:
            stamped = recorded_at, domain.canonical(recorded_at.isoformat())
        digest = domain.row_hash_of(head.hash, head.seq, stamped[1], shown, sealed)
        head.frontier, completed = merkle.append_with_nodes(
            head.frontier, head.seq - 1, merkle.leaf_hash(digest)
        )
        nodes.extend(completed)
        rows.append(
            (
                head.seq,
                uuid.UUID(envelope["id"]),
                envelope["type"],
                envelope.get("subject"),
                _text_or_none(envelope.get("data", {}).get("agency_id")) if flag is None else None,
                envelope["source"],
                datetime.fromisoformat(envelope["time"]),
                recorded_at,
                text,
                head.hash,
                digest,
                json.dumps(public) if public_text is None else public_text,
                nonce,
                flag,
                raw,
            )
        )
        head.hash = digest
    return rows, nodes


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _item(event: Envelope, recorded_at: datetime, nonce: bytes) -> ChainItem:
    # The JSON-mode dump is the value of the event's bytes (`json.loads(event.to_bytes())`) without
    # writing and parsing them; only a flagged row needs the bytes themselves.
    return event.model_dump(mode="json", exclude_none=True), recorded_at, nonce, event.to_bytes


async def append_many(
    conn: asyncpg.Connection, events: list[tuple[Envelope, bytes]], recorded_at: datetime
) -> list[str]:
    """Append events, in order, at the head of the chain and the tree; returns the ids of the events
    stored flagged (not canonical).

    The head is locked and written once for the whole run, and the rows go in one statement.
    """
    if not events:
        return []
    row = await conn.fetchrow("SELECT seq, hash, frontier FROM audit.chain_head WHERE id = 1 FOR UPDATE")
    head = ChainHead(row["seq"], bytes(row["hash"]), [bytes(h) for h in row["frontier"]])
    rows, nodes = chain_rows(head, (_item(event, recorded_at, nonce) for event, nonce in events))
    await conn.execute(_INSERT_EVENTS, *map(list, zip(*rows, strict=True)))
    if nodes:
        await conn.execute(
            "INSERT INTO audit.tree_nodes (level, idx, hash)"
            " SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])",
            *map(list, zip(*nodes, strict=True)),
        )
    await conn.execute(
        "UPDATE audit.chain_head SET seq = $1, hash = $2, frontier = $3 WHERE id = 1",
        head.seq,
        head.hash,
        head.frontier,
    )
    flag_at = EVENT_COLUMNS.index("flag")
    return [str(r[1]) for r in rows if r[flag_at] is not None]


_COLUMNS = "seq, recorded_at, envelope, public_event, row_hash, prev_hash, nonce, flag, raw"


def _seal_of(row: asyncpg.Record, envelope: Any) -> bytes | None:
    """The row's seal recomputed from what it stores (so an edited event no longer matches): over the
    received bytes for a flagged row, else over the full event; None if it cannot be computed."""
    nonce = bytes(row["nonce"])
    if row["flag"] is not None:
        return hashlib.sha256(nonce + bytes(row["raw"] or b"")).digest()
    try:
        return domain.seal(nonce, envelope)
    except domain.NotCanonical:
        return None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of the trail as read: the event and its redacted view as stored (objects, unless
    edited since), its hashes in hex, and its seal recomputed from what it stores."""

    seq: int
    recorded_at: datetime
    envelope: Any
    public: Any
    row_hash: str
    prev_hash: str
    # Empty when the seal cannot be recomputed: the row then fails verification, with its seq.
    sealed: str
    flag: str | None


def _stored(row: asyncpg.Record) -> StoredEvent:
    envelope = row["envelope"]
    sealed = _seal_of(row, envelope)
    return StoredEvent(
        seq=row["seq"],
        recorded_at=row["recorded_at"],
        envelope=envelope,
        public=row["public_event"],
        row_hash=bytes(row["row_hash"]).hex(),
        prev_hash=bytes(row["prev_hash"]).hex(),
        sealed=sealed.hex() if sealed is not None else "",
        flag=row["flag"],
    )


async def events_of_call(conn: asyncpg.Connection, call_id: str) -> list[StoredEvent]:
    """Every stored event of one call, in trail order."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM audit.events WHERE subject = $1 ORDER BY seq",
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
) -> list[StoredEvent]:
    """Events matching the filters, in trail order, after a cursor."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM audit.events WHERE seq > $1"
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


async def stream(
    conn: asyncpg.Connection, first: int, last: int | None, batch: int = 2000
) -> AsyncIterator[StoredEvent]:
    """Stored rows from `first` to `last` (inclusive) in order, a batch at a time."""
    after = first - 1
    while True:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM audit.events WHERE seq > $1 AND ($2::bigint IS NULL OR seq <= $2)"
            " ORDER BY seq LIMIT $3",
            after,
            last,
            batch,
        )
        for r in rows:
            yield _stored(r)
        if len(rows) < batch:
            return
        after = rows[-1]["seq"]


def chain_row(stored: StoredEvent) -> domain.ChainRow:
    """A stored row as the chain verifier reads it (the seal recomputed from the full event)."""
    return domain.ChainRow(
        seq=stored.seq,
        recorded_at=stored.recorded_at.isoformat(),
        event=stored.public,
        sealed=bytes.fromhex(stored.sealed),
        prev_hash=bytes.fromhex(stored.prev_hash),
        row_hash=bytes.fromhex(stored.row_hash),
    )


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


async def tree_head(conn: asyncpg.Connection) -> tuple[int, bytes]:
    """The tree size and root hash at the head."""
    row = await conn.fetchrow("SELECT seq, frontier FROM audit.chain_head WHERE id = 1")
    return int(row["seq"]), merkle.frontier_root([bytes(h) for h in row["frontier"]])


async def nodes(conn: asyncpg.Connection, wanted: set[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The hashes of the wanted perfect subtrees (level 0 from the rows, above from tree_nodes)."""
    leaves = [i + 1 for level, i in wanted if level == 0]
    inner = [(level, i) for level, i in wanted if level > 0]
    found: dict[tuple[int, int], bytes] = {}
    for r in await conn.fetch("SELECT seq, row_hash FROM audit.events WHERE seq = ANY($1::bigint[])", leaves):
        found[(0, r["seq"] - 1)] = merkle.leaf_hash(bytes(r["row_hash"]))
    if inner:
        rows = await conn.fetch(
            "SELECT n.level, n.idx, n.hash FROM audit.tree_nodes n"
            " JOIN unnest($1::smallint[], $2::bigint[]) AS w(level, idx) USING (level, idx)",
            [level for level, _ in inner],
            [i for _, i in inner],
        )
        found.update({(r["level"], r["idx"]): bytes(r["hash"]) for r in rows})
    return found


async def add_checkpoint(conn: asyncpg.Connection, size: int, root: bytes, note: str) -> None:
    """Keep a signed checkpoint (a second one of the same size, signed by a replica, is the same)."""
    await conn.execute(
        "INSERT INTO audit.checkpoints (tree_size, root_hash, note) VALUES ($1, $2, $3)"
        " ON CONFLICT (tree_size) DO NOTHING",
        size,
        root,
        note,
    )


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    """A kept checkpoint: the tree size it signs, its note, when it was kept, the root it signs."""

    tree_size: int
    note: str
    created_at: datetime
    root_hash: bytes


async def latest_checkpoint(conn: asyncpg.Connection) -> CheckpointRow | None:
    """The newest checkpoint, or None."""
    row = await conn.fetchrow(
        "SELECT tree_size, note, created_at, root_hash FROM audit.checkpoints ORDER BY tree_size DESC LIMIT 1"
    )
    return None if row is None else CheckpointRow(*row)


async def checkpoint_of_size(conn: asyncpg.Connection, size: int) -> str | None:
    """The checkpoint note of one tree size, or None."""
    note = await conn.fetchval("SELECT note FROM audit.checkpoints WHERE tree_size = $1", size)
    return str(note) if note is not None else None


async def checkpoint_notes(conn: asyncpg.Connection) -> list[str]:
    """Every kept checkpoint note, smallest tree first."""
    return [r["note"] for r in await conn.fetch("SELECT note FROM audit.checkpoints ORDER BY tree_size")]


async def dev_seed(conn: asyncpg.Connection, fresh: bytes) -> bytes:
    """The stored development signing seed, storing `fresh` when there is none yet."""
    await conn.execute(
        "INSERT INTO audit.dev_signing_key (id, seed) VALUES (1, $1) ON CONFLICT (id) DO NOTHING", fresh
    )
    return bytes(await conn.fetchval("SELECT seed FROM audit.dev_signing_key WHERE id = 1"))


async def call_ids(
    conn: asyncpg.Connection, since: datetime | None, until: datetime | None, after: str, limit: int
) -> list[str]:
    """Ids of calls received in a time range, in id order after a cursor."""
    rows = await conn.fetch(
        "SELECT DISTINCT subject FROM audit.events WHERE type = 'calls.received.v1' AND subject > $1"
        " AND ($2::timestamptz IS NULL OR event_time >= $2) AND ($3::timestamptz IS NULL OR event_time < $3)"
        " ORDER BY subject LIMIT $4",
        after,
        since,
        until,
        limit,
    )
    return [r["subject"] for r in rows]


async def agency_ids(conn: asyncpg.Connection, call_id: str | None) -> list[str]:
    """Agencies involved in one call, or in any call."""
    rows = await conn.fetch(
        "SELECT DISTINCT agency_id FROM audit.events WHERE agency_id IS NOT NULL"
        " AND ($1::text IS NULL OR subject = $1) ORDER BY agency_id",
        call_id,
    )
    return [r["agency_id"] for r in rows]


@dataclass(frozen=True, slots=True)
class EventRef:
    """An event's id and its place in the trail."""

    seq: int
    event_id: uuid.UUID


async def event_ids(conn: asyncpg.Connection, call_id: str, after_seq: int, limit: int) -> list[EventRef]:
    """Event ids (with their seq) of one call, in trail order after a cursor."""
    rows = await conn.fetch(
        "SELECT seq, event_id FROM audit.events WHERE subject = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        call_id,
        after_seq,
        limit,
    )
    return [EventRef(*r) for r in rows]


async def report_events(
    conn: asyncpg.Connection, since: datetime | None, until: datetime | None
) -> list[dict[str, Any]]:
    """The redacted events of every call received in a time range, in trail order."""
    rows = await conn.fetch(
        "SELECT e.public_event FROM audit.events e WHERE e.subject IN ("
        " SELECT subject FROM audit.events WHERE type = 'calls.received.v1'"
        " AND ($1::timestamptz IS NULL OR event_time >= $1) AND ($2::timestamptz IS NULL OR event_time < $2))"
        " AND e.type <> 'access.recorded.v1' ORDER BY e.seq",
        since,
        until,
    )
    return [r["public_event"] for r in rows]


async def call_locations(
    conn: asyncpg.Connection, since: datetime | None, until: datetime | None
) -> dict[str, Any]:
    """The location each call received in a time range was last given, from the full events: read
    only to name the call's zone, never answered to a caller."""
    rows = await conn.fetch(
        "SELECT DISTINCT ON (subject) subject, envelope -> 'data' -> 'location' AS location"
        " FROM audit.events WHERE type IN ('calls.received.v1', 'calls.updated.v1') AND flag IS NULL"
        " AND subject IN (SELECT subject FROM audit.events WHERE type = 'calls.received.v1'"
        " AND ($1::timestamptz IS NULL OR event_time >= $1) AND ($2::timestamptz IS NULL OR event_time < $2))"
        " ORDER BY subject, seq DESC",
        since,
        until,
    )
    return {r["subject"]: r["location"] for r in rows}
