"""Zones and the area report: point in polygon, the local hour, the cell-size rule and the figures,
against cases worked by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.audit import areas, outcomes
from services.audit.stories import CallStory
from shared.jurisdiction import Zone

SQUARE = Zone(
    name="downtown", polygon=[(-123.10, 44.04), (-123.07, 44.04), (-123.07, 44.06), (-123.10, 44.06)]
)
# An L: the square's top-right quarter is cut away.
ELL = Zone(
    name="ell",
    polygon=[(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2), (0, 0)],
)
UTC_ZONE = ZoneInfo("UTC")
T0 = datetime(2026, 11, 2, 3, 0, tzinfo=UTC)


def test_a_position_falls_in_the_first_zone_holding_it():
    inner = Zone(name="inner", polygon=[(-123.09, 44.045), (-123.08, 44.045), (-123.08, 44.055)])
    assert areas.zone_of((44.05, -123.09), [SQUARE]) == "downtown"
    assert areas.zone_of((44.07, -123.09), [SQUARE]) == "unzoned"
    assert areas.zone_of(None, [SQUARE]) == "unlocated"
    # Where two zones overlap, the one listed first wins.
    assert areas.zone_of((44.049, -123.081), [inner, SQUARE]) == "inner"
    assert areas.zone_of((44.049, -123.081), [SQUARE, inner]) == "downtown"


def test_a_concave_zone_leaves_out_its_notch():
    assert ELL.contains(0.5, 1.5) and ELL.contains(1.5, 0.5)
    assert not ELL.contains(1.5, 1.5)  # lat 1.5, lon 1.5: the cut-away quarter
    assert not ELL.contains(3, 0.5)


def test_a_location_without_coordinates_has_no_position():
    assert areas.position_of({"lat": 44.05, "lon": -123.09}) == (44.05, -123.09)
    assert areas.position_of({"lat": 0, "lon": 0, "coordinates_known": False}) is None
    for edited in (None, "44,-123", {"lat": "44"}, {"lat": True, "lon": 1}, {"lat": 99.0, "lon": 0}):
        assert areas.position_of(edited) is None


@pytest.mark.parametrize(
    ("counts", "hidden"),
    [
        ([15, 0, 0], [False, True, True]),  # withheld cells hold none: nothing to tell
        ([20, 5, 6], [False, True, True]),  # 5 + 6 = 11 together: neither is told by 20 - total
        ([12, 11, 1], [False, True, True]),  # 1 alone would be 24 - 12 - 11: the 11 goes too
        ([12, 3, 0], [True, True, True]),  # 3 would be 15 - 12: the only shown cell goes too
        ([11], [False]),
        ([10], [True]),
    ],
)
def test_a_line_withholds_small_cells_and_what_would_tell_them(counts, hidden):
    assert areas.withheld(counts) == hidden


def test_a_table_withholds_across_rows_and_columns():
    """[[12, 1], [0, 12]] with totals rows 13, 12; columns 12, 13; all 25. The 1 is withheld; its
    row would tell it (13 - 12), so the 12 beside it goes; its column would tell it (13 - 12), so
    the 12 under it goes. Then every cell is withheld and, with x the bottom-left, the totals say
    only top-left = 12 - x, top-right = 1 + x, bottom-right = 12 - x: any x from 0 to 12 fits."""
    found = areas.suppression([[12, 1], [0, 12]])
    assert found.cells == [[True, True], [True, True]]
    assert found.rows == [False, False] and found.columns == [False, False] and not found.grand
    shown = areas.suppression([[12, 0], [0, 12]])
    assert shown.cells == [[False, True], [True, False]]
    tiny = areas.suppression([[3, 2]])
    assert tiny.grand and tiny.rows == [True] and tiny.cells == [[True, True]]


def _story(minute: int, fate: str, on_scene_min: int | None = None, route: str = "community") -> CallStory:
    """A behavioural-health call received at T0 + `minute` and what became of it."""
    at = T0 + timedelta(minutes=minute)
    story = CallStory(received_at=at, route=route, recommended=route, behavioural=True)
    if fate in ("diverted", "backup"):
        story.accepted = ("a", "agency-a", at + timedelta(minutes=1))
        story.last_team_step = "accepted"
        story.cleared_disposition, story.cleared_at = "18", at + timedelta(minutes=30)
        story.backups = int(fate == "backup")
    if fate == "handed_back":
        story.handed_back, story.last_team_step = ["all_busy"], "handed_back"
    if on_scene_min is not None:
        story.on_scene_at = at + timedelta(minutes=on_scene_min)
    return story


def _report(calls: dict[str, CallStory], zone_by_call: dict[str, str], tz: ZoneInfo = UTC_ZONE):
    fates = outcomes.outcomes(calls, None)
    return areas.areas(calls, fates, zone_by_call, ["downtown", "river"], tz)


def eleven_downtown() -> dict[str, CallStory]:
    """Eleven calls at 03:xx: seven diverted (on scene after 1..7 min), two with a backup request
    (8, 9 min), one handed back, one routed to police (a weapon)."""
    calls = {f"d{k}": _story(k, "diverted", on_scene_min=k) for k in range(1, 8)}
    calls |= {"d8": _story(8, "backup", on_scene_min=8), "d9": _story(9, "backup", on_scene_min=9)}
    calls |= {"d10": _story(10, "handed_back"), "d11": _story(11, "none", route="police")}
    return calls


def test_a_cell_of_eleven_calls_shows_its_figures():
    """11 calls: diverted 7/11 = 0.6364; police involved: 2 with backup + 1 routed to police =
    3/11 = 0.2727; handed back 1/11 = 0.0909. On scene after 1..9 min (9 calls): nearest rank
    p50 = the ceil(4.5) = 5th = 300 s, p90 = the ceil(8.1) = 9th = 540 s."""
    calls = eleven_downtown()
    report = _report(calls, dict.fromkeys(calls, "downtown"))
    downtown = report["zones"][0]
    expected = {
        "suppressed": False,
        "calls": 11,
        "diversion_rate": 0.6364,
        "police_involvement_rate": 0.2727,
        "hand_back_rate": 0.0909,
        "call_to_on_scene_s": {"count": 9, "p50": 300.0, "p90": 540.0},
    }
    assert downtown["zone"] == "downtown" and downtown["total"] == expected
    assert downtown["hours"][3] == {"hour": 3, **expected}
    assert report["total"] == expected and report["hours"][3] == {"hour": 3, **expected}
    assert [z["zone"] for z in report["zones"]] == ["downtown", "river", "unzoned", "unlocated"]
    # Every other cell is empty, withheld with no figure at all.
    for h in (0, 4, 23):
        assert downtown["hours"][h]["suppressed"] and downtown["hours"][h]["calls"] is None
    river = report["zones"][1]["total"]
    assert river["suppressed"] and set(river) == set(expected)
    assert all(value is None for key, value in river.items() if key != "suppressed")


def test_one_call_elsewhere_withholds_what_would_tell_it():
    """A twelfth call, unzoned: the zone totals 11, 0, 1, 0 under the grand total 12 would tell it
    (12 - 11), so downtown's total goes too, and with it its hours; hour 3 over all zones (12)
    and the grand total stay."""
    calls = eleven_downtown() | {"u1": _story(20, "diverted", on_scene_min=5)}
    report = _report(calls, {**dict.fromkeys(calls, "downtown"), "u1": "unzoned"})
    assert [z["total"]["suppressed"] for z in report["zones"]] == [True, True, True, True]
    assert all(h["suppressed"] for z in report["zones"] for h in z["hours"])
    assert report["total"]["calls"] == 12 and report["hours"][3]["calls"] == 12


def test_hours_are_the_jurisdictions_local_hours_across_daylight_saving():
    """11:30Z on Monday 2 November 2026 is 03:30 PST (UTC-8); 10:30Z on Monday 6 July is 03:30
    PDT (UTC-7): both in hour 3 in Los Angeles, hours 11 and 10 in UTC."""
    la = ZoneInfo("America/Los_Angeles")
    winter, summer = datetime(2026, 11, 2, 11, 30, tzinfo=UTC), datetime(2026, 7, 6, 10, 30, tzinfo=UTC)
    calls = {}
    for k in range(6):
        for name, at in (("w", winter), ("s", summer)):
            calls[f"{name}{k}"] = CallStory(
                received_at=at + timedelta(seconds=k), route="police", behavioural=True
            )
    local = _report(calls, dict.fromkeys(calls, "downtown"), la)
    assert local["hours"][3]["calls"] == 12
    utc = _report(calls, dict.fromkeys(calls, "downtown"))
    assert utc["hours"][11]["suppressed"] and utc["hours"][10]["suppressed"] and utc["total"]["calls"] == 12
