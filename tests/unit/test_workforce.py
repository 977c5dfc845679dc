"""The workforce report: hours of the week, the roster on shift, and the Erlang C staffing, against
cases worked by hand."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.audit import outcomes, workforce
from services.audit.stories import CallStory
from services.audit.workforce import TeamHours
from shared.domain_errors import Invalid
from shared.jurisdiction import Shift

LA = ZoneInfo("America/Los_Angeles")
# Monday 2 November 2026, 00:00 PST (UTC-8), and a week later.
WEEK = (datetime(2026, 11, 2, 8, tzinfo=UTC), datetime(2026, 11, 9, 8, tzinfo=UTC))
TEAMS = (
    TeamHours("night", 1, (Shift(days=["mon"], start=time(0), end=time(8)),)),
    TeamHours("day", 2, (Shift(days=["mon", "tue", "wed", "thu", "fri"], start=time(9), end=time(17)),)),
    TeamHours("always", 1, ()),
    TeamHours("benched", 0, ()),
)

# Monday 03:00 of the week worked by hand below (12 calls busy 10 min each, 2 places on shift).
MONDAY_03 = {
    "hour_of_week": 3,
    "day": "mon",
    "hour": 3,
    "observed_hours": 1.0,
    "arrivals": 12,
    "arrivals_per_h": 12.0,
    "load_erlangs": 2.0,
    "teams_needed": 3,
    "teams_on_shift": 2,
    "places_on_shift": 2,
    "shortfall": 1,
    "share_within_on_shift": 0.0,
}


def test_hour_of_week_is_local_monday_first():
    assert workforce.hour_of_week(WEEK[0], LA) == 0
    assert workforce.hour_of_week(WEEK[0] + timedelta(hours=3, minutes=59), LA) == 3
    assert workforce.hour_of_week(WEEK[1] - timedelta(seconds=1), LA) == 167


def test_a_week_gives_each_hour_once_two_weeks_twice():
    assert workforce.exposure(*WEEK, LA) == [1.0] * 168
    two = workforce.exposure(WEEK[0], WEEK[1] + timedelta(days=7), LA)
    assert two == [2.0] * 168


def test_a_daylight_saving_end_gives_one_hour_twice():
    """Sunday 1 November 2026, 02:00 PDT falls back to 01:00 PST: the week from Monday 26 October
    00:00 PDT (07:00Z) to Monday 2 November 00:00 PST (08:00Z) is 169 hours, Sunday 01:00 twice."""
    hours = workforce.exposure(datetime(2026, 10, 26, 7, tzinfo=UTC), WEEK[0], LA)
    sunday_one = 6 * 24 + 1
    assert hours[sunday_one] == 2.0 and sum(hours) == 169.0
    assert all(h == 1.0 for i, h in enumerate(hours) if i != sunday_one)


def test_a_part_of_an_hour_counts_as_its_part():
    hours = workforce.exposure(WEEK[0] + timedelta(hours=10), WEEK[0] + timedelta(hours=11, minutes=30), LA)
    assert hours[10] == 1.0 and hours[11] == 0.5 and sum(hours) == 1.5


def test_on_shift_reads_each_teams_shifts_at_the_middle_of_the_hour():
    """Monday 03:30: night (1) and always (1); Monday 10:30: day (2) and always; Saturday 10:30:
    always alone. A team of capacity 0 never counts; an overnight shift counts the next morning."""
    assert workforce.on_shift(TEAMS, 3) == (2, 2)
    assert workforce.on_shift(TEAMS, 10) == (2, 3)
    assert workforce.on_shift(TEAMS, 5 * 24 + 10) == (1, 1)
    overnight = (TeamHours("late", 1, (Shift(days=["sun"], start=time(22), end=time(2)),)),)
    assert workforce.on_shift(overnight, 1) == (1, 1)  # Monday 01:30 is Sunday's night shift
    assert workforce.on_shift(overnight, 6 * 24 + 23) == (1, 1)
    assert workforce.on_shift(overnight, 2) == (0, 0)


def test_shift_covers_its_local_hours():
    day = Shift(days=["mon"], start=time(9), end=time(17))
    assert day.covers(datetime(2026, 11, 2, 9, 0)) and not day.covers(datetime(2026, 11, 2, 17, 0))
    assert not day.covers(datetime(2026, 11, 3, 10, 0))  # a Tuesday


def _call(at: datetime, busy_min: float | None = 10, route: str = "community") -> CallStory:
    story = CallStory(received_at=at, route=route, recommended=route, behavioural=True)
    if busy_min is not None:
        accepted = at + timedelta(minutes=1)
        story.accepted, story.last_team_step = ("a", "agency-a", accepted), "accepted"
        story.on_scene_at = accepted + timedelta(minutes=4)
        story.cleared_at, story.cleared_disposition = accepted + timedelta(minutes=busy_min), "18"
    return story


def week_of_calls() -> dict[str, CallStory]:
    """One week: 12 eligible calls on Monday 03:xx, 6 at 10:xx, 5 at 14:xx, each busy 10 min from
    accept to cleared (4 of them travel); 3 calls routed to police at 14:xx are no demand."""
    monday = WEEK[0]
    calls: dict[str, CallStory] = {}
    for hour, n in ((3, 12), (10, 6), (14, 5)):
        for k in range(n):
            calls[f"h{hour}-{k}"] = _call(monday + timedelta(hours=hour, minutes=k))
    for k in range(3):
        calls[f"p{k}"] = _call(monday + timedelta(hours=14, minutes=30 + k), busy_min=None, route="police")
    return calls


def test_the_staffing_of_a_week_worked_by_hand():
    """Mean busy time 10 min (s = 1/6 h, mu = 6/h); T = 15 min = 0.25 h; target 90%.

    Monday 03: lambda = 12/h, a = 2. B(1) = 2/3, B(2) = (4/3)/(10/3) = 0.4, B(3) = 0.8/3.8 = 4/19;
    C(3) = 3·(4/19)/(3 - 2·15/19) = (12/19)/(27/19) = 4/9; P = 1 - (4/9)e^-(18-12)·0.25 =
    1 - (4/9)e^-1.5 = 0.90083 >= 0.9 (c = 2 is unstable): 3 needed; on shift night + always = 2
    places, short 1, and with 2 (a = c) no call is sure to wait less: 0.
    Monday 10: lambda = 6, a = 1. C(2) = 1/3, P = 1 - e^-1.5/3 = 0.92562: 2 needed; day (2) +
    always = 3 places, short 0; with 3, C(3) = 1/11, P = 1 - e^-3/11 = 0.99547.
    Monday 14: lambda = 5, a = 5/6. c = 1: C = a = 5/6, P = 1 - (5/6)e^-0.25 = 0.35100; c = 2:
    B(2) = 25/157, C = (50/157)/(2 - (5/6)(132/157)) = 25/102, P = 1 - (25/102)e^-1.75 = 0.95741:
    2 needed, 3 places, short 0. Every other hour: no arrivals, 0 needed."""
    calls = week_of_calls()
    report = workforce.workforce(calls, outcomes.outcomes(calls, None), WEEK, LA, TEAMS, 0.9, 15)
    hours = report["hours"]
    assert len(hours) == 168
    assert hours[3] == MONDAY_03
    assert (hours[10]["teams_needed"], hours[10]["places_on_shift"], hours[10]["shortfall"]) == (2, 3, 0)
    assert hours[10]["share_within_on_shift"] == pytest.approx(0.9955)
    assert (hours[14]["arrivals"], hours[14]["teams_needed"], hours[14]["shortfall"]) == (5, 2, 0)
    assert hours[14]["load_erlangs"] == pytest.approx(5 / 6, abs=1e-4)
    quiet = hours[5 * 24 + 10]
    assert (quiet["arrivals"], quiet["teams_needed"], quiet["places_on_shift"], quiet["shortfall"]) == (
        0,
        0,
        1,
        0,
    )
    assert report["inputs"] == {
        "target": 0.9,
        "within_min": 15,
        "weeks": 1.0,
        "eligible_calls": 23,
        "busy_calls": 23,
        "mean_busy_min": 10.0,
        "mean_travel_min": 4.0,
        "teams": 4,
    }
    # Needed: 3 + 2 + 2 = 7 team-hours; short only on Monday 03.
    assert report["totals"]["team_hours_needed"] == 7
    assert report["totals"]["shortfall_team_hours"] == 1 and report["totals"]["worst_hour_of_week"] == 3


def test_a_higher_target_or_a_shorter_wait_needs_more_teams():
    """Monday 03 again: at 95% c = 3 gives 0.90083 < 0.95, c = 4 gives 0.99134: 4."""
    calls = week_of_calls()
    fates = outcomes.outcomes(calls, None)
    strict = workforce.workforce(calls, fates, WEEK, LA, TEAMS, 0.95, 15)
    assert strict["hours"][3]["teams_needed"] == 4


def test_no_busy_time_observed_leaves_the_staffing_unknown():
    calls = {"c": _call(WEEK[0] + timedelta(hours=3), busy_min=None)}
    report = workforce.workforce(calls, outcomes.outcomes(calls, None), WEEK, LA, TEAMS, 0.9, 15)
    assert report["hours"][3]["arrivals"] == 1 and report["hours"][3]["teams_needed"] is None
    assert report["inputs"]["mean_busy_min"] is None and report["totals"]["team_hours_needed"] is None


def test_a_coverage_gap_is_demand_and_a_police_call_is_not():
    gap = CallStory(
        received_at=WEEK[0],
        route="police",
        recommended="police",
        behavioural=True,
        codes=[{"code": "outside_coverage_hours", "params": {}}],
    )
    police = CallStory(received_at=WEEK[0], route="police", recommended="police", behavioural=True)
    assert workforce.eligible(gap, outcomes.outcome(gap, None))
    assert not workforce.eligible(police, outcomes.outcome(police, None))


@pytest.mark.parametrize(
    ("target", "within", "code"),
    [
        (0, 15, "invalid_target"),
        (1, 15, "invalid_target"),
        (1.5, 15, "invalid_target"),
        (float("nan"), 15, "invalid_target"),
        (0.9, 0, "invalid_within"),
        (0.9, -5, "invalid_within"),
        (0.9, 1e9, "invalid_within"),
        (0.9, float("nan"), "invalid_within"),
    ],
)
def test_a_level_outside_its_bounds_is_refused_with_a_code(target, within, code):
    with pytest.raises(Invalid) as refused:
        workforce.check_level(target, within)
    assert refused.value.code == code
