"""Offering a call: what it needs from its offer, and the reason it is handed back with."""

from datetime import UTC, datetime, timedelta

from services.matching.domain import Decision, offer_deadline, offers_at_once
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


T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def test_an_offer_keeps_its_timeout_while_the_time_to_commit_allows():
    assert offer_deadline(T0, T0, 600, 120, 15) == T0 + timedelta(seconds=120)


def test_an_offer_deadline_shrinks_to_what_is_left_of_the_time_to_commit():
    now = T0 + timedelta(seconds=90)
    assert offer_deadline(now, T0, 120, 120, 15) == T0 + timedelta(seconds=120)


def test_with_less_than_the_floor_left_no_offer_is_made():
    assert offer_deadline(T0 + timedelta(seconds=106), T0, 120, 120, 15) is None
    assert offer_deadline(T0 + timedelta(seconds=105), T0, 120, 120, 15) == T0 + timedelta(seconds=120)
    assert offer_deadline(T0 + timedelta(seconds=500), T0, 120, 120, 15) is None


def test_the_time_to_commit_defaults_to_two_minutes():
    assert Matching(version="v").commit_within == 120


def test_parallel_offers_go_out_always_or_once_the_budget_is_short():
    assert offers_at_once(None, None, left_s=10) == 1  # the jurisdiction asks for none
    assert offers_at_once(3, None, left_s=120) == 3  # asked for every attempt
    assert offers_at_once(3, 60, left_s=90) == 1  # the budget is not short yet
    assert offers_at_once(3, 60, left_s=59.9) == 3
