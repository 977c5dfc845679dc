"""One read of everything the checker judges: every service's tables, the trail, and the broker."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from shared.db import connect
from shared.settings import Settings
from shared.topics import AGENCY_TOPIC_PREFIX, AGENCY_TOPIC_SUFFIX, REGISTRY
from tools.faults import broker

SCHEMAS = ("intake", "matching", "notify", "audit")
# Where a call rests at intake (routed elsewhere, or a community call that reached its end) and in
# matching, and the assignment states that are live (the checker's rules use the same sets).
INTAKE_AT_REST = {
    "routed_police",
    "routed_ems",
    "routed_fire",
    "routed_review",
    "cleared",
    "handed_back",
    "cancelled",
}
# Matching's live call states (services/matching/lifecycle.py LIVE_CALLS); any other is at rest
# (`routed_away`, a record kept for a call an update took away, included).
MATCHING_LIVE = {"matching", "offered", "assigned"}
MATCHING_AT_REST = {"unassigned", "cancelled", "closed", "routed_away"}
LIVE = {"offered", "accepted", "en_route", "on_scene"}
# How long a consumer group has, at rest, to commit past the records published before the lag is
# read: matching publishes its capacity snapshot on a timer, so one may land just before.
LAG_SETTLE_S = 3.0
# An offer is overdue once its deadline is this far behind: the expiry loop runs every second.
OVERDUE_GRACE_S = 10


@dataclass(frozen=True)
class Event:
    """An event as an outbox row, a trail row or a broker record carries it."""

    id: str
    type: str
    subject: str
    data: dict[str, Any]


@dataclass(frozen=True)
class OutboxRow:
    """One row of a service's outbox: the event it holds, its topic, and whether it was published."""

    schema: str
    row: int
    topic: str
    sent: bool
    event: Event
    page: int | None = None


@dataclass(frozen=True)
class Assignment:
    """An assignment as matching or notify stores it."""

    id: str
    call_id: str
    team_id: str
    status: str
    attempt: int | None
    overdue: bool  # still offered, its deadline more than OVERDUE_GRACE_S behind


@dataclass(frozen=True)
class Team:
    """A team's status in matching, its most recent call, and every call it holds (a team of
    capacity above 1 may hold several; `held` is the count the team row keeps of them)."""

    id: str
    status: str
    current_call: str | None
    holds: tuple[str, ...] = ()
    held: int = 0


@dataclass(frozen=True)
class Delivery:
    """An agency-topic message notify recorded as delivered."""

    notification_id: str
    assignment_id: str
    kind: str
    page: int | None


@dataclass(frozen=True)
class AgencyMessage:
    """A message read back from an agency's topic."""

    topic: str
    event_id: str
    assignment_id: str
    kind: str
    page: int | None


@dataclass(frozen=True)
class DeadLetter:
    """A record read back from a dead-letter topic; `event` is None when it never decoded."""

    topic: str
    origin_topic: str  # logical: without the namespace
    reason: str
    error: str
    event: Event | None
    where: str = "topic"  # read from the dead-letter topic, or from the service's `dead_letters` table


@dataclass
class Snapshot:
    """Everything the checker needs, read once; the checker's rules are pure functions of it."""

    call_ids: list[str] = field(default_factory=list)  # the calls the system answered 202
    intake: dict[str, str] = field(default_factory=dict)  # call id -> status at intake
    matching_calls: dict[str, str] = field(default_factory=dict)  # call id -> status in matching
    assignments: list[Assignment] = field(default_factory=list)  # matching's
    notify_assignments: list[Assignment] = field(default_factory=list)
    teams: list[Team] = field(default_factory=list)
    outbox: list[OutboxRow] = field(default_factory=list)
    inbox: dict[str, set[str]] = field(default_factory=dict)  # schema -> event ids processed
    inbox_types: dict[str, set[str]] = field(default_factory=dict)  # schema -> event types processed
    trail: list[Event] = field(default_factory=list)  # audit.events in seq order
    deliveries: list[Delivery] = field(default_factory=list)
    agency_messages: list[AgencyMessage] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    # Figures reported, not judged: refused transitions, flagged trail rows.
    counts: dict[str, int] = field(default_factory=dict)
    lag: dict[str, dict[str, int]] = field(default_factory=dict)  # group -> logical topic -> records
    pending: dict[str, int] = field(default_factory=dict)  # queue (callbacks, webhooks) -> rows waiting
    chain_ok: bool = False


def parse_event(raw: bytes | None) -> Event | None:
    """A CloudEvent's id, type, subject and data, or None when it is not one."""
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not all(k in doc for k in ("id", "type")):
        return None
    data = doc.get("data")
    return Event(
        str(doc["id"]), str(doc["type"]), str(doc.get("subject", "")), data if isinstance(data, dict) else {}
    )


async def _exists(conn: asyncpg.Connection, table: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table))


async def _has_column(conn: asyncpg.Connection, schema: str, table: str, column: str) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = $2 AND column_name = $3)",
            schema,
            table,
            column,
        )
    )


async def _assignments(conn: asyncpg.Connection, schema: str) -> list[Assignment]:
    has_attempt = await _has_column(conn, schema, "assignments", "attempt")
    attempt = "attempt" if has_attempt else "NULL::integer"
    rows = await conn.fetch(
        f"SELECT id::text, call_id::text, team_id, status, {attempt} AS attempt,"
        f" (status = 'offered' AND deadline < now() - make_interval(secs => $1)) AS overdue"
        f" FROM {schema}.assignments",
        OVERDUE_GRACE_S,
    )
    return [
        Assignment(r["id"], r["call_id"], r["team_id"], r["status"], r["attempt"], r["overdue"]) for r in rows
    ]


async def read_database(conn: asyncpg.Connection, snap: Snapshot, namespace: str = "") -> None:
    """Fill `snap` from every service's schema (`namespace`: the run's topic prefix)."""
    snap.intake = {
        r["id"]: r["status"] for r in await conn.fetch("SELECT id::text AS id, status FROM intake.calls")
    }
    snap.matching_calls = {
        r["id"]: r["status"]
        for r in await conn.fetch("SELECT call_id::text AS id, status FROM matching.calls")
    }
    snap.assignments = await _assignments(conn, "matching")
    snap.notify_assignments = await _assignments(conn, "notify")
    snap.teams = [
        Team(r["id"], r["status"], r["current_call"], tuple(r["holds"]), r["held"])
        for r in await conn.fetch(
            "SELECT t.id, t.status, t.current_call::text AS current_call, t.held,"
            " coalesce(array_agg(h.call_id::text ORDER BY h.call_id) FILTER (WHERE h.call_id IS NOT NULL),"
            " '{}') AS holds"
            " FROM matching.teams t LEFT JOIN matching.holds h ON h.team_id = t.id GROUP BY t.id"
        )
    ]
    for schema in SCHEMAS:
        for r in await conn.fetch(
            f"SELECT id, topic, value, headers, sent_at IS NOT NULL AS sent FROM {schema}.outbox ORDER BY id"
        ):
            event = parse_event(bytes(r["value"]))
            if event is None:
                continue
            page = r["headers"].get("careroute-page") if r["headers"] else None
            snap.outbox.append(
                OutboxRow(
                    schema, r["id"], r["topic"], r["sent"], event, int(page) if page is not None else None
                )
            )
        rows = await conn.fetch(f"SELECT event_id::text AS id, event_type FROM {schema}.processed_events")
        snap.inbox[schema] = {r["id"] for r in rows}
        snap.inbox_types[schema] = {r["event_type"] for r in rows}
        if await _exists(conn, f"{schema}.dead_letters"):
            # The durable record of each dead letter (and whether it was replayed since).
            for r in await conn.fetch(
                f"SELECT consumer_group, origin_topic, reason, error, value"
                f" FROM {schema}.dead_letters ORDER BY id"
            ):
                snap.dead_letters.append(
                    DeadLetter(
                        f"dlq.{r['consumer_group']}",
                        r["origin_topic"].removeprefix(namespace),
                        r["reason"],
                        r["error"][:300],
                        parse_event(bytes(r["value"]) if r["value"] is not None else None),
                        "table",
                    )
                )
        for table in ("refusals",):
            if await _exists(conn, f"{schema}.{table}"):
                snap.counts[f"{schema}.{table}"] = int(
                    await conn.fetchval(f"SELECT count(*) FROM {schema}.{table}")
                )
    snap.trail = [
        Event(r["event_id"], r["type"], r["subject"], r["data"] if r["data"] is not None else {})
        for r in await conn.fetch(
            "SELECT event_id::text AS event_id, type, subject, envelope->'data' AS data"
            " FROM audit.events ORDER BY seq"
        )
    ]
    if await _has_column(conn, "audit", "events", "flag"):
        snap.counts["audit.events flagged"] = int(
            await conn.fetchval("SELECT count(*) FROM audit.events WHERE flag IS NOT NULL")
        )
    snap.deliveries = [
        Delivery(r["notification_id"], r["assignment_id"], r["kind"], r["page"])
        for r in await conn.fetch(
            "SELECT notification_id::text, assignment_id::text, kind, page FROM notify.deliveries"
            " WHERE channel = 'kafka' AND outcome = 'delivered'"
        )
    ]
    # Reported, not judged: the example PSAPs' callback and agencies' webhook addresses answer nobody.
    snap.pending = {
        "intake.callbacks": int(
            await conn.fetchval("SELECT count(*) FROM intake.callbacks WHERE state = 'pending'")
        ),
        "notify.webhook_queue": int(
            await conn.fetchval("SELECT count(*) FROM notify.webhook_queue WHERE state = 'pending'")
        ),
    }


def agency_topic_of(name: str, namespace: str) -> bool:
    """Whether a physical topic is an agency's assignment topic."""
    logical = name.removeprefix(namespace)
    return logical.startswith(AGENCY_TOPIC_PREFIX) and logical.endswith(AGENCY_TOPIC_SUFFIX)


async def read_broker(settings: Settings, namespace: str, snap: Snapshot) -> None:
    """Fill `snap` with the agency topics, the dead-letter topics and each group's lag."""
    names = await broker.topic_names(settings, namespace)
    for r in await broker.read_all(settings, [n for n in names if agency_topic_of(n, namespace)]):
        event = parse_event(r.value)
        if event is None:
            continue
        page = r.headers.get("careroute-page")
        snap.agency_messages.append(
            AgencyMessage(
                r.topic,
                event.id,
                str(event.data.get("assignment_id")),
                str(event.data.get("kind")),
                int(page) if page is not None else None,
            )
        )
    dlq = await broker.topic_names(settings, f"dlq.{namespace}")
    for r in await broker.read_all(settings, dlq):
        snap.dead_letters.append(
            DeadLetter(
                r.topic,
                r.headers.get("dlq-origin-topic", b"").decode(errors="replace").removeprefix(namespace),
                r.headers.get("dlq-reason", b"").decode(errors="replace"),
                r.headers.get("dlq-error", b"").decode(errors="replace")[:300],
                parse_event(r.value),
            )
        )
    # A group follows the topics it has processed events of; audit follows every registered one.
    followed = {schema: set(snap.inbox_types.get(schema, set())) for schema in SCHEMAS}
    followed["audit"] |= set(REGISTRY)
    behind = await broker.lags(settings, _groups(namespace, followed), settle_s=LAG_SETTLE_S)
    for schema in SCHEMAS:
        topics = behind.get(f"{namespace}{schema}", {})
        snap.lag[schema] = {t.removeprefix(namespace): n for t, n in topics.items() if n}


def _groups(namespace: str, followed: dict[str, set[str]]) -> dict[str, set[str]]:
    """Each service's consumer group and the topics it follows, by their names on the broker."""
    return {f"{namespace}{schema}": {f"{namespace}{t}" for t in types} for schema, types in followed.items()}


async def read(dsn: str, settings: Settings, namespace: str, call_ids: list[str], chain_ok: bool) -> Snapshot:
    """The whole snapshot: database first, then the broker (whose lag is read last)."""
    snap = Snapshot(call_ids=list(call_ids), chain_ok=chain_ok)
    conn = await connect(dsn)
    try:
        await read_database(conn, snap, namespace)
    finally:
        await conn.close()
    await read_broker(settings, namespace, snap)
    return snap


# Topics a service publishes on a timer, whatever it consumed (matching's capacity snapshot, at
# least every MATCHING_CAPACITY_EVERY_S): their rows are no effect of a replay.
TIMED_TOPICS = ("teams.capacity.v1",)
# The column naming an event's type in the tables that keep events.
TYPE_COLUMN = {"outbox": "topic", "processed_events": "event_type", "events": "type"}


async def fingerprint(dsn: str) -> dict[str, int]:
    """Row counts of every service table (but signed checkpoints and events published on a timer):
    a replay that changes any of them had an effect."""
    conn = await connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables"
            " WHERE table_schema = ANY($1) AND table_type = 'BASE TABLE' ORDER BY 1",
            list(SCHEMAS),
        )
        counts = {}
        for r in tables:
            table = r["t"]
            if table in ("audit.checkpoints", "audit.dev_signing_key", "audit.tree_nodes"):
                continue  # the tree's nodes follow audit.events, counted without timed events
            column = TYPE_COLUMN.get(table.partition(".")[2])
            where = f" WHERE NOT {column} = ANY($1)" if column else ""
            args = [list(TIMED_TOPICS)] if column else []
            counts[table] = int(await conn.fetchval(f"SELECT count(*) FROM {table}{where}", *args))
        return counts
    finally:
        await conn.close()


async def moving(dsn: str, settings: Settings, namespace: str) -> int:
    """How many things are not at rest yet: calls, live offers and assignments, unsent rows, lag."""
    conn = await connect(dsn)
    try:
        count = int(
            await conn.fetchval(
                "SELECT (SELECT count(*) FROM intake.calls WHERE NOT status = ANY($1))"
                " + (SELECT count(*) FROM matching.calls WHERE status = ANY($2))"
                " + (SELECT count(*) FROM matching.assignments WHERE status = ANY($3))"
                " + (SELECT count(*) FROM notify.assignments WHERE status = ANY($3))"
                " + (SELECT count(*) FROM intake.outbox WHERE sent_at IS NULL)"
                " + (SELECT count(*) FROM matching.outbox WHERE sent_at IS NULL)"
                " + (SELECT count(*) FROM notify.outbox WHERE sent_at IS NULL)"
                " + (SELECT count(*) FROM audit.outbox WHERE sent_at IS NULL)",
                list(INTAKE_AT_REST),
                list(MATCHING_LIVE),
                list(LIVE),
            )
        )
        followed = {
            schema: {
                r[0] for r in await conn.fetch(f"SELECT DISTINCT event_type FROM {schema}.processed_events")
            }
            for schema in SCHEMAS
        }
    finally:
        await conn.close()
    followed["audit"] |= set(REGISTRY)
    behind = await broker.lags(settings, _groups(namespace, followed))
    return count + sum(n for topics in behind.values() for n in topics.values())


async def wait_at_rest(dsn: str, settings: Settings, namespace: str, limit_s: float) -> int:
    """Wait until nothing is moving or `limit_s` passed; how many things still move.

    A call the load sent last may still be in its chain of offers (every attempt waits out its
    deadline), so "stuck" is judged only once that chain had time to end.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while True:
        left = await moving(dsn, settings, namespace)
        if not left or loop.time() > deadline:
            return left
        await asyncio.sleep(3)
