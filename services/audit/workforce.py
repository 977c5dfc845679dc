"""How many crisis teams it would take: eligible arrivals by hour of the week, an Erlang C staffing
for a service level, beside the teams the roster puts on shift. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from statistics import fmean
from typing import Any
from zoneinfo import ZoneInfo

from services.audit import outcomes, queueing
from services.audit.stories import CallStory
from shared.domain_errors import Invalid
from shared.jurisdiction import WEEKDAYS, Shift, works_at

HOURS_OF_WEEK = 168
# Every time zone in use is offset from UTC by whole quarters of an hour: a period walked in
# quarters never puts one piece in two hours of the week.
STEP = timedelta(minutes=15)
# A Monday at midnight: the wall-clock week the roster's shifts are read against.
MONDAY = datetime(2024, 1, 1)
# A service level is asked for a wait of at most a day: beyond that the question is not staffing.
MAX_WITHIN_MIN = 1440.0


@dataclass(frozen=True)
class TeamHours:
    """A team as the workforce report reads it: the calls it holds at once and its shifts."""

    id: str
    capacity: int
    shifts: tuple[Shift, ...]


def check_level(target: float, within_min: float) -> None:
    """Invalid unless the share is strictly between 0 and 1 and the wait above 0 and at most a day."""
    if not 0 < target < 1:
        raise Invalid("target must be a share strictly between 0 and 1, such as 0.9", "invalid_target")
    if not 0 < within_min <= MAX_WITHIN_MIN:
        raise Invalid(f"within_min must be above 0 and at most {MAX_WITHIN_MIN:g}", "invalid_within")


def hour_of_week(moment: datetime, tz: ZoneInfo) -> int:
    """0 (Monday 00:00-01:00) to 167 (Sunday 23:00-24:00), in the jurisdiction's wall-clock time."""
    local = moment.astimezone(tz)
    return local.weekday() * 24 + local.hour


def exposure(since: datetime, until: datetime, tz: ZoneInfo) -> list[float]:
    """How many hours of the period fall in each hour of the week: 1.0 each for one whole week,
    2.0 for two; a daylight-saving change gives its hours one more or one fewer."""
    hours = [0.0] * HOURS_OF_WEEK
    at = since.astimezone(UTC)
    while at < until:
        quarter = at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0) + STEP
        end = min(quarter, until)
        hours[hour_of_week(at, tz)] += (end - at).total_seconds() / 3600
        at = end
    return hours


def on_shift(teams: Sequence[TeamHours], slot: int) -> tuple[int, int]:
    """Teams able to take a call (capacity above 0) working at the middle of an hour of the week,
    and the calls they can hold at once."""
    local = MONDAY + timedelta(hours=slot, minutes=30)
    working = [t for t in teams if t.capacity > 0 and works_at(t.shifts, local)]
    return len(working), sum(t.capacity for t in working)


def eligible(story: CallStory, fate: outcomes.Outcome | None) -> bool:
    """A call a community team was meant for: triage recommended or routed it to community, or its
    coverage rule alone kept it from them (demand outside the covered hours or areas is demand)."""
    return (
        story.recommended == "community"
        or story.route == "community"
        or (fate is not None and fate.code == "coverage_gap")
    )


def busy_hours(story: CallStory) -> float | None:
    """Hours a team was busy with the call, accept to cleared (its travel to the scene included);
    None unless both were seen in order."""
    if story.accepted is None or story.cleared_at is None:
        return None
    hours = (story.cleared_at - story.accepted[2]).total_seconds() / 3600
    return hours if hours > 0 else None


def travel_hours(story: CallStory) -> float | None:
    """Hours from accept to on scene, when both were seen in order."""
    if story.accepted is None or story.on_scene_at is None:
        return None
    hours = (story.on_scene_at - story.accepted[2]).total_seconds() / 3600
    return hours if hours >= 0 else None


def _needed(rate: float | None, service_h: float | None, wait_h: float, target: float) -> int | None:
    if rate is None or service_h is None:
        return None
    try:
        return queueing.servers_needed(rate, service_h, wait_h, target)
    except ValueError:
        return None  # beyond any staffing: shown as unknown, never as a number


def workforce(
    calls: Mapping[str, CallStory],
    fates: Mapping[str, outcomes.Outcome],
    period: tuple[datetime, datetime],
    tz: ZoneInfo,
    teams: Sequence[TeamHours],
    target: float,
    within_min: float,
) -> dict[str, Any]:
    """For each hour of the week: eligible arrivals per hour (over the weeks of the period), the
    teams Erlang C needs so that `target` of them wait at most `within_min` for a team (with the
    period's mean busy time per call), the teams on shift, the shortfall; and the inputs."""
    check_level(target, within_min)
    since, until = period
    hours = exposure(since, until, tz)
    demand = [s for c, s in calls.items() if eligible(s, fates.get(c)) and s.received_at is not None]
    arrivals = Counter(hour_of_week(s.received_at, tz) for s in demand if s.received_at is not None)
    busy = [b for b in map(busy_hours, calls.values()) if b is not None]
    travel = [t for t in map(travel_hours, calls.values()) if t is not None]
    service_h = fmean(busy) if busy else None
    wait_h = within_min / 60
    rows = []
    for slot in range(HOURS_OF_WEEK):
        rate = arrivals[slot] / hours[slot] if hours[slot] > 0 else None
        needed = _needed(rate, service_h, wait_h, target)
        teams_on, places = on_shift(teams, slot)
        reached = None
        if rate is not None and service_h is not None:
            reached = round(queueing.within(places, rate, service_h, wait_h), 4)
        rows.append(
            {
                "hour_of_week": slot,
                "day": WEEKDAYS[slot // 24],
                "hour": slot % 24,
                "observed_hours": round(hours[slot], 4),
                "arrivals": arrivals[slot],
                "arrivals_per_h": None if rate is None else round(rate, 4),
                "load_erlangs": None if rate is None or service_h is None else round(rate * service_h, 4),
                "teams_needed": needed,
                "teams_on_shift": teams_on,
                "places_on_shift": places,
                "shortfall": None if needed is None else max(0, needed - places),
                "share_within_on_shift": reached,
            }
        )
    weeks = sum(hours) / HOURS_OF_WEEK
    return {
        "from": since,
        "to": until,
        "timezone": str(tz),
        "model": "erlang_c",
        "inputs": {
            "target": target,
            "within_min": within_min,
            "weeks": round(weeks, 4),
            "eligible_calls": len(demand),
            "busy_calls": len(busy),
            "mean_busy_min": None if service_h is None else round(service_h * 60, 2),
            "mean_travel_min": round(fmean(travel) * 60, 2) if travel else None,
            "teams": len(teams),
        },
        "hours": rows,
        "totals": _totals(rows),
    }


def _totals(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Team-hours a week needed, on shift and short, and the hour of the week shortest of teams."""
    known = [r for r in rows if r["teams_needed"] is not None]
    worst = max(known, key=lambda r: (r["shortfall"], -r["hour_of_week"]), default=None)
    return {
        "team_hours_needed": sum(r["teams_needed"] for r in known) if known else None,
        "team_hours_on_shift": sum(r["places_on_shift"] for r in rows),
        "shortfall_team_hours": sum(r["shortfall"] for r in known) if known else None,
        "worst_hour_of_week": worst["hour_of_week"] if worst is not None and worst["shortfall"] else None,
    }


def render(report: Mapping[str, Any]) -> str:
    """The workforce report as plain text: its inputs, then each hour of the week with arrivals."""
    i, totals = report["inputs"], report["totals"]
    busy = (
        "unknown (no call accepted and cleared)"
        if i["mean_busy_min"] is None
        else f"{i['mean_busy_min']} min"
    )
    lines = [
        f"Erlang C (M/M/c): teams so that {i['target']:.0%} of eligible calls wait at most"
        f" {i['within_min']:g} min for a team, in {report['timezone']}",
        f"{i['eligible_calls']} eligible calls over {i['weeks']:g} week(s); mean busy time per call {busy}"
        f" over {i['busy_calls']} calls (travel to the scene {i['mean_travel_min']} min of it)",
        f"{'day':<4} {'hour':>4} {'calls/h':>8} {'erlangs':>8} {'needed':>7} {'on shift':>9} {'short':>6}"
        f" {'within T now':>13}",
    ]
    for r in report["hours"]:
        if not r["arrivals"]:
            continue
        share = "-" if r["share_within_on_shift"] is None else f"{r['share_within_on_shift']:.1%}"
        lines.append(
            f"{r['day']:<4} {r['hour']:>4} {r['arrivals_per_h']:>8g} {r['load_erlangs'] or 0:>8g}"
            f" {_dash(r['teams_needed']):>7} {r['places_on_shift']:>9} {_dash(r['shortfall']):>6} {share:>13}"
        )
    lines.append(
        f"team-hours a week: needed {_dash(totals['team_hours_needed'])}, on shift"
        f" {totals['team_hours_on_shift']}, short {_dash(totals['shortfall_team_hours'])}"
    )
    return "\n".join(lines)


def _dash(value: Any) -> str:
    return "-" if value is None else str(value)
