"""After a fault: for every call the system answered 202, was it lost, duplicated, out of order, or stuck?"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import asyncpg

# Where a call may rest: routed elsewhere at intake, or a community call that reached its end.
FINAL = {"routed_police", "routed_ems", "routed_review", "cleared", "handed_back", "cancelled", "withdrawn"}
STATUS_ORDER = {"en_route": 1, "on_scene": 2, "cleared": 3}


@dataclass
class Verdict:
    """The checker's counts and the first few examples of each problem."""

    calls: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    stuck: int = 0
    chain_ok: bool = False
    examples: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Zero lost, duplicated, out of order and stuck, and a verified chain."""
        return self.chain_ok and not (self.lost or self.duplicated or self.out_of_order or self.stuck)

    def note(self, text: str) -> None:
        """Keep a few examples for the report."""
        if len(self.examples) < 10:
            self.examples.append(text)


def check_trail(call_id: str, events: list[tuple[str, dict[str, Any]]], verdict: Verdict) -> None:
    """Order and duplicate rules over one call's events, in audit order."""
    if not events or events[0][0] != "calls.received.v1":
        verdict.out_of_order += 1
        verdict.note(f"{call_id}: first event is {events[0][0] if events else 'missing'}")
        return
    seen: dict[str, set[str]] = defaultdict(set)
    active: str | None = None
    for type_, data in events[1:]:
        assignment = str(data.get("assignment_id"))
        if type_ == "assignments.offered.v1":
            if "offered" in seen[assignment]:
                verdict.duplicated += 1
                verdict.note(f"{call_id}: assignment {assignment} offered twice")
            if active is not None:
                verdict.duplicated += 1
                verdict.note(f"{call_id}: a second offer while {active} was live")
            seen[assignment].add("offered")
            active = assignment
        elif type_ == "assignments.responded.v1":
            if "offered" not in seen[assignment]:
                verdict.out_of_order += 1
                verdict.note(f"{call_id}: answer before offer for {assignment}")
            if "responded" in seen[assignment]:
                verdict.duplicated += 1
                verdict.note(f"{call_id}: {assignment} answered twice")
            seen[assignment].add("responded")
            if data.get("response") == "declined" and active == assignment:
                active = None
        elif type_ == "assignments.status_changed.v1":
            status = str(data.get("status"))
            if "responded" not in seen[assignment]:
                verdict.out_of_order += 1
                verdict.note(f"{call_id}: {status} before acceptance of {assignment}")
            later = [s for s in seen[assignment] if STATUS_ORDER.get(s, 0) > STATUS_ORDER.get(status, 0)]
            if status in STATUS_ORDER and later:
                verdict.out_of_order += 1
                verdict.note(f"{call_id}: {status} after {later[0]}")
            if status in STATUS_ORDER and status in seen[assignment]:
                verdict.duplicated += 1
                verdict.note(f"{call_id}: {status} reported twice for {assignment}")
            seen[assignment].add(status)
            if status == "cleared" and active == assignment:
                active = None
        elif type_ in ("assignments.expired.v1", "assignments.withdrawn.v1"):
            if "offered" not in seen[assignment]:
                verdict.out_of_order += 1
                verdict.note(f"{call_id}: {type_} before the offer of {assignment}")
            if active == assignment:
                active = None


async def at_rest(dsn: str, call_ids: list[str], limit_s: float) -> int:
    """Wait until every call is at rest or `limit_s` passed; how many are not at rest.

    A call the load sent last may still be in its chain of offers (every attempt waits out its
    deadline), so "stuck" is judged only once that chain had time to end.
    """
    deadline = asyncio.get_running_loop().time() + limit_s
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            moving = int(
                await conn.fetchval(
                    "SELECT count(*) FROM intake.calls WHERE id = ANY($1::uuid[]) AND NOT status = ANY($2)",
                    call_ids,
                    list(FINAL),
                )
            )
            if not moving or asyncio.get_running_loop().time() > deadline:
                return moving
            await asyncio.sleep(2)
    finally:
        await conn.close()


async def check(dsn: str, call_ids: list[str], chain_ok: bool) -> Verdict:
    """Read intake's calls and the audit trail and judge every call answered 202."""
    verdict = Verdict(calls=len(call_ids), chain_ok=chain_ok)
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT id::text AS id, status FROM intake.calls WHERE id = ANY($1::uuid[])", call_ids
        )
        status = {r["id"]: r["status"] for r in rows}
        trail: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        for r in await conn.fetch(
            # Lifecycle order is the order things happened (the producers' event time): audit reads
            # several topics, and across topics its own sequence need not follow causality.
            "SELECT subject, type, envelope->'data' AS data FROM audit.events WHERE subject = ANY($1::text[])"
            " ORDER BY event_time, seq",
            call_ids,
        ):
            trail[r["subject"]].append((r["type"], json.loads(r["data"])))
        copies = await conn.fetchval("SELECT count(*) - count(DISTINCT event_id) FROM audit.events")
    finally:
        await conn.close()
    verdict.duplicated += int(copies)
    for call_id in call_ids:
        if call_id not in status or not trail.get(call_id):
            verdict.lost += 1
            verdict.note(
                f"{call_id}: answered 202 but {'not stored' if call_id not in status else 'not audited'}"
            )
            continue
        if status[call_id] not in FINAL:
            verdict.stuck += 1
            verdict.note(f"{call_id}: still {status[call_id]} after recovery")
        check_trail(call_id, trail[call_id], verdict)
    return verdict
