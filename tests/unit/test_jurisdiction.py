"""The jurisdiction file: the example loads, and each kind of mistake says where it is."""

import re
from pathlib import Path

import pytest

from services.jurisdiction import load_file, parse
from shared.jurisdiction import JurisdictionError

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


SECRETS = (
    "demo-psap-valley-ecc-7f3a9c2e",
    "demo-signing-valley-ecc-5b8d1e04",
    "demo-agency-valley-bh-1a9e7c33",
    "demo-oversight-review-board-0e4f7a2d",
)


@pytest.mark.parametrize(
    ("what", "changes"),
    [
        ("a token too short", {"token: demo-psap-university-4e0b8f19": "token: s3cr3t-x9"}),
        (
            "a signing secret of the wrong type",
            {
                "signing_secret: demo-signing-valley-ecc-5b8d1e04": (
                    "signing_secret: [demo-signing-valley-ecc-5b8d1e04]"
                )
            },
        ),
        ("a webhook channel without a webhook", {"channels: [kafka]": "channels: [kafka, webhook]"}),
        (
            "a token used twice",
            {"token: demo-psap-university-4e0b8f19": "token: demo-agency-valley-bh-1a9e7c33"},
        ),
        ("a duplicate team id", {"id: rb-2": "id: rb-1"}),
        (
            "an unknown key beside a secret",
            {
                "signing_secret: demo-signing-valley-ecc-5b8d1e04\n": (
                    "signing_secret: demo-signing-valley-ecc-5b8d1e04\n    colour: red\n"
                )
            },
        ),
        (
            "a broken YAML line holding a token",
            {"token: demo-psap-valley-ecc-7f3a9c2e": "token: demo-psap-valley-ecc-7f3a9c2e: ["},
        ),
        (
            "an unclosed quote after a token",
            {"token: demo-psap-valley-ecc-7f3a9c2e": 'token: "demo-psap-valley-ecc-7f3a9c2e'},
        ),
    ],
)
def test_no_secret_ever_appears_in_a_validation_error(what, changes):
    with pytest.raises(JurisdictionError) as err:
        parse(_text(**changes), "city.yaml")
    message = str(err.value)
    assert message.startswith("city.yaml"), what
    for secret in (*SECRETS, "s3cr3t-x9"):
        assert secret not in message, (what, message)


def test_a_secret_from_the_environment_stays_out_of_the_error(monkeypatch):
    monkeypatch.setenv("CAREROUTE_TEST_TOKEN", "env-short-9")
    with pytest.raises(JurisdictionError) as err:
        parse(
            _text(**{"token: demo-psap-university-4e0b8f19": "token: env:CAREROUTE_TEST_TOKEN"}), "city.yaml"
        )
    assert "at least 16" in str(err.value) and "psaps.2.token" in str(err.value)
    assert "env-short-9" not in str(err.value)


def test_a_yaml_mistake_still_says_where():
    with pytest.raises(JurisdictionError) as err:
        parse(
            _text(**{"token: demo-psap-valley-ecc-7f3a9c2e": "token: demo-psap-valley-ecc-7f3a9c2e: ["}),
            "x.yaml",
        )
    line = EXAMPLE.read_text().splitlines().index("    token: demo-psap-valley-ecc-7f3a9c2e") + 1
    assert "not valid YAML" in str(err.value) and f"line {line}," in str(err.value)


def _renamed(**changes: str) -> str:
    text = EXAMPLE.read_text()
    for old, new in changes.items():
        assert old in text
        text = text.replace(old, new)
    return text


def test_psap_and_agency_ids_may_be_domain_names():
    j = parse(
        _renamed(
            **{
                "id: university-psap": "id: psap.university.example.edu",
                "university-psap:\n      version": "psap.university.example.edu:\n      version",
                "id: campus-care\n": "id: care.campus.example.edu\n",
                "agency: campus-care": "agency: care.campus.example.edu",
                "token: demo-psap-valley-ecc-7f3a9c2e": "token: demo-psap-valley-ecc-7f3a9c2e\n"
                "    eido_agencies: [ecc.valley.example.gov]",
            }
        )
    )
    assert {p.id for p in j.psaps} >= {"psap.university.example.edu"}
    assert j.psaps[0].eido_agencies == ["ecc.valley.example.gov"]
    assert "care.campus.example.edu" in {a.id for a in j.agencies}
    assert j.triage.for_psap("psap.university.example.edu").version != j.triage.version


@pytest.mark.parametrize(
    ("new", "message"),
    [
        ("psap..example.edu", "should match pattern"),
        (".psap", "should match pattern"),
        ("Psap.Example.edu", "should match pattern"),
        (f"{'a' * 60}.{'b' * 60}.{'c' * 10}", "at most 128"),
    ],
)
def test_psap_ids_that_are_not_domain_names_are_refused(new, message):
    with pytest.raises(JurisdictionError, match=message):
        parse(_text(**{"id: university-psap": f"id: {new}"}), "city.yaml")


def test_an_agency_id_that_continues_another_at_a_dot_is_refused():
    text = _renamed(
        **{
            "id: campus-care\n": "id: riverbend-crisis.campus\n",
            "agency: campus-care": "agency: riverbend-crisis.campus",
        }
    )
    with pytest.raises(
        JurisdictionError, match=r"agency id riverbend-crisis\.campus continues agency id riverbend-crisis"
    ):
        parse(text, "city.yaml")


SQUARE = "[[-123.10, 44.04], [-123.07, 44.04], [-123.07, 44.06], [-123.10, 44.06]]"


def _with_zones(zones: str) -> str:
    """The example with its zones replaced by `zones`."""
    return EXAMPLE.read_text().split("\nzones:\n")[0] + f"\nzones:\n{zones}\n"


def test_zones_are_named_rings_closed_or_not():
    j = parse(_with_zones(f"  - name: downtown\n    polygon: {SQUARE}\n"))
    closed = parse(_with_zones(f"  - name: downtown\n    polygon: {SQUARE[:-1]}, [-123.10, 44.04]]\n"))
    assert j.zones == closed.zones and len(j.zones[0].polygon) == 4
    assert j.zones[0].contains(44.05, -123.09) and not j.zones[0].contains(44.05, -123.0)
    assert [z.name for z in load_file(EXAMPLE).zones] == ["campus", "downtown", "springfield", "river-road"]


@pytest.mark.parametrize(
    ("zones", "message"),
    [
        ("  - name: a\n    polygon: [[0, 0], [1, 1], [0, 0]]\n", "at least three distinct corners"),
        ("  - name: a\n    polygon: [[0, 0], [1, 1], [2, 2]]\n", "encloses no area"),
        ("  - name: a\n    polygon: [[0, 0], [1, 95], [2, 0]]\n", "is not [lon, lat]"),
        (f"  - name: a\n    polygon: {SQUARE}\n  - name: a\n    polygon: {SQUARE}\n", "duplicate zone ids"),
        (f"  - name: unzoned\n    polygon: {SQUARE}\n", "reserved"),
        (f"  - name: Down Town\n    polygon: {SQUARE}\n", "name"),
    ],
)
def test_a_zone_that_is_not_a_polygon_or_not_unique_is_refused(zones, message):
    with pytest.raises(JurisdictionError, match=re.escape(message)):
        parse(_with_zones(zones))
