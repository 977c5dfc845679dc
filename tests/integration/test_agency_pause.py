"""An agency pauses itself (staffing) with one call: none of its teams is offered a call until it
resumes, and an offer one of them holds goes to the next team. Real broker and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

from services.matching.settings import MatchingSettings
from shared.settings import Settings
from tests.integration.matching_harness import (
    AGENCY_TOKENS,
    OVERSIGHT_TOKEN,
    Db,
    jurisdiction,
    load,
    place_call,
    running_matching,
    team,
)
from tools.psap import bearer

pytestmark = pytest.mark.integration

OWN = MatchingSettings(max_attempts=3)
NORTH = bearer(AGENCY_TOKENS["north"])


async def test_a_paused_agency_is_offered_nothing_its_offer_moves_on_and_it_comes_back_on_resume(
    settings: Settings, db: Db, producer
):
    """north's team is nearest. Paused, its offer is withdrawn (agency_paused) and the call goes to
    south's team; a new call goes to south too; after resuming, the next call is north's again.
    (Before, an agency had no pause: each team had to be taken off the roster one by one.)"""
    await load(
        settings, jurisdiction([team("n-1", km_north=1), team("s-1", agency="south", km_north=3, capacity=3)])
    )
    async with running_matching(settings, OWN) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        first, offer = await place_call(producer, settings, db)
        assert offer["team_id"] == "n-1"

        r = await http.post("/v1/agency/pause", headers=NORTH)
        assert r.status_code == 200, r.text
        paused = r.json()
        assert paused["id"] == "north" and paused["paused"] and paused["pause_reason"] == "staffing"
        offers = await db.wait_offers(first, 2)
        assert [(o["team_id"], o["status"], o["reason"]) for o in offers] == [
            ("n-1", "withdrawn", "agency_paused"),
            ("s-1", "offered", None),
        ]
        assert await db.team_status("n-1") == "available"

        _, offer = await place_call(producer, settings, db)
        assert offer["team_id"] == "s-1"
        again = await http.post("/v1/agency/pause", json={"reason": "weather"}, headers=NORTH)
        assert again.json()["paused_at"] == paused["paused_at"]  # paused once, since the first time
        assert (await http.get("/v1/agency", headers=NORTH)).json()["pause_reason"] == "weather"

        r = await http.post("/v1/agency/resume", headers=NORTH)
        assert r.status_code == 200 and not r.json()["paused"] and r.json()["paused_at"] is None
        _, offer = await place_call(producer, settings, db)
        assert offer["team_id"] == "n-1"


async def test_pausing_takes_an_agency_token_and_a_short_reason_code(settings: Settings):
    """Tried: no token, an oversight token, reasons that are free text, too long, not a string, and a
    body that is not JSON; each a 4xx with a code, and north never paused."""
    await load(settings, jurisdiction([team("n-1")]))
    async with running_matching(settings, OWN) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        assert (await http.post("/v1/agency/pause")).status_code == 401
        r = await http.post("/v1/agency/pause", headers=bearer(OVERSIGHT_TOKEN))
        assert (r.status_code, r.json()["code"]) == (403, "forbidden")
        for reason in ("no staff tonight; DROP TABLE", "x" * 41, 7, None, ""):
            r = await http.post("/v1/agency/pause", json={"reason": reason}, headers=NORTH)
            assert (r.status_code, r.json()["code"]) == (422, "invalid_request"), reason
        r = await http.post("/v1/agency/pause", content=b"{not json", headers=NORTH)
        assert r.status_code == 422
        assert not (await http.get("/v1/agency", headers=NORTH)).json()["paused"]
