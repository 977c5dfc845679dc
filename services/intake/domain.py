"""Triage: which responder a call should get, and why. Pure rules, no I/O."""

from __future__ import annotations

from shared.events import Answer, Route, SafetyScreen, TriageDecision
from shared.jurisdiction import Triage

# When several exclusions fire, the most protective route wins.
_PRECEDENCE = {Route.police: 0, Route.ems: 1, Route.review: 2, Route.community: 3}


def normalise_type(code: str, local_codes: dict[str, str]) -> str:
    """Map a PSAP's local call code to the common incident type (upper case)."""
    code = code.strip()
    return local_codes.get(code, local_codes.get(code.upper(), code)).upper()


def triage(incident_type: str, safety: SafetyScreen, rules: Triage) -> TriageDecision:
    """Decide community, police, ems or review, listing every reason that fired."""
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
    for question, excluded_to in rules.exclude.items():
        answer = getattr(safety, question)
        if answer == Answer.yes:
            reasons.append(f"safety screen: {question} = yes -> {excluded_to}")
            routes.append(Route(excluded_to))
        elif answer == Answer.unknown and rules.unknown_means == "review":
            reasons.append(f"safety screen: {question} unknown -> review")
            routes.append(Route.review)
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
