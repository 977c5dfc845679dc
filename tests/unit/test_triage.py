"""Triage rules: every route and every reason that fires."""

from datetime import UTC, datetime, time

import pytest

from services.intake.domain import TriageFacts, keep_review_deadline, normalise_type, triage, triage_for_psap
from services.intake.rules import Area, Coverage, Triage, determinant_parts
from shared.events import Answer, Location, Route, SafetyScreen, TriageDecision
from shared.jurisdiction import Point, Shift

RULES = Triage(
    version="v-test",
    eligible_types=["MNTL", "WELFARE", "SUICTHRT"],
    exclude={"weapon": "police", "violence": "police", "medical": "ems", "self_harm_imminent": "ems"},
    unknown_means="review",
)
ALL_NO = SafetyScreen(
    weapon=Answer.no,
    violence=Answer.no,
    medical=Answer.no,
    self_harm_imminent=Answer.no,
    crime_in_progress=Answer.no,
)


def test_eligible_type_with_clear_screen_goes_community_with_version():
    decision = triage("MNTL", ALL_NO, RULES)
    assert decision.route == Route.community
    assert decision.rules_version == "v-test"
    assert any("MNTL is eligible" in r for r in decision.reasons)


def test_weapon_yes_goes_police_and_says_why():
    decision = triage("MNTL", ALL_NO.model_copy(update={"weapon": Answer.yes}), RULES)
    assert decision.route == Route.police
    assert "safety screen: weapon = yes -> police" in decision.reasons


def test_medical_yes_goes_ems():
    decision = triage("WELFARE", ALL_NO.model_copy(update={"medical": Answer.yes}), RULES)
    assert decision.route == Route.ems


def test_police_wins_over_ems_and_every_reason_is_listed():
    screen = ALL_NO.model_copy(update={"medical": Answer.yes, "violence": Answer.yes})
    decision = triage("MNTL", screen, RULES)
    assert decision.route == Route.police
    assert len([r for r in decision.reasons if r.startswith("safety screen")]) == 2


def test_unknown_answer_goes_to_review_when_rules_say_so():
    decision = triage("MNTL", ALL_NO.model_copy(update={"weapon": Answer.unknown}), RULES)
    assert decision.route == Route.review
    eligible = RULES.model_copy(update={"unknown_means": "eligible"})
    assert triage("MNTL", ALL_NO.model_copy(update={"weapon": Answer.unknown}), eligible).route == (
        Route.community
    )


def test_ineligible_type_goes_police_and_missing_type_goes_review():
    assert triage("BURGLARY", ALL_NO, RULES).route == Route.police
    assert triage("", ALL_NO, RULES).route == Route.review


def test_local_codes_map_to_common_types():
    assert normalise_type("10-96", {"10-96": "MNTL"}) == "MNTL"
    assert normalise_type("welfare", {}) == "WELFARE"


def test_caution_words_raise_screen_answers_and_say_so():
    decision = triage("MNTL", ALL_NO, RULES, TriageFacts(cautions=("SUBJECT ARMED WITH KNIFE",)))
    assert decision.route == Route.police
    assert "caution SUBJECT ARMED WITH KNIFE: weapon = yes" in decision.reasons


def test_unknown_can_mean_something_else_per_question():
    rules = RULES.model_copy(update={"unknown_means": "eligible", "unknown": {"weapon": "police"}})
    screen = ALL_NO.model_copy(update={"weapon": Answer.unknown, "medical": Answer.unknown})
    decision = triage("MNTL", screen, rules)
    assert decision.route == Route.police and "safety screen: weapon unknown -> police" in decision.reasons


def test_a_declined_non_police_response_goes_to_review():
    decision = triage("MNTL", ALL_NO, RULES, TriageFacts(consent_non_police=False))
    assert decision.route == Route.review and any("declined" in r for r in decision.reasons)


def test_no_coordinates_never_goes_community():
    unlocated = Location(lat=0, lon=0, address="42 W Cellular St", coordinates_known=False)
    decision = triage("MNTL", ALL_NO, RULES, TriageFacts(location=unlocated))
    assert decision.route == Route.review


COVERED = RULES.model_copy(
    update={
        "coverage": Coverage(
            hours=[Shift(days=["mon", "tue", "wed", "thu", "fri"], start=time(22), end=time(6))],
            areas=[Area(center=Point(lat=44.05, lon=-123.09), radius_km=10)],
            outside="police",
        )
    }
)
INSIDE = Location(lat=44.06, lon=-123.08)


@pytest.mark.parametrize(
    ("when", "where", "route", "reason"),
    [
        # Thursday 23:30 in Eugene (UTC-8): inside a shift that passes midnight.
        (datetime(2026, 11, 27, 7, 30, tzinfo=UTC), INSIDE, Route.community, None),
        # Friday 05:00 local: the Thursday shift still runs.
        (datetime(2026, 11, 27, 13, 0, tzinfo=UTC), INSIDE, Route.community, None),
        # Friday 12:00 local: no shift.
        (datetime(2026, 11, 27, 20, 0, tzinfo=UTC), INSIDE, Route.police, "outside the hours"),
        # Saturday 23:30 local: no Saturday shift.
        (datetime(2026, 11, 29, 7, 30, tzinfo=UTC), INSIDE, Route.police, "outside the hours"),
        (
            datetime(2026, 11, 27, 7, 30, tzinfo=UTC),
            Location(lat=44.3, lon=-123.09),
            Route.police,
            "outside the areas",
        ),
    ],
)
def test_coverage_hours_and_areas(when, where, route, reason):
    facts = TriageFacts(location=where, at=when, timezone="America/Los_Angeles")
    decision = triage("MNTL", ALL_NO, COVERED, facts)
    assert decision.route == route, decision.reasons
    if reason:
        assert any(r.startswith(reason) for r in decision.reasons)


def test_the_decision_says_whether_the_type_is_behavioural_health_as_the_rules_define_it():
    assert triage("MNTL", ALL_NO, RULES).behavioural_health is True
    assert triage("MVA", ALL_NO, RULES).behavioural_health is False
    wider = RULES.model_copy(update={"behavioural_health_types": ["MNTL", "WELFARE", "SUICTHRT", "EDP"]})
    edp = triage("EDP", ALL_NO, wider)
    assert edp.behavioural_health is True and edp.route == Route.police


def test_a_call_sent_to_review_gets_a_deadline_and_an_update_never_postpones_it():
    at = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    unknown = ALL_NO.model_copy(update={"weapon": Answer.unknown})
    first = triage("MNTL", unknown, RULES, TriageFacts(at=at))
    assert first.route == Route.review and first.review_deadline == datetime(2026, 11, 26, 10, 30, tzinfo=UTC)
    assert triage("MNTL", ALL_NO, RULES, TriageFacts(at=at)).review_deadline is None
    later = triage("MNTL", unknown, RULES, TriageFacts(at=datetime(2026, 11, 26, 10, 20, tzinfo=UTC)))
    assert keep_review_deadline(later, first).review_deadline == first.review_deadline
    cleared = triage("MNTL", ALL_NO, RULES, TriageFacts(at=at))
    assert keep_review_deadline(cleared, first).review_deadline is None
    quick = RULES.model_copy(update={"review_deadline_min": 5})
    assert triage("MNTL", unknown, quick, TriageFacts(at=at)).review_deadline == datetime(
        2026, 11, 26, 10, 5, tzinfo=UTC
    )


ROUTED = RULES.model_copy(
    update={
        "routes": {"OD": "ems", "FSTRU": "fire", "ALR*": "fire", "ALRROB*": "police", "MNTL*": "community"},
        "fallback": "review",
    }
)


def _codes(decision: TriageDecision) -> list[tuple[str, dict[str, str]]]:
    return [(c.code, c.params) for c in decision.codes]


def test_a_type_routed_by_its_own_rule_names_the_rule():
    decision = triage("OD", ALL_NO, ROUTED)
    assert decision.route == Route.ems
    assert "incident type OD -> ems" in decision.reasons
    assert ("type_routed", {"incident_type": "OD", "rule": "OD", "route": "ems"}) in _codes(decision)
    assert triage("FSTRU", ALL_NO, ROUTED).route == Route.fire


def test_the_longest_prefix_wins_and_the_type_itself_is_not_told_to_oversight():
    robbery = triage("ALRROBA", ALL_NO, ROUTED)
    assert robbery.route == Route.police
    assert "incident type ALRROBA -> police (rule ALRROB*)" in robbery.reasons
    assert ("type_routed", {"rule": "ALRROB*", "route": "police"}) in _codes(robbery)
    assert triage("ALRF", ALL_NO, ROUTED).route == Route.fire


def test_an_exact_rule_beats_a_prefix_and_a_prefix_may_be_eligible():
    rules = ROUTED.model_copy(update={"routes": {**ROUTED.routes, "ALRMED": "ems"}})
    assert triage("ALRMED", ALL_NO, rules).route == Route.ems
    crisis = triage("MNTLV", ALL_NO, ROUTED)
    assert crisis.route == Route.community
    assert ("type_eligible", {"rule": "MNTL*"}) in _codes(crisis)


def test_an_unmapped_type_takes_the_named_fallback():
    decision = triage("BURGLARY", ALL_NO, ROUTED)
    assert decision.route == Route.review
    assert ("type_not_eligible", {"route": "review", "rule": "fallback"}) in _codes(decision)
    assert any("fallback -> review" in r for r in decision.reasons)
    # Without a fallback in the file, an unmapped type goes to police, as it always has.
    assert triage("BURGLARY", ALL_NO, RULES).route == Route.police


def test_a_safety_answer_still_overrides_a_type_route_when_more_protective():
    armed = triage("OD", ALL_NO.model_copy(update={"weapon": Answer.yes}), ROUTED)
    assert armed.route == Route.police
    # A routed type is not made less protective by an unknown answer (review ranks below ems).
    assert triage("OD", ALL_NO.model_copy(update={"weapon": Answer.unknown}), ROUTED).route == Route.ems


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ({"OD": "hospital"}, "Input should be"),
        ({"*": "fire"}, "not an incident type or a type prefix"),
        ({"F**": "fire"}, "not an incident type or a type prefix"),
        ({"od": "ems", "OD": "fire"}, "routed twice"),
        ({"MNTL": "police"}, "MNTL is eligible and also routed to police"),
    ],
)
def test_route_rules_that_cannot_work_are_refused(routes, message):
    with pytest.raises(ValueError, match=message.replace("*", r"\*")):
        Triage.model_validate({**RULES.model_dump(), "routes": routes})


DETERMINED = RULES.model_copy(
    update={"determinants": {"25": "review", "25-A": "community", "25-B": "ems", "25-B-6": "police"}}
)


def test_the_most_specific_determinant_rule_decides_in_place_of_the_type():
    at = TriageFacts(determinant="25B06")
    decision = triage("MNTL", ALL_NO, DETERMINED, at)
    assert decision.route == Route.police
    assert ("determinant_routed", {"determinant": "25-B-6", "rule": "25-B-6", "route": "police"}) in _codes(
        decision
    )
    assert not any(c.code == "type_eligible" for c in decision.codes)
    assert triage("MNTL", ALL_NO, DETERMINED, TriageFacts(determinant="25-B-3")).route == Route.ems
    assert triage("MNTL", ALL_NO, DETERMINED, TriageFacts(determinant="25-D-1")).route == Route.review


def test_a_determinant_may_open_a_community_response_to_a_type_no_rule_makes_eligible():
    decision = triage("PSYCH", ALL_NO, DETERMINED, TriageFacts(determinant="25-A-1"))
    assert decision.route == Route.community
    assert ("determinant_eligible", {"determinant": "25-A-1", "rule": "25-A", "route": "community"}) in (
        _codes(decision)
    )
    # The safety screen still sends it elsewhere.
    armed = triage(
        "PSYCH", ALL_NO.model_copy(update={"weapon": Answer.yes}), DETERMINED, TriageFacts(determinant="25A1")
    )
    assert armed.route == Route.police


def test_without_a_matching_determinant_the_type_rules_decide():
    assert triage("MNTL", ALL_NO, DETERMINED, TriageFacts(determinant="10-C-1")).route == Route.community
    assert triage("BURGLARY", ALL_NO, DETERMINED, TriageFacts()).route == Route.police
    assert triage("MNTL", ALL_NO, RULES, TriageFacts(determinant="25-B-6")).route == Route.community


@pytest.mark.parametrize(
    ("code", "parts"),
    [
        ("25D01", ("25", "D", "1")),
        ("25-D-1", ("25", "D", "1")),
        ("09-e-1", ("9", "E", "1")),
        ("25-B-3S", ("25", "B", "3", "S")),
        ("25", ("25",)),
        ("25-Ω", ("25", "Ω")),
        ("ems", None),
        ("251-A-1", None),
    ],
)
def test_determinants_are_read_in_any_spelling_a_cad_uses(code, parts):
    assert determinant_parts(code) == parts


def test_determinant_rules_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match="not an MPDS determinant"):
        Triage.model_validate({**BASE, "determinants": {"twenty-five": "ems"}})
    with pytest.raises(ValueError, match="determinant 25-A-1 is routed twice"):
        Triage.model_validate({**BASE, "determinants": {"25A01": "ems", "25-A-1": "police"}})


BASE = RULES.model_dump(exclude={"shadow", "per_psap"})
CAMPUS = "psap.campus.example.edu"
PER_PSAP = Triage.model_validate(
    {
        **BASE,
        "routes": {"NOISE": "police", "OD": "ems"},
        "shadow": {**BASE, "version": "draft"},
        "per_psap": {
            CAMPUS: {"version": "campus-2", "eligible_types": ["MNTL", "NOISE"]},
            "other": {
                "version": "other-1",
                "fallback": "review",
                "shadow": {**BASE, "version": "other-draft"},
            },
        },
    }
)


def test_a_psap_with_its_own_rules_is_decided_by_them_and_the_decision_names_them():
    decision, shadow = triage_for_psap(CAMPUS, "NOISE", ALL_NO, PER_PSAP, TriageFacts())
    assert decision.route == Route.community and decision.rules_version == "campus-2"
    assert decision.reasons[0] == f"the rules of PSAP {CAMPUS} apply (version campus-2)"
    first = decision.codes[0]
    assert (first.code, first.params) == ("psap_rules", {"psap": CAMPUS, "version": "campus-2"})
    # The region's draft is still evaluated beside it.
    assert shadow is not None and shadow.rules_version == "draft"
    # What the PSAP does not give it inherits: the region's exclusions and other routes.
    assert triage_for_psap(CAMPUS, "OD", ALL_NO, PER_PSAP, TriageFacts())[0].route == Route.ems
    armed = ALL_NO.model_copy(update={"weapon": Answer.yes})
    assert triage_for_psap(CAMPUS, "NOISE", armed, PER_PSAP, TriageFacts())[0].route == Route.police


def test_other_psaps_keep_the_jurisdictions_rules_and_a_psap_may_have_its_own_draft():
    decision, shadow = triage_for_psap("valley", "NOISE", ALL_NO, PER_PSAP, TriageFacts())
    assert decision.route == Route.police and decision.rules_version == "v-test"
    assert all(c.code != "psap_rules" for c in decision.codes)
    assert shadow is not None and shadow.rules_version == "draft"
    other, own_draft = triage_for_psap("other", "BURGLARY", ALL_NO, PER_PSAP, TriageFacts())
    assert other.route == Route.review and own_draft is not None and own_draft.rules_version == "other-draft"


@pytest.mark.parametrize(
    ("own", "message"),
    [
        (
            {"version": "x1", "routes": {"MNTL": "police"}},
            "the rules of PSAP x: incident type MNTL is eligible",
        ),
        ({"fallback": "review"}, "version"),
        ({"version": "x1", "colour": "red"}, "colour"),
        (
            {"version": "x1", "determinants": {"lots": "ems"}},
            "the rules of PSAP x: determinants: 'lots' is not",
        ),
    ],
)
def test_a_psap_rule_set_that_cannot_work_is_refused(own, message):
    with pytest.raises(ValueError, match=message):
        Triage.model_validate({**BASE, "per_psap": {"x": own}})


def test_psap_rule_sets_survive_being_stored_and_read_back():
    again = Triage.model_validate_json(PER_PSAP.model_dump_json())
    assert again.for_psap(CAMPUS) == PER_PSAP.for_psap(CAMPUS)
    assert again.for_psap("other").fallback == "review"


def test_a_type_routed_to_community_by_a_rule_is_behavioural_health_by_default():
    routed = RULES.model_copy(update={"routes": {"BH*": "community", "OD": "ems"}})
    assert triage("BHCRISIS", ALL_NO, routed).behavioural_health is True
    assert triage("OD", ALL_NO, routed).behavioural_health is False
    assert triage("", ALL_NO, routed).behavioural_health is False


def test_a_call_a_determinant_rule_opens_to_community_is_behavioural_health():
    assert triage("PSYCH", ALL_NO, DETERMINED, TriageFacts(determinant="25-A-1")).behavioural_health is True
    held = triage("MNTL", ALL_NO, DETERMINED, TriageFacts(determinant="25-B-6"))
    assert held.behavioural_health is True and held.route == Route.police
