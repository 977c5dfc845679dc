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
