"""Two matching processes side by side, 200 simultaneous calls, 20 teams: no team is held twice,
and every call is either offered or handed back with a reason."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from shared import infra, topics
from shared.kafka import make_producer
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

pytestmark = pytest.mark.integration

CALLS = 200
TEAMS = 20


@contextlib.contextmanager
def matching_processes(settings: Settings, log: Path, count: int) -> Iterator[list[str]]:
    """`python -m services.matching` `count` times; yields their URLs; SIGTERM and exit 0 at the end."""
    urls, processes = [], []
    with log.open("wb") as out:
        for _ in range(count):
            port = infra.free_port()
            env = {
                **os.environ,
                "DATABASE_URL": settings.database_url.get_secret_value(),
                "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
                "KAFKA_NAMESPACE": settings.kafka_namespace,
                "KAFKA_SESSION_TIMEOUT_MS": "3000",
                "MATCHING_PORT": str(port),
                "LOG_JSON": "false",
            }
            processes.append(
                subprocess.Popen([sys.executable, "-m", "services.matching"], env=env, stdout=out, stderr=out)
            )
            urls.append(f"http://127.0.0.1:{port}")
    try:
        yield urls
    finally:
        for p in processes:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=60) for p in processes]
        assert codes == [0] * count, f"exit codes {codes}:\n{log.read_text()[-3000:]}"


async def group_members(settings: Settings) -> tuple[str, int]:
    """The matching consumer group's state and how many members it has."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([settings.group("matching")])
        group = response.groups[0]
        return str(group[2]), len(group[5])
    finally:
        await admin.close()


async def test_two_matching_processes_never_double_book_a_team(settings, tmp_path):
    # 20 teams of two agencies, all covering the calls: more calls than teams by far.
    teams = [team(f"t-{i:02d}", agency=("north", "south")[i % 2], km_north=0.3 * i) for i in range(TEAMS)]
    await load(settings, jurisdiction(teams))
    pool = await asyncpg.create_pool(settings.database_url.get_secret_value(), min_size=1, max_size=2)
    try:
        with matching_processes(settings, tmp_path / "matching.log", 2) as urls:
            async with httpx.AsyncClient(timeout=3) as http:

                async def ready() -> list[int]:
                    codes = []
                    for url in urls:
                        try:
                            codes.append((await http.get(f"{url}/readyz")).status_code)
                        except httpx.HTTPError:
                            codes.append(0)
                    return codes

                await eventually(ready, lambda c: c == [200, 200], timeout_s=60, what="both processes ready")
            # Both processes hold partitions before the burst, so both take calls.
            await eventually(
                lambda: group_members(settings), lambda g: g == ("Stable", 2), 60, "a group of two"
            )
            producer = make_producer(settings.kafka_bootstrap_servers)
            await producer.start()
            try:
                call_ids = [new_call_id() for _ in range(CALLS)]
                sends = [
                    producer.send(
                        settings.topic(topics.CALLS_RECEIVED),
                        value=call_received(c).to_bytes(),
                        key=c.encode(),
                    )
                    for c in call_ids
                ]
                await asyncio.gather(*[await s for s in sends])
            finally:
                await producer.stop()

            async def settled() -> Counter[str]:
                rows = await pool.fetch("SELECT status FROM matching.calls")
                return Counter(r["status"] for r in rows)

            counts = await eventually(
                settled,
                lambda c: sum(c.values()) == CALLS and set(c) <= {"offered", "unassigned"},
                120,
                "all calls",
            )
            assert counts == {"offered": TEAMS, "unassigned": CALLS - TEAMS}

            live = await pool.fetch(
                "SELECT team_id, call_id FROM matching.assignments WHERE status = 'offered' ORDER BY team_id"
            )
            assert sorted(r["team_id"] for r in live) == sorted(t["id"] for t in teams), "each team once"
            held = await pool.fetch("SELECT id, current_call, status FROM matching.teams ORDER BY id")
            assert {(r["id"], r["current_call"]) for r in held} == {
                (r["team_id"], r["call_id"]) for r in live
            }
            assert {r["status"] for r in held} == {"offered"}

            reasons = Counter(
                r["reason"]
                for r in await pool.fetch(
                    "SELECT reason FROM matching.decisions WHERE outcome = 'handed_back'"
                )
            )
            assert reasons == {"all_busy": CALLS - TEAMS}
            deciders = await pool.fetch(
                "SELECT DISTINCT explanation->>'decided_by' AS who FROM matching.decisions"
            )
            assert len(deciders) == 2, "both processes made decisions"

            offered = await topic_events(settings, topics.ASSIGNMENTS_OFFERED, TEAMS)
            handed_back = await topic_events(settings, topics.CALLS_UNASSIGNED, CALLS - TEAMS)
            assert len({o["team_id"] for o in offered}) == TEAMS
            outcome: dict[str, list[Any]] = {c: [] for c in call_ids}
            for o in offered:
                outcome[o["call_id"]].append("offered")
            for h in handed_back:
                outcome[h["call_id"]].append(h["reason_code"])
            assert all(len(v) == 1 for v in outcome.values()), "every call exactly one outcome"
    finally:
        await pool.close()
