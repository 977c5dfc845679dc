"""python -m tools.faults: for each fault, drive simulated load, inject it, heal, drain, and check."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka.errors import KafkaError

from services.jurisdiction import load_file
from shared.jurisdiction import Jurisdiction
from tools import infra
from tools.faults import report, snapshot
from tools.faults.checker import judge
from tools.faults.cluster import Cluster
from tools.faults.injections import FAULTS, Context, Fault
from tools.faults.load import RetryingSimulation
from tools.psap import bearer
from tools.sim.scenario import Options, plan_day

ROOT = Path(__file__).parents[2]
# --quick: phases short enough to try one fault in about two minutes.
QUICK = {"seconds": 15.0}


def log(text: str) -> None:
    """Progress on stderr."""
    sys.stderr.write(f"[faults] {text}\n")
    sys.stderr.flush()


async def chain_verifies(cluster: Cluster, token: str) -> bool:
    """GET /v1/audit/verify over the whole trail."""
    async with httpx.AsyncClient(timeout=120) as http:
        r = await http.get(f"{cluster.system.url('audit')}/v1/audit/verify", headers=bearer(token))
    return r.status_code == 200 and bool(r.json().get("ok"))


def revive(cluster: Cluster, ctx: Context) -> None:
    """A service process that exited during the fault is a finding; start it again to go on."""
    for name, process in cluster.system.processes.items():
        if process.poll() is not None:
            ctx.findings.append(
                ("stuck", f"process:{name}", f"{name} exited (code {process.returncode}) during the fault")
            )
            cluster.system.spawn(name)


async def one_fault(
    cluster: Cluster, j: Jurisdiction, name: str, fault: Fault, args: argparse.Namespace, seed: int
) -> dict[str, Any]:
    """Load for `args.seconds`, the fault a third of the way in (or once at rest), then drain and check."""
    # Teams that finish within minutes of simulated time (seconds of real time): a call's tail
    # after the load is mostly its chain of offers, and the whole suite fits in about 45 minutes.
    options = Options(
        calls_per_hour=args.calls_per_hour,
        hours=args.seconds * args.speedup / 3600,
        start_hour=11,
        on_scene_s=(60.0, 300.0),
        cleared_s=(120.0, 600.0),
    )
    lat = sum(t.home.lat for t in j.teams) / len(j.teams)
    lon = sum(t.home.lon for t in j.teams) / len(j.teams)
    plan = plan_day(seed, options, [p.id for p in j.psaps], (lat, lon, 0.05))
    s = cluster.system.settings
    dsn = s.database_url.get_secret_value()
    limit = 3 * args.offer_timeout + args.settle

    async def at_rest() -> int:
        return await snapshot.wait_at_rest(dsn, s, s.kafka_namespace, limit)

    ctx = Context(jurisdiction=j, seed=seed, wait_at_rest=at_rest)
    sim = RetryingSimulation(s, j, plan, options, args.speedup, seed)
    started = asyncio.get_running_loop().time()
    load = asyncio.create_task(sim.run(drain_s=args.drain, show_progress=False))
    what = []
    if not fault.quiet:
        await asyncio.sleep(args.seconds / 3)
        log(f"{name}: injecting")
        what.append(await fault.inject(cluster, ctx))
        sim.linger(3 * args.offer_timeout)
        log(f"{name}: {what[-1]}; waiting for the load and its tail")
    try:
        # A simulated agency's consumer may never get its group back after a broker outage; the
        # calls the load sent are judged all the same.
        tally = await asyncio.wait_for(load, args.seconds + args.drain + 90)
    except TimeoutError:
        # The simulator's problem, not the system's: counted apart (its agencies answered no more).
        log(f"{name}: the simulated load did not end; judging the calls it sent")
        ctx.counts["load_cut_short"] = 1
        tally = sim.tally
    if fault.heal is not None:
        what.append(await fault.heal(cluster, ctx))
    revive(cluster, ctx)
    await cluster.system.wait_ready()
    await asyncio.sleep(args.settle)
    moving = await at_rest()
    log(f"{name}: {moving} things still moving after the wait")
    if fault.quiet:
        log(f"{name}: injecting at rest")
        what.append(await fault.inject(cluster, ctx))
        revive(cluster, ctx)
    admin = next(o.token for o in j.oversight if o.role == "admin")
    chain_ok = await chain_verifies(cluster, admin)
    # The verification is itself a read audit records (access.recorded.v1): let it reach the trail.
    await at_rest()
    snap = await snapshot.read(dsn, s, s.kafka_namespace, tally.call_ids + ctx.call_ids, chain_ok)
    verdict = judge(snap, ctx.poisoned)
    for kind, key, text in ctx.findings:
        verdict.add(kind, key, text)
    summary = verdict.summary()
    log(
        f"{name}: "
        + " ".join(f"{k} {summary[k]}" for k in ("calls", *report.KIND_COLUMNS))
        + f" chain {'ok' if verdict.chain_ok else 'BROKEN'}"
    )
    for line in verdict.examples(3):
        log(f"  {line}")
    return {
        "fault": name,
        "what": "; ".join(what),
        "seconds": round(asyncio.get_running_loop().time() - started),
        **summary,
        "load": {**dict(tally.counts), **ctx.counts},
    }


# What a fault that the suite itself could not carry through raises (infrastructure that did not
# come back, a service that never answered): recorded as a failed fault, and the run goes on.
SUITE_ERRORS: tuple[type[BaseException], ...] = (
    infra.InfraError,
    RuntimeError,
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    KafkaError,
    httpx.HTTPError,
)


def not_finished(name: str, exc: BaseException) -> dict[str, Any]:
    """The result of a fault the suite could not finish: failed, with no counts."""
    return {
        "fault": name,
        "what": f"not finished: {exc!r}"[:300],
        "seconds": 0,
        "calls": 0,
        **dict.fromkeys(report.KIND_COLUMNS, None),
        "chain_ok": False,
        "passed": False,
        "info": {},
        "examples": [f"the suite could not finish this fault: {exc!r}"[:300]],
        "load": {},
    }


async def run(
    args: argparse.Namespace, names: list[str], save: Callable[[list[dict[str, Any]]], None]
) -> list[dict[str, Any]]:
    """Every chosen fault, each on the same infrastructure with its own database and topics;
    `save` gets the results after each fault, so a run cut short keeps what it found."""
    j = load_file(args.jurisdiction)
    cluster = Cluster(
        ROOT / ".run" / "faults",
        infra.choose_broker(args.broker),
        args.pg_port,
        args.kafka_port,
        args.offer_timeout,
        keep=args.keep,
    )
    results: list[dict[str, Any]] = []
    try:
        await cluster.start(j)
        for seed, name in enumerate(names, start=1):
            try:
                if seed > 1:
                    await cluster.fresh(j)
                results.append(await one_fault(cluster, j, name, FAULTS[name], args, seed))
            except SUITE_ERRORS as exc:
                log(f"{name}: not finished: {exc!r}")
                results.append(not_finished(name, exc))
                await asyncio.to_thread(cluster.infra_up)
            save(results)
    finally:
        await cluster.stop()
    return results


def main() -> None:
    """Parse options, run, print and write the results."""
    parser = argparse.ArgumentParser(prog="python -m tools.faults", description=__doc__)
    parser.add_argument("--faults", default="", help=f"comma-separated (default all): {', '.join(FAULTS)}")
    parser.add_argument("--list", action="store_true", help="print the faults' names and stop")
    parser.add_argument("--quick", action="store_true", help="short phases: --seconds 15")
    parser.add_argument("--broker", default=os.environ.get("KAFKA_BROKER", "apache"))
    parser.add_argument("--jurisdiction", type=Path, default=ROOT / "examples" / "lane-valley.yaml")
    parser.add_argument("--seconds", type=float, default=25, help="real seconds of load per fault")
    parser.add_argument("--speedup", type=float, default=120)
    parser.add_argument(
        "--calls-per-hour", type=float, default=300, help="simulated calls per simulated hour"
    )
    parser.add_argument("--offer-timeout", type=int, default=20, help="MATCHING_OFFER_TIMEOUT_S for the run")
    # The drain ends as soon as every simulated answer is sent; a call's tail (up to three offers of
    # 20 s, then the team's reports) fits in it, and cutting it short would leave calls mid-way.
    parser.add_argument(
        "--drain", type=float, default=120, help="at most, real seconds for answers after the load"
    )
    parser.add_argument("--settle", type=float, default=5, help="seconds after the drain before checking")
    # Both ports above the ephemeral range (32768-60999 here): while a server is down, a client
    # reconnecting to its port may be given that very port as its own and connect to itself,
    # and the server then cannot bind it again (seen with the broker down 60 s).
    parser.add_argument("--pg-port", type=int, default=61482)
    parser.add_argument("--keep", action="store_true", help="keep the last database and the infrastructure")
    parser.add_argument(
        "--kafka-port", type=int, default=61472, help="the broker's port (its controller: +1)"
    )
    args = parser.parse_args()
    if args.list:
        sys.stdout.write("\n".join(FAULTS) + "\n")
        return
    if args.quick:
        for key, value in QUICK.items():
            if parser.get_default(key) == getattr(args, key):
                setattr(args, key, value)
    names = [n for n in args.faults.split(",") if n] or list(FAULTS)
    unknown = set(names) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults: {', '.join(sorted(unknown))}; --list shows them")
    out = Path(__file__).parent / "results"
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    partial = out / f"partial-{started.replace(':', '')}.json"

    def save(results: list[dict[str, Any]]) -> None:
        partial.write_text(json.dumps({"when": started, "results": results}, indent=2) + "\n")

    results = asyncio.run(run(args, names, save))
    text = json.dumps({"when": started, "results": results}, indent=2)
    shown = {k: v for k, v in vars(args).items() if k not in ("faults", "jurisdiction", "list", "keep")}
    if names == list(FAULTS) and not args.quick:
        # Only a full run is the record; a partial or quick one is kept apart and changes no doc.
        (out / "latest.json").write_text(text + "\n")
        partial.unlink(missing_ok=True)
        report.write(results, started, shown, ROOT / "docs" / "faults.md")
    sys.stdout.write(text + "\n")
    sys.exit(0 if all(r["passed"] for r in results) else 1)


if __name__ == "__main__":
    main()
