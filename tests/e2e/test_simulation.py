"""`careroute simulate` against the running system: its closing summary matches the audit report."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.e2e.system import running_system
from tools.sim.report import compare, fetch_summary, funnel
from tools.sim.run import Simulation
from tools.sim.scenario import Options, plan_day

pytestmark = pytest.mark.e2e

# A quarter of a simulated hour around noon at 60x: about fifty calls in fifteen real seconds, with
# declines, ignored offers (5 s deadline), cancellations, EIDO updates and short status delays.
OPTIONS = Options(
    calls_per_hour=200,
    hours=0.25,
    start_hour=11.9,
    cancel_share=0.05,
    update_share=0.1,
    accept_share=0.7,
    decline_share=0.15,
    en_route_s=(10, 30),
    on_scene_s=(30, 120),
    cleared_s=(60, 300),
)


async def test_the_simulators_summary_matches_the_audit_report(stack, tmp_path: Path) -> None:
    async with running_system(stack, tmp_path, env={"MATCHING_OFFER_TIMEOUT_S": "5"}) as system:
        j = system.jurisdiction
        lat = sum(t.home.lat for t in j.teams) / len(j.teams)
        lon = sum(t.home.lon for t in j.teams) / len(j.teams)
        plan = plan_day(7, OPTIONS, [p.id for p in j.psaps], (lat, lon, 0.05))
        simulation = Simulation(system.settings, j, plan, OPTIONS, speedup=60, seed=7)
        tally = await simulation.run(drain_s=60, show_progress=False)
        token = next(o.token for o in j.oversight)
        report = await asyncio.to_thread(fetch_summary, system.settings, token, tally, 60)
    mine = funnel(tally)
    # Not vacuous: calls went every way the summary counts.
    assert mine["received"] >= 20 and mine["eligible"] >= 5, mine
    assert mine["offered"] > 0 and mine["accepted"] > 0 and mine["cleared_without_police"] > 0, mine
    assert tally.counts["offers_ignored"] + tally.counts["offers_declined"] > 0, tally.counts
    differing = [line for line in compare(mine, report) if not line.matches]
    assert not differing, (differing, report, dict(tally.counts))
