"""The area and workforce reports on the real broker and PostgreSQL: a week of calls played through
audit's consumer, the answers (HTTP and command) against figures worked out by hand."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from services.audit import repository
from services.cli import app as cli
from shared import events
from shared.db import create_pool, migrate
from shared.envelope import Envelope
from shared.settings import Settings
from tests.audit_scenario import ELIGIBLE, T0, offered, received, responded, status, unassigned
from tests.integration.test_audit_service import MIGRATIONS, REVIEWER, audit_running, publish, stored_count
from tests.support import eventually
from tests.unit.test_workforce import MONDAY_03
from tools.jurisdictions import small
from tools.psap import bearer

pytestmark = pytest.mark.integration

# Monday 2 November 2026, 00:00 PST (08:00Z), and a week later: each hour of the week once.
WEEK = {"from": "2026-11-02T08:00:00Z", "to": "2026-11-09T08:00:00Z"}
MONDAY = datetime(2026, 11, 2, 8, tzinfo=UTC)
WEAPON = ["incident type MNTL is eligible for a community response", "safety screen: weapon = yes -> police"]
# River starts at 44.103: a call at 44.104 is inside it, but its 0.01 grid position (44.10) is not,
# so the zone must come from the full position.
RIVER = events.Location(lat=44.104, lon=-123.04)
NOWHERE = events.Location(lat=44.3, lon=-122.5)
UNLOCATED = events.Location(lat=0, lon=0, coordinates_known=False)
ZONES = [
    {"name": "downtown", "polygon": [[-123.10, 44.04], [-123.07, 44.04], [-123.07, 44.06], [-123.10, 44.06]]},
    {"name": "river", "polygon": [[-123.05, 44.103], [-123.03, 44.103], [-123.03, 44.12], [-123.05, 44.12]]},
    {"name": "hills", "polygon": [[-122.9, 43.9], [-122.8, 43.9], [-122.8, 44.0]]},
]
TEAMS: list[dict[str, Any]] = [
    {"id": "night", "shifts": [{"days": ["mon"], "start": "00:00", "end": "08:00"}]},
    {
        "id": "day",
        "capacity": 2,
        "shifts": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
    },
    {"id": "always"},
]


def _s(moment: datetime) -> float:
    """Seconds from the scenario helpers' T0."""
    return (moment - T0).total_seconds()


def served(
    call: str, at: datetime, on_scene_s: float, backup: bool, place: events.Location
) -> list[Envelope]:
    """Received at `at`, offered at +30 s, accepted at +1 min, on scene at +`on_scene_s`, cleared at
    +11 min (busy 10 min), a backup request between when `backup`."""
    t = _s(at)
    found = [
        received(call, "community", ELIGIBLE, t, place),
        offered(call, 1, "agency-a", t + 30),
        responded(call, 1, "agency-a", t + 60, "accepted"),
        status(call, 1, "agency-a", t + on_scene_s, "on_scene"),
    ]
    if backup:
        found.append(status(call, 1, "agency-a", t + 500, "backup_requested"))
    return [*found, status(call, 1, "agency-a", t + 660, "cleared", "18")]


def week() -> list[Envelope]:
    """Downtown, Monday 03:00-03:11 PST: 12 calls; k = 0..10 served (on scene after 2 + k/2 min, so
    120, 150, ..., 420 s), k = 9 and 10 with a backup request; k = 11 handed back (all_busy).
    River (exact positions inside it): 6 calls at Monday 10:0k and 5 at 14:0k, all served, on
    scene after 3 min. Monday 20:00: a weapon call outside every zone and one with no coordinates,
    both routed to police."""
    found: list[Envelope] = []
    for k in range(11):
        at = MONDAY + timedelta(hours=3, minutes=k)
        found += served(f"d{k}", at, 120 + 30 * k, k >= 9, events.Location(lat=44.050312, lon=-123.088934))
    found += [
        received("d11", "community", ELIGIBLE, _s(MONDAY + timedelta(hours=3, minutes=11))),
        unassigned("d11", "all_busy", _s(MONDAY + timedelta(hours=3, minutes=12))),
    ]
    for hour, n in ((10, 6), (14, 5)):
        for k in range(n):
            found += served(f"r{hour}-{k}", MONDAY + timedelta(hours=hour, minutes=k), 180, False, RIVER)
    evening = _s(MONDAY + timedelta(hours=20))
    found += [
        received("u", "police", WEAPON, evening, NOWHERE),
        received("x", "police", WEAPON, evening, UNLOCATED),
    ]
    return found


async def careroute(settings: Settings, *args: str) -> Any:
    """The command as an operator runs it, on this test's database (in a thread: it runs its own loop)."""
    env = {"DATABASE_URL": settings.database_url.get_secret_value()}
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)


@pytest.fixture
async def played(settings: Settings) -> AsyncIterator[tuple[Settings, httpx.AsyncClient]]:
    """The week published to the broker, the jurisdiction loaded as `careroute load` stores it, and
    audit running until it has stored every event."""
    fast = settings.model_copy(update={"audit_port": 0, "outbox_poll_interval_s": 0.1})
    j = small(
        psap_token="psap-token-for-the-area-report",
        agencies=[{"id": "agency-a", "name": "A", "token": "agency-token-for-the-area-report"}],
        teams=[
            {"agency": "agency-a", "name": t["id"], "home": {"lat": 44.05, "lon": -123.09}, **t}
            for t in TEAMS
        ],
        timezone="America/Los_Angeles",
        zones=ZONES,
    )
    pool = await create_pool(fast.database_url.get_secret_value())
    try:
        await migrate(pool, "audit", [MIGRATIONS])
        async with pool.acquire() as conn, conn.transaction():
            await repository.load_jurisdiction(conn, j)
    finally:
        await pool.close()
    played = week()
    await publish(fast, played)
    async with audit_running(fast) as http:
        await eventually(
            lambda: stored_count(fast), lambda n: n == len(played), what="audit storing the week"
        )
        yield fast, http


def _cell(
    calls: int, diverted: float, police: float, handed_back: float, times: tuple[int, float, float]
) -> dict[str, Any]:
    count, p50, p90 = times
    return {
        "suppressed": False,
        "calls": calls,
        "diversion_rate": diverted,
        "police_involvement_rate": police,
        "hand_back_rate": handed_back,
        "call_to_on_scene_s": {"count": count, "p50": p50, "p90": p90},
    }


async def test_the_area_report_of_a_week_worked_by_hand(played):
    """Zones by total calls: downtown 12, river 11, hills 0, unzoned 1 (the weapon call),
    unlocated 1. Hills, unzoned and unlocated are under 11, and together (2) would be told by the
    grand total (25 - 12 - 11), so the smallest shown zone, river (11), is withheld too: 13.
    Downtown: 9 diverted of 12 = 0.75; 2 with a backup = 0.1667; 1 handed back = 0.0833; on scene
    (11 calls) 120..420 s by 30: p50 the 6th = 270 s, p90 the ceil(9.9) = 10th = 390 s; all of it
    in hour 3, the other 23 hours empty (withheld, holding 0).
    All 25: diverted 9 + 11 = 20 = 0.8; police 2 backups + 2 routed to police = 0.16; handed back
    1 = 0.04; on scene 22 calls: 120, 150, twelve of 180 (river's 11 and downtown's), 210..420:
    p50 the 11th = 180 s, p90 the ceil(19.8) = 20th = 360 s.
    Hours over all zones: 3 holds 12 (shown, downtown's figures); 10 (6), 14 (5) and 20 (2) are
    under 11 and hold 13 together, so none is told by subtraction."""
    settings, http = played
    r = await http.get("/v1/reports/areas", params=WEEK, headers=bearer(REVIEWER))
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["timezone"] == "America/Los_Angeles" and report["min_cell"] == 11
    assert report["total"] == _cell(25, 0.8, 0.16, 0.04, (22, 180.0, 360.0))
    zones = {z["zone"]: z for z in report["zones"]}
    assert list(zones) == ["downtown", "river", "hills", "unzoned", "unlocated"]
    downtown = _cell(12, 0.75, 0.1667, 0.0833, (11, 270.0, 390.0))
    assert zones["downtown"]["total"] == downtown
    assert zones["downtown"]["hours"][3] == {"hour": 3, **downtown}
    assert [h["hour"] for h in zones["downtown"]["hours"] if not h["suppressed"]] == [3]
    for name in ("river", "hills", "unzoned", "unlocated"):
        assert zones[name]["total"]["suppressed"] and zones[name]["total"]["calls"] is None
        assert all(h["suppressed"] for h in zones[name]["hours"])
    assert [h["hour"] for h in report["hours"] if not h["suppressed"]] == [3]
    assert report["hours"][3] == {"hour": 3, **downtown}
    # Only zone names left audit: no position, exact or on the grid.
    assert "44.104" not in r.text and "44.1" not in r.text and "-123.04" not in r.text

    ran = await careroute(settings, "reports", "areas", "--from", WEEK["from"], "--to", WEEK["to"])
    assert ran.exit_code == 0, ran.output
    lines = ran.output.splitlines()
    assert lines[2].split() == ["all", "all", "25", "80.0%", "16.0%", "4.0%", "3.0/6.0"]
    assert ["downtown", "03", "12", "75.0%", "16.7%", "8.3%", "4.5/6.5"] in [line.split() for line in lines]
    assert any(line.startswith("river") and "withheld" in line for line in lines)


async def test_the_workforce_report_of_a_week_worked_by_hand(played):
    """Eligible: downtown's 12 (the handed-back one too) and river's 11; the two police calls are
    not. Busy, accept to cleared: 10 min for each of the 22 served (s = 1/6 h, mu = 6/h); travel,
    accept to on scene: downtown 1 + k/2 min (mean 3.5), river 2 min: (11·3.5 + 11·2)/22 = 2.75.
    T = 15 min = 0.25 h, target 0.9.
    Monday 03: lambda = 12, a = 2. Erlang B: B(1) = 2/3, B(2) = 2·(2/3)/(2 + 4/3) = 2/5,
    B(3) = 2·(2/5)/(3 + 4/5) = 4/19. C(3) = 3·(4/19)/(3 - 2·(15/19)) = 4/9. P(wait <= T) =
    1 - (4/9)·e^-(3·6 - 12)·0.25 = 1 - (4/9)·e^-1.5 = 0.9008 >= 0.9, and c = 2 is unstable: 3
    needed. On shift at 03:30: night and always, 2 places: short 1; with 2 places (a = c) the
    queue grows without bound: 0 reached in time.
    Monday 10: lambda = 6, a = 1. C(2) = 1/3: P = 1 - e^-1.5/3 = 0.9256: 2 needed; day (2) and
    always: 3 places, short 0; with 3, C(3) = 1/11: P = 1 - e^-3/11 = 0.9955.
    Monday 14: lambda = 5, a = 5/6. c = 1: P = 1 - (5/6)·e^-0.25 = 0.351; c = 2: B(2) = 25/157,
    C(2) = 25/102: P = 1 - (25/102)·e^-1.75 = 0.9574: 2 needed, 3 places, short 0.
    Every other hour: no eligible call, 0 needed. Team-hours on shift a week: night 8·1, day
    5·8·2 = 80, always 168: 256; needed 3 + 2 + 2 = 7; short 1, at hour 3."""
    settings, http = played
    r = await http.get("/v1/reports/workforce", params=WEEK, headers=bearer(REVIEWER))
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["model"] == "erlang_c" and report["timezone"] == "America/Los_Angeles"
    assert report["inputs"] == {
        "target": 0.9,
        "within_min": 15.0,
        "weeks": 1.0,
        "eligible_calls": 23,
        "busy_calls": 22,
        "mean_busy_min": 10.0,
        "mean_travel_min": 2.75,
        "teams": 3,
    }
    hours = report["hours"]
    assert hours[3] == MONDAY_03
    assert [hours[10][k] for k in ("arrivals", "teams_needed", "places_on_shift", "shortfall")] == [
        6,
        2,
        3,
        0,
    ]
    assert hours[10]["share_within_on_shift"] == pytest.approx(0.9955)
    assert [hours[14][k] for k in ("arrivals", "teams_needed", "places_on_shift", "shortfall")] == [
        5,
        2,
        3,
        0,
    ]
    assert hours[20]["arrivals"] == 0 and hours[20]["teams_needed"] == 0 and hours[20]["places_on_shift"] == 1
    assert report["totals"] == {
        "team_hours_needed": 7,
        "team_hours_on_shift": 256,
        "shortfall_team_hours": 1,
        "worst_hour_of_week": 3,
    }
    # A higher service level: at 95% c = 3 gives 0.9008, c = 4 gives 0.9913: 4 needed at 03:00.
    strict = await http.get(
        "/v1/reports/workforce", params={**WEEK, "target": 0.95}, headers=bearer(REVIEWER)
    )
    assert strict.json()["hours"][3]["teams_needed"] == 4

    ran = await careroute(
        settings, "reports", "workforce", "--from", WEEK["from"], "--to", WEEK["to"], "--within-min", "15"
    )
    assert ran.exit_code == 0, ran.output
    rows = [line.split() for line in ran.output.splitlines()]
    assert ["mon", "3", "12", "2", "3", "2", "1", "0.0%"] in rows
    assert ran.output.splitlines()[-1] == "team-hours a week: needed 7, on shift 256, short 1"


async def test_bad_report_parameters_get_a_422_with_a_code(played):
    settings, http = played
    tries = {
        ("/v1/reports/areas", "from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z"): "invalid_range",
        ("/v1/reports/areas", "from=2025-01-01T00:00:00Z&to=2026-11-01T00:00:00Z"): "period_too_long",
        ("/v1/reports/workforce", ""): "period_required",
        ("/v1/reports/workforce", "from=2026-11-02T00:00:00Z"): "period_required",
        ("/v1/reports/workforce", "from=2026-12-01T00:00:00Z&to=2026-11-01T00:00:00Z"): "invalid_range",
        ("/v1/reports/workforce", "from=0001-01-01T00:00:00Z&to=0001-01-08T00:00:00Z"): "period_out_of_range",
        ("/v1/reports/workforce", "from=9998-01-01T00:00:00Z&to=9998-01-08T00:00:00Z"): "period_out_of_range",
        ("/v1/reports/workforce", "from=2026-01-01T00:00:00Z&to=2027-06-01T00:00:00Z"): "period_too_long",
    }
    for level in (
        "target=0",
        "target=1",
        "target=1.5",
        "target=-1",
        "target=nan",
        "within_min=0",
        "within_min=-3",
        "within_min=100000",
        "within_min=inf",
        "within_min=lots",
    ):
        tries[("/v1/reports/workforce", f"{'&'.join(f'{k}={v}' for k, v in WEEK.items())}&{level}")] = (
            "invalid_request"
        )
    for (path, query), code in tries.items():
        r = await http.get(f"{path}?{query}", headers=bearer(REVIEWER))
        assert r.status_code == 422, (path, query, r.text)
        assert set(r.json()) == {"detail", "code"} and r.json()["code"] == code, (path, query, r.text)
    assert (await http.get("/v1/reports/workforce", params=WEEK)).status_code == 401
    ran = await careroute(settings, "reports", "workforce", "--from", WEEK["to"], "--to", WEEK["from"])
    assert ran.exit_code == 2 and "invalid_range" in ran.output
    ran = await careroute(
        settings, "reports", "workforce", "--from", WEEK["from"], "--to", WEEK["to"], "--target", "2"
    )
    assert ran.exit_code == 2 and "invalid_target" in ran.output
