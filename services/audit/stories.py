"""One story per call folded from its trail: what triage decided, who overrode it, what teams did. Pure."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# intake's triage writes this phrase for an incident type its rules call behavioural health.
BEHAVIOURAL_HEALTH_REASON = "is eligible for a community response"


def at(text: str) -> datetime:
    """An event's ISO time (a trailing Z included) as a datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _time(value: Any) -> datetime | None:
    """A payload's ISO time as an aware datetime (no offset: UTC), or None when it is not one."""
    try:
        parsed = at(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed is not None and parsed.tzinfo is None else parsed


def _object(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _objects(value: Any) -> list[dict[str, Any]]:
    """The objects of a list (a code list, say), each with object params; anything else is none."""
    if not isinstance(value, list):
        return []
    return [{**v, "params": _object(v.get("params"))} for v in value if isinstance(v, dict)]


def _texts(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass
class CallStory:
    """What the trail says happened to one call."""

    received_at: datetime | None = None
    route: str | None = None
    # The route triage recommended when the call came in, before any override or update.
    recommended: str | None = None
    # Whether the jurisdiction's rules call the call's incident type behavioural health.
    behavioural: bool = False
    # Triage's reasons as codes; `reasons` holds the sentences of rows written before codes existed.
    codes: list[dict[str, Any]] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    # The call-taker's override in force: its reason code and the route triage had recommended.
    override: tuple[str, str] | None = None
    review_deadline: datetime | None = None
    # How a call sent to review left it ("override:police", "retriaged:community"), when it did.
    review_resolved: str | None = None
    offers: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    first_offer: tuple[str, datetime] | None = None
    accepted: tuple[str, str, datetime] | None = None
    on_scene_at: datetime | None = None
    cleared_disposition: str | None = None
    cleared_at: datetime | None = None
    handed_back: list[str] = field(default_factory=list)
    handed_back_at: datetime | None = None  # the first hand-back
    # The last of "accepted" and "handed_back": a hand-back after an accept ends the team's part.
    last_team_step: str | None = None
    cancelled: bool = False
    backups: int = 0
    agencies: set[str] = field(default_factory=set)
    # The 988 center's follow-up of a call it took: when due, reported overdue, how it was closed.
    follow_up_due: datetime | None = None
    follow_up_overdue: bool = False
    follow_up_outcome: str | None = None
    follow_up_late: bool = False
    # Each timer a team let run out and how far it went: (agency, timer, escalation).
    missed: list[tuple[str, str, str]] = field(default_factory=list)


def _behavioural(decision: Mapping[str, Any]) -> bool:
    """The decision's own flag, else (older rows) whether triage found the type eligible."""
    flag = decision.get("behavioural_health")
    if flag is not None:
        return bool(flag)
    return any(c.get("code") == "type_eligible" for c in _objects(decision.get("codes"))) or any(
        BEHAVIOURAL_HEALTH_REASON in r for r in _texts(decision.get("reasons"))
    )


def _decided(story: CallStory, kind: str, data: Mapping[str, Any]) -> None:
    decision = _object(data.get("decision"))
    before = story.route
    story.route = _text(decision.get("route"))
    deadline = _time(decision.get("review_deadline"))
    if deadline is not None:
        story.review_deadline = deadline
    overriding = kind == "calls.updated.v1" and data.get("reason") == "override"
    if not overriding:
        # An override changes the route, not the call: triage's reasons and the type's class stand.
        story.codes = _objects(decision.get("codes"))
        story.reasons = _texts(decision.get("reasons"))
        story.behavioural = _behavioural(decision)
    if kind == "calls.received.v1":
        story.recommended = story.recommended or story.route
        return
    if overriding:
        recommended = _text(data.get("previous_route")) or story.recommended or ""
        story.override = (_text(data.get("override_reason_code")) or "", recommended)
    elif story.override is not None and any(c.get("code") == "override_stands" for c in story.codes):
        pass  # the override still holds after a newer version of the call
    else:
        story.override = None  # triage decided again (a raised safety flag supersedes an override)
    if before == "review" and story.route != "review" and story.review_resolved is None:
        story.review_resolved = f"{'override' if overriding else 'retriaged'}:{story.route}"


def fold(story: CallStory, kind: str, data: Mapping[str, Any], when: datetime) -> None:
    """Apply one event (its type, payload and time) to a call's story; a payload field of another
    shape than the contract's (a row edited since it was stored) reads as absent."""
    if isinstance(data.get("agency_id"), str) and data["agency_id"]:
        story.agencies.add(data["agency_id"])
    if kind == "calls.received.v1":
        story.received_at = _time(data.get("received_at")) or when
    if kind in ("calls.received.v1", "calls.updated.v1"):
        _decided(story, kind, data)
    elif kind == "assignments.offered.v1":
        offer = (str(data.get("agency_id")), when)
        story.offers[str(data.get("assignment_id"))] = offer
        story.first_offer = story.first_offer or offer
    elif kind == "assignments.responded.v1" and data.get("response") == "accepted":
        story.accepted = (str(data.get("assignment_id")), str(data.get("agency_id")), when)
        story.last_team_step = "accepted"
    elif kind == "assignments.status_changed.v1":
        status = data.get("status")
        if status == "on_scene" and story.on_scene_at is None:
            story.on_scene_at = when
        elif status == "cleared":
            story.cleared_disposition = _text(data.get("disposition")) or ""
            story.cleared_at = when
        elif status == "backup_requested":
            story.backups += 1
    elif kind == "calls.unassigned.v1":
        story.handed_back.append(str(data.get("reason_code") or ""))
        story.handed_back_at = story.handed_back_at or when
        story.last_team_step = "handed_back"
    elif kind == "calls.cancelled.v1":
        story.cancelled = True
    elif kind.startswith("follow_ups."):
        _followed_up(story, kind, data)
    elif kind == "assignments.timer_missed.v1":
        story.missed.append((str(data.get("agency_id")), str(data.get("timer")), str(data.get("escalation"))))


def _followed_up(story: CallStory, kind: str, data: Mapping[str, Any]) -> None:
    """A 988 follow-up event: scheduled (due when), reported overdue, or closed (how, and if late)."""
    story.follow_up_due = _time(data.get("due_at")) or story.follow_up_due
    if kind == "follow_ups.overdue.v1":
        story.follow_up_overdue = True
    elif kind == "follow_ups.closed.v1":
        story.follow_up_outcome = _text(data.get("outcome")) or "unknown"
        story.follow_up_late = data.get("late") is True


def readable(events: Iterable[Any]) -> list[tuple[str, str, Mapping[str, Any], datetime]]:
    """(subject, type, data, time) of each event that has them, by time: a row of any other shape
    (flagged, or edited since it was stored) is left out rather than failing a report."""
    found = []
    for e in events:
        e = _object(e)
        subject, kind, when = _text(e.get("subject")), _text(e.get("type")), _time(e.get("time"))
        if subject is not None and kind is not None and when is not None:
            found.append((subject, kind, _object(e.get("data")), when))
    return sorted(found, key=lambda found: found[3])


def stories(events: Iterable[Mapping[str, Any]]) -> dict[str, CallStory]:
    """Fold events into one story per call, by event time (topics interleave in the trail)."""
    calls: dict[str, CallStory] = defaultdict(CallStory)
    for subject, kind, data, when in readable(events):
        fold(calls[subject], kind, data, when)
    return received(calls)


def received(calls: Mapping[str, CallStory]) -> dict[str, CallStory]:
    """The stories of calls whose receipt was seen: a call is counted from its `calls.received.v1`."""
    return {k: v for k, v in calls.items() if v.received_at is not None}
