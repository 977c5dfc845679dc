"""The oversight summary of a scenario whose answers are known, computed from redacted events."""

import json
from typing import Any
from zoneinfo import ZoneInfo

from services.audit import domain, reports, shadow
from tests.audit_scenario import EXPECTED, scenario, timer_missed


def public_events() -> list[dict[str, Any]]:
    return [domain.redact(json.loads(e.to_bytes())) for e in scenario()]


def test_the_summary_of_the_scenario_has_the_known_figures():
    assert reports.summary(public_events()) == EXPECTED


def test_coverage_gaps_by_hour_of_week_are_read_in_the_jurisdictions_time_zone():
    """The scenario's gap came in on Monday 03:00 UTC: Sunday 19:00 in Los Angeles (PST), the
    week's hour 6 x 24 + 19 = 163; the UTC hours stay as they were."""
    found = reports.summary(public_events(), tz=ZoneInfo("America/Los_Angeles"))
    assert found["timezone"] == "America/Los_Angeles"
    assert found["coverage_gaps_by_hour_of_week"] == [int(slot == 163) for slot in range(168)]
    assert found["coverage_gaps_by_hour_utc"] == {"3": 1}


def test_missed_timers_are_counted_by_agency_each_once_and_the_psap_told_apart():
    """c1's en route late (A re-paged, answered in the grace); c2's check-in missed twice, the
    second time past the grace (the PSAP told); a miss of a call received elsewhere is not counted."""
    misses = [
        timer_missed("c1", 1, "agency-a", 420, "en_route", "agency_repaged"),
        timer_missed("c2", 2, "agency-b", 650, "check_in", "agency_repaged"),
        timer_missed("c2", 2, "agency-b", 700, "check_in", "agency_repaged"),
        timer_missed("c2", 2, "agency-b", 800, "check_in", "psap_told"),
        timer_missed("c9", 1, "agency-a", 800, "on_scene", "agency_repaged"),
    ]
    events = public_events() + [domain.redact(json.loads(e.to_bytes())) for e in misses]
    assert reports.summary(events)["missed_timers"] == {
        "agency-a": {"en_route": 1, "on_scene": 0, "check_in": 0, "psap_told": 0},
        "agency-b": {"en_route": 0, "on_scene": 0, "check_in": 2, "psap_told": 1},
    }
    assert set(reports.summary(events, "agency-a")["missed_timers"]) == {"agency-a"}


def test_an_agency_filter_keeps_only_the_calls_it_touched():
    only_b = reports.summary(public_events(), "agency-b")
    assert only_b["funnel"]["received"] == 1 and only_b["funnel"]["accepted"] == 1
    assert only_b["backup_requests"] == 1 and only_b["funnel"]["cleared_without_police"] == 0


def test_percentiles_use_the_nearest_rank():
    assert reports.percentiles([float(x) for x in range(1, 101)]) == {
        "count": 100,
        "p50": 50.0,
        "p90": 90.0,
        "p99": 99.0,
    }


def test_a_stored_row_of_any_shape_leaves_the_report_whole():
    """Rows as audit may hold them: a flagged `calls.received.v1` (header, `data` {}), one whose
    header lost its time, one whose time has no offset, a view that is a string, data that is a list,
    a decision and codes of other shapes. Before, the missing time was a KeyError, the string a
    TypeError and the offset-less time could not be compared: the report answered 500."""
    rows: list[Any] = [
        {"type": "calls.received.v1", "subject": "flagged", "time": "2026-01-01T00:00:00Z", "data": {}},
        {"type": "calls.received.v1", "subject": "no-time", "data": {}},
        {"type": "calls.received.v1", "subject": "naive", "time": "2026-01-01T00:00:00", "data": []},
        {"type": "assignments.offered.v1", "subject": "naive", "time": "2026-01-01T00:01:00Z", "data": {}},
        "not an event",
        {
            "type": "calls.received.v1",
            "subject": "odd",
            "time": "2026-01-01T00:00:00Z",
            "data": {"decision": {"route": 3, "codes": [7, {"code": "type_routed", "params": "x"}]}},
        },
    ]
    found = reports.summary(rows)
    assert found["funnel"]["received"] == 3 and found["funnel"]["offered"] == 1
    assert shadow.differences(shadow.from_trail(rows))["compared"] == 0
