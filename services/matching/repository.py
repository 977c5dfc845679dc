"""SQL for matching's schema."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.matching.crisis_line import CENTER
from services.matching.domain import DEFAULT_RULES, TeamSnapshot
from services.matching.index import LiveColumns
from services.matching.rules import Matching, matching_rules
from shared import events, outbox
from shared.auth import Credential, replace_credentials
from shared.db import as_row, as_rows, columns
from shared.envelope import Envelope
from shared.jurisdiction import Jurisdiction, Shift

SCHEMA = "matching"
ACTIVE = ("offered", "accepted", "en_route", "on_scene")


@dataclass(frozen=True, slots=True)
class TeamRow:
    """A team as its agency sees it."""

    id: str
    agency_id: str
    name: str
    skills: list[str]
    languages: list[str]
    status: str
    current_call: uuid.UUID | None
    lat: float | None
    lon: float | None
    capacity: int
    held: int
    shifts: list[dict[str, Any]]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class CallRow:
    """A call matching places: the offer's details, where it stands, the teams tried."""

    call_id: uuid.UUID
    psap_id: str
    offer: dict[str, Any]
    status: str
    tried_teams: list[str]
    correlation: str
    created_at: datetime
    triage_version: str | None
    route: str
    # When its time to commit started (None: not yet, a pending record).
    commit_from: datetime | None = None
    # How many attempts offered it (an attempt may offer several teams at once).
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class AssignmentRow:
    """One offer of a call to a team, and how it stands."""

    id: uuid.UUID
    call_id: uuid.UUID
    team_id: str
    agency_id: str
    attempt: int
    status: str
    deadline: datetime
    explanation: dict[str, Any]
    created_at: datetime
    decided_at: datetime | None
    reason: str | None
    # How many teams this attempt offered the call at once.
    offered_with: int = 1

    def parallel(self) -> int | None:
        """How many teams shared this offer's attempt, as events carry it (None: offered alone)."""
        return self.offered_with if self.offered_with > 1 else None


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One choice made for a call (an offer or a hand-back) and why."""

    id: int
    call_id: uuid.UUID
    attempt: int
    outcome: str
    team_id: str | None
    reason: str | None
    rules_version: str
    explanation: dict[str, Any]
    decided_at: datetime


TEAM_COLUMNS = columns(TeamRow)
_CALL = columns(CallRow)
_ASSIGNMENT = columns(AssignmentRow)


async def load_jurisdiction(conn: asyncpg.Connection, j: Jurisdiction) -> None:
    """Store the roster and the credentials matching accepts (idempotent; statuses are kept)."""
    await conn.execute(
        "INSERT INTO matching.config (key, value) VALUES ('timezone', $1::jsonb)"
        " ON CONFLICT (key) DO UPDATE SET value = $1::jsonb",
        j.jurisdiction.timezone,
    )
    await conn.execute(
        "INSERT INTO matching.config (key, value) VALUES ('rules', $1::jsonb)"
        " ON CONFLICT (key) DO UPDATE SET value = $1::jsonb",
        (matching_rules(j) or DEFAULT_RULES).model_dump(mode="json"),
    )
    # The agency a `988` call is offered to; none when the jurisdiction names no crisis line.
    await conn.execute(
        "INSERT INTO matching.config (key, value) VALUES ('crisis_line', coalesce($1::jsonb, 'null'))"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        j.crisis_line.agency if j.crisis_line else None,
    )
    for a in j.agencies:
        await conn.execute(
            "INSERT INTO matching.agencies (id, name, contracted_share) VALUES ($1, $2, $3)"
            " ON CONFLICT (id) DO UPDATE SET name = $2, contracted_share = $3",
            a.id,
            a.name,
            a.contracted_share,
        )
    # One round trip for the whole roster (a region may hold thousands of teams).
    await conn.executemany(
        "INSERT INTO matching.teams (id, agency_id, name, skills, languages, home_lat, home_lon,"
        " radius_km, capacity, shifts, lat, lon, area) VALUES ($1, $2, $3, $4, $5, $6, $7,"
        " $8, $9, $10::jsonb, $6, $7, $11::jsonb) ON CONFLICT (id) DO UPDATE SET"
        " agency_id = $2, name = $3, skills = $4, languages = $5, home_lat = $6, home_lon = $7,"
        " radius_km = $8, capacity = $9, shifts = $10::jsonb, area = $11::jsonb, updated_at = now()",
        [
            (
                t.id,
                t.agency,
                t.name,
                t.skills,
                t.languages,
                t.home.lat,
                t.home.lon,
                t.radius_km,
                t.capacity,
                [s.model_dump(mode="json") for s in t.shifts],
                None if t.area is None else [[p.lat, p.lon] for p in t.area],
            )
            for t in j.teams
        ],
    )
    await bump_roster_version(conn)
    await replace_credentials(
        conn,
        SCHEMA,
        [Credential(a.token, a.id, "agency") for a in j.agencies]
        + [Credential(o.token, o.id, o.role) for o in j.oversight],
    )


async def crisis_line_agency(conn: asyncpg.Connection) -> str | None:
    """The agency of the jurisdiction's 988 crisis line (None: it names none)."""
    raw = await conn.fetchval("SELECT value FROM matching.config WHERE key = 'crisis_line'")
    return raw if isinstance(raw, str) else None


async def timezone(conn: asyncpg.Connection) -> str:
    """The jurisdiction's time zone."""
    raw = await conn.fetchval("SELECT value FROM matching.config WHERE key = 'timezone'")
    return str(raw) if raw is not None else "UTC"


async def rules(conn: asyncpg.Connection) -> Matching:
    """The matching rules of the loaded jurisdiction (defaults when it names none)."""
    # Parsed from the stored text: pydantic reads JSON text faster than the decoded value.
    raw = await conn.fetchval("SELECT value::text FROM matching.config WHERE key = 'rules'")
    return Matching.model_validate_json(raw) if raw else DEFAULT_RULES


def _shifts(raw: str, parsed: dict[str, tuple[Shift, ...]]) -> tuple[Shift, ...]:
    # Teams share a few shift patterns: parse each distinct one once.
    if raw not in parsed:
        parsed[raw] = tuple(Shift.model_validate(s) for s in json.loads(raw))
    return parsed[raw]


_SNAPSHOT = (
    "SELECT t.id, t.agency_id, coalesce(t.lat, t.home_lat) AS lat, coalesce(t.lon, t.home_lon) AS lon,"
    " t.radius_km, t.status, t.languages, t.shifts::text AS shifts, t.skills, t.capacity, t.area,"
    " a.unreachable_since IS NULL AS reachable"
    " FROM matching.teams t JOIN matching.agencies a ON a.id = t.agency_id ORDER BY t.id"
)


async def roster_version(conn: asyncpg.Connection) -> int:
    """A number that changes whenever what the roster index holds (skills, shifts, areas) may change."""
    raw = await conn.fetchval("SELECT value FROM matching.config WHERE key = 'roster_version'")
    return int(raw) if raw is not None else 0


async def bump_roster_version(conn: asyncpg.Connection) -> None:
    """Tell every matching process to re-index the roster before its next decision."""
    await conn.execute(
        "INSERT INTO matching.config (key, value) VALUES ('roster_version', '1'::jsonb)"
        " ON CONFLICT (key) DO UPDATE SET value = to_jsonb(matching.config.value::text::bigint + 1)"
    )


async def live_teams(conn: asyncpg.Connection, ids: list[str] | None = None) -> LiveColumns:
    """What changes with every offer (LiveColumns), of every team or of the teams `ids`.

    One row of arrays: asyncpg decodes arrays in C, where thousands of rows cost a Python object
    each.
    """
    # A paused agency's teams have no capacity while it is paused.
    sql = (
        "SELECT array_agg(t.id), array_agg(t.status),"
        " array_agg(CASE WHEN a.paused_at IS NULL THEN t.capacity ELSE 0 END),"
        " array_agg(coalesce(t.lat, t.home_lat)), array_agg(coalesce(t.lon, t.home_lon)), array_agg(t.held)"
        " FROM matching.teams t JOIN matching.agencies a ON a.id = t.agency_id"
    )
    if ids is None:
        row = await conn.fetchrow(sql)
    elif len(ids) == 1:
        # Most refreshes are of the one team the last offer took. Over an array PostgreSQL plans
        # the statement afresh each time (150 µs, more than running it); this form it plans once.
        row = await conn.fetchrow(f"{sql} WHERE t.id = $1", ids[0])
    else:
        row = await conn.fetchrow(f"{sql} WHERE t.id = ANY($1::text[])", ids)
    assert row is not None
    if row[0] is None:
        return [], [], [], [], [], []
    return row[0], row[1], row[2], row[3], row[4], row[5]


async def team_snapshots(conn: asyncpg.Connection) -> list[TeamSnapshot]:
    """Every team as ranking sees it."""
    rows = await conn.fetch(_SNAPSHOT)
    parsed: dict[str, tuple[Shift, ...]] = {}
    return [
        TeamSnapshot(
            id=r["id"],
            agency_id=r["agency_id"],
            lat=r["lat"],
            lon=r["lon"],
            radius_km=r["radius_km"],
            status=r["status"],
            languages=tuple(r["languages"]),
            # Teams share a few shift patterns: parse each distinct one once.
            shifts=_shifts(r["shifts"], parsed),
            skills=tuple(r["skills"]),
            capacity=r["capacity"],
            area=None if r["area"] is None else tuple((c[0], c[1]) for c in r["area"]),
            reachable=r["reachable"],
        )
        for r in rows
    ]


async def contracted_shares(conn: asyncpg.Connection) -> dict[str, float]:
    """Each agency's contracted share of the calls."""
    rows = await conn.fetch("SELECT id, contracted_share FROM matching.agencies")
    return {r["id"]: r["contracted_share"] for r in rows}


async def reserve_team(conn: asyncpg.Connection, team_id: str, call_id: str) -> bool:
    """Atomically take one of a team's places for a call; False if other calls took its last one.

    Under READ COMMITTED a concurrent reservation of the same row makes this UPDATE wait and then
    re-check `held < capacity` on the row as the other left it, so however many calls (or matching
    processes) race, a team never holds more calls than its capacity. A team holding none takes a
    call only while `available` (not off shift or out of service).
    """
    got = await conn.fetchval(
        "WITH taken AS (UPDATE matching.teams SET held = held + 1, status = 'offered',"
        " current_call = $2::uuid, updated_at = now()"
        " WHERE id = $1 AND held < capacity AND (status = 'available' OR held > 0)"
        " AND NOT EXISTS (SELECT 1 FROM matching.agencies a"
        " WHERE a.id = matching.teams.agency_id AND a.paused_at IS NOT NULL) RETURNING id)"
        " INSERT INTO matching.holds (call_id, team_id, status) SELECT $2::uuid, id, 'offered' FROM taken"
        " RETURNING true",
        team_id,
        call_id,
    )
    return bool(got)


async def release_team(
    conn: asyncpg.Connection, team_id: str, call_id: str, status: str = "available"
) -> None:
    """Let a team go of one call it holds (a no-op if it does not hold it): holding none it goes to
    `status`, else it shows its most recent call still held and that call's step."""
    gone = await conn.fetchval(
        "DELETE FROM matching.holds WHERE call_id = $2::uuid AND team_id = $1 RETURNING true",
        team_id,
        call_id,
    )
    if not gone:
        return
    await conn.execute(
        "UPDATE matching.teams t SET held = t.held - 1, current_call = h.call_id,"
        " status = coalesce(h.status, $2), updated_at = now()"
        " FROM (SELECT 1) AS one LEFT JOIN LATERAL (SELECT call_id, status FROM matching.holds"
        " WHERE team_id = $1 ORDER BY held_at DESC, call_id DESC LIMIT 1) AS h ON true"
        " WHERE t.id = $1",
        team_id,
        status,
    )


@dataclass(frozen=True, slots=True)
class AgencyRow:
    """An agency as matching keeps it: whether it has paused itself, since when and why."""

    id: str
    name: str
    paused_at: datetime | None
    pause_reason: str | None
    unreachable_since: datetime | None = None


async def set_paused(conn: asyncpg.Connection, agency_id: str, reason: str | None) -> AgencyRow | None:
    """Pause an agency (`reason`) or resume it (None); a repeat keeps the first pause's time."""
    row = await conn.fetchrow(
        "UPDATE matching.agencies SET"
        " paused_at = CASE WHEN $2::text IS NULL THEN NULL ELSE coalesce(paused_at, now()) END,"
        f" pause_reason = $2 WHERE id = $1 RETURNING {columns(AgencyRow)}",
        agency_id,
        reason,
    )
    return as_row(AgencyRow, row)


async def get_agency(conn: asyncpg.Connection, agency_id: str) -> AgencyRow | None:
    """One agency of the roster."""
    row = await conn.fetchrow(f"SELECT {columns(AgencyRow)} FROM matching.agencies WHERE id = $1", agency_id)
    return as_row(AgencyRow, row)


async def offers_held_by_agency(conn: asyncpg.Connection, agency_id: str) -> list[tuple[str, str]]:
    """(call id, team id) of each offer an agency's teams hold now, in call id order (no lock); a
    988 center's own offers (team `988`, which holds no roster row) count as its."""
    rows = await conn.fetch(
        "SELECT h.call_id, h.team_id FROM matching.holds h JOIN matching.teams t ON t.id = h.team_id"
        " WHERE t.agency_id = $1 AND h.status = 'offered'"
        " UNION SELECT call_id, team_id FROM matching.assignments"
        " WHERE agency_id = $1 AND team_id = $2 AND status = 'offered' ORDER BY call_id",
        agency_id,
        CENTER,
    )
    return [(str(r["call_id"]), r["team_id"]) for r in rows]


async def agency_of_team(conn: asyncpg.Connection, team_id: str) -> str | None:
    """The agency a team belongs to (None for an unknown team)."""
    return await conn.fetchval("SELECT agency_id FROM matching.teams WHERE id = $1", team_id)


async def offered_calls_of_team(conn: asyncpg.Connection, team_id: str) -> list[str]:
    """The calls a team is being offered right now, in call id order (read without a lock)."""
    rows = await conn.fetch(
        "SELECT call_id FROM matching.holds WHERE team_id = $1 AND status = 'offered' ORDER BY call_id",
        team_id,
    )
    return [str(r["call_id"]) for r in rows]


async def set_team_status(conn: asyncpg.Connection, team_id: str, call_id: str, status: str) -> None:
    """Move a team's work on one call to `status` (the team shows it when it is its most recent)."""
    await conn.execute(
        "WITH moved AS (UPDATE matching.holds SET status = $3 WHERE call_id = $2::uuid AND team_id = $1"
        " RETURNING call_id)"
        " UPDATE matching.teams SET status = $3, updated_at = now()"
        " WHERE id = $1 AND current_call = (SELECT call_id FROM moved)",
        team_id,
        call_id,
        status,
    )


async def insert_call(
    conn: asyncpg.Connection,
    call_id: str,
    psap_id: str,
    offer: dict[str, Any],
    correlation: str,
    triage_version: str | None = None,
    status: str = "matching",
    commit_from: datetime | None = None,
    route: str = "community",
) -> CallRow | None:
    """Remember a call (or a pending record of one, by its `status`) and return it, new in this
    transaction so no other sees it yet; None if the call was already known."""
    row = await conn.fetchrow(
        "INSERT INTO matching.calls (call_id, psap_id, offer, status, correlation, triage_version,"
        f" commit_from, route) VALUES ($1::uuid, $2, $3::jsonb, $6, $4, $5, $7, $8) ON CONFLICT DO NOTHING"
        f" RETURNING {_CALL}",
        call_id,
        psap_id,
        offer,
        correlation,
        triage_version,
        status,
        commit_from,
        route,
    )
    return as_row(CallRow, row)


async def start_commit_budget(conn: asyncpg.Connection, call_id: str, at: datetime) -> None:
    """Start a call's time to commit at `at`, unless it has started already."""
    await conn.execute(
        "UPDATE matching.calls SET commit_from = coalesce(commit_from, $2) WHERE call_id = $1::uuid",
        call_id,
        at,
    )


async def update_offer(
    conn: asyncpg.Connection,
    call_id: str,
    offer: dict[str, Any],
    triage_version: str,
    route: str | None = None,
) -> None:
    """Keep a call's details (and, when given, its route) current for the offers still to come."""
    await conn.execute(
        "UPDATE matching.calls SET offer = $2::jsonb, triage_version = $3, route = coalesce($4, route)"
        " WHERE call_id = $1::uuid",
        call_id,
        offer,
        triage_version,
        route,
    )


async def get_call(conn: asyncpg.Connection, call_id: str) -> CallRow | None:
    """A call being placed, locked for this transaction so its events apply one at a time."""
    row = await conn.fetchrow(
        f"SELECT {_CALL} FROM matching.calls WHERE call_id = $1::uuid FOR UPDATE", call_id
    )
    return as_row(CallRow, row)


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


async def record_offer(
    conn: asyncpg.Connection,
    assignment: dict[str, Any],
    rules_version: str,
    explanation: dict[str, Any],
    event: Envelope,
) -> None:
    """An offer in one statement: the assignment, the decision and why, the call moved to offered
    with the team tried, and the event in the outbox (the relay woken at commit)."""
    await conn.execute(
        "WITH offered AS (INSERT INTO matching.assignments (id, call_id, team_id, agency_id, attempt,"
        " status, deadline, explanation, offered_with)"
        " VALUES ($1::uuid, $2::uuid, $3, $4, $5, 'offered', $6, $7::jsonb, $10)),"
        " decided AS (INSERT INTO matching.decisions (call_id, attempt, outcome, team_id, rules_version,"
        " explanation) VALUES ($2::uuid, $5, 'offered', $3, $8, $9::jsonb)),"
        " moved AS (UPDATE matching.calls SET status = 'offered', tried_teams = tried_teams || $3::text,"
        " attempts = $5 WHERE call_id = $2::uuid),"
        f" {outbox.queue_and_wake(SCHEMA, 11)}",
        assignment["id"],
        assignment["call_id"],
        assignment["team_id"],
        assignment["agency_id"],
        assignment["attempt"],
        assignment["deadline"],
        assignment["explanation"],
        rules_version,
        explanation,
        assignment.get("offered_with", 1),
        *outbox.row_values(event),
        outbox.channel(SCHEMA),
    )


async def get_assignment(conn: asyncpg.Connection, assignment_id: str) -> AssignmentRow | None:
    """One assignment."""
    row = await conn.fetchrow(
        f"SELECT {_ASSIGNMENT} FROM matching.assignments WHERE id = $1::uuid", assignment_id
    )
    return as_row(AssignmentRow, row)


async def live_assignments(conn: asyncpg.Connection, call_id: str) -> list[AssignmentRow]:
    """The call's live offers and assignment (several offers at once in a parallel attempt)."""
    rows = await conn.fetch(
        f"SELECT {_ASSIGNMENT} FROM matching.assignments"
        " WHERE call_id = $1::uuid AND status = ANY($2::text[]) ORDER BY created_at, id",
        call_id,
        list(ACTIVE),
    )
    return as_rows(AssignmentRow, rows)


async def set_assignment_status(
    conn: asyncpg.Connection, assignment_id: str, status: str, reason: str | None = None
) -> None:
    """Move an assignment; a decline, expiry or withdrawal keeps its reason."""
    await conn.execute(
        "UPDATE matching.assignments SET status = $2, decided_at = coalesce(decided_at, now()),"
        " reason = coalesce($3, reason) WHERE id = $1::uuid",
        assignment_id,
        status,
        reason,
    )


async def record_refusal(conn: asyncpg.Connection, row: dict[str, Any]) -> None:
    """Keep a step a state machine refused: the event, the state it met, what it tried and why not."""
    await conn.execute(
        "INSERT INTO matching.refusals (call_id, assignment_id, event_id, event_type, from_state, step,"
        " code, detail) VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7, $8)",
        row["call_id"],
        row.get("assignment_id"),
        row["event_id"],
        row["event_type"],
        row["from_state"],
        row["step"],
        row["code"],
        row.get("detail"),
    )


async def has_refusals(conn: asyncpg.Connection, assignment_id: str) -> bool:
    """Whether any step about this assignment was refused before."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM matching.refusals WHERE assignment_id = $1::uuid)", assignment_id
        )
    )


async def insert_decision(conn: asyncpg.Connection, row: dict[str, Any]) -> None:
    """Record one choice (an offer or a hand-back) and why."""
    await conn.execute(
        "INSERT INTO matching.decisions (call_id, attempt, outcome, team_id, reason, rules_version,"
        " explanation) VALUES ($1::uuid, $2, $3, $4, $5, $6, $7::jsonb)",
        row["call_id"],
        row["attempt"],
        row["outcome"],
        row.get("team_id"),
        row.get("reason"),
        row["rules_version"],
        row["explanation"],
    )


async def decisions_of_call(conn: asyncpg.Connection, call_id: str) -> list[DecisionRow]:
    """Every choice made for a call, in order."""
    rows = await conn.fetch(
        f"SELECT {columns(DecisionRow)} FROM matching.decisions WHERE call_id = $1::uuid ORDER BY id", call_id
    )
    return as_rows(DecisionRow, rows)


async def assignments_of_call(conn: asyncpg.Connection, call_id: str) -> list[AssignmentRow]:
    """Every offer made for a call, in order."""
    rows = await conn.fetch(
        f"SELECT {_ASSIGNMENT} FROM matching.assignments WHERE call_id = $1::uuid ORDER BY attempt", call_id
    )
    return as_rows(AssignmentRow, rows)


async def teams_of(conn: asyncpg.Connection, agency_id: str | None) -> list[TeamRow]:
    """An agency's teams (all teams for None)."""
    rows = await conn.fetch(
        f"SELECT {TEAM_COLUMNS} FROM matching.teams WHERE $1::text IS NULL OR agency_id = $1 ORDER BY id",
        agency_id,
    )
    return as_rows(TeamRow, rows)


async def get_team(conn: asyncpg.Connection, team_id: str) -> TeamRow | None:
    """One team as its agency sees it (None for an unknown team)."""
    return as_row(
        TeamRow, await conn.fetchrow(f"SELECT {TEAM_COLUMNS} FROM matching.teams WHERE id = $1", team_id)
    )


async def update_team(
    conn: asyncpg.Connection, team_id: str, agency_id: str, changes: dict[str, Any]
) -> TeamRow | None:
    """Change an agency's own team; None when it is not theirs. A busy team keeps its calls.

    `changes` may hold status, lat, lon, capacity and shifts (already validated); absent keys keep
    their value.
    """
    shifts = changes.get("shifts")
    if shifts is not None:
        # Shifts are indexed, not read per decision: every process must re-index.
        await bump_roster_version(conn)
    row = await conn.fetchrow(
        "UPDATE matching.teams SET"
        " status = CASE WHEN $3::text IS NULL OR held > 0 THEN status ELSE $3 END,"
        " lat = coalesce($4, lat), lon = coalesce($5, lon), capacity = coalesce($6, capacity),"
        " shifts = coalesce($7::jsonb, shifts), updated_at = now()"
        " WHERE id = $1 AND agency_id = $2"
        f" RETURNING {TEAM_COLUMNS}",
        team_id,
        agency_id,
        changes.get("status"),
        changes.get("lat"),
        changes.get("lon"),
        changes.get("capacity"),
        shifts,
    )
    return as_row(TeamRow, row)


async def set_reachability(conn: asyncpg.Connection, change: events.AgencyReachability) -> bool:
    """Apply notify's word that an agency is reachable or not, unless a newer word was applied;
    whether it changed anything (the roster's version moves with it, so every replica re-reads)."""
    changed = await conn.fetchval(
        "UPDATE matching.agencies SET reachability_at = $3,"
        " unreachable_since = CASE WHEN $2 THEN NULL ELSE coalesce(unreachable_since, $4) END"
        " WHERE id = $1 AND (reachability_at IS NULL OR reachability_at < $3)"
        " RETURNING true",
        change.agency_id,
        change.reachable,
        change.at,
        change.last_seen_at or change.at,
    )
    if changed:
        await bump_roster_version(conn)
    return bool(changed)
