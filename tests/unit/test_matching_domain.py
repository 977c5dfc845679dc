"""Choosing a team: each eligibility filter, the ranking and its breakdown, hand-back reasons."""

import random
from dataclasses import replace
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from services.matching.domain import (
    CallNeeds,
    Decision,
    TeamSnapshot,
    fairness_penalties,
    needs_for,
    on_shift,
    takes_another,
)
from services.matching.index import RosterIndex
from services.matching.rules import Matching
from shared.geometry import haversine_km, haversine_many_km, in_polygon
from shared.jurisdiction import Shift

TZ = ZoneInfo("America/Los_Angeles")
# A Wednesday, 15:00 local time.
WED_AFTERNOON = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
CALL = (44.0503, -123.0889)
RULES = Matching(version="test")


def team(id_: str, lat: float = 44.051, lon: float = -123.087, **kw) -> TeamSnapshot:
    base = {"agency_id": "a", "radius_km": 10.0, "status": "available", "languages": ("en",), "shifts": ()}
    return TeamSnapshot(id=id_, lat=lat, lon=lon, **{**base, **kw})


def decide(
    teams: list[TeamSnapshot], needs: CallNeeds | None = None, rules: Matching = RULES, **kw: Any
) -> Decision:
    needs = needs or CallNeeds(*CALL)
    return RosterIndex(teams).decide(needs, WED_AFTERNOON, TZ, speed_kmh=40, rules=rules, **kw)


def chosen(
    teams: list[TeamSnapshot], needs: CallNeeds | None = None, rules: Matching = RULES, **kw: Any
) -> list[str]:
    return [c.team.id for c in decide(teams, needs, rules, **kw).candidates]


def test_haversine_matches_a_known_distance_and_the_vectorised_form_agrees():
    # Eugene to Portland, Oregon: about 171 km great-circle.
    assert 165 < haversine_km(44.0521, -123.0868, 45.5152, -122.6784) < 175
    lats, lons = np.array([45.5152, 44.0521]), np.array([-122.6784, -123.0868])
    many = haversine_many_km(44.0521, -123.0868, lats, lons)
    assert many[0] == pytest.approx(haversine_km(44.0521, -123.0868, 45.5152, -122.6784))
    assert many[1] == pytest.approx(0.0, abs=1e-9)


def test_status_filter_only_available_teams_are_candidates():
    teams = [team("free"), team("offered", status="offered"), team("on-scene", status="on_scene")]
    assert chosen(teams) == ["free"]


def test_shift_filter_a_team_off_its_hours_is_not_a_candidate():
    mornings = (Shift(days=["wed"], start=time(8), end=time(12)),)
    afternoons = (Shift(days=["wed"], start=time(12), end=time(18)),)
    assert chosen([team("morning", shifts=mornings), team("afternoon", shifts=afternoons)]) == ["afternoon"]


def test_area_filter_radius_and_polygon():
    square = ((44.04, -123.10), (44.04, -123.08), (44.06, -123.08), (44.06, -123.10))
    elsewhere = ((44.2, -123.3), (44.2, -123.2), (44.3, -123.2))
    teams = [
        team("near-radius"),
        team("out-of-radius", lat=44.30, radius_km=5),
        # A polygon replaces the radius: the home is far away but its area holds the call.
        team("polygon-holds-call", lat=45.0, lon=-122.0, radius_km=1, area=square),
        team("polygon-elsewhere", area=elsewhere),
    ]
    assert sorted(chosen(teams)) == ["near-radius", "polygon-holds-call"]
    assert in_polygon(44.05, -123.09, square) and not in_polygon(44.07, -123.09, square)


def test_skill_filter_every_required_skill_is_needed():
    teams = [
        team("clinician", skills=("licensed_clinician",)),
        team("clinician-youth", skills=("licensed_clinician", "youth")),
        team("peer", skills=("peer_support_specialist",)),
    ]
    needs = CallNeeds(*CALL, required=frozenset({"licensed_clinician", "youth"}))
    assert chosen(teams, needs) == ["clinician-youth"]


def test_language_filter_required_by_default_and_by_primary_subtag():
    teams = [team("en-only"), team("es", languages=("en", "es-US")), team("vi", languages=("vi",))]
    assert chosen(teams, CallNeeds(*CALL, language="es-MX")) == ["es"]
    assert chosen([team("en-only")], CallNeeds(*CALL, language="es")) == []


def test_preferred_language_policy_ranks_a_speaker_before_a_nearer_team():
    teams = [team("near-en", 44.051, -123.087), team("far-es", 44.07, -123.09, languages=("en", "es"))]
    rules = Matching(version="t", language="preferred", language_min=5.0)
    [first, second] = decide(teams, CallNeeds(*CALL, language="es"), rules).candidates
    assert (first.team.id, second.team.id) == ("far-es", "near-en")
    assert first.language_match is True and second.language_match is False
    assert first.language_bonus_min == 5.0 and second.language_bonus_min == 0.0


def test_nearest_team_first_and_tried_teams_excluded():
    teams = [team("far", 44.10, -123.09), team("near", 44.051, -123.087)]
    ranked = decide(teams).candidates
    assert [c.team.id for c in ranked] == ["near", "far"]
    assert ranked[0].eta_min < ranked[1].eta_min
    assert ranked[0].eta_min == pytest.approx(ranked[0].distance_km / 40 * 60)
    assert chosen(teams, exclude=frozenset({"near"})) == ["far"]


def test_a_preferred_skill_outweighs_a_small_eta_difference_and_is_explained():
    teams = [
        team("near", 44.051, -123.087),
        team("peer", 44.06, -123.087, skills=("peer_support_specialist",)),
    ]
    needs = CallNeeds(*CALL, preferred=frozenset({"peer_support_specialist"}))
    best = decide(teams, needs, Matching(version="t", preferred_skill_min=3.0)).candidates[0]
    assert best.team.id == "peer"
    breakdown = best.explain()
    assert breakdown["preferred_skills_matched"] == ["peer_support_specialist"]
    assert breakdown["skill_bonus_min"] == 3.0
    assert breakdown["score_min"] == pytest.approx(breakdown["eta_min"] - 3.0, abs=0.01)


def test_fairness_moves_an_agency_over_its_contracted_share_down():
    teams = [team("busy-agency", agency_id="big"), team("idle-agency", 44.06, -123.087, agency_id="small")]
    shares = {"big": 0.5, "small": 0.5}
    assert chosen(teams, shares=shares, load={}) == ["busy-agency", "idle-agency"]
    # "big" carries every live assignment: 100 % of load against a 50 % share.
    ranked = decide(teams, shares=shares, load={"big": 4}).candidates
    assert [c.team.id for c in ranked] == ["idle-agency", "busy-agency"]
    assert ranked[1].fairness_penalty_min == pytest.approx(RULES.fairness_min * 0.5)
    assert fairness_penalties({"big": 1, "small": 1}, {"big": 0.75, "small": 0.25}, 10) == {
        "big": 0.0,
        "small": pytest.approx(2.5),
    }


def test_overnight_shift_covers_early_hours_of_the_next_day():
    night = (Shift(days=["tue"], start=time(19), end=time(7)),)
    wed_3am = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)  # 03:00 Wednesday in Los Angeles
    wed_8am = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    tue_9pm = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    assert on_shift(night, wed_3am, TZ)
    assert on_shift(night, tue_9pm, TZ)
    assert not on_shift(night, wed_8am, TZ)


@pytest.mark.parametrize(
    ("what", "teams", "needs", "reason"),
    [
        ("no teams at all", [], CallNeeds(*CALL), "no_community_capacity"),
        ("capacity zero", [team("x", capacity=0)], CallNeeds(*CALL), "no_community_capacity"),
        ("out of service", [team("x", status="out_of_service")], CallNeeds(*CALL), "no_community_capacity"),
        (
            "off its hours",
            [team("x", shifts=(Shift(days=["mon"], start=time(8), end=time(9)),))],
            CallNeeds(*CALL),
            "no_team_on_shift",
        ),
        ("too far", [team("x", lat=45.5, lon=-122.6)], CallNeeds(*CALL), "none_in_area"),
        (
            "nobody covers the place, while a far team has capacity and one near has none",
            [team("far", lat=45.5, lon=-122.6), team("out", lat=45.6, lon=-122.6, capacity=0)],
            CallNeeds(*CALL),
            "none_in_area",
        ),
        (
            "the covering team has no capacity, a far one has",
            [team("near", capacity=0), team("far", lat=45.5, lon=-122.6)],
            CallNeeds(*CALL),
            "no_capacity_in_area",
        ),
        (
            "the covering team is out of service, a far one is not",
            [team("near", status="out_of_service"), team("far", lat=45.5, lon=-122.6)],
            CallNeeds(*CALL),
            "no_capacity_in_area",
        ),
        (
            "the covering team with capacity is off its hours, a far one works now",
            [
                team("near", shifts=(Shift(days=["mon"], start=time(8), end=time(9)),)),
                team("far", lat=45.5, lon=-122.6),
            ],
            CallNeeds(*CALL),
            "no_team_on_shift",
        ),
        ("no skill", [team("x")], CallNeeds(*CALL, required=frozenset({"medic"})), "no_skill_or_language"),
        ("no language", [team("x")], CallNeeds(*CALL, language="vi"), "no_skill_or_language"),
        ("busy", [team("x", status="assigned")], CallNeeds(*CALL), "all_busy"),
        (
            "the only covering team's agency shows no sign of life",
            [team("x", reachable=False), team("far", lat=45.5, lon=-122.6)],
            CallNeeds(*CALL),
            "agency_unreachable",
        ),
    ],
)
def test_hand_back_reason_names_the_first_filter_that_left_nobody(what, teams, needs, reason):
    decision = decide(teams, needs)
    assert decision.candidates == [], what
    assert decision.reason == reason, what


def test_funnel_counts_what_each_filter_left():
    teams = [
        team("ok"),
        team("zero", capacity=0),
        team("far", lat=45.5),
        team("busy", status="offered"),
        team("no-es", languages=("en",)),
    ]
    teams = [t if t.id == "no-es" else TeamSnapshot(**{**t.__dict__, "languages": ("es",)}) for t in teams]
    funnel = decide(teams, CallNeeds(*CALL, language="es")).funnel
    assert funnel == {
        "teams": 5,
        "with_capacity": 4,
        "on_shift": 4,
        "in_area": 3,
        "skill_and_language": 2,
        "reachable": 2,
        "available": 1,
    }


def test_a_team_takes_as_many_calls_as_its_capacity():
    status = np.array(["available", "offered", "on_scene", "on_scene", "off_shift", "assigned"], dtype=object)
    held = np.array([0, 1, 1, 2, 0, 0])
    capacity = np.array([2, 2, 2, 2, 2, 1])
    # Free, one place left, one place left, full, set off shift by its agency, busy as set by hand.
    assert takes_another(status, held, capacity).tolist() == [True, True, True, False, False, False]


def test_a_team_with_a_place_left_is_offered_and_a_full_one_is_busy():
    pair = team("pair", capacity=2, held=1, status="on_scene")
    assert chosen([pair]) == ["pair"]
    full = decide([replace(pair, held=2)])
    assert (full.candidates, full.reason) == ([], "all_busy")
    # Load is the calls an agency's teams hold, not the teams holding some.
    index = RosterIndex([pair, team("one", agency_id="b", held=1, status="assigned")])
    assert index.load() == {"a": 1, "b": 1}
    assert RosterIndex([replace(pair, held=2)]).load() == {"a": 2}


def test_skill_rules_map_incident_type_and_screen_answers():
    rules = Matching.model_validate(
        {
            "version": "t",
            "incident_types": {
                "suicthrt": {"required": ["licensed_clinician"], "preferred": ["peer_support_specialist"]}
            },
            "screen": [{"question": "medical", "answer": "unknown", "preferred": ["emt"]}],
        }
    )
    assert needs_for(rules, "SUICTHRT", {"medical": "unknown"}) == (
        {"licensed_clinician"},
        {"peer_support_specialist", "emt"},
    )
    assert needs_for(rules, "WELFARE", {"medical": "no"}) == (set(), set())


def test_the_vectorised_choice_among_10000_teams_equals_a_plain_scan():
    rng = random.Random(4)
    skills = ("emt", "medic", "youth", "licensed_clinician")
    teams = [
        team(
            f"t{i}",
            lat=44.0 + rng.uniform(-0.5, 0.5),
            lon=-123.0 + rng.uniform(-0.5, 0.5),
            radius_km=rng.uniform(3, 30),
            status=rng.choice(("available", "available", "offered")),
            skills=tuple(s for s in skills if rng.random() < 0.4),
            languages=("en", "es") if rng.random() < 0.3 else ("en",),
        )
        for i in range(10_000)
    ]
    needs = CallNeeds(44.05, -123.08, language="es", required=frozenset({"emt"}))
    got = chosen(teams, needs, limit=None)

    def eligible(t: TeamSnapshot) -> bool:
        return (
            t.status == "available"
            and "emt" in t.skills
            and "es" in t.languages
            and haversine_km(44.05, -123.08, t.lat, t.lon) <= t.radius_km
        )

    expected = sorted(
        (t for t in teams if eligible(t)), key=lambda t: (haversine_km(44.05, -123.08, t.lat, t.lon), t.id)
    )
    assert got == [t.id for t in expected]
    assert len(got) > 10


def test_live_state_over_a_kept_index_decides_as_a_fresh_index_would():
    rng = random.Random(7)
    square = ((44.0, -123.1), (44.0, -123.0), (44.1, -123.0), (44.1, -123.1))
    teams = [
        team(
            f"t{i}",
            lat=44.0 + rng.uniform(-0.2, 0.2),
            lon=-123.0 + rng.uniform(-0.2, 0.2),
            area=square if i % 10 == 0 else None,
            skills=("emt",) if i % 2 else (),
        )
        for i in range(500)
    ]
    kept = RosterIndex(teams)
    # Since indexing: statuses, capacities and positions moved; only some teams are near the call.
    now = [
        replace(
            t,
            status=rng.choice(("available", "offered", "out_of_service")),
            capacity=rng.choice((0, 1, 1)),
            lat=t.lat + rng.uniform(-0.05, 0.05),
            lon=t.lon + rng.uniform(-0.05, 0.05),
        )
        for t in teams
        if rng.random() < 0.7
    ]
    live = kept.live(
        (
            [t.id for t in now],
            [t.status for t in now],
            [t.capacity for t in now],
            [t.lat for t in now],
            [t.lon for t in now],
            [False] * len(now),
        )
    )
    needs = CallNeeds(44.05, -123.05, required=frozenset({"emt"}))
    fresh = RosterIndex(now).decide(needs, WED_AFTERNOON, TZ, speed_kmh=40, limit=None)
    again = live.decide(needs, WED_AFTERNOON, TZ, speed_kmh=40, limit=None)
    assert again.funnel == fresh.funnel
    assert [c.explain() for c in again.candidates] == [c.explain() for c in fresh.candidates]
    # The chosen teams carry their current status, capacity and position, not the indexed ones.
    assert [c.team for c in again.candidates] == [c.team for c in fresh.candidates]
    assert len(fresh.candidates) > 5
    with pytest.raises(KeyError):
        kept.live((["unknown"], ["available"], [1], [44.0], [-123.0], [False]))
