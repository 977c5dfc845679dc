"""python -m faults: for each fault, drive simulated load, inject it, heal, drain, and check."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from faults import report
from faults.checker import at_rest, check
from faults.cluster import Cluster
from faults.injections import FAULTS
from shared import infra
from shared.jurisdiction import load_file
from sim.run import Simulation
from sim.scenario import Options, plan_day

ROOT = Path(__file__).parents[1]


def log(text: str) -> None:
    """Progress on stderr."""
    sys.stderr.write(f"[faults] {text}\n")
    sys.stderr.flush()


async def chain_verifies(cluster: Cluster, token: str) -> bool:
    """GET /v1/audit/verify over the whole trail."""
    async with httpx.AsyncClient(timeout=60) as http:
        r = await http.get(
            f"{cluster.url('audit')}/v1/audit/verify", headers={"Authorization": f"Bearer {token}"}
        )
    return r.status_code == 200 and bool(r.json().get("ok"))


async def one_fault(cluster: Cluster, name: str, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """Load for `args.seconds`, the fault a third of the way in, then drain and check."""
    j = load_file(args.jurisdiction)
    options = Options(
        calls_per_hour=args.calls_per_hour, hours=args.seconds * args.speedup / 3600, start_hour=11
    )
    lat = sum(t.home.lat for t in j.teams) / len(j.teams)
    lon = sum(t.home.lon for t in j.teams) / len(j.teams)
    plan = plan_day(seed, options, [p.id for p in j.psaps], (lat, lon, 0.05))
    sim = Simulation(cluster.settings, j, plan, options, args.speedup, seed)
    load = asyncio.create_task(sim.run(drain_s=args.drain, show_progress=False))
    await asyncio.sleep(args.seconds / 3)
    log(f"{name}: injecting")
    what = await FAULTS[name](cluster)
    log(f"{name}: {what}; waiting for the load and its tail")
    tally = await load
    await cluster.wait_ready()
    await asyncio.sleep(args.settle)
    dsn = cluster.settings.database_url.get_secret_value()
    # The last calls may still be in their chain of offers: three deadlines, plus a margin.
    moving = await at_rest(dsn, tally.call_ids, 3 * args.offer_timeout + args.settle)
    log(f"{name}: {moving} calls not at rest after the wait")
    admin = next(o.token for o in j.oversight if o.role == "admin")
    verdict = await check(dsn, tally.call_ids, await chain_verifies(cluster, admin))
    log(
        f"{name}: calls {verdict.calls} lost {verdict.lost} duplicated {verdict.duplicated} "
        f"out of order {verdict.out_of_order} stuck {verdict.stuck}"
        f" chain {'ok' if verdict.chain_ok else 'BROKEN'}"
    )
    return {
        "fault": name,
        "what": what,
        "passed": verdict.passed,
        **asdict(verdict),
        "load": dict(tally.counts),
    }


async def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every chosen fault, each on the same running cluster."""
    cluster = Cluster(
        ROOT / ".run" / "faults",
        infra.choose_broker(args.broker),
        args.pg_port,
        args.kafka_port,
        args.offer_timeout,
    )
    results = []
    try:
        await cluster.start(load_file(args.jurisdiction))
        for seed, name in enumerate(args.faults.split(","), start=1):
            results.append(await one_fault(cluster, name, args, seed))
    finally:
        await cluster.stop()
    return results


def main() -> None:
    """Parse options, run, print and write the results."""
    parser = argparse.ArgumentParser(prog="python -m faults", description=__doc__)
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated: {', '.join(FAULTS)}")
    parser.add_argument("--broker", default=os.environ.get("KAFKA_BROKER", "apache"))
    parser.add_argument("--jurisdiction", type=Path, default=ROOT / "examples" / "lane-valley.yaml")
    parser.add_argument("--seconds", type=float, default=60, help="real seconds of load per fault")
    parser.add_argument("--speedup", type=float, default=60)
    parser.add_argument("--calls-per-hour", type=float, default=600)
    parser.add_argument("--offer-timeout", type=int, default=20, help="MATCHING_OFFER_TIMEOUT_S for the run")
    parser.add_argument("--drain", type=float, default=120, help="real seconds for answers after the load")
    parser.add_argument("--settle", type=float, default=20, help="seconds after the drain before checking")
    parser.add_argument("--pg-port", type=int, default=55482)
    parser.add_argument("--kafka-port", type=int, default=59482)
    args = parser.parse_args()
    unknown = set(args.faults.split(",")) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults: {', '.join(sorted(unknown))}")
    results = asyncio.run(run(args))
    out = ROOT / "faults" / "results"
    out.mkdir(parents=True, exist_ok=True)
    when = datetime.now(UTC).isoformat(timespec="seconds")
    text = json.dumps({"when": when, "results": results}, indent=2)
    (out / "latest.json").write_text(text + "\n")
    shown = {k: v for k, v in vars(args).items() if k not in ("faults", "jurisdiction")}
    report.write(results, when, shown, ROOT / "docs" / "faults.md")
    sys.stdout.write(text + "\n")
    sys.exit(0 if all(r["passed"] for r in results) else 1)


if __name__ == "__main__":
    main()
