"""SQL for intake's schema."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from services.intake.call import Origin
from services.intake.capacity import Capacity
from services.intake.domain import Order
from services.intake.rules import Triage, triage_rules
from shared import events, outbox
from shared.auth import Credential, replace_credentials
from shared.db import as_row, as_rows, columns
from shared.envelope import Envelope
from shared.jurisdiction import CrisisLine, Jurisdiction

SCHEMA = "intake"


async def load_jurisdiction(conn: asyncpg.Connection, j: Jurisdiction) -> None:
    """Store the PSAPs, their tokens and the triage rules (idempotent)."""
    for p in j.psaps:
        await conn.execute(
            "INSERT INTO intake.psaps (id, name, callback_url, signing_secret, local_codes,"
            " previous_signing_secrets, rate_limit, eido_agencies, supervisor_url)"
            " VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8::jsonb, $9)"
            " ON CONFLICT (id) DO UPDATE SET name = $2, callback_url = $3, signing_secret = $4,"
            " local_codes = $5::jsonb, previous_signing_secrets = $6::jsonb, rate_limit = $7,"
            " eido_agencies = $8::jsonb, supervisor_url = $9",
            p.id,
            p.name,
            p.callback_url,
            p.signing_secret,
            p.local_codes,
            p.previous_signing_secrets,
            p.rate_limit,
            p.eido_agencies,
            p.supervisor_url,
        )
    await replace_credentials(conn, SCHEMA, [Credential(p.token, p.id, "psap") for p in j.psaps])
    rules = triage_rules(j)
    await conn.execute("UPDATE intake.triage_rules SET active = false WHERE active")
    await conn.execute(
        "INSERT INTO intake.triage_rules (version, rules, active, timezone, crisis_line)"
        " VALUES ($1, $2::jsonb, true, $3, $4::jsonb)"
        " ON CONFLICT (version) DO UPDATE SET rules = $2::jsonb, active = true, loaded_at = now(),"
        " timezone = $3, crisis_line = $4::jsonb",
        rules.version,
        rules.model_dump(mode="json"),
        j.jurisdiction.timezone,
        j.crisis_line.model_dump(mode="json") if j.crisis_line else None,
    )


@dataclass(frozen=True)
class TriageSetting:
    """What triage reads for one call: the rules in force, their time zone, the PSAP's local codes."""

    rules: Triage | None
    timezone: str | None
    local_codes: dict[str, str]
    address_set: int | None = None  # the address points in force (None: none loaded)
    capacity_as_of: datetime | None = None  # matching's newest capacity snapshot (None: none yet)
    crisis_line: CrisisLine | None = None  # the 988 line calls may be transferred to (None: none)


@functools.lru_cache(maxsize=8)
def _parse_rules(raw: str) -> Triage:
    # The rules change only when a jurisdiction is loaded: parse each stored text once.
    return Triage.model_validate_json(raw)


@functools.lru_cache(maxsize=8)
def _parse_crisis_line(raw: str) -> CrisisLine:
    return CrisisLine.model_validate_json(raw)


async def triage_setting(conn: asyncpg.Connection, psap_id: str) -> TriageSetting:
    """The rules in force, their time zone, the PSAP's local codes and the address set in force,
    in one round trip."""
    row = await conn.fetchrow(
        "SELECT (SELECT rules::text FROM intake.triage_rules WHERE active) AS rules,"
        " (SELECT timezone FROM intake.triage_rules WHERE active) AS timezone,"
        " (SELECT local_codes FROM intake.psaps WHERE id = $1) AS local_codes,"
        " (SELECT id FROM intake.address_sets WHERE active) AS address_set,"
        " (SELECT as_of FROM intake.capacity WHERE id = 1) AS capacity_as_of,"
        " (SELECT crisis_line::text FROM intake.triage_rules WHERE active) AS crisis_line",
        psap_id,
    )
    assert row is not None
    return TriageSetting(
        rules=None if row["rules"] is None else _parse_rules(row["rules"]),
        timezone=row["timezone"],
        local_codes=dict(row["local_codes"]) if row["local_codes"] else {},
        address_set=row["address_set"],
        capacity_as_of=row["capacity_as_of"],
        crisis_line=None if row["crisis_line"] is None else _parse_crisis_line(row["crisis_line"]),
    )


# The one snapshot indexed last: it changes at most every few seconds, calls come much faster.
_indexed: dict[datetime, Capacity] = {}


async def capacity(conn: asyncpg.Connection, as_of: datetime | None) -> Capacity | None:
    """The capacity snapshot of `as_of`, indexed once; None when there is none (or it was just
    replaced: the next call reads the newer one)."""
    if as_of is None:
        return None
    found = _indexed.get(as_of)
    if found is None:
        raw = await conn.fetchval(
            "SELECT snapshot::text FROM intake.capacity WHERE id = 1 AND as_of = $1", as_of
        )
        if raw is None:
            return None
        found = Capacity.of(events.TeamsCapacity.model_validate_json(raw))
        _indexed.clear()
        _indexed[as_of] = found
    return found


async def store_capacity(conn: asyncpg.Connection, snap: events.TeamsCapacity) -> None:
    """Keep `snap` if it is newer than the snapshot kept (one read late changes nothing)."""
    await conn.execute(
        "INSERT INTO intake.capacity (id, as_of, snapshot) VALUES (1, $1, $2::jsonb)"
        " ON CONFLICT (id) DO UPDATE SET as_of = EXCLUDED.as_of, snapshot = EXCLUDED.snapshot"
        " WHERE intake.capacity.as_of < EXCLUDED.as_of",
        snap.as_of,
        snap.model_dump(mode="json"),
    )


@dataclass(frozen=True, slots=True)
class CredentialRow:
    """A token's tenant and role, with its PSAP's signing secrets and rate when it is a PSAP's."""

    tenant_id: str
    role: str
    psap_id: str | None
    signing_secret: str | None
    previous_signing_secrets: list[str] | None
    rate_limit: str | None


@dataclass(frozen=True, slots=True)
class PsapRow:
    """A PSAP's callback URL, signing secrets and rate."""

    id: str
    callback_url: str | None
    signing_secret: str | None
    previous_signing_secrets: list[str]
    rate_limit: str | None


@dataclass(frozen=True, slots=True)
class CallRow:
    """A call as intake keeps it: what the PSAP said, triage's decision, where its status stands."""

    id: uuid.UUID
    psap_id: str
    external_id: str
    incident_type: str
    origin: Origin
    location: dict[str, Any]
    language: str | None
    safety: dict[str, Any]
    callback_number: str | None
    caller_name: str | None
    narrative: str | None
    consent_non_police: bool | None
    decision: dict[str, Any]
    status: str
    assignment: dict[str, Any] | None
    received_at: datetime
    updated_at: datetime
    source_format: Literal["native", "eido"]
    version_at: datetime | None
    mpds_determinant: str | None
    cautions: list[str]
    warnings: list[str]
    shadow_decision: dict[str, Any] | None
    override: dict[str, Any] | None
    non_diversion_reason: str | None
    status_attempt: int | None
    status_stage: int
    handed_back_through: int | None
    civic: dict[str, Any] | None
    other_incidents: list[Any]


@dataclass(frozen=True, slots=True)
class SignedAnswer:
    """The answer a signed request got: its status and body."""

    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class DueCallback:
    """A status callback due to be sent, with where and how to sign it, and where to raise the
    alarm should it fail for good."""

    id: int
    call_id: uuid.UUID
    psap_id: str
    payload: dict[str, Any]
    attempts: int
    callback_url: str | None
    signing_secret: str | None
    supervisor_url: str | None


@dataclass(frozen=True, slots=True)
class DueAlert:
    """An alert to a PSAP's supervisor channel due to be sent, with where and how to sign it."""

    id: int
    call_id: uuid.UUID
    payload: dict[str, Any]
    attempts: int
    supervisor_url: str | None
    signing_secret: str | None


@dataclass(frozen=True, slots=True)
class CallbackRow:
    """A status callback of a call and how its delivery went."""

    id: int
    payload: dict[str, Any]
    state: str
    attempts: int
    last_error: str | None


@dataclass(frozen=True, slots=True)
class TimelineStep:
    """One step of a call's timeline: when intake recorded it, when it happened, what it was."""

    at: datetime
    event_time: datetime | None
    status: str
    detail: dict[str, Any]


_CALL = columns(CallRow)
_STORED_CALL = columns(CallRow, "call")


async def credential(pool: asyncpg.Pool, token_sha256: bytes) -> CredentialRow | None:
    """A token's tenant and role, with its PSAP's row when it is a PSAP's token (one round trip)."""
    row = await pool.fetchrow(
        "SELECT c.tenant_id, c.role, p.id AS psap_id, p.signing_secret, p.previous_signing_secrets,"
        " p.rate_limit FROM intake.credentials c"
        " LEFT JOIN intake.psaps p ON p.id = c.tenant_id AND c.role = 'psap'"
        " WHERE c.token_sha256 = $1",
        token_sha256,
    )
    return as_row(CredentialRow, row)


async def psap(conn: asyncpg.Connection | asyncpg.Pool, psap_id: str) -> PsapRow | None:
    """A PSAP's callback URL and signing secrets."""
    row = await conn.fetchrow(f"SELECT {columns(PsapRow)} FROM intake.psaps WHERE id = $1", psap_id)
    return as_row(PsapRow, row)


async def eido_identities(conn: asyncpg.Connection, psap_id: str) -> set[str]:
    """The agency identifiers a PSAP's EIDO documents may name as their sender: its id and its
    `eido_agencies`, lower-cased."""
    row = await conn.fetchrow("SELECT id, eido_agencies FROM intake.psaps WHERE id = $1", psap_id)
    if row is None:
        return set()
    return {str(i).lower() for i in [row["id"], *row["eido_agencies"]]}


async def find_by_external_id(conn: asyncpg.Connection, psap_id: str, external_id: str) -> CallRow | None:
    """A PSAP's call by its own id, locked until the caller's transaction ends (so two newer
    versions of one call sent at once are applied one after the other)."""
    row = await conn.fetchrow(
        f"SELECT {_CALL} FROM intake.calls WHERE psap_id = $1 AND external_id = $2 FOR UPDATE",
        psap_id,
        external_id,
    )
    return as_row(CallRow, row)


async def get_call(conn: asyncpg.Connection, call_id: str) -> CallRow | None:
    """One call."""
    return as_row(
        CallRow, await conn.fetchrow(f"SELECT {_CALL} FROM intake.calls WHERE id = $1::uuid", call_id)
    )


async def lock_call(conn: asyncpg.Connection, call_id: str) -> CallRow | None:
    """One call, locked until the caller's transaction ends."""
    row = await conn.fetchrow(f"SELECT {_CALL} FROM intake.calls WHERE id = $1::uuid FOR UPDATE", call_id)
    return as_row(CallRow, row)


# What triage reads and a newer EIDO version may change; JSON columns are marked.
_TRIAGED: tuple[tuple[str, bool], ...] = (
    ("incident_type", False),
    ("origin", False),
    ("location", True),
    ("language", False),
    ("safety", True),
    ("callback_number", False),
    ("caller_name", False),
    ("narrative", False),
    ("consent_non_police", False),
    ("decision", True),
    ("shadow_decision", True),
    ("source_format", False),
    ("version_at", False),
    ("mpds_determinant", False),
    ("cautions", True),
    ("warnings", True),
    ("civic", True),
    ("other_incidents", True),
)


def _triaged(row: dict[str, Any], first: int) -> tuple[list[str], list[Any]]:
    """Column names with their placeholders (numbered from `first`), and their values."""
    columns = [f"{name} = ${n}{'::jsonb' if js else ''}" for n, (name, js) in enumerate(_TRIAGED, first)]
    # None is SQL NULL (the codec never sees it) rather than the JSON value null, so "no shadow
    # decision" reads back as None.
    values = [row[name] for name, _ in _TRIAGED]
    return columns, values


async def insert_call(
    conn: asyncpg.Connection, row: dict[str, Any], step: dict[str, Any], event: Envelope
) -> CallRow | None:
    """Store a new call, its first timeline step and `event` in the outbox, in one statement (so
    atomic without a transaction); the stored call, or None when the PSAP's id is already taken."""
    columns, values = _triaged(row, 6)
    names = ", ".join(c.split(" = ")[0] for c in columns)
    placeholders = ", ".join(c.split(" = ")[1] for c in columns)
    n = 6 + len(_TRIAGED)
    stored = await conn.fetchrow(
        f"WITH call AS (INSERT INTO intake.calls (id, psap_id, external_id, status, received_at,"
        f" {names}) VALUES ($1::uuid, $2, $3, $4, $5, {placeholders})"
        f" ON CONFLICT (psap_id, external_id) DO NOTHING RETURNING {_CALL}),"
        " step AS (INSERT INTO intake.call_timeline (call_id, status, detail, event_time)"
        f" SELECT id, status, ${n}::jsonb, received_at FROM call),"
        f" {outbox.queue_cte(SCHEMA, n + 1, source='call')}"
        # NOTIFY (sent at commit) wakes the relay; evaluated only when a call was stored.
        f" SELECT {_STORED_CALL}, pg_notify(${n + 5}, '')::text AS notified FROM call, queued",
        row["id"],
        row["psap_id"],
        row["external_id"],
        row["status"],
        row["received_at"],
        *values,
        step,
        *outbox.row_values(event),
        outbox.channel(SCHEMA),
    )
    # The last column is the NOTIFY's (empty) result.
    return None if stored is None else CallRow(*list(stored)[:-1])


async def update_call(conn: asyncpg.Connection, call_id: str, row: dict[str, Any]) -> None:
    """Replace what a newer EIDO version says about a call."""
    columns, values = _triaged(row, 2)
    await conn.execute(
        f"UPDATE intake.calls SET {', '.join(columns)}, updated_at = now() WHERE id = $1::uuid",
        call_id,
        *values,
    )


async def set_override(conn: asyncpg.Connection, call_id: str, override: dict[str, Any] | None) -> None:
    """Record the call-taker's override of the recommendation (None: it no longer holds)."""
    await conn.execute(
        "UPDATE intake.calls SET override = $2::jsonb, updated_at = now() WHERE id = $1::uuid",
        call_id,
        override,
    )


async def set_non_diversion_reason(conn: asyncpg.Connection, call_id: str, reason: str) -> None:
    """Record why an eligible call did not go to a community team (the first reason stays)."""
    await conn.execute(
        "UPDATE intake.calls SET non_diversion_reason = coalesce(non_diversion_reason, $2)"
        " WHERE id = $1::uuid",
        call_id,
        reason,
    )


async def signed_response(pool: asyncpg.Pool, psap_id: str, webhook_id: str) -> SignedAnswer | None:
    """The answer a signed request with this webhook-id already got."""
    row = await pool.fetchrow(
        "SELECT status, body FROM intake.signed_requests WHERE psap_id = $1 AND webhook_id = $2",
        psap_id,
        webhook_id,
    )
    return as_row(SignedAnswer, row)


async def remember_response(
    pool: asyncpg.Pool, psap_id: str, webhook_id: str, status: int, body: bytes
) -> None:
    """Keep the answer of a signed request, so a replay gets it again and does nothing else."""
    await pool.execute(
        "INSERT INTO intake.signed_requests (psap_id, webhook_id, status, body) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (psap_id, webhook_id) DO NOTHING",
        psap_id,
        webhook_id,
        status,
        body,
    )


async def forget_signed_requests(pool: asyncpg.Pool, older_than_s: int) -> None:
    """Drop remembered signed requests older than `older_than_s`."""
    await pool.execute(
        "DELETE FROM intake.signed_requests WHERE received_at < now() - make_interval(secs => $1)",
        older_than_s,
    )


async def enqueue_callback(
    conn: asyncpg.Connection, call_id: str, psap_id: str, payload: dict[str, Any]
) -> None:
    """Queue one status change for the PSAP, in the caller's transaction."""
    await conn.execute(
        "INSERT INTO intake.callbacks (call_id, psap_id, payload) VALUES ($1::uuid, $2, $3::jsonb)",
        call_id,
        psap_id,
        payload,
    )
    await conn.execute("SELECT pg_notify('intake_callbacks', '')")  # wakes the sender at commit


# The oldest pending callback of each call: only it is ever attempted, so statuses keep their order.
_CALL_HEADS = (
    "SELECT DISTINCT ON (call_id) * FROM intake.callbacks WHERE state = 'pending' ORDER BY call_id, id"
)


async def due_callbacks(conn: asyncpg.Connection, limit: int = 100) -> list[DueCallback]:
    """The oldest pending callback of each call, when it is due: later ones wait their turn."""
    rows = await conn.fetch(
        "SELECT c.id, c.call_id, c.psap_id, c.payload, c.attempts, p.callback_url, p.signing_secret,"
        " p.supervisor_url"
        f" FROM ({_CALL_HEADS}) c JOIN intake.psaps p ON p.id = c.psap_id"
        " WHERE c.next_attempt_at <= now() ORDER BY c.id LIMIT $1",
        limit,
    )
    return as_rows(DueCallback, rows)


# The two delivery queues to a PSAP: its status callbacks and its supervisor's alerts.
Queue = Literal["callbacks", "supervisor_alerts"]


async def next_due_in_s(conn: asyncpg.Connection, queue: Queue) -> float | None:
    """Seconds until the queue's next attempt falls due (<= 0: due now; None: nothing pending). A
    status callback counts only at the head of its call's line, where due_callbacks takes it."""
    pending = (
        _CALL_HEADS
        if queue == "callbacks"
        else "SELECT next_attempt_at FROM intake.supervisor_alerts WHERE state = 'pending'"
    )
    due_in = await conn.fetchval(
        f"SELECT extract(epoch FROM min(next_attempt_at) - now())::float8 FROM ({pending}) heads"
    )
    return None if due_in is None else float(due_in)


async def finish_delivery(
    conn: asyncpg.Connection, callback_id: int, state: str, error: str | None, queue: Queue = "callbacks"
) -> None:
    """Record a callback (or an alert) as delivered or failed for good."""
    await conn.execute(
        f"UPDATE intake.{queue} SET state = $2, attempts = attempts + 1, last_error = $3,"
        " finished_at = now() WHERE id = $1",
        callback_id,
        state,
        error,
    )


async def retry_delivery(
    conn: asyncpg.Connection, callback_id: int, delay_s: float, error: str, queue: Queue = "callbacks"
) -> None:
    """Record a failed attempt of a callback (or an alert) and when to try again."""
    await conn.execute(
        f"UPDATE intake.{queue} SET attempts = attempts + 1, last_error = $3,"
        " next_attempt_at = now() + make_interval(secs => $2) WHERE id = $1",
        callback_id,
        delay_s,
        error,
    )


async def enqueue_alert(conn: asyncpg.Connection, callback: DueCallback, payload: dict[str, Any]) -> None:
    """Queue an alert to the PSAP's supervisor about a failed callback, in the caller's transaction
    (once per callback)."""
    await conn.execute(
        "INSERT INTO intake.supervisor_alerts (callback_id, call_id, psap_id, payload)"
        " VALUES ($1, $2, $3, $4::jsonb) ON CONFLICT (callback_id) DO NOTHING",
        callback.id,
        callback.call_id,
        callback.psap_id,
        payload,
    )
    await conn.execute("SELECT pg_notify('intake_alerts', '')")  # wakes the alert sender at commit


async def due_alerts(conn: asyncpg.Connection, limit: int = 100) -> list[DueAlert]:
    """Pending supervisor alerts that are due, oldest first (they need no order among themselves)."""
    rows = await conn.fetch(
        "SELECT a.id, a.call_id, a.payload, a.attempts, p.supervisor_url, p.signing_secret"
        " FROM intake.supervisor_alerts a JOIN intake.psaps p ON p.id = a.psap_id"
        " WHERE a.state = 'pending' AND a.next_attempt_at <= now() ORDER BY a.id LIMIT $1",
        limit,
    )
    return as_rows(DueAlert, rows)


async def callbacks_of(conn: asyncpg.Connection | asyncpg.Pool, call_id: str) -> list[CallbackRow]:
    """A call's status callbacks in order, with how each went."""
    rows = await conn.fetch(
        f"SELECT {columns(CallbackRow)} FROM intake.callbacks WHERE call_id = $1::uuid ORDER BY id", call_id
    )
    return as_rows(CallbackRow, rows)


def _add_step(first: int) -> str:
    """Adding a step to call $1's timeline: its status, detail, time, attempt and stage are the five
    parameters from $first."""
    return (
        "INSERT INTO intake.call_timeline (call_id, status, detail, event_time, attempt, stage)"
        f" VALUES ($1::uuid, ${first}, ${first + 1}::jsonb, ${first + 2}, ${first + 3}, ${first + 4})"
    )


_ADD_STEP = _add_step(2)
# The move and its step in one statement (a data-modifying CTE runs whether or not it is read).
_MOVE = (
    "WITH moved AS (UPDATE intake.calls SET status = $2, status_attempt = $3, status_stage = $4,"
    " handed_back_through = $5,"
    " assignment = CASE WHEN $6::jsonb IS NOT NULL THEN $6::jsonb WHEN $7 THEN NULL"
    f" ELSE assignment END, updated_at = now() WHERE id = $1::uuid) {_add_step(8)}"
)


async def set_status(
    conn: asyncpg.Connection,
    call_id: str,
    order: Order,
    detail: dict[str, Any],
    *,
    key: tuple[int, int],
    event_time: datetime,
    assignment: dict[str, Any] | None = None,
    clear_assignment: bool = False,
    step: str | None = None,
) -> None:
    """Move a call to `order` (its status and where it stands among its assignments' steps) and add
    the step (`order.status` unless named), which happened at `event_time`, at `key` in its timeline."""
    await conn.execute(
        _MOVE,
        call_id,
        order.status,
        order.attempt,
        order.stage,
        order.handed_back_through,
        assignment,
        clear_assignment,
        step or order.status,
        detail,
        event_time,
        *key,
    )


async def add_timeline(
    conn: asyncpg.Connection,
    call_id: str,
    status: str,
    detail: dict[str, Any],
    *,
    key: tuple[int, int],
    event_time: datetime,
) -> None:
    """Append one step, at `key` (attempt, stage) in the call's order, which happened at `event_time`
    by its producer's clock, to a call's timeline."""
    await conn.execute(_ADD_STEP, call_id, status, detail, event_time, *key)


async def timeline(conn: asyncpg.Connection, call_id: str) -> list[TimelineStep]:
    """A call's timeline in causal order (attempt, then stage; arrival order among equals), whatever
    the clocks of the services that reported the steps said."""
    rows = await conn.fetch(
        f"SELECT {columns(TimelineStep)} FROM intake.call_timeline WHERE call_id = $1::uuid"
        " ORDER BY coalesce(attempt, 0), stage, id",
        call_id,
    )
    return as_rows(TimelineStep, rows)


async def assignment_attempt(conn: asyncpg.Connection, call_id: str, assignment_id: str) -> int | None:
    """The attempt recorded with a step of one assignment of a call (its offer records it), if any."""
    value = await conn.fetchval(
        "SELECT attempt FROM intake.call_timeline WHERE call_id = $1::uuid"
        " AND detail->>'assignment_id' = $2 AND attempt IS NOT NULL ORDER BY id LIMIT 1",
        call_id,
        assignment_id,
    )
    return None if value is None else int(value)


@dataclass(frozen=True, slots=True)
class StoredCall:
    """What triage judged of a stored call, its JSON as text (each is parsed once, by its model)."""

    id: str
    incident_type: str
    safety: str
    location: str
    consent_non_police: bool | None
    cautions: str
    mpds_determinant: str | None
    received_at: datetime
    decision: str


async def stored_calls(
    conn: asyncpg.Connection, since: datetime | None, until: datetime | None, psap_id: str | None = None
) -> tuple[list[StoredCall], str | None]:
    """What triage judged of every call received in a period (oldest first; one PSAP's when given),
    and the time zone of the rules in force."""
    rows = await conn.fetch(
        "SELECT id::text AS id, incident_type, safety::text AS safety, location::text AS location,"
        " consent_non_police, cautions::text AS cautions, mpds_determinant, received_at,"
        " decision::text AS decision"
        " FROM intake.calls WHERE ($1::timestamptz IS NULL OR received_at >= $1)"
        " AND ($2::timestamptz IS NULL OR received_at < $2) AND ($3::text IS NULL OR psap_id = $3)"
        " ORDER BY received_at, id",
        since,
        until,
        psap_id,
    )
    timezone = await conn.fetchval("SELECT timezone FROM intake.triage_rules WHERE active")
    return as_rows(StoredCall, rows), timezone
