"""Two matching processes side by side, 200 simultaneous calls, 20 teams: no team is held twice,
and every call is either offered or handed back with a reason."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shared import topics
from shared.db import create_pool
from shared.kafka import client_options, make_producer
from shared.settings import Settings
from tests.integration.matching_harness import (
    call_received,
    jurisdiction,
    load,
    new_call_id,
    team,
    topic_events,
)
from tests.support import eventually
from tools import infra
from tools.system import System

pytestmark = pytest.mark.integration

CALLS = 200
TEAMS = 20


@contextlib.asynccontextmanager
async def matching_processes(
    settings: Settings,
    log_dir: Path,
    count: int,
    extra_env: dict[str, str] | None = None,
    service: str = "matching",
) -> AsyncIterator[None]:
    """`python -m services.<service>` `count` times, ready and sharing the group; exit 0 at the end."""
    replicas = [service] + [f"{service}-{n}" for n in range(2, count + 1)]
    own = {f"{service}_port": infra.free_port(), "kafka_session_timeout_ms": 3000, "log_json": False}
    async with System.start(
        settings,
        replicas,
        jurisdiction=None,
        mode="per-service",
        settings=own,
        env=extra_env,
        log_dir=log_dir,
    ) as system:
        # Every process holds partitions before the burst, so all of them take calls.
        await eventually(
            lambda: group_members(settings, service), lambda g: g == ("Stable", count), 60, "the group"
        )
        yield
        # SIGTERM: each process must finish its work and exit 0.
        codes = await system.stop_services()
        assert codes == [0] * count, f"exit codes {codes}:\n{system.log_tail(3000)}"


async def group_members(settings: Settings, service: str = "matching") -> tuple[str, int]:
    """A service's consumer group's state and how many members it has."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([settings.group(service)])
        group = response.groups[0]
        return str(group[2]), len(group[5])
    finally:
        await admin.close()


async def burst(settings: Settings, count: int) -> list[str]:
    """Publish `count` new community calls at once; return their ids."""
    call_ids = [new_call_id() for _ in range(count)]
    producer = make_producer(settings)
    await producer.start()
    try:
        topic = settings.topic(topics.CALLS_RECEIVED)
        sent = [
            await producer.send(topic, value=call_received(c).to_bytes(), key=c.encode()) for c in call_ids
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return call_ids


def roster(size: int) -> list[dict[str, Any]]:
    """`size` teams of two agencies, all covering the calls."""
    return [team(f"t-{i:02d}", agency=("north", "south")[i % 2], km_north=0.3 * i) for i in range(size)]


async def settled(pool: asyncpg.Pool, count: int, statuses: set[str]) -> Counter[str]:
    """Wait until all `count` calls are in one of `statuses`; return how many are in each."""

    async def tally() -> Counter[str]:
        return Counter(r["status"] for r in await pool.fetch("SELECT status FROM matching.calls"))

    def done(c: Counter[str]) -> bool:
        return sum(c.values()) == count and set(c) <= statuses

    return await eventually(tally, done, 120, f"{count} calls in {statuses}")


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.database_url.get_secret_value(), max_size=2)
    yield pool
    await pool.close()


async def test_two_matching_processes_never_double_book_a_team(settings, pool, tmp_path):
    teams = roster(TEAMS)
    await load(settings, jurisdiction(teams))
    async with matching_processes(settings, tmp_path, 2):
        call_ids = await burst(settings, CALLS)
        counts = await settled(pool, CALLS, {"offered", "unassigned"})
        assert counts == {"offered": TEAMS, "unassigned": CALLS - TEAMS}

        live = await pool.fetch("SELECT team_id, call_id FROM matching.assignments WHERE status = 'offered'")
        assert sorted(r["team_id"] for r in live) == sorted(t["id"] for t in teams), "each team once"
        held = await pool.fetch("SELECT id, current_call, status FROM matching.teams")
        assert {(r["id"], r["current_call"]) for r in held} == {(r["team_id"], r["call_id"]) for r in live}
        assert {r["status"] for r in held} == {"offered"}

        handed_back = "SELECT reason FROM matching.decisions WHERE outcome = 'handed_back'"
        assert Counter(r["reason"] for r in await pool.fetch(handed_back)) == {"all_busy": CALLS - TEAMS}
        deciders = "SELECT DISTINCT explanation->>'decided_by' FROM matching.decisions"
        assert len(await pool.fetch(deciders)) == 2, "both processes made decisions"

        offered = await topic_events(settings, topics.ASSIGNMENTS_OFFERED, TEAMS)
        unassigned = await topic_events(settings, topics.CALLS_UNASSIGNED, CALLS - TEAMS)
        assert len({o["team_id"] for o in offered}) == TEAMS
        outcome: dict[str, list[str]] = {c: [] for c in call_ids}
        for o in offered:
            outcome[o["call_id"]].append("offered")
        for h in unassigned:
            outcome[h["call_id"]].append(h["reason_code"])
        assert all(len(v) == 1 for v in outcome.values()), "every call has exactly one outcome"


async def test_two_matching_processes_never_book_a_team_beyond_its_capacity(settings, pool, tmp_path):
    """Ten teams of capacity 3, 100 simultaneous calls over two processes: every team holds exactly
    three calls, each held call is its live offer, and the other 70 calls go back `all_busy`."""
    calls, size, capacity = 100, 10, 3
    teams = [{**t, "capacity": capacity} for t in roster(size)]
    await load(settings, jurisdiction(teams))
    async with matching_processes(settings, tmp_path, 2):
        await burst(settings, calls)
        booked = size * capacity
        assert await settled(pool, calls, {"offered", "unassigned"}) == {
            "offered": booked,
            "unassigned": calls - booked,
        }
        live = await pool.fetch("SELECT team_id, call_id FROM matching.assignments WHERE status = 'offered'")
        assert Counter(r["team_id"] for r in live) == {t["id"]: capacity for t in teams}
        holds = await pool.fetch("SELECT team_id, call_id FROM matching.holds")
        assert {(r["team_id"], r["call_id"]) for r in holds} == {(r["team_id"], r["call_id"]) for r in live}
        counted = await pool.fetch("SELECT held, capacity FROM matching.teams")
        assert {(r["held"], r["capacity"]) for r in counted} == {(capacity, capacity)}
        handed_back = "SELECT reason FROM matching.decisions WHERE outcome = 'handed_back'"
        assert Counter(r["reason"] for r in await pool.fetch(handed_back)) == {"all_busy": calls - booked}


async def test_two_processes_expire_each_missed_deadline_once(settings, pool, tmp_path):
    """Two notify processes decide the deadlines (each offer expired and published once), two
    matching processes move each call on from those expiries."""
    calls, teams = 30, 10
    await load(settings, jurisdiction(roster(teams)))
    env = {"MATCHING_OFFER_TIMEOUT_S": "1", "NOTIFY_EXPIRY_INTERVAL_S": "0.2", "MATCHING_MAX_ATTEMPTS": "3"}
    async with (
        matching_processes(settings, tmp_path, 2, env, service="notify"),
        matching_processes(settings, tmp_path, 2, env),
    ):
        await burst(settings, calls)
        # Nobody answers: every offer expires, the next team is offered, and every call ends handed back.
        assert await settled(pool, calls, {"unassigned"}) == {"unassigned": calls}
        statuses = Counter(r["status"] for r in await pool.fetch("SELECT status FROM matching.assignments"))
        assert set(statuses) == {"expired"}
        expired_ids = [
            e["assignment_id"]
            for e in await topic_events(settings, topics.ASSIGNMENTS_EXPIRED, statuses["expired"])
        ]
        assert len(expired_ids) == len(set(expired_ids)) == statuses["expired"], "each offer expired once"
        free = await pool.fetch("SELECT status, current_call FROM matching.teams")
        assert {(r["status"], r["current_call"]) for r in free} == {("available", None)}
        reasons = Counter(
            r["reason"]
            for r in await pool.fetch("SELECT reason FROM matching.decisions WHERE outcome = 'handed_back'")
        )
        assert set(reasons) <= {"all_busy", "no_acceptance_in_time"} and reasons["no_acceptance_in_time"] > 0
        per_call = await pool.fetch("SELECT count(*) AS n FROM matching.assignments GROUP BY call_id")
        assert max(r["n"] for r in per_call) <= 3, "no call offered more than MATCHING_MAX_ATTEMPTS times"
