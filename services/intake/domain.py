"""Triage: which responder a call should get, and why. Pure rules, no I/O."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from shared.events import Answer, Location, Route, SafetyScreen, TriageDecision
from shared.jurisdiction import WEEKDAYS, Coverage, TriageRules

# When several exclusions fire, the most protective route wins.
_PRECEDENCE = {Route.police: 0, Route.ems: 1, Route.review: 2, Route.community: 3}


def normalise_type(code: str, local_codes: dict[str, str]) -> str:
    """Map a PSAP's local call code to the common incident type (upper case)."""
    code = code.strip()
    return local_codes.get(code, local_codes.get(code.upper(), code)).upper()


@dataclass(frozen=True)
class TriageFacts:
    """What triage weighs besides the type and the screen (all optional, so old callers still work)."""

    cautions: tuple[str, ...] = ()
    location: Location | None = None
    at: datetime | None = None
    timezone: str | None = None
    consent_non_police: bool | None = None


def apply_cautions(
    safety: SafetyScreen, cautions: tuple[str, ...], rules: TriageRules
) -> tuple[SafetyScreen, list[str]]:
    """The screen with every question an EIDO caution answers set to yes, and why."""
    raised: dict[str, Answer] = {}
    reasons: list[str] = []
    for caution in cautions:
        for word, question in rules.caution_flags.items():
            if word.upper() in caution and question not in raised:
                raised[question] = Answer.yes
                reasons.append(f"caution {caution}: {question} = yes")
    return safety.model_copy(update=raised), reasons


def _within_hours(coverage: Coverage, at: datetime, timezone: str) -> bool:
    local = at.astimezone(ZoneInfo(timezone))
    day, clock = WEEKDAYS[local.weekday()], local.time()
    yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
    for shift in coverage.hours:
        if shift.start <= shift.end:
            if day in shift.days and shift.start <= clock < shift.end:
                return True
        elif (day in shift.days and clock >= shift.start) or (yesterday in shift.days and clock < shift.end):
            return True
    return False


def _distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def _coverage(coverage: Coverage, facts: TriageFacts) -> list[str]:
    missed: list[str] = []
    loc = facts.location
    located = loc is not None and loc.coordinates_known is not False
    if coverage.areas and located and loc is not None:
        inside = [
            _distance_km(loc.lat, loc.lon, a.center.lat, a.center.lon) <= a.radius_km for a in coverage.areas
        ]
        if not any(inside):
            missed.append("outside the areas community teams cover")
    at, zone = facts.at, facts.timezone
    if coverage.hours and at is not None and zone is not None and not _within_hours(coverage, at, zone):
        missed.append("outside the hours community teams cover")
    return missed


def triage(
    incident_type: str, safety: SafetyScreen, rules: TriageRules, facts: TriageFacts | None = None
) -> TriageDecision:
    """Decide community, police, ems or review, listing every reason that fired."""
    facts = facts or TriageFacts()
    reasons: list[str] = []
    routes: list[Route] = []
    if not incident_type:
        reasons.append("no incident type: a person must review")
        routes.append(Route.review)
    elif incident_type not in rules.eligible_types:
        reasons.append(f"incident type {incident_type} is not eligible for a community response")
        routes.append(Route.police)
    else:
        reasons.append(f"incident type {incident_type} is eligible for a community response")
    safety, caution_reasons = apply_cautions(safety, facts.cautions, rules)
    reasons += caution_reasons
    for question, excluded_to in rules.exclude.items():
        answer = getattr(safety, question)
        if answer == Answer.yes:
            reasons.append(f"safety screen: {question} = yes -> {excluded_to}")
            routes.append(Route(excluded_to))
        elif answer == Answer.unknown:
            meaning = rules.unknown.get(question, rules.unknown_means)
            if meaning != "eligible":
                reasons.append(f"safety screen: {question} unknown -> {meaning}")
                routes.append(Route(meaning))
    if facts.consent_non_police is False:
        reasons.append(f"caller declined a non-police response -> {rules.declined_consent_means}")
        routes.append(Route(rules.declined_consent_means))
    if facts.location is not None and facts.location.coordinates_known is False:
        reasons.append("the location has no coordinates: a person must review")
        routes.append(Route.review)
    if rules.coverage is not None:
        for missed in _coverage(rules.coverage, facts):
            reasons.append(f"{missed} -> {rules.coverage.outside}")
            routes.append(Route(rules.coverage.outside))
    route = min(routes, key=_PRECEDENCE.__getitem__) if routes else Route.community
    if route == Route.community:
        reasons.append("no safety exclusion applies")
    return TriageDecision(route=route, reasons=reasons, rules_version=rules.version)


# How each assignment event moves the status the PSAP sees.
STATUS_BY_EVENT = {
    "assignments.offered.v1": "offered",
    "assignments.expired.v1": "offer_expired",
    "assignments.withdrawn.v1": "withdrawn",
    "calls.unassigned.v1": "handed_back",
}

# Where each status stands in one assignment's life. Different producers publish one assignment's
# steps (matching offers, notify answers), so an agency's accept published after matching withdrew
# the offer is newer by time and still must not bring the assignment back.
ASSIGNMENT_RANK = {
    "offered": 0,
    "assigned": 1,
    "en_route": 2,
    "on_scene": 3,
    "backup_requested": 3,
    "cleared": 4,
    "offer_declined": 4,
    "offer_expired": 4,
    "withdrawn": 4,
}


def is_late(recorded: datetime | None, event_time: datetime) -> bool:
    """Whether an event happened before the one that last set the call's status (a tie applies)."""
    return recorded is not None and event_time < recorded


def is_behind(seen: Iterable[str], status: str) -> bool:
    """Whether an assignment whose steps had the statuses `seen` is already past `status`."""
    rank = ASSIGNMENT_RANK.get(status)
    return rank is not None and any(ASSIGNMENT_RANK.get(s, -1) > rank for s in seen)


def why_late(
    current: str, recorded: datetime | None, event_time: datetime, seen: Iterable[str], status: str
) -> str | None:
    """Why an assignment event must leave the call's status alone, or None when it moves it.

    `current` and `recorded` are the call's status and the time of the event that set it; `seen`
    the statuses of the earlier steps of the event's assignment; `status` the one the event means.
    """
    if is_late(recorded, event_time):
        return "older_than_status"
    if is_behind(seen, status):
        return "assignment_further_along"
    # After a cancel only the withdrawal of its team, with which matching answers the cancel, is
    # applied (the PSAP hears the team was stood down; the call stays cancelled). What matching or
    # an agency did before hearing of the cancel is history.
    if current == "cancelled" and status != "withdrawn":
        return "call_cancelled"
    return None


# The statuses the PSAP is told about, in EIDO's unit status vocabulary (SecondaryUnitStatus-Common).
UNIT_STATUS = {
    "assigned": "Assigned",
    "en_route": "EnRoute",
    "on_scene": "OnScene",
    "cleared": "Cleared",
    "backup_requested": "Backup",
    "withdrawn": "AssignmentCancelled",
    "handed_back": "AssignmentCancelled",
}


def raised_flags(before: SafetyScreen, after: SafetyScreen) -> list[str]:
    """The safety questions answered yes now that were not before."""
    return [q for q, answer in after if answer == Answer.yes and getattr(before, q) != Answer.yes]


def in_force(decision: TriageDecision, override: dict[str, str] | None, raised: list[str]) -> TriageDecision:
    """The decision that holds after re-triage: a call-taker's override stands unless a safety flag
    was raised since, in which case triage decides again."""
    if override is None or raised:
        return decision
    kept = f"the call-taker's override to {override['route']} stands ({override['reason_code']})"
    return decision.model_copy(
        update={"route": Route(override["route"]), "reasons": [kept, *decision.reasons]}
    )


# The statuses of a community call that no team has taken yet.
BEFORE_A_TEAM = ("received", "offered", "offer_declined", "offer_expired", "withdrawn")


def status_for(route: Route) -> str:
    """The PSAP-facing status of a call just triaged (or re-triaged)."""
    return "received" if route == Route.community else f"routed_{route}"
