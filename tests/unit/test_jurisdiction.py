"""The jurisdiction file: the example loads, and each kind of mistake says where it is."""

from pathlib import Path

import pytest

from shared.jurisdiction import JurisdictionError, load_file, parse

EXAMPLE = Path(__file__).parents[2] / "examples" / "lane-valley.yaml"


def test_the_example_is_a_realistic_mid_size_city():
    j = load_file(EXAMPLE)
    assert len(j.psaps) >= 3 and 3 <= len(j.agencies) <= 4 and len(j.teams) >= 12
    assert {o.role for o in j.oversight} == {"oversight", "admin"}
    assert all(t.home for t in j.teams) and any(t.shifts for t in j.teams)


def _text(**changes: str) -> str:
    text = EXAMPLE.read_text()
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new, 1)
    return text


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("agency: riverbend-crisis", "agency: nobody", "unknown agency nobody"),
        ("timezone: America/Los_Angeles", "timezone: Mars/Olympus", "unknown time zone"),
        (
            "token: demo-psap-university-4e0b8f19",
            "token: env:CAREROUTE_TEST_UNSET_VAR",
            "CAREROUTE_TEST_UNSET_VAR is not set",
        ),
        ("token: demo-psap-university-4e0b8f19", "token: short", "at least 16"),
        ("token: demo-psap-university-4e0b8f19", "token: demo-psap-valley-ecc-7f3a9c2e", "unique"),
        ("    radius_km: 12\n", "    radius_km: 12\n    colour: red\n", "colour"),
    ],
)
def test_mistakes_are_refused_with_a_clear_message(old, new, message):
    with pytest.raises(JurisdictionError) as err:
        parse(_text(**{old: new}), "city.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("city.yaml")


def test_secrets_can_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CAREROUTE_TEST_TOKEN", "a-secret-from-the-environment")
    j = parse(_text(**{"token: demo-psap-university-4e0b8f19": "token: env:CAREROUTE_TEST_TOKEN"}))
    assert j.psaps[2].token == "a-secret-from-the-environment"


def test_not_yaml_and_not_a_mapping_are_refused():
    with pytest.raises(JurisdictionError, match="not valid YAML"):
        parse("a: [b", "x.yaml")
    with pytest.raises(JurisdictionError, match="mapping"):
        parse("- 1\n- 2\n", "x.yaml")
