"""`careroute simulate` against the running system: its closing summary matches the audit report,
and every behavioural-health call of the simulated period has exactly one outcome."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.audit.outcomes import OUTCOMES
from services.notify.rules import Watch
from tests.e2e.system import running_system
from tools.jurisdictions import example
from tools.sim.report import commitment, compare, fates, fetch_summary, funnel, missed_timers
from tools.sim.run import Simulation
from tools.sim.scenario import Options, plan_day

pytestmark = pytest.mark.e2e

# A simulated day at 1440x: about a hundred calls in a minute, busiest at noon, with declines,
# ignored offers (5 s deadline), backups, call-takers' overrides and review decisions,
# cancellations, EIDO updates and short status delays.
OPTIONS = Options(
    calls_per_hour=4,
    hours=24,
    start_hour=0,
    cancel_share=0.05,
    update_share=0.1,
    accept_share=0.7,
    decline_share=0.15,
    backup_share=0.15,
    override_share=0.1,
    en_route_s=(600, 1800),
    on_scene_s=(1800, 7200),
    cleared_s=(3600, 14400),
    check_in_lapse_share=0.3,
)
SPEEDUP = 1440
# The system's timers run on its real clock: check-ins every 3 s (72 simulated minutes), the PSAP
# told 3 s after a miss; the en route and on scene timers keep their real minutes (none runs out).
WATCH = Watch(check_in_every_min=0.05, psap_after_min=0.05)


async def test_a_simulated_day_gives_every_behavioural_call_one_outcome_and_the_simulator_agrees(
    stack, tmp_path: Path
) -> None:
    j = example().model_copy(update={"watch": WATCH})
    env = {"MATCHING_OFFER_TIMEOUT_S": "5", "NOTIFY_WATCH_INTERVAL_S": "0.2"}
    async with running_system(stack, tmp_path, env=env, jurisdiction=j) as system:
        j = system.jurisdiction
        lat = sum(t.home.lat for t in j.teams) / len(j.teams)
        lon = sum(t.home.lon for t in j.teams) / len(j.teams)
        plan = plan_day(7, OPTIONS, [p.id for p in j.psaps], (lat, lon, 0.05))
        simulation = Simulation(system.settings, j, plan, OPTIONS, speedup=SPEEDUP, seed=7)
        tally = await simulation.run(drain_s=60, show_progress=False)
        token = next(o.token for o in j.oversight)
        now = datetime.now(UTC)
        report = await asyncio.to_thread(fetch_summary, system.settings, token, tally, 60, now)
    mine = funnel(tally)
    my_fates = fates(tally, now)
    # Not vacuous: calls went every way the summary counts.
    assert mine["received"] >= 20 and mine["eligible"] >= 5, mine
    assert mine["offered"] > 0 and mine["accepted"] > 0 and mine["cleared_without_police"] > 0, mine
    assert tally.counts["offers_ignored"] + tally.counts["offers_declined"] > 0, tally.counts
    # Exactly once: every behavioural-health call has one outcome, and the outcomes sum to them.
    counted = report["outcomes"]
    assert set(counted["totals"]) == set(OUTCOMES)
    assert sum(counted["totals"].values()) == counted["behavioural_health"] >= 10, counted
    assert counted["behavioural_health"] == sum(
        s.behavioural for s in tally.stories.values() if s.received_at
    ), counted
    assert counted["totals"]["served_without_police"] > 0, counted
    assert counted["totals"]["review_resolved"] + counted["totals"]["overridden"] > 0, counted
    # Teams that let a check-in lapse: their agencies were paged again, and the trail counts each.
    my_missed = missed_timers(tally)
    assert sum(m["check_in"] for m in my_missed.values()) > 0, (my_missed, dict(tally.counts))
    differing = [line for line in compare(mine, report, my_fates, my_missed) if not line.matches]
    # Time to commitment: the simulated PSAPs waited for as many calls as the trail counts.
    waited = commitment(tally)
    assert waited["count"] == report["time_to_commitment_s"]["count"] > 0, (waited, report)
    assert not differing, (differing, report, dict(tally.counts))
