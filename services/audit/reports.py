"""The oversight summary: the funnel, each behavioural-health call's outcome, hand-backs, times. Pure."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from services.audit import outcomes
from services.audit.stories import stories

# A hand-back for want of a team on shift is a coverage gap in time, like triage's hours rule.
NO_TEAM_ON_SHIFT = "handed_back:no_team_on_shift"


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p90 and p99 by the nearest-rank method (None when there are no values)."""
    ordered = sorted(values)

    def rank(p: int) -> float | None:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else None

    return {"count": len(ordered), "p50": rank(50), "p90": rank(90), "p99": rank(99)}


def summary(
    events: Iterable[Mapping[str, Any]], agency: str | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The oversight summary of the calls in `events` (optionally only those an agency touched), as
    of `now` (when review deadlines are judged; None judges none passed)."""
    calls = stories(events)
    if agency is not None:
        calls = {k: v for k, v in calls.items() if agency in v.agencies}
    fates = outcomes.outcomes(calls, now)
    funnel = Counter[str]()
    hand_backs, overrides, backups = Counter[str](), Counter[str](), 0
    gaps = Counter[int]()
    times: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for call, story in calls.items():
        funnel["received"] += 1
        funnel["behavioural_health"] += story.behavioural
        funnel["eligible"] += story.route == "community"
        funnel["offered"] += bool(story.offers)
        funnel["accepted"] += story.accepted is not None
        funnel["on_scene"] += story.on_scene_at is not None
        if story.cleared_disposition is not None:
            funnel["cleared"] += 1
            police = story.backups > 0 or outcomes.police_disposition(story.cleared_disposition)
            funnel["cleared_with_police" if police else "cleared_without_police"] += 1
        hand_backs.update(story.handed_back)
        backups += story.backups
        fate = fates.get(call)
        if fate is not None and fate.override_reason is not None:
            overrides[f"{fate.recommended}:{fate.override_reason}"] += 1
        gap = fate is not None and (fate.code == "coverage_gap" or fate.key == NO_TEAM_ON_SHIFT)
        if gap and story.received_at is not None:
            gaps[story.received_at.hour] += 1
        if story.first_offer is not None and story.received_at is not None:
            first_agency, offered_at = story.first_offer
            times[first_agency]["received_to_offered_s"].append(
                (offered_at - story.received_at).total_seconds()
            )
        if story.accepted is not None:
            assignment, accepting, accepted_at = story.accepted
            offered_at = story.offers.get(assignment, (accepting, accepted_at))[1]
            times[accepting]["offered_to_accepted_s"].append((accepted_at - offered_at).total_seconds())
            if story.received_at is not None:
                received_at = story.received_at
                times[accepting]["received_to_accepted_s"].append((accepted_at - received_at).total_seconds())
                if story.on_scene_at is not None:
                    on_scene = (story.on_scene_at - received_at).total_seconds()
                    times[accepting]["received_to_on_scene_s"].append(on_scene)
            if story.on_scene_at is not None:
                times[accepting]["accepted_to_on_scene_s"].append(
                    (story.on_scene_at - accepted_at).total_seconds()
                )
    stages = (
        "received_to_offered_s",
        "received_to_accepted_s",
        "received_to_on_scene_s",
        "offered_to_accepted_s",
        "accepted_to_on_scene_s",
    )
    breakdown = outcomes.breakdown(fates.values())
    return {
        "funnel": {
            k: funnel[k]
            for k in (
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
        },
        "outcomes": {
            "behavioural_health": len(fates),
            "totals": {code: sum(n.values()) for code, n in breakdown.items()},
            "reasons": breakdown,
        },
        "overrides": dict(sorted(overrides.items())),
        "hand_backs": dict(sorted(hand_backs.items())),
        "backup_requests": backups,
        "times_by_agency": {a: {s: percentiles(times[a][s]) for s in stages} for a in sorted(times)},
        "coverage_gaps_by_hour_utc": {str(h): n for h, n in sorted(gaps.items())},
    }
