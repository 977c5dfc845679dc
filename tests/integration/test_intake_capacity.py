"""The 202 reflects live capacity: intake answers `community` only while matching's capacity
snapshot (teams.capacity.v1, on the bus) shows a team covering the call that can take it; otherwise
the jurisdiction's no-capacity route with reason `no_community_capacity`. Real broker and PostgreSQL,
intake and matching running."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

import httpx
import pytest

from services.matching.service import build
from services.matching.settings import MatchingSettings
from shared.settings import Settings
from tests.integration.matching_harness import AGENCY_TOKENS, HERE, Db, jurisdiction, load, team
from tests.support import eventually
from tools.psap import bearer
from tools.system import System

pytestmark = pytest.mark.integration

PSAP = bearer("psap-token-0000000001")
NORTH = bearer(AGENCY_TOKENS["north"])
# Snapshots at least every 2 s, at most every 0.2 s: the test waits for them, never sleeps.
OWN = MatchingSettings(capacity_every_s=2, capacity_min_interval_s=0.2)


def _call() -> dict[str, Any]:
    safety = dict.fromkeys(("weapon", "violence", "medical", "self_harm_imminent", "crime_in_progress"), "no")
    return {
        "external_id": f"CAD-{uuid.uuid4().hex[:8]}",
        "incident_type": "MNTL",
        "location": HERE,
        "safety": safety,
    }


async def _free_teams(db: Db) -> list[str] | None:
    snap = await db.pool.fetchval("SELECT snapshot FROM intake.capacity WHERE id = 1")
    return None if snap is None else list(snap["team_ids"])


async def _post(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    r = await http.post(f"{url}/v1/calls", json=_call(), headers=PSAP)
    assert r.status_code == 202, r.text
    decision: dict[str, Any] = r.json()["decision"]
    return {
        "call_id": r.json()["call_id"],
        "route": decision["route"],
        "codes": [c["code"] for c in decision["codes"]],
    }


async def test_the_202_says_community_only_while_a_covering_team_can_take_the_call(
    settings: Settings, db: Db
):
    """One team of capacity 1. Free: a call is community and offered to it. Holding that call: the
    next call is answered review, no_community_capacity (before, community, and handed back minutes
    later). The first call cancelled frees the team: community again. Its agency paused: review;
    resumed: community. A far team that does not cover the call never counts."""
    far = team("far-1", agency="south", km_north=60, radius_km=5)
    await load(settings, jurisdiction([team("n-1", capacity=1), far]))
    builders = {"matching": partial(build, matching=OWN)}
    async with (
        System.start(settings, ["intake", "matching"], jurisdiction=None, builders=builders) as running,
        httpx.AsyncClient(timeout=10) as http,
    ):
        intake, matching = running.url("intake"), running.url("matching")
        await eventually(partial(_free_teams, db), lambda free: free is not None and "n-1" in free)

        first = await _post(http, intake)
        assert first["route"] == "community" and "no_community_capacity" not in first["codes"]
        await db.wait_offers(first["call_id"], 1)
        await eventually(partial(_free_teams, db), lambda free: free == ["far-1"])

        kept = await _post(http, intake)
        assert kept["route"] == "review", kept
        assert "no_community_capacity" in kept["codes"]
        assert await db.call_status(kept["call_id"]) is None  # never reached matching as a community call

        r = await http.post(f"{intake}/v1/calls/{first['call_id']}/cancel", headers=PSAP)
        assert r.status_code == 202, r.text
        await eventually(partial(_free_teams, db), lambda free: free is not None and "n-1" in free)
        again = await _post(http, intake)
        assert again["route"] == "community"

        # That call holds n-1 again; cancel it too, then pause its agency: a paused agency has no capacity.
        await db.wait_offers(again["call_id"], 1)
        assert (
            await http.post(f"{intake}/v1/calls/{again['call_id']}/cancel", headers=PSAP)
        ).status_code == 202
        await eventually(partial(_free_teams, db), lambda free: free is not None and "n-1" in free)
        r = await http.post(f"{matching}/v1/agency/pause", headers=NORTH)
        assert r.status_code == 200, r.text
        await eventually(partial(_free_teams, db), lambda free: free == ["far-1"], timeout_s=10)
        assert (await _post(http, intake))["route"] == "review"
        assert (await http.post(f"{matching}/v1/agency/resume", headers=NORTH)).status_code == 200
        await eventually(partial(_free_teams, db), lambda free: free is not None and "n-1" in free)
        assert (await _post(http, intake))["route"] == "community"
