"""Intake's rules, no I/O: triage, the causal order of assignment steps, client clocks, safety flags."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.intake.capacity import Capacity
from services.intake.geocode import Geocode
from services.intake.rules import Coverage, Triage, TriageRules, determinant_parts, determinant_text
from shared.domain_errors import Invalid
from shared.events import Answer, Location, ReasonCode, Route, SafetyScreen, TriageDecision

# When several rules fire, the most protective route wins.
_PRECEDENCE = {Route.police: 0, Route.fire: 1, Route.ems: 2, Route.review: 3, Route.community: 4}


def normalise_type(code: str, local_codes: dict[str, str]) -> str:
    """Map a PSAP's local call code to the common incident type (upper case)."""
    code = code.strip()
    return local_codes.get(code, local_codes.get(code.upper(), code)).upper()


@dataclass(frozen=True)
class TypeRoute:
    """The route an incident type takes and the rule that says so."""

    route: Route
    rule: str  # the type, the prefix (`F*`) or "fallback"
    exact: bool  # the rule names this very type (so the type is a code the rules know)


def route_for_type(incident_type: str, rules: TriageRules) -> TypeRoute:
    """The route of an incident type: its own rule, else the longest prefix rule, else the fallback."""
    if incident_type in rules.eligible_types:
        return TypeRoute(Route.community, incident_type, exact=True)
    if incident_type in rules.routes:
        return TypeRoute(Route(rules.routes[incident_type]), incident_type, exact=True)
    prefixes = [k for k in rules.routes if k.endswith("*") and incident_type.startswith(k[:-1])]
    if prefixes:
        rule = max(prefixes, key=len)
        return TypeRoute(Route(rules.routes[rule]), rule, exact=False)
    return TypeRoute(Route(rules.fallback), "fallback", exact=False)


def route_for_determinant(determinant: str | None, rules: TriageRules) -> tuple[str, TypeRoute] | None:
    """The call's determinant (in its one spelling) and the most specific determinant rule that
    matches it; None when the call has none or no rule matches."""
    parts = determinant_parts(determinant) if determinant else None
    if parts is None or not rules.determinants:
        return None
    best: tuple[str, ...] | None = None
    for rule in rules.determinants:
        rule_parts = determinant_parts(rule)
        if rule_parts and parts[: len(rule_parts)] == rule_parts and len(rule_parts) > len(best or ()):
            best = rule_parts
    if best is None:
        return None
    rule = determinant_text(best)
    return determinant_text(parts), TypeRoute(
        Route(rules.determinants[rule]), rule, exact=len(best) == len(parts)
    )


@dataclass(frozen=True)
class TriageFacts:
    """What triage weighs besides the type and the screen (all optional, so old callers still work)."""

    cautions: tuple[str, ...] = ()
    location: Location | None = None
    at: datetime | None = None
    timezone: str | None = None
    consent_non_police: bool | None = None
    determinant: str | None = None  # the MPDS determinant the CAD sent
    # What geocoding the civic address of a location without coordinates found (None: not tried).
    geocode: Geocode | None = None
    # Matching's last capacity snapshot (None: capacity is not weighed, e.g. an update of a call).
    capacity: Capacity | None = None


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
    return any(shift.covers(local) for shift in coverage.hours)


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


def _no_capacity(rules: TriageRules, facts: TriageFacts, location: Location | None) -> bool:
    """Whether the capacity snapshot says no team covering the (located) call could take it now.
    Unknown (no snapshot, a stale one, no position, or a region that offers regardless) is not no."""
    capacity, at = facts.capacity, facts.at
    if rules.no_capacity == "community" or capacity is None or at is None or not capacity.known_at(at):
        return False
    if location is None or location.coordinates_known is False:
        return False
    return capacity.free_covering(location.lat, location.lon) == 0


def carried_capacity(previous: TriageDecision, at: datetime) -> Capacity | None:
    """What capacity a call's new version is triaged with: a call kept from community teams for
    want of capacity stays so (the call-taker decides it), any other is not weighed again."""
    if any(c.code == "no_community_capacity" for c in previous.codes):
        return Capacity.none_free(at)
    return None


def _type_reason(incident_type: str, rules: TriageRules, because: Callable[..., None]) -> list[Route]:
    """Give the reason of the rule that routes the type; the route it adds (none for community)."""
    by_type = route_for_type(incident_type, rules)
    # The type is named to oversight only when a rule names it (a code, not free text).
    named = {"incident_type": incident_type} if by_type.exact else {}
    rule = "" if by_type.exact else f" (rule {by_type.rule})"
    if by_type.rule == "fallback":
        because(
            f"incident type {incident_type} is not eligible for a community response and no rule"
            f" routes it: fallback -> {by_type.route}",
            "type_not_eligible",
            route=by_type.route,
            rule="fallback",
        )
    elif by_type.route == Route.community:
        because(
            f"incident type {incident_type} is eligible for a community response{rule}",
            "type_eligible",
            **named,
            rule=by_type.rule,
        )
    else:
        because(
            f"incident type {incident_type} -> {by_type.route}{rule}",
            "type_routed",
            **named,
            rule=by_type.rule,
            route=by_type.route,
        )
    return [] if by_type.route == Route.community else [by_type.route]


def located(location: Location, found: Geocode | None, min_score: float) -> Location:
    """A location without coordinates at the position its civic address was geocoded to, when the
    geocode scores at least `min_score`; otherwise unchanged."""
    if location.coordinates_known is not False or found is None or not found.found or found.score < min_score:
        return location
    assert found.lat is not None and found.lon is not None
    return location.model_copy(update={"lat": found.lat, "lon": found.lon, "coordinates_known": True})


def triage(
    incident_type: str, safety: SafetyScreen, rules: TriageRules, facts: TriageFacts | None = None
) -> TriageDecision:
    """Decide community, police, ems, fire or review, listing every reason that fired: as a sentence for
    the PSAP and as a code whose parameters are codes too (never input text) for oversight."""
    facts = facts or TriageFacts()
    reasons: list[str] = []
    codes: list[ReasonCode] = []
    routes: list[Route] = []

    def because(sentence: str, code: str, **params: str) -> None:
        reasons.append(sentence)
        codes.append(ReasonCode(code=code, params=params))

    by_determinant = route_for_determinant(facts.determinant, rules)
    if not incident_type:
        because("no incident type: a person must review", "no_incident_type", route=Route.review)
        routes.append(Route.review)
    if by_determinant is not None:
        # The protocol's answer about this very call is more specific than its type.
        determinant, decided = by_determinant
        because(
            f"determinant {determinant} -> {decided.route} (rule {decided.rule}), in place of the incident"
            " type's rules",
            "determinant_eligible" if decided.route == Route.community else "determinant_routed",
            determinant=determinant,
            rule=decided.rule,
            route=decided.route,
        )
        if decided.route != Route.community:
            routes.append(decided.route)
    elif incident_type:
        routes += _type_reason(incident_type, rules, because)
    screened, caution_reasons = apply_cautions(safety, facts.cautions, rules)
    reasons += caution_reasons
    codes += [
        ReasonCode(code="caution_raised", params={"question": q}) for q in raised_flags(safety, screened)
    ]
    safety = screened
    for question, excluded_to in rules.exclude.items():
        answer = getattr(safety, question)
        if answer == Answer.yes:
            because(
                f"safety screen: {question} = yes -> {excluded_to}",
                "safety_yes",
                question=question,
                route=excluded_to,
            )
            routes.append(Route(excluded_to))
        elif answer == Answer.unknown:
            meaning = rules.unknown.get(question, rules.unknown_means)
            if meaning != "eligible":
                because(
                    f"safety screen: {question} unknown -> {meaning}",
                    "safety_unknown",
                    question=question,
                    route=meaning,
                )
                routes.append(Route(meaning))
    if facts.consent_non_police is False:
        because(
            f"caller declined a non-police response -> {rules.declined_consent_means}",
            "consent_declined",
            route=rules.declined_consent_means,
        )
        routes.append(Route(rules.declined_consent_means))
    location = facts.location
    if location is not None and location.coordinates_known is False:
        found = facts.geocode
        min_score = rules.geocoding.min_score
        if found is None:
            because(
                "the location has no coordinates: a person must review", "no_coordinates", route=Route.review
            )
        elif found.found and found.score >= min_score:
            because(
                f"the civic address was geocoded to {found.matched}"
                f" ({found.method}, score {found.score:.2f})",
                "geocoded",
                method=str(found.method),
                score=f"{found.score:.2f}",
            )
            location = located(location, found, min_score)
        elif found.found:
            because(
                f"the civic address matched {found.matched} ({found.method}) with score {found.score:.2f},"
                f" below the threshold {min_score:.2f}: a person must review",
                "geocode_below_threshold",
                method=str(found.method),
                score=f"{found.score:.2f}",
                threshold=f"{min_score:.2f}",
                route=Route.review,
            )
        else:
            because(
                f"the civic address was not found among the address points ({found.failure}):"
                " a person must review",
                "geocode_not_found",
                reason=str(found.failure),
                route=Route.review,
            )
        if location.coordinates_known is False:
            routes.append(Route.review)
    if rules.coverage is not None:
        for missed in _coverage(rules.coverage, replace(facts, location=location)):
            which = "outside_coverage_area" if "areas" in missed else "outside_coverage_hours"
            because(f"{missed} -> {rules.coverage.outside}", which, route=rules.coverage.outside)
            routes.append(Route(rules.coverage.outside))
    route = min(routes, key=_PRECEDENCE.__getitem__) if routes else Route.community
    if route == Route.community and _no_capacity(rules, facts, location):
        assert facts.capacity is not None
        stamp = facts.capacity.as_of.isoformat(timespec="seconds")
        because(
            f"no community team that covers the location can take a call now (capacity as of {stamp})"
            f" -> {rules.no_capacity}",
            "no_community_capacity",
            route=rules.no_capacity,
        )
        route = Route(rules.no_capacity)
    if route == Route.community:
        because("no safety exclusion applies", "no_safety_exclusion")
    if rules.behavioural_health_types:
        behavioural = incident_type in rules.behavioural_health_types
    else:
        # Routed to community by its type, or by a determinant rule that opens it to a community response.
        by_type_community = (
            bool(incident_type) and route_for_type(incident_type, rules).route == Route.community
        )
        by_rule_community = by_determinant is not None and by_determinant[1].route == Route.community
        behavioural = by_type_community or by_rule_community
    deadline = None
    if route == Route.review and facts.at is not None:
        deadline = facts.at + timedelta(minutes=rules.review_deadline_min)
    return TriageDecision(
        route=route,
        reasons=reasons,
        rules_version=rules.version,
        codes=codes,
        behavioural_health=behavioural,
        review_deadline=deadline,
    )


def triage_for_psap(
    psap_id: str, incident_type: str, safety: SafetyScreen, rules: Triage, facts: TriageFacts
) -> tuple[TriageDecision, TriageDecision | None]:
    """The decision of the rule set in force for the PSAP (its own one, when it has one, named first
    in the decision with its version) and the decision of the draft evaluated beside it."""
    active = rules.for_psap(psap_id)
    decision = triage(incident_type, safety, active, facts)
    if active is not rules:
        named = f"the rules of PSAP {psap_id} apply (version {active.version})"
        decision = decision.model_copy(
            update={
                "reasons": [named, *decision.reasons],
                "codes": [
                    ReasonCode(code="psap_rules", params={"psap": psap_id, "version": active.version}),
                    *decision.codes,
                ],
            }
        )
    draft = rules.shadow_for(psap_id)
    return decision, triage(incident_type, safety, draft, facts) if draft is not None else None


def keep_review_deadline(decision: TriageDecision, before: TriageDecision) -> TriageDecision:
    """A call still in review after a newer version keeps its first deadline: updates never
    postpone the decision a person owes it."""
    if decision.route == Route.review and before.route == Route.review and before.review_deadline:
        return decision.model_copy(update={"review_deadline": before.review_deadline})
    return decision


# How each assignment event moves the status the PSAP sees.
STATUS_BY_EVENT = {
    "assignments.offered.v1": "offered",
    "assignments.expired.v1": "offer_expired",
    "assignments.withdrawn.v1": "withdrawn",
    "calls.unassigned.v1": "handed_back",
}

# Where each step stands in one assignment's life. Matching offers and notify answers, each on its
# own clock and topic, so only this order (and matching's attempt number between assignments) says
# which step comes after which; one assignment ends in exactly one terminal step.
TERMINAL = 50
STAGE = {
    "offered": 10,
    "assigned": 20,
    "en_route": 30,
    "on_scene": 40,
    "cleared": TERMINAL,
    "offer_declined": TERMINAL,
    "offer_expired": TERMINAL,
    "withdrawn": TERMINAL,
    "handed_back": 60,  # after every step of the attempts it covers
}
BACKUP = "backup_requested"  # a step of a live assignment, not a place in its life
OVERDUE = "overdue"  # the same: a timer the team let run out past its grace (the PSAP is told)
STEPS = (BACKUP, OVERDUE)
_BACKUP_SHOWN = 45  # where a backup sits when its assignment's progress is past or unknown
FINAL = ("cancelled", "handed_back")  # call-level ends no assignment event moves
# Why the end of one offer of a parallel attempt moves no status: another team may still accept, a
# team already did, or matching offers again or hands the call back, each of which the PSAP hears.
ONE_OF_PARALLEL = "one_of_parallel_offers"


@dataclass(frozen=True)
class Order:
    """Where a call stands in the causal order of its assignments, stored with its status."""

    status: str
    attempt: int | None = None  # attempt of the newest step that moved the status (None: none yet)
    stage: int = 0  # that step's STAGE
    handed_back_through: int | None = None  # a hand-back supersedes every attempt up to this

    def own_step(self) -> tuple[int, int]:
        """Where a step intake itself records (received, update, override, cancel) sits: after
        every assignment step that moved the status so far."""
        return (self.attempt or 0, self.stage + 1)


@dataclass(frozen=True)
class Placement:
    """What one assignment step does to a call."""

    order: Order  # the call's order afterwards (the same when the step is late)
    key: tuple[int, int]  # where the step sits in the call's timeline: (attempt, stage)
    late_because: str | None = None  # None: the step moved the status and is told to the PSAP


def attempt_of(given: int | None, recorded: int | None, order: Order) -> int:
    """The attempt an assignment event belongs to: its own, else the one recorded with an earlier
    step of its assignment, else the call's current attempt (the next one once that has ended:
    an older producer's offer of an assignment not seen yet)."""
    if given is not None:
        return given
    if recorded is not None:
        return recorded
    if order.attempt is None:
        return 1
    return order.attempt + 1 if order.stage >= TERMINAL else order.attempt


def covered_by(attempts: int | None, order: Order) -> int:
    """How many attempts a hand-back covers: the count it carries, else every attempt so far."""
    return attempts if attempts is not None else order.attempt or 0


def _refusal(order: Order, attempt: int) -> str | None:
    """Why a step of attempt `attempt` can no longer move the status, whatever its stage."""
    if order.status == "cancelled":
        return "call_cancelled"
    if order.status == "handed_back":
        return "call_handed_back"
    if order.handed_back_through is not None and attempt <= order.handed_back_through:
        return "superseded_by_hand_back"
    if order.attempt is not None and attempt < order.attempt:
        return "earlier_attempt"
    return None


def place(order: Order, status: str, attempt: int, parallel: bool = False) -> Placement:
    """Where a call's assignment step (`status` of attempt `attempt`) goes, and whether it moves
    the status: by attempt, then by the step's place in its assignment's life; never by clocks.

    A later attempt supersedes every step of earlier ones; a hand-back supersedes the attempts it
    covers; after a hand-back or a cancel no assignment step moves the status, except that the
    withdrawal with which matching answers a cancel is still applied (and told to the PSAP) while
    the call stays cancelled. The decline, expiry or withdrawal of one offer of a `parallel`
    attempt (several teams offered at once) moves nothing.
    """
    if status == "handed_back":
        return _hand_back(order, attempt)
    current = order.attempt == attempt
    if status in STEPS:
        stage = order.stage + 1 if current and order.stage < TERMINAL else _BACKUP_SHOWN
        why = _refusal(order, attempt)
        if why is None and current and order.stage >= TERMINAL:
            why = "assignment_further_along"
        return Placement(order, (attempt, stage), why)
    stage = STAGE[status]
    key = (attempt, stage)
    if order.status == "cancelled" and status == "withdrawn" and key > (order.attempt or 0, order.stage):
        return Placement(replace(order, attempt=attempt, stage=stage), key)
    why = _refusal(order, attempt)
    if why is None and current and stage <= order.stage:
        why = "assignment_further_along"
    if why is None and parallel and stage == TERMINAL and status != "cleared":
        why = ONE_OF_PARALLEL
    if why is not None:
        return Placement(order, key, why)
    return Placement(replace(order, status=status, attempt=attempt, stage=stage), key)


def _hand_back(order: Order, attempts: int) -> Placement:
    key = (attempts, STAGE["handed_back"])
    if order.status in FINAL:
        return Placement(order, key, "call_cancelled" if order.status == "cancelled" else "call_handed_back")
    if order.attempt is not None and attempts < order.attempt:
        return Placement(order, key, "earlier_attempt")
    through = max(attempts, order.handed_back_through or 0)
    after = Order("handed_back", attempt=attempts, stage=STAGE["handed_back"], handed_back_through=through)
    return Placement(after, key)


# The statuses the PSAP is told about, in EIDO's unit status vocabulary (SecondaryUnitStatus-Common).
UNIT_STATUS = {
    "assigned": "Assigned",
    "en_route": "EnRoute",
    "on_scene": "OnScene",
    "cleared": "Cleared",
    "backup_requested": "Backup",
    "overdue": "Overdue",
    "withdrawn": "AssignmentCancelled",
    "handed_back": "AssignmentCancelled",
    # The 988 center did not close its follow-up of the call by its due time.
    "follow_up_overdue": "FollowUpOverdue",
}


def raised_flags(before: SafetyScreen, after: SafetyScreen) -> list[str]:
    """The safety questions answered yes now that were not before."""
    return [q for q, answer in after if answer == Answer.yes and getattr(before, q) != Answer.yes]


def ratchet(before: SafetyScreen, sent: SafetyScreen) -> SafetyScreen:
    """The screen `before` with every question `sent` answers yes set to yes: flags only go up."""
    return before.model_copy(update={q: Answer.yes for q in raised_flags(before, sent)})


class TimestampInFuture(Invalid):
    """A client's timestamp is further ahead of intake's clock than the tolerance."""

    code = "timestamp_in_future"


def refuse_future(stamps: Iterable[tuple[str, datetime]], now: datetime, tolerance_s: float) -> None:
    """Raise TimestampInFuture for the first stamp more than `tolerance_s` after `now`.

    A PSAP's version stamps order its updates; one an hour fast would make every real update after
    it "older", so it is refused rather than stored.
    """
    limit = now + timedelta(seconds=tolerance_s)
    for field, stamp in stamps:
        if stamp > limit:
            raise TimestampInFuture(
                f"{field} {stamp.isoformat()} is more than {tolerance_s:g} s ahead of intake's clock"
                f" ({now.isoformat()}): check the sender's clock"
            )


def in_force(decision: TriageDecision, override: dict[str, str] | None, raised: list[str]) -> TriageDecision:
    """The decision that holds after re-triage: a call-taker's override stands unless a safety flag
    was raised since, in which case triage decides again."""
    if override is None or raised:
        return decision
    kept = f"the call-taker's override to {override['route']} stands ({override['reason_code']})"
    code = ReasonCode(
        code="override_stands", params={"route": override["route"], "reason": override["reason_code"]}
    )
    return decision.model_copy(
        update={
            "route": Route(override["route"]),
            "reasons": [kept, *decision.reasons],
            "codes": [code, *decision.codes],
        }
    )


# The statuses of a community call that no team has taken yet.
BEFORE_A_TEAM = ("received", "offered", "offer_declined", "offer_expired", "withdrawn")


def status_for(route: Route) -> str:
    """The PSAP-facing status of a call just triaged (or re-triaged)."""
    # A call for the 988 line waits for the center's answer as a community call waits for a team's.
    return "received" if route in (Route.community, Route.crisis_line) else f"routed_{route}"
