"""Time to commitment on the system's own deadlines: calls sent, the benchmark's agencies answering
their offers late, declining or never answering, and each call timed from its 202 to the team that
accepted it or to its hand-back."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.audit.reports import percentiles
from services.matching.settings import MatchingSettings
from services.notify.settings import NotifySettings
from shared.db import connect
from tools.bench import agencies, roster
from tools.bench.load import LoadClient
from tools.sim.scenario import Options
from tools.system import System

# Matching's record of each hand-back, with its reason; decided_at is the start of the transaction
# that handed the call back (the database and the benchmark share this machine's clock).
_HAND_BACKS = """
SELECT DISTINCT ON (call_id) call_id::text, reason, decided_at
FROM matching.decisions WHERE outcome = 'handed_back'
ORDER BY call_id, id
"""


@dataclass
class Ledger:
    """Wall-clock seconds of each call's 202, of the accept notify took for it and of its
    hand-back (with matching's reason)."""

    sent_at: dict[str, float] = field(default_factory=dict)
    accepted_at: dict[str, float] = field(default_factory=dict)
    handed_back: dict[str, tuple[float, str]] = field(default_factory=dict)

    def committed(self, call_id: str) -> tuple[float, str] | None:
        """When the call was committed and how (`accepted` or the hand-back's reason), whichever
        came first; None while neither has."""
        ends = []
        if call_id in self.accepted_at:
            ends.append((self.accepted_at[call_id], "accepted"))
        if call_id in self.handed_back:
            ends.append(self.handed_back[call_id])
        return min(ends) if ends else None

    def open_calls(self) -> list[str]:
        """The calls with a 202 and neither an accepting team nor a hand-back yet."""
        return [c for c in self.sent_at if self.committed(c) is None]


def figures(ledger: Ledger) -> dict[str, Any]:
    """Nearest-rank p50, p90 and p99 (as the audit summary's) of the seconds from each call's 202 to
    its commitment, with the calls accepted, handed back by reason and still open."""
    seconds: list[float] = []
    accepted = 0
    handed_back: Counter[str] = Counter()
    for call_id, sent in ledger.sent_at.items():
        end = ledger.committed(call_id)
        if end is None:
            continue
        at, how = end
        seconds.append(max(0.0, at - sent))
        if how == "accepted":
            accepted += 1
        else:
            handed_back[how] += 1
    found = percentiles(seconds)
    return {
        **{k: v if v is None or k == "count" else round(v, 2) for k, v in found.items()},
        "accepted": accepted,
        "handed_back": dict(sorted(handed_back.items())),
        "open_at_end": len(ledger.sent_at) - len(seconds),
    }


def deadlines(commit_within_s: float) -> dict[str, float]:
    """The deadlines the phase runs with: the jurisdiction's time to commit, matching's and notify's
    defaults for the rest (set explicitly, so an environment variable cannot change them unsaid)."""
    m, n = MatchingSettings.model_fields, NotifySettings.model_fields
    return {
        "commit_within_s": commit_within_s,
        "offer_timeout_s": m["offer_timeout_s"].default,
        "offer_floor_s": m["offer_floor_s"].default,
        "max_attempts": m["max_attempts"].default,
        "repage_every_s": n["repage_every_s"].default,
        "expiry_interval_s": n["expiry_interval_s"].default,
    }


def deadline_env(d: dict[str, float]) -> dict[str, str]:
    """The service environment that sets `deadlines` (commit_within is the jurisdiction's)."""
    return {
        "MATCHING_OFFER_TIMEOUT_S": str(d["offer_timeout_s"]),
        "MATCHING_OFFER_FLOOR_S": str(d["offer_floor_s"]),
        "MATCHING_MAX_ATTEMPTS": str(d["max_attempts"]),
        "NOTIFY_REPAGE_EVERY_S": str(d["repage_every_s"]),
        "NOTIFY_EXPIRY_INTERVAL_S": str(d["expiry_interval_s"]),
    }


def answer_model(options: Options) -> dict[str, Any]:
    """The agencies' answer model as the report states it."""
    return {
        "accept_share": options.accept_share,
        "decline_share": options.decline_share,
        "never_answer_share": round(1 - options.accept_share - options.decline_share, 4),
        "accept_after_s": list(options.accept_after_s),
        "decline_after_s": list(options.decline_after_s),
    }


async def _hand_backs(dsn: str) -> dict[str, tuple[float, str]]:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch(_HAND_BACKS)
    finally:
        await conn.close()
    return {r["call_id"]: (r["decided_at"].timestamp(), r["reason"]) for r in rows}


async def measure(
    system: System,
    client: LoadClient,
    rate: float,
    duration_s: float,
    wait_s: float,
    options: Options | None = None,
    seed: int = 17,
) -> dict[str, Any]:
    """Calls at `rate`/s for `duration_s`; every offer answered by the agencies' model; then up to
    `wait_s` after the last 202 for every call to be accepted or handed back."""
    options = options or Options()
    ledger = Ledger()
    routes: Counter[str] = Counter()
    consumer = await agencies.reader(system.settings)
    stop = asyncio.Event()

    def accepted(call_id: str) -> None:
        ledger.accepted_at.setdefault(call_id, time.time())

    def answered(status: int, body: Any) -> None:
        if status != 202:
            routes[f"http_{status}"] += 1
            return
        routes[body["decision"]["route"]] += 1
        if body["decision"]["route"] == "community":  # only these go to matching
            ledger.sent_at[body["call_id"]] = time.time()

    rng = random.Random(seed)
    total = int(rate * duration_s)
    requests = [client.request("/v1/calls", json.dumps(roster.call(n, rng)).encode()) for n in range(total)]
    async with httpx.AsyncClient(base_url=system.url("notify"), timeout=30) as notify:
        players = agencies.Agencies(system.settings, notify, options, random.Random(seed + 1), accepted)
        follower = asyncio.create_task(players.follow(consumer, stop))
        try:
            failed = await client.paced(requests, rate, answered)
            deadline = max(ledger.sent_at.values(), default=time.time()) + wait_s
            while ledger.open_calls() and time.time() < deadline:
                await asyncio.sleep(1)
                ledger.handed_back = await _hand_backs(system.database_url)
        finally:
            stop.set()
            await follower
            await players.aclose()
            await consumer.stop()
    return {
        **figures(ledger),
        "sent": total,
        "routes": dict(sorted(routes.items())),
        "transport_errors": failed,
        "answers": dict(sorted(players.counts.items())),
        "rate_per_s": rate,
        "duration_s": duration_s,
        "waited_up_to_s": wait_s,
        "answer_model": answer_model(options),
    }


def summary_line(found: dict[str, Any]) -> str:
    """The phase's figures as one line."""
    if not found["count"]:
        times = "no call was accepted or handed back"
    else:
        times = ", ".join(f"{p} {found[p]:.1f} s" for p in ("p50", "p90", "p99"))
    backs = ", ".join(f"{reason} {n}" for reason, n in found["handed_back"].items()) or "none"
    return (
        f"time to commitment over {found['count']} calls (202 to an accepting team or a hand-back): "
        f"{times}; accepted {found['accepted']}, handed back {backs}, still open {found['open_at_end']}"
    )
