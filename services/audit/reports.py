"""The oversight summary: the diversion funnel, reasons, hand-backs, time percentiles, coverage gaps. Pure."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# intake's triage writes this phrase for an incident type its rules call behavioural health.
BEHAVIOURAL_HEALTH_REASON = "is eligible for a community response"
NO_TEAM_ON_SHIFT = "no_team_on_shift"


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass
class CallStory:
    """What the trail says happened to one call."""

    received_at: datetime | None = None
    route: str | None = None
    # Triage's reasons as codes; `reasons` holds the sentences of rows written before codes existed.
    codes: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    offers: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    first_offer: tuple[str, datetime] | None = None
    accepted: tuple[str, str, datetime] | None = None
    on_scene_at: datetime | None = None
    cleared_disposition: str | None = None
    handed_back: list[str] = field(default_factory=list)
    cancelled: bool = False
    backups: int = 0
    agencies: set[str] = field(default_factory=set)


def stories(events: Iterable[Mapping[str, Any]]) -> dict[str, CallStory]:
    """Fold events into one story per call, by event time (topics interleave in the trail)."""
    calls: dict[str, CallStory] = defaultdict(CallStory)
    for e in sorted(events, key=lambda e: _at(e["time"])):
        data, at, story = e.get("data", {}), _at(e["time"]), calls[e["subject"]]
        if data.get("agency_id"):
            story.agencies.add(data["agency_id"])
        kind = e["type"]
        if kind == "calls.received.v1":
            story.received_at = _at(data["received_at"])
        if kind in ("calls.received.v1", "calls.updated.v1"):
            story.route = data["decision"]["route"]
            story.codes = list(data["decision"].get("codes") or [])
            story.reasons = list(data["decision"].get("reasons") or [])
        elif kind == "assignments.offered.v1":
            story.offers[data["assignment_id"]] = (data["agency_id"], at)
            story.first_offer = story.first_offer or (data["agency_id"], at)
        elif kind == "assignments.responded.v1" and data["response"] == "accepted":
            story.accepted = (data["assignment_id"], data["agency_id"], at)
        elif kind == "assignments.status_changed.v1":
            if data["status"] == "on_scene" and story.on_scene_at is None:
                story.on_scene_at = at
            elif data["status"] == "cleared":
                story.cleared_disposition = data.get("disposition") or ""
            elif data["status"] == "backup_requested":
                story.backups += 1
        elif kind == "calls.unassigned.v1":
            story.handed_back.append(data["reason_code"])
        elif kind == "calls.cancelled.v1":
            story.cancelled = True
    return {k: v for k, v in calls.items() if v.received_at is not None}


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p90 and p99 by the nearest-rank method (None when there are no values)."""
    ordered = sorted(values)

    def rank(p: int) -> float | None:
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else None

    return {"count": len(ordered), "p50": rank(50), "p90": rank(90), "p99": rank(99)}


def _not_eligible_reason(story: CallStory) -> str:
    """ "safety:weapon" for a screen answered yes, "unknown:weapon" for one unknown, else "other"."""
    for c in story.codes:
        if c.get("code") in ("safety_yes", "safety_unknown"):
            kind = "unknown" if c["code"] == "safety_unknown" else "safety"
            return f"{kind}:{c.get('params', {}).get('question', '')}"
    for r in story.reasons:
        if r.startswith("safety screen: "):
            question, _, rest = r.removeprefix("safety screen: ").partition(" ")
            return f"{'unknown' if 'unknown' in rest else 'safety'}:{question}"
    return "other"


def _behavioural(story: CallStory) -> bool:
    """Whether triage found the call's type eligible for a community response."""
    return any(c.get("code") == "type_eligible" for c in story.codes) or any(
        BEHAVIOURAL_HEALTH_REASON in r for r in story.reasons
    )


def summary(events: Iterable[Mapping[str, Any]], agency: str | None = None) -> dict[str, Any]:
    """The oversight summary of the calls in `events` (optionally only those an agency touched)."""
    calls = stories(events)
    if agency is not None:
        calls = {k: v for k, v in calls.items() if agency in v.agencies}
    funnel = Counter[str]()
    not_eligible, not_diverted, hand_backs, backups = Counter[str](), Counter[str](), Counter[str](), 0
    gaps = Counter[int]()
    times: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for story in calls.values():
        funnel["received"] += 1
        behavioural = _behavioural(story)
        eligible = story.route == "community"
        funnel["behavioural_health"] += behavioural
        funnel["eligible"] += eligible
        funnel["offered"] += bool(story.offers)
        funnel["accepted"] += story.accepted is not None
        funnel["on_scene"] += story.on_scene_at is not None
        cleared = story.cleared_disposition is not None
        funnel["cleared_without_police"] += cleared and "police" not in (story.cleared_disposition or "")
        hand_backs.update(story.handed_back)
        backups += story.backups
        if behavioural and not eligible:
            not_eligible[_not_eligible_reason(story)] += 1
        if eligible and story.accepted is None:
            reason = (
                story.handed_back[-1] if story.handed_back else "cancelled" if story.cancelled else "pending"
            )
            not_diverted[reason] += 1
            if NO_TEAM_ON_SHIFT in story.handed_back and story.received_at is not None:
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
                "cleared_without_police",
            )
        },
        "not_eligible_reasons": dict(sorted(not_eligible.items())),
        "not_diverted_reasons": dict(sorted(not_diverted.items())),
        "hand_backs": dict(sorted(hand_backs.items())),
        "backup_requests": backups,
        "times_by_agency": {a: {s: percentiles(times[a][s]) for s in stages} for a in sorted(times)},
        "coverage_gaps_by_hour_utc": {str(h): n for h, n in sorted(gaps.items())},
    }
