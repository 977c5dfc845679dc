"""Offering a call: what it needs from its offer, and the reason it is handed back with."""

from services.matching.domain import Decision
from services.matching.offers import call_needs, hand_back_reason
from services.matching.rules import Matching
from shared import events

FUNNEL = {"teams": 2, "with_capacity": 0}


def test_a_roster_with_no_team_free_and_none_tried_is_all_busy():
    assert hand_back_reason(Decision(candidates=(), funnel=FUNNEL), tried=[]) == "all_busy"


def test_every_team_left_already_offered_the_call_is_no_acceptance_in_time():
    assert hand_back_reason(Decision(candidates=(), funnel=FUNNEL), tried=["t1"]) == "no_acceptance_in_time"


def test_a_reason_the_roster_gives_is_kept_even_after_offers():
    decision = Decision(candidates=(), funnel=FUNNEL, reason="no_capacity_in_area")
    assert hand_back_reason(decision, tried=["t1"]) == "no_capacity_in_area"


def test_a_call_needs_its_types_skills_and_those_its_screen_answers_add():
    rules = Matching.model_validate(
        {
            "version": "t",
            "incident_types": {
                "SUICIDAL": {"required": ["licensed_clinician"], "preferred": ["youth", "licensed_clinician"]}
            },
            "screen": [{"question": "medical", "answer": "yes", "preferred": ["medic"]}],
        }
    )
    offer = events.OfferDetails(
        location=events.Location(lat=44.05, lon=-123.09),
        presenting_problem="suicidal",
        language="es",
        safety=events.SafetyScreen(medical=events.Answer.yes),
    )
    needs = call_needs(rules, offer)
    assert (needs.lat, needs.lon, needs.language) == (44.05, -123.09, "es")
    assert needs.required == {"licensed_clinician"}
    assert needs.preferred == {"youth", "medic"}
