"""Geocoding's pure steps: street and number scores, the street catalogue, the decision."""

from __future__ import annotations

from services.intake import geocode
from services.intake.address_store import NearPoint
from services.intake.addresses import CivicAddress, Street, civic_from_text, street_from_text
from services.intake.geocode import Catalogue, Place


def test_street_scores() -> None:
    asked = street_from_text("N Main St")
    assert geocode.street_score(asked, street_from_text("N Main St")) == 1.0
    # Said on one side only costs less than said differently.
    missing = geocode.street_score(street_from_text("Main St"), asked)
    different = geocode.street_score(street_from_text("S Main St"), asked)
    assert 0.95 < missing < 1.0
    assert different < missing
    assert geocode.street_score(street_from_text("N Mian St"), asked) < missing
    assert geocode.street_score(street_from_text("Oak St"), asked) < 0.5


def test_number_scores() -> None:
    assert geocode.number_score(125, "", 125, "") == 1.0
    assert geocode.number_score(125, "A", 125, "B") < 1.0
    assert geocode.number_score(125, "", 127, "") > geocode.number_score(125, "", 126, "")  # same side
    assert geocode.number_score(125, "", 185, "") == 0.85
    assert geocode.number_score(125, "", 900, "") == 0.0


def _catalogue() -> Catalogue:
    rows = [
        ("SPRINGFIELD", "", "97477", street_from_text("N Main St")),
        ("SPRINGFIELD", "", "97477", street_from_text("S Main St")),
        ("SPRINGFIELD", "", "97477", street_from_text("Oak Ave")),
        ("EUGENE", "", "97401", street_from_text("Main St")),
        ("", "GLENWOOD", "97403", street_from_text("Franklin Blvd")),
    ]
    return Catalogue.build(7, rows)


def _civic(text: str) -> CivicAddress:
    civic = civic_from_text(text)
    assert civic is not None
    return civic


def test_the_place_is_the_municipality_a_typo_of_it_or_the_postcode() -> None:
    catalogue = _catalogue()
    assert catalogue.place(_civic("1 Oak Ave, Springfield")) == Place(municipality="SPRINGFIELD")
    assert catalogue.place(_civic("1 Oak Ave, Springfeild")) == Place(municipality="SPRINGFIELD")
    assert catalogue.place(_civic("1 Franklin Blvd, Glenwood")) == Place(municipality="GLENWOOD")
    assert catalogue.place(_civic("1 Oak Ave, Nowhere, OR 97477")) == Place(postcode="97477")
    assert catalogue.place(_civic("1 Oak Ave, Nowhere")) == "municipality_not_found"
    assert catalogue.place(_civic("1 Oak Ave")) == "no_municipality"


def test_candidates_are_the_exact_street_alone_or_fuzzy_ones_best_first() -> None:
    catalogue = _catalogue()
    springfield = Place(municipality="SPRINGFIELD")
    assert catalogue.candidates(springfield, street_from_text("N Main St")) == [
        (street_from_text("N Main St"), 1.0)
    ]
    fuzzy = catalogue.candidates(springfield, street_from_text("Oak Avenue N"))
    assert fuzzy[0][0] == street_from_text("Oak Ave") and fuzzy[0][1] < 1.0
    # Eugene's Main St is not Springfield's.
    assert all(s.key != "MAIN ST" for s, _ in catalogue.candidates(springfield, street_from_text("Main St")))
    assert catalogue.candidates(springfield, street_from_text("Zzyzx Rd")) == []


def _points(*numbers: int) -> list[NearPoint]:
    return [NearPoint(n, "", "", 44.0 + n / 1e5, -123.0) for n in numbers]


def test_the_best_point_prefers_the_number_then_the_unit_then_the_building() -> None:
    civic = _civic("125 N Main St Apt 2, Springfield")
    units = [
        NearPoint(125, "", "APT 1", 1, 1),
        NearPoint(125, "", "", 2, 2),
        NearPoint(125, "", "APT 2", 3, 3),
    ]
    assert geocode.best_point(civic, units) == (units[2], 1.0)
    assert geocode.best_point(_civic("125 N Main St, Springfield"), units) == (units[1], 1.0)
    # The nearest number on the same side of the street (the same parity) before the other side.
    nearest = geocode.best_point(civic, _points(119, 131, 126, 127))
    assert nearest is not None and nearest[0].number == 127


def test_an_exact_match() -> None:
    civic = _civic("125 N Main St, Springfield")
    street = street_from_text("N Main St")
    found = geocode.decide(
        civic, Place("SPRINGFIELD"), [(street, 1.0, geocode.best_point(civic, _points(123, 125)))]
    )
    assert (found.method, found.score, found.lat) == ("exact", 1.0, 44.00125)
    assert found.matched == "125 NORTH MAIN STREET, SPRINGFIELD"


def test_a_fuzzy_street_with_the_number_found() -> None:
    civic = _civic("125 N Mian Street, Springfield")
    street = street_from_text("N Main St")
    score = geocode.street_score(civic.street, street)
    found = geocode.decide(
        civic, Place("SPRINGFIELD"), [(street, score, geocode.best_point(civic, _points(125)))]
    )
    assert found.method == "fuzzy_street" and found.score == score < 1.0


def test_the_nearest_number_on_the_street() -> None:
    civic = _civic("129 N Main St, Springfield")
    street = street_from_text("N Main St")
    found = geocode.decide(
        civic, Place("SPRINGFIELD"), [(street, 1.0, geocode.best_point(civic, _points(125)))]
    )
    assert found.method == "nearest_number" and found.score == geocode.number_score(129, "", 125, "")
    assert found.matched is not None and found.matched.startswith("125 ")


def test_two_streets_equally_good_are_ambiguous() -> None:
    civic = _civic("125 Main St, Springfield")
    north, south = street_from_text("N Main St"), street_from_text("S Main St")
    score = geocode.street_score(civic.street, north)
    both = [(s, score, geocode.best_point(civic, _points(125))) for s in (north, south)]
    assert geocode.decide(civic, Place("SPRINGFIELD"), both).failure == "ambiguous_street"
    # The number tells them apart when only one street has it.
    one = [
        (north, score, geocode.best_point(civic, _points(125))),
        (south, score, geocode.best_point(civic, _points(301))),
    ]
    assert geocode.decide(civic, Place("SPRINGFIELD"), one).matched == "125 NORTH MAIN STREET, SPRINGFIELD"


def test_no_street_with_points_is_not_found() -> None:
    civic = _civic("125 Main St, Springfield")
    assert geocode.decide(civic, Place("SPRINGFIELD"), []).failure == "street_not_found"
    assert (
        geocode.decide(civic, Place("SPRINGFIELD"), [(Street("MAIN"), 0.9, None)]).failure
        == "street_not_found"
    )
