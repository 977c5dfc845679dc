"""`make demo`: start everything, load the example, and walk calls from a 911 center to a team."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import typer
from aiokafka import AIOKafkaConsumer

from services.jurisdiction import load_file
from shared.db import connect
from shared.jurisdiction import Jurisdiction
from shared.kafka import client_options
from shared.settings import Settings
from shared.topics import agency_topic
from tools import infra
from tools.psap import PsapClient, bearer
from tools.system import System


def say(step: str, text: str = "") -> None:
    """One line of the demo's narration."""
    typer.echo(typer.style(f"==> {step}", bold=True) + (f" {text}" if text else ""))


CALLS: list[dict[str, Any]] = [
    {
        "title": "A man in distress outside the downtown library; caller says no weapon, calm, Spanish",
        "body": {
            "incident_type": "10-96",
            "location": {"lat": 44.0503, "lon": -123.0889, "address": "100 W 10th Ave"},
            "safety": {
                "weapon": "no",
                "violence": "no",
                "medical": "no",
                "self_harm_imminent": "no",
                "crime_in_progress": "no",
            },
            "language": "es",
            "callback_number": "+15415550123",
            "caller_name": "(stays in intake)",
            "narrative": "(stays in intake)",
        },
    },
    {
        "title": "A welfare check where the caller reports a knife",
        "body": {
            "incident_type": "WELCHK",
            "location": {"lat": 44.0573, "lon": -123.1021},
            "safety": {
                "weapon": "yes",
                "violence": "unknown",
                "medical": "no",
                "self_harm_imminent": "no",
                "crime_in_progress": "no",
            },
        },
    },
    {
        "title": "A student in crisis near campus, screen all 'no'",
        "body": {
            "incident_type": "SUICTHRT",
            "location": {"lat": 44.0452, "lon": -123.0711},
            "safety": {
                "weapon": "no",
                "violence": "no",
                "medical": "no",
                "self_harm_imminent": "no",
                "crime_in_progress": "no",
            },
            "language": "en",
            "callback_number": "+15415550188",
        },
    },
]


async def _next_offer(
    consumer: AIOKafkaConsumer, call_id: str, timeout_s: float
) -> tuple[str, dict[str, Any]] | None:
    """The first offer for `call_id` on any agency topic, with the topic it came on."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while asyncio.get_running_loop().time() < deadline:
        batch = await consumer.getmany(timeout_ms=500)
        for records in batch.values():
            for record in records:
                event = json.loads(record.value)
                if event["subject"] == call_id and event["data"]["kind"] == "offered":
                    return record.topic, dict(event["data"])
    return None


async def scenario(system: System) -> None:
    """Three calls from a simulated 911 center; the simulated agencies accept what they get."""
    settings, j = system.settings, system.jurisdiction
    psap = j.psaps[0]
    tokens = {a.id: a.token for a in j.agencies}
    oversight = next(o for o in j.oversight if o.role == "oversight")
    agency_of_topic = {settings.topic(agency_topic(a.id)): a.id for a in j.agencies}
    # One independent consumer follows every agency topic, as each agency's own software would.
    consumer = AIOKafkaConsumer(
        *agency_of_topic,
        **client_options(settings),
        group_id=f"demo-agencies-{uuid.uuid4().hex[:6]}",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            cad = PsapClient(http, system.url("intake"), psap)
            for n, call in enumerate(CALLS, start=1):
                say(f"Call {n}:", call["title"])
                body = {"external_id": f"DEMO-{uuid.uuid4().hex[:8].upper()}", **call["body"]}
                answer = await cad.call(body)
                result = answer.json()
                decision = result["decision"]
                say("    911 center got", f"HTTP {answer.status_code}: route={decision['route']}")
                for reason in decision["reasons"]:
                    typer.echo(f"      - {reason}")
                shadow = result.get("shadow_decision")
                if shadow:
                    typer.echo(f"      (shadow rules {shadow['rules_version']} would say: {shadow['route']})")
                call_id = result["call_id"]
                if decision["route"] == "community":
                    offer = await _next_offer(consumer, call_id, 20)
                    if offer is None:
                        say("    no offer reached an agency topic within 20 s (see .run/services.log)")
                        continue
                    topic, data = offer
                    agency_id = agency_of_topic[topic]
                    say(
                        f"    offer on topic {topic}:",
                        f"team {data['team_id']}, deadline {data['deadline']}",
                    )
                    base = f"{system.url('notify')}/v1/assignments/{data['assignment_id']}"
                    auth = bearer(tokens[agency_id])
                    steps: list[tuple[str, dict[str, Any] | None]] = [
                        ("accept", None),
                        ("status", {"status": "en_route"}),
                        ("status", {"status": "on_scene"}),
                        ("status", {"status": "cleared", "disposition": "18"}),
                    ]
                    for path, payload in steps:
                        r = await http.post(f"{base}/{path}", json=payload, headers=auth)
                        label = path if payload is None else payload["status"]
                        say(f"    agency {agency_id}: {label}", f"HTTP {r.status_code}")
                        await asyncio.sleep(0.3)
                await asyncio.sleep(1.0)
                status = await cad.status(call_id)
                say("    911 center sees status", status.json().get("status", "?"))
                trail = await _trail(http, system.url("audit"), call_id, oversight.token)
                say("    audit trail:", " -> ".join(trail))
                typer.echo(
                    f"      {system.url('audit')}/v1/audit/calls/{call_id}"
                    f"  (Authorization: Bearer {oversight.token})"
                )
    finally:
        await consumer.stop()


async def _trail(http: httpx.AsyncClient, audit_url: str, call_id: str, token: str) -> list[str]:
    """The event types of a call's audit trail, waiting briefly for the last ones."""
    types: list[str] = []
    for _ in range(20):
        r = await http.get(f"{audit_url}/v1/audit/calls/{call_id}", headers=bearer(token))
        if r.status_code == 200:
            new = [e["type"] for e in r.json()["events"]]
            if new == types and types:
                break
            types = new
        await asyncio.sleep(0.5)
    return types


async def fresh_database(admin_url: str, name: str) -> str:
    """Drop and create `name` on the project's own cluster, so every demo starts from nothing."""
    admin = await connect(admin_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    return f"{admin_url.rpartition('/')[0]}/{name}"


async def run(settings: Settings, j: Jurisdiction, jurisdiction_file: Path, *, keep_running: bool) -> None:
    """Load the jurisdiction, start the services in one process, walk the calls, stop at the end
    (or, with `keep_running`, when the services stop: Ctrl-C stops them)."""
    log_path = settings.run_dir / "services.log"
    say("Loading the jurisdiction", str(jurisdiction_file))
    say("Starting intake, matching, notify and audit", f"(logs: {log_path})")
    async with System.start(
        settings, mode="one-process", jurisdiction=j, log_dir=settings.run_dir, ready_timeout_s=90
    ) as system:
        for name in system.services:
            typer.echo(f"      {name:<9} {system.url(name)}/docs")
        await scenario(system)
        say("Done.", "The system keeps running; press Ctrl-C to stop everything." if keep_running else "")
        if keep_running:
            await asyncio.to_thread(system.processes["services"].wait)


def main(broker: str, jurisdiction_file: Path, *, keep_running: bool = True) -> int:
    """Run the whole demo; returns the process exit code."""
    settings = Settings()
    run_dir = settings.run_dir
    j = load_file(jurisdiction_file)
    say("Starting PostgreSQL and the broker", f"({broker}) in {run_dir}/")
    own_database = "DATABASE_URL" not in os.environ
    try:
        endpoints = infra.up(
            run_dir,
            infra.choose_broker(broker),
            pg_port=settings.local_pg_port,
            kafka_port=settings.local_kafka_port,
            database_url=os.environ.get("DATABASE_URL"),
        )
    except infra.InfraError as exc:
        say("Cannot start the infrastructure:", str(exc))
        return 1
    code = 0
    try:
        # On the project's own cluster the demo gets a fresh database each time; a DATABASE_URL
        # someone gave us is used as it is and never dropped.
        database_url = (
            asyncio.run(fresh_database(endpoints.database_url, "careroute_demo"))
            if own_database
            else endpoints.database_url
        )
        settings = Settings(
            **{
                **settings.model_dump(),
                "database_url": database_url,
                "kafka_bootstrap_servers": endpoints.kafka_bootstrap_servers,
                "kafka_broker": endpoints.broker,
            }
        )
        typer.echo(f"      postgresql {database_url}")
        typer.echo(f"      broker     {endpoints.broker} at {endpoints.kafka_bootstrap_servers}")
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run(settings, j, jurisdiction_file, keep_running=keep_running))
    except (RuntimeError, OSError, asyncpg.PostgresError) as exc:
        say("Demo failed:", f"{exc!r} (see {run_dir / 'services.log'})")
        code = 1
    finally:
        say("Stopping the services, the broker and PostgreSQL")
        infra.down(run_dir)
    return code
