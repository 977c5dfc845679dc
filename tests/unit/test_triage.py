"""Triage rules: every route and every reason that fires."""

from services.intake.domain import normalise_type, triage
from shared.events import Answer, Route, SafetyScreen
from shared.jurisdiction import Triage

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
