"""The oversight summary: the funnel, each behavioural-health call's outcome, hand-backs, times. Pure."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from services.audit import outcomes
from services.audit.stories import CallStory, stories
from services.audit.workforce import HOURS_OF_WEEK, hour_of_week

# The routes that divert a call from police: a community team, or the 988 crisis line.
DIVERTED = ("community", "988")
# A hand-back for want of a team on shift is a coverage gap in time, like triage's hours rule.
NO_TEAM_ON_SHIFT = "handed_back:no_team_on_shift"


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p90 and p99 by the nearest-rank method (None when there are no values)."""
    ordered = sorted(values)

    def rank(p: int) -> float | None:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else None

    return {"count": len(ordered), "p50": rank(50), "p90": rank(90), "p99": rank(99)}


FUNNEL = (
    "received",
    "behavioural_health",
    "eligible",
    "offered",
    "accepted",
    "on_scene",
    "cleared",
    "cleared_without_police",
    "cleared_with_police",
)
STAGES = (
    "received_to_offered_s",
    "received_to_accepted_s",
    "received_to_on_scene_s",
    "offered_to_accepted_s",
    "accepted_to_on_scene_s",
)
Times = dict[str, dict[str, list[float]]]


def _funnel(calls: Mapping[str, CallStory]) -> dict[str, int]:
    """How many calls reached each step, from received to cleared (with or without police)."""
    funnel = Counter[str]()
    for story in calls.values():
        funnel["received"] += 1
        funnel["behavioural_health"] += story.behavioural
        funnel["eligible"] += story.route in DIVERTED
        funnel["offered"] += bool(story.offers)
        funnel["accepted"] += story.accepted is not None
        funnel["on_scene"] += story.on_scene_at is not None
        if story.cleared_disposition is not None:
            funnel["cleared"] += 1
            police = story.backups > 0 or outcomes.police_disposition(story.cleared_disposition)
            funnel["cleared_with_police" if police else "cleared_without_police"] += 1
    return {k: funnel[k] for k in FUNNEL}


def _overrides(fates: Iterable[outcomes.Outcome]) -> dict[str, int]:
    """Overrides by `recommended:reason`."""
    found = Counter(f"{f.recommended}:{f.override_reason}" for f in fates if f.override_reason is not None)
    return dict(sorted(found.items()))


def _gaps(calls: Mapping[str, CallStory], fates: Mapping[str, outcomes.Outcome]) -> list[datetime]:
    """When each coverage gap (triage's coverage rule, or no team on shift) came in."""
    return [
        at
        for call, fate in fates.items()
        if (fate.code == "coverage_gap" or fate.key == NO_TEAM_ON_SHIFT)
        and (at := calls[call].received_at) is not None
    ]


def _gaps_by_hour(gaps: list[datetime]) -> dict[str, int]:
    """Coverage gaps by the UTC hour they came in."""
    return {str(h): n for h, n in sorted(Counter(at.hour for at in gaps).items())}


def _gaps_by_hour_of_week(gaps: list[datetime], tz: ZoneInfo) -> list[int]:
    """Coverage gaps in each local hour of the week (Monday 00:00-01:00 first): the heat map's 7 x 24."""
    found = Counter(hour_of_week(at, tz) for at in gaps)
    return [found[slot] for slot in range(HOURS_OF_WEEK)]


def _add_times(times: Times, story: CallStory) -> None:
    """The call's durations between steps, each under the agency that took that step."""
    received_at = story.received_at
    if story.first_offer is not None and received_at is not None:
        first_agency, offered_at = story.first_offer
        times[first_agency]["received_to_offered_s"].append((offered_at - received_at).total_seconds())
    if story.accepted is None:
        return
    assignment, accepting, accepted_at = story.accepted
    offered_at = story.offers.get(assignment, (accepting, accepted_at))[1]
    mine = times[accepting]
    mine["offered_to_accepted_s"].append((accepted_at - offered_at).total_seconds())
    if received_at is not None:
        mine["received_to_accepted_s"].append((accepted_at - received_at).total_seconds())
        if story.on_scene_at is not None:
            mine["received_to_on_scene_s"].append((story.on_scene_at - received_at).total_seconds())
    if story.on_scene_at is not None:
        mine["accepted_to_on_scene_s"].append((story.on_scene_at - accepted_at).total_seconds())


def time_to_commitment_s(story: CallStory) -> float | None:
    """Seconds from the call's 202 until a team accepted it or it went back to its PSAP, whichever
    came first: how long the 911 center waited to learn whether anyone was coming (None: neither yet,
    or the call never went to matching)."""
    ends = [at for at in (story.accepted[2] if story.accepted else None, story.handed_back_at) if at]
    if story.received_at is None or not ends:
        return None
    return max(0.0, (min(ends) - story.received_at).total_seconds())


def commitment(calls: Mapping[str, CallStory]) -> dict[str, float | None]:
    """Percentiles of the time to commitment over the calls that reached one."""
    return percentiles([s for story in calls.values() if (s := time_to_commitment_s(story)) is not None])


def _times_by_agency(calls: Mapping[str, CallStory]) -> dict[str, dict[str, dict[str, float | None]]]:
    """Percentiles of each step's duration, by the agency that took it."""
    times: Times = defaultdict(lambda: defaultdict(list))
    for story in calls.values():
        _add_times(times, story)
    return {a: {s: percentiles(times[a][s]) for s in STAGES} for a in sorted(times)}


def _follow_ups(fates: Mapping[str, outcomes.Outcome], calls: Mapping[str, CallStory]) -> dict[str, Any]:
    """The transferred calls' follow-ups by state, and the closed ones by the center's outcome."""
    states = Counter(f.reason for f in fates.values() if f.code == "transferred_to_988")
    closed = Counter(
        calls[c].follow_up_outcome or "unknown"
        for c, f in fates.items()
        if f.code == "transferred_to_988" and f.reason in ("closed", "closed_late")
    )
    counted = {state: states[state] for state in ("open", "overdue", "closed", "closed_late")}
    return {"transferred": sum(states.values()), **counted, "by_outcome": dict(sorted(closed.items()))}


TIMERS = ("en_route", "on_scene", "check_in")


def missed_timers(calls: Mapping[str, CallStory], agency: str | None = None) -> dict[str, dict[str, int]]:
    """By agency (or `agency` alone), the timers its teams let run out (each counted once, at the
    re-page) and how many were still unanswered when the PSAP was told."""
    found: dict[str, Counter[str]] = defaultdict(Counter)
    for story in calls.values():
        for agency_id, timer, escalation in story.missed:
            if agency is not None and agency_id != agency:
                continue
            if escalation == "agency_repaged" and timer in TIMERS:
                found[agency_id][timer] += 1
            elif escalation == "psap_told":
                found[agency_id]["psap_told"] += 1
    return {a: {k: found[a][k] for k in (*TIMERS, "psap_told")} for a in sorted(found)}


def summary(
    events: Iterable[Mapping[str, Any]],
    agency: str | None = None,
    now: datetime | None = None,
    tz: ZoneInfo | None = None,
) -> dict[str, Any]:
    """The oversight summary of the calls in `events` (optionally only those an agency touched), as
    of `now` (when review deadlines are judged; None judges none passed); hours of the week are
    read in `tz` (the jurisdiction's time zone; UTC when not given)."""
    zone = tz or ZoneInfo("UTC")
    calls = stories(events)
    if agency is not None:
        calls = {k: v for k, v in calls.items() if agency in v.agencies}
    fates = outcomes.outcomes(calls, now)
    breakdown = outcomes.breakdown(fates.values())
    gaps = _gaps(calls, fates)
    return {
        "timezone": str(zone),
        "funnel": _funnel(calls),
        "outcomes": {
            "behavioural_health": len(fates),
            "totals": {code: sum(n.values()) for code, n in breakdown.items()},
            "reasons": breakdown,
        },
        "overrides": _overrides(fates.values()),
        "hand_backs": dict(sorted(Counter(r for s in calls.values() for r in s.handed_back).items())),
        "backup_requests": sum(s.backups for s in calls.values()),
        "times_by_agency": _times_by_agency(calls),
        "time_to_commitment_s": commitment(calls),
        "coverage_gaps_by_hour_utc": _gaps_by_hour(gaps),
        "coverage_gaps_by_hour_of_week": _gaps_by_hour_of_week(gaps, zone),
        "follow_ups": _follow_ups(fates, calls),
        "missed_timers": missed_timers(calls, agency),
    }
