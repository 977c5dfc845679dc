"""The audit service on the real broker and PostgreSQL: exactly-once storage, the oversight API,
reports with known answers, redaction of planted details, access events, proofs and the verifier."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from typer.testing import CliRunner

from services.audit import merkle, service
from services.audit.note import VerifierKey, open_checkpoint
from services.audit.settings import AuditSettings
from services.cli import app as cli
from shared.auth import Credential, replace_credentials
from shared.db import connect, create_pool, migrate
from shared.kafka import client_options, ensure_topics, make_producer
from shared.runtime import Infra, topics_for
from shared.settings import Settings
from shared.topics import REGISTRY
from tests.audit_scenario import EXPECTED, PLANTED, scenario
from tests.support import eventually
from tools.psap import bearer
from tools.system import System

pytestmark = pytest.mark.integration

MIGRATIONS = Path(__file__).parents[2] / "services" / "audit" / "migrations"
REVIEWER = "oversight-token-for-the-review-board"
ADMIN = "admin-token-for-the-careroute-operator"


@asynccontextmanager
async def audit_running(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The audit service alone, its credentials loaded, checkpoints every 5 events; an HTTP client."""
    pool = await create_pool(settings.database_url.get_secret_value())
    await migrate(pool, "audit", [MIGRATIONS])
    async with pool.acquire() as conn, conn.transaction():
        await replace_credentials(
            conn,
            "audit",
            [Credential(REVIEWER, "review-board", "oversight"), Credential(ADMIN, "op", "admin")],
        )
    await pool.close()
    audit_settings = AuditSettings(checkpoint_every=5, checkpoint_interval_s=0.5)

    def build(infra: Infra) -> Any:
        return service.build(infra, audit_settings)

    async with (
        System.start(settings, ["audit"], jurisdiction=None, builders={"audit": build}) as system,
        httpx.AsyncClient(base_url=system.url("audit"), timeout=30) as http,
    ):
        yield http


async def publish(settings: Settings, envelopes: list[Any]) -> None:
    await ensure_topics(settings, topics_for(settings, ["audit"]))
    producer = make_producer(settings)
    await producer.start()
    try:
        for e in envelopes:
            await producer.send_and_wait(settings.topic(e.type), value=e.to_bytes(), key=e.subject.encode())
    finally:
        await producer.stop()


async def stored_count(settings: Settings) -> int:
    conn = await connect(settings.database_url.get_secret_value())
    try:
        return int(
            await conn.fetchval("SELECT count(*) FROM audit.events WHERE type <> 'access.recorded.v1'")
        )
    finally:
        await conn.close()


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return settings.model_copy(update={"audit_port": 0, "outbox_poll_interval_s": 0.1})


async def consumed_everything(settings: Settings) -> bool:
    """Audit's group has committed, on every partition of every topic, the broker's end offset:
    it has read each record, the redelivered ones included."""
    consumer = AIOKafkaConsumer(**client_options(settings))
    await consumer.start()
    try:
        existing = await consumer.topics()
        parts = [
            TopicPartition(settings.topic(name), p)
            for name in REGISTRY
            if settings.topic(name) in existing
            for p in range(settings.kafka_partitions)
        ]
        assert parts, "no partitions found for the registry's topics"
        ends = await consumer.end_offsets(parts)
    finally:
        await consumer.stop()
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.group("audit"))
    finally:
        await admin.close()
    return all(end == 0 or (tp in committed and committed[tp].offset >= end) for tp, end in ends.items())


class Trail:
    """The scenario's trail as oversight reads it: an HTTP client that keeps every answer's text."""

    def __init__(self, http: httpx.AsyncClient, events: list[Any]) -> None:
        self.http, self.events = http, events
        self.seen: list[str] = []

    async def get(self, path: str, token: str = REVIEWER, **params: Any) -> httpx.Response:
        """GET as the review board (or `token`), keeping the text."""
        r = await self.http.get(path, params=params, headers=bearer(token))
        self.seen.append(r.text)
        return r


@pytest.fixture
async def trail(fast: Settings) -> AsyncIterator[Trail]:
    events = scenario()
    # Each of the first seven events twice (a producer retry, a replay), as at-least-once allows.
    await publish(fast, events + events[:7])
    async with audit_running(fast) as http:
        await eventually(lambda: consumed_everything(fast), bool, what="audit reading every record")
        yield Trail(http, events)


async def test_each_event_is_stored_once_though_delivered_twice(trail, fast):
    assert await stored_count(fast) == len(trail.events)


async def test_one_calls_story_comes_in_order_and_redacted(trail):
    story = (await trail.get("/v1/audit/calls/c2")).json()
    assert sorted(e["type"] for e in story["events"]) == sorted(
        e.type for e in trail.events if e.subject == "c2"
    )
    assert [e["seq"] for e in story["events"]] == sorted(e["seq"] for e in story["events"])
    [first] = [e for e in story["events"] if e["type"] == "calls.received.v1"]
    located = {k: v for k, v in first["data"]["location"].items() if v is not None}
    assert located == {"lat": 44.05, "lon": -123.09}  # the address is not on oversight's allow-list


async def test_i3_logging_queries_page_and_filter(trail):
    """NENA i3 Logging Service queries: by type and time with cursor paging, by call, by agency, ids."""
    pages, cursor = [], 0
    while cursor is not None:
        page = (await trail.get("/v1/audit/events", type="calls.received.v1", limit=4, cursor=cursor)).json()
        pages.append([e["subject"] for e in page["events"]])
        cursor = page["next_cursor"]
    assert [len(p) for p in pages] == [4, 2]
    assert sorted(c for p in pages for c in p) == ["c1", "c2", "c3", "c4", "c5", "c6"]
    window = await trail.get("/v1/audit/events", since="2026-01-01T00:00:00Z", until="2026-01-02T00:00:00Z")
    assert window.json()["events"] == []  # recorded now, not in January
    by_agency = (await trail.get("/v1/audit/events", agency_id="agency-b")).json()["events"]
    assert {e["subject"] for e in by_agency} == {"c2"} and len(by_agency) == 5
    ids = await trail.get("/v1/audit/call-ids", since="2026-11-01T00:00:00Z", until="2026-11-03T00:00:00Z")
    assert ids.json()["call_ids"] == ["c1", "c2", "c3", "c4", "c5", "c6"]
    agencies = (await trail.get("/v1/audit/agency-ids", call_id="c2")).json()["agency_ids"]
    assert agencies == ["agency-a", "agency-b"]
    event_ids = (await trail.get("/v1/audit/event-ids", call_id="c1")).json()["event_ids"]
    assert sorted(event_ids) == sorted(str(e.id) for e in trail.events if e.subject == "c1")


async def test_the_summary_has_the_scenarios_known_answers(trail):
    summary = (await trail.get("/v1/reports/summary", **{"from": "2026-11-01T00:00:00Z"})).json()
    assert {k: summary[k] for k in EXPECTED} == EXPECTED
    only_b = (await trail.get("/v1/reports/summary", agency="agency-b")).json()
    assert only_b["funnel"]["received"] == 1


async def test_checkpoints_proofs_and_the_stand_alone_verifier(trail, tmp_path):
    vkey = VerifierKey.decode((await trail.get("/v1/audit/key")).json()["verifier_key"])
    note = await eventually(lambda: trail.get("/v1/audit/checkpoint"), lambda r: r.status_code == 200)
    jsonl = await trail.get("/v1/audit/export")
    csv_export = await trail.get("/v1/audit/export", format="csv")
    assert csv_export.text.startswith("seq,recorded_at,event_id,type")
    lines = jsonl.text.splitlines()
    assert len(lines) >= len(trail.events) and json.loads(lines[0])["seq"] == 1

    head = open_checkpoint(note.text, vkey)
    leaf = merkle.leaf_hash(bytes.fromhex(json.loads(lines[2])["row_hash"]))
    proof = (await trail.get("/v1/audit/proofs/inclusion", seq=3, size=head.size)).json()["proof"]
    assert merkle.verify_inclusion(2, head.size, leaf, [bytes.fromhex(p) for p in proof], head.root)
    (tmp_path / "key").write_text(vkey.encode())
    (tmp_path / "export.jsonl").write_text(jsonl.text)
    (tmp_path / "cp.txt").write_text(note.text)
    args = ["verify", "--key", str(tmp_path / "key"), "--export", str(tmp_path / "export.jsonl")]
    args += ["--checkpoint", str(tmp_path / "cp.txt")]
    ran = CliRunner().invoke(cli, args)
    assert ran.exit_code == 0, ran.output
    # In a thread: the verifier's client is synchronous and the server runs on this loop.
    server = ["--server", str(trail.http.base_url), "--token", REVIEWER]
    ran = await asyncio.to_thread(CliRunner().invoke, cli, [*args, *server])
    assert ran.exit_code == 0, ran.output
    verified = (await trail.get("/v1/audit/verify")).json()
    assert verified["ok"] and verified["checkpoints_checked"] >= 1, verified


async def test_oversight_reads_no_planted_detail_and_phi_reads_are_recorded(trail):
    for path in ("/v1/audit/calls/c1", "/v1/audit/calls/c2", "/v1/audit/events", "/v1/audit/export"):
        assert (await trail.get(path)).status_code == 200, path
    await trail.get("/v1/reports/summary")
    await trail.get("/v1/audit/export", format="csv")
    for text in trail.seen:
        for planted in PLANTED:
            assert planted not in text, (planted, text[:300])
    # Only an admin's explicit phi read shows them, and that read is itself recorded.
    assert (await trail.get("/v1/audit/calls/c1", phi="true")).status_code == 403
    assert PLANTED[0] in (await trail.get("/v1/audit/calls/c1", token=ADMIN, phi="true")).text

    async def access() -> list[dict[str, Any]]:
        r = await trail.get("/v1/audit/events", type="access.recorded.v1", limit=1000)
        return [e["data"] for e in r.json()["events"]]

    def recorded(found: list[dict[str, Any]]) -> bool:
        return any(a["tenant_id"] == "op" and a["reason"] == "phi: unredacted read" for a in found) and any(
            a["tenant_id"] == "review-board" and a["path"] == "/v1/reports/summary" for a in found
        )

    await eventually(access, recorded, what="access events of the reads")


async def test_bad_oversight_input_gets_a_clear_4xx(fast):
    async with audit_running(fast) as http:
        who = bearer(REVIEWER)
        tries = {
            ("/v1/audit/events", "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z"): 422,
            ("/v1/audit/events", "since=yesterday"): 422,
            ("/v1/audit/verify", "first=5&last=2"): 422,
            ("/v1/audit/proofs/inclusion", "seq=5&size=2"): 422,
            ("/v1/audit/proofs/inclusion", "seq=1&size=999999"): 404,
            ("/v1/audit/proofs/consistency", "first=3&second=2"): 422,
            ("/v1/audit/export", "format=xml"): 422,
            ("/v1/audit/checkpoint", "size=12345"): 404,
            ("/v1/audit/calls/nope", ""): 404,
            ("/v1/reports/summary", "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z"): 422,
        }
        for (path, query), status in tries.items():
            r = await http.get(f"{path}?{query}", headers=who)
            assert r.status_code == status, (path, query, r.text)
            assert set(r.json()) == {"detail", "code"}, (path, query, r.text)
        assert (await http.get("/v1/audit/export", headers=bearer("nobody-knows-this"))).status_code == 401
