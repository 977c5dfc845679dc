"""Triage of a call located by a civic address: the geocode's method and score, or why it fell to review."""

from __future__ import annotations

from services.intake.domain import TriageFacts, located, triage
from services.intake.geocode import Geocode
from services.intake.rules import Area, Coverage, Geocoding, Triage
from shared.events import Answer, Location, ReasonCode, Route, SafetyScreen
from shared.jurisdiction import Point

RULES = Triage(
    version="v-geo",
    eligible_types=["MNTL"],
    exclude={"weapon": "police", "violence": "police", "medical": "ems", "self_harm_imminent": "ems"},
    geocoding=Geocoding(min_score=0.85),
)
CLEAR = SafetyScreen(**{q: Answer.no for q in SafetyScreen.model_fields})
UNLOCATED = Location(lat=0, lon=0, address="125 N Main St, Springfield", coordinates_known=False)
EXACT = Geocode("exact", 1.0, 44.0461, -123.0220, "125 NORTH MAIN STREET, SPRINGFIELD")


def _codes(decision_codes: list[ReasonCode]) -> dict[str, dict[str, str]]:
    return {c.code: c.params for c in decision_codes}


def test_a_geocoded_address_goes_community_and_says_how_it_was_found():
    decision = triage("MNTL", CLEAR, RULES, TriageFacts(location=UNLOCATED, geocode=EXACT))
    assert decision.route == Route.community
    assert _codes(decision.codes)["geocoded"] == {"method": "exact", "score": "1.00"}
    assert "geocoded to 125 NORTH MAIN STREET, SPRINGFIELD (exact, score 1.00)" in decision.reasons[1]


def test_a_geocode_below_the_threshold_goes_to_review_with_its_score():
    weak = Geocode("fuzzy_street", 0.8, 44.0461, -123.0220, "125 NORTH MAIN STREET, SPRINGFIELD")
    decision = triage("MNTL", CLEAR, RULES, TriageFacts(location=UNLOCATED, geocode=weak))
    assert decision.route == Route.review
    assert _codes(decision.codes)["geocode_below_threshold"] == {
        "method": "fuzzy_street",
        "score": "0.80",
        "threshold": "0.85",
        "route": "review",
    }
    # The same geocode passes a jurisdiction that trusts it more.
    lenient = RULES.model_copy(update={"geocoding": Geocoding(min_score=0.75)})
    assert (
        triage("MNTL", CLEAR, lenient, TriageFacts(location=UNLOCATED, geocode=weak)).route == Route.community
    )


def test_an_address_not_found_goes_to_review_with_why():
    missing = Geocode(None, 0.0, failure="street_not_found")
    decision = triage("MNTL", CLEAR, RULES, TriageFacts(location=UNLOCATED, geocode=missing))
    assert decision.route == Route.review
    assert _codes(decision.codes)["geocode_not_found"] == {"reason": "street_not_found", "route": "review"}


def test_no_geocode_tried_is_still_no_coordinates():
    decision = triage("MNTL", CLEAR, RULES, TriageFacts(location=UNLOCATED))
    assert decision.route == Route.review and "no_coordinates" in _codes(decision.codes)


def test_the_geocoded_position_is_what_coverage_checks():
    covered = RULES.model_copy(
        update={
            "coverage": Coverage(
                areas=[Area(center=Point(lat=45.5, lon=-122.6), radius_km=5)], outside="police"
            )
        }
    )
    decision = triage("MNTL", CLEAR, covered, TriageFacts(location=UNLOCATED, geocode=EXACT))
    assert decision.route == Route.police and "outside_coverage_area" in _codes(decision.codes)


def test_located_takes_the_position_only_when_good_enough():
    assert located(UNLOCATED, EXACT, 0.85) == UNLOCATED.model_copy(
        update={"lat": 44.0461, "lon": -123.0220, "coordinates_known": True}
    )
    assert located(UNLOCATED, Geocode("nearest_number", 0.5, 1, 1, "x"), 0.85) == UNLOCATED
    assert located(UNLOCATED, None, 0.85) == UNLOCATED
    known = Location(lat=44.0, lon=-123.0)
    assert located(known, EXACT, 0.85) == known
