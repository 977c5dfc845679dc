"""The triage rules of the jurisdiction file: shadow rules, coverage, rate limits and rotation."""

from pathlib import Path

import pytest

from services.jurisdiction import load_file, parse
from shared.jurisdiction import JurisdictionError

EXAMPLE = Path(__file__).parents[2] / "examples" / "lane-valley.yaml"


def test_the_example_has_a_shadow_rule_set_with_its_own_version():
    triage = load_file(EXAMPLE).triage
    assert triage.shadow is not None and triage.shadow.version != triage.version
    assert triage.shadow.unknown == {"weapon": "review"}
    assert "WEAPON" in triage.caution_flags and triage.coverage is None


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("    unknown_means: eligible\n", "    unknown_means: maybe\n", "unknown_means"),
        (
            "    token: demo-psap-university-4e0b8f19\n",
            "    token: demo-psap-university-4e0b8f19\n    rate_limit: lots\n",
            "rate_limit",
        ),
        ("unknown: {weapon: review}", "unknown: {weapons: review}", "weapons"),
        (
            "    university-psap:\n      version:",
            "    nobody-psap:\n      version:",
            "unknown psap nobody-psap",
        ),
        ('    "25-B-6": review', '    "25-X": review', "not an MPDS determinant"),
        ('    "ALR*": police', '    "ALR*": ambulance', "routes.ALR*"),
        ("  fallback: police\n", "  fallback: community\n", "fallback"),
    ],
)
def test_mistakes_in_the_new_rules_say_where(old: str, new: str, message: str):
    text = EXAMPLE.read_text()
    assert old in text
    with pytest.raises(JurisdictionError, match=message):
        parse(text.replace(old, new, 1))


def test_coverage_and_rotation_parse():
    text = (
        EXAMPLE.read_text()
        .replace(
            "  unknown_means: review\n",
            "  unknown_means: review\n  coverage:\n    hours: [{days: [mon], start: '08:00', end: '18:00'}]\n"
            "    areas: [{center: {lat: 44.05, lon: -123.09}, radius_km: 20}]\n    outside: police\n",
            1,
        )
        .replace(
            "    signing_secret: demo-signing-valley-ecc-5b8d1e04\n",
            "    signing_secret: demo-signing-valley-ecc-5b8d1e04\n"
            "    previous_signing_secrets: [old-valley-secret-0000]\n",
            1,
        )
    )
    j = parse(text)
    assert j.triage.coverage is not None and j.triage.coverage.outside == "police"
    assert j.psaps[0].previous_signing_secrets == ["old-valley-secret-0000"]


def test_the_example_routes_types_and_determinants_and_gives_one_psap_its_own_rules():
    triage = load_file(EXAMPLE).triage
    assert triage.routes["OD"] == "ems" and triage.routes["ALR*"] == "police" and triage.fallback == "police"
    assert triage.determinants["25-A"] == "community"
    university = triage.for_psap("university-psap")
    assert university.version != triage.version and "NOISE" in university.eligible_types
    assert university.exclude == triage.exclude and university.routes == triage.routes
    assert triage.for_psap("valley-ecc") is triage
