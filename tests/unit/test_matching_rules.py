"""The matching section of the jurisdiction file and team coverage polygons: loaded, or refused clearly."""

from pathlib import Path

import pytest

from services.jurisdiction import load_file, parse
from services.matching.domain import needs_for
from shared.jurisdiction import JurisdictionError

EXAMPLE = Path(__file__).parents[2] / "examples" / "lane-valley.yaml"


def test_the_example_has_versioned_skill_rules():
    j = load_file(EXAMPLE)
    assert j.matching is not None and j.matching.version
    required, _ = needs_for(j.matching, "suicthrt", {"medical": "no"})
    assert required == {"licensed_clinician"}
    assert any("licensed_clinician" in t.skills for t in j.teams)


def _text(old: str, new: str) -> str:
    text = EXAMPLE.read_text()
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("what", "old", "new", "message"),
    [
        (
            "a skill that does not exist",
            "SUICTHRT: {required: [licensed_clinician]}",
            "SUICTHRT: {required: [psychic]}",
            "psychic",
        ),
        ("an unknown language policy", "  language: required", "  language: sometimes", "sometimes"),
        (
            "a screen rule on a question the screen does not ask",
            "{question: medical, answer: unknown",
            "{question: mood, answer: unknown",
            "mood",
        ),
        (
            "a polygon of two corners",
            "    radius_km: 4\n    shifts:",
            "    radius_km: 4\n    area: [{lat: 44.0, lon: -123.0}, {lat: 44.1, lon: -123.0}]\n    shifts:",
            "at least 3",
        ),
        (
            "a negative weight",
            "  language: required",
            "  language: required\n  fairness_min: -1",
            "fairness_min",
        ),
    ],
)
def test_mistakes_in_matching_rules_are_refused_with_a_clear_message(what, old, new, message):
    with pytest.raises(JurisdictionError) as err:
        parse(_text(old, new), "city.yaml")
    assert message in str(err.value), what


def test_a_polygon_area_loads():
    area = "    area: [{lat: 44.04, lon: -123.08}, {lat: 44.04, lon: -123.06}, {lat: 44.05, lon: -123.07}]\n"
    j = parse(_text("    radius_km: 4\n    shifts:", f"    radius_km: 4\n{area}    shifts:"))
    [team] = [t for t in j.teams if t.area]
    assert len(team.area or []) == 3
