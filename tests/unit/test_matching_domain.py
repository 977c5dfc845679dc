"""Ranking teams: availability, area, shifts across midnight, language, distance."""

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from services.matching.domain import TeamSnapshot, haversine_km, no_candidate_reason, on_shift, rank
from shared.jurisdiction import Shift

TZ = ZoneInfo("America/Los_Angeles")
# A Wednesday, 15:00 local time.
WED_AFTERNOON = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)


def team(id_: str, lat: float, lon: float, **kw) -> TeamSnapshot:
    base = {"agency_id": "a", "radius_km": 10.0, "status": "available", "languages": ("en",), "shifts": ()}
    return TeamSnapshot(id=id_, lat=lat, lon=lon, **{**base, **kw})


def test_haversine_matches_a_known_distance():
    # Eugene to Portland, Oregon: about 171 km great-circle.
    assert 165 < haversine_km(44.0521, -123.0868, 45.5152, -122.6784) < 175


def test_nearest_available_team_in_area_comes_first():
    teams = [
        team("far", 44.10, -123.09),
        team("near", 44.051, -123.087),
        team("busy", 44.0505, -123.0869, status="offered"),
        team("out-of-area", 44.30, -123.09),
    ]
    ranked = rank(teams, 44.0503, -123.0889, None, WED_AFTERNOON, TZ, speed_kmh=40)
    assert [c.team.id for c in ranked] == ["near", "far"]
    assert ranked[0].eta_min < ranked[1].eta_min


def test_a_team_speaking_the_callers_language_ranks_before_a_nearer_one():
    teams = [team("near-en", 44.051, -123.087), team("far-es", 44.07, -123.09, languages=("en", "es"))]
    ranked = rank(teams, 44.0503, -123.0889, "es-MX", WED_AFTERNOON, TZ, speed_kmh=40)
    assert [c.team.id for c in ranked] == ["far-es", "near-en"]
    assert ranked[0].language_match is True


def test_tried_teams_are_excluded():
    teams = [team("a", 44.051, -123.087), team("b", 44.06, -123.087)]
    ranked = rank(teams, 44.05, -123.088, None, WED_AFTERNOON, TZ, speed_kmh=40, exclude=frozenset({"a"}))
    assert [c.team.id for c in ranked] == ["b"]


def test_overnight_shift_covers_early_hours_of_the_next_day():
    night = (Shift(days=["tue"], start=time(19), end=time(7)),)
    wed_3am = datetime(2026, 11, 25, 11, 0, tzinfo=UTC)  # 03:00 Wednesday in Los Angeles
    wed_8am = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    tue_9pm = datetime(2026, 11, 25, 5, 0, tzinfo=UTC)
    assert on_shift(night, wed_3am, TZ)
    assert on_shift(night, tue_9pm, TZ)
    assert not on_shift(night, wed_8am, TZ)


def test_hand_back_reason_names_what_was_missing():
    day = (Shift(days=["mon"], start=time(8), end=time(9)),)
    assert no_candidate_reason(
        [team("x", 44.05, -123.08, shifts=day)], 44.05, -123.08, WED_AFTERNOON, TZ
    ) == ("no_team_on_shift")
    assert no_candidate_reason([team("x", 45.5, -122.6)], 44.05, -123.08, WED_AFTERNOON, TZ) == "none_in_area"
    assert (
        no_candidate_reason([team("x", 44.05, -123.08, status="assigned")], 44.05, -123.08, WED_AFTERNOON, TZ)
        == "all_busy"
    )
