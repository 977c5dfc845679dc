"""The reports as CSV: which of JSON or CSV a request's Accept asks for, each table's columns and
rows, and a withheld cell that reads `suppressed` in every figure, never a number."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.audit import api, outcomes, reports, shadow, tables, workforce
from shared.auth import Principal
from shared.domain_errors import NotAcceptable
from shared.errors import install_error_handlers
from tests.unit.test_areas import _report, _story, eleven_downtown
from tests.unit.test_reports import public_events
from tests.unit.test_workforce import LA, TEAMS, WEEK, week_of_calls


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, tables.JSON),
        ("", tables.JSON),
        ("*/*", tables.JSON),
        ("application/json", tables.JSON),
        ("text/csv", tables.CSV),
        ("text/csv; charset=utf-8", tables.CSV),
        ("TEXT/CSV", tables.CSV),
        ("text/*", tables.CSV),
        # Weights decide; an exact type beats a wildcard; on a tie JSON, the API's own answer.
        ("application/json;q=0.5, text/csv", tables.CSV),
        ("text/csv;q=0.9, application/json", tables.JSON),
        ("*/*;q=1, text/csv;q=1", tables.CSV),
        ("text/csv, application/json", tables.JSON),
        ("text/html, text/csv;q=0.8", tables.CSV),
    ],
)
def test_the_accept_header_chooses_json_or_csv(accept: str | None, media: str):
    assert tables.chosen(accept) == media


@pytest.mark.parametrize(
    "accept", ["image/png", "text/html", "application/xml, text/plain", "text/csv;q=0", "text/csv;q=x"]
)
def test_an_accept_header_naming_neither_is_refused_with_a_code(accept: str):
    with pytest.raises(NotAcceptable) as refused:
        tables.chosen(accept)
    assert refused.value.code == "not_acceptable"


async def test_a_report_route_answers_406_before_any_query():
    """No pool is there: the Accept header is refused before the route would read the trail."""
    app = FastAPI()
    install_error_handlers(app)

    class Oversight:
        async def admit(self, request: object, roles: object) -> Principal:
            return Principal("civilian-review-board", "oversight")

    app.state.auth = Oversight()
    app.state.pool = None  # never reached: any query would fail on it
    app.include_router(api.reports_router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://audit") as http:
        answer = await http.get("/v1/reports/summary", headers={"Accept": "image/png"})
    assert answer.status_code == 406 and answer.json()["code"] == "not_acceptable"


def test_the_summary_is_one_row_per_figure():
    summary: dict[str, Any] = {"from": None, "to": None, "agency": None, **reports.summary(public_events())}
    found = rows(tables.summary(summary))
    assert list(found[0]) == list(tables.SUMMARY_COLUMNS)

    def value(section: str, item: str, group: str = "", measure: str = "calls") -> str:
        (row,) = [
            r
            for r in found
            if (r["section"], r["group"], r["item"], r["measure"]) == (section, group, item, measure)
        ]
        return row["value"]

    assert value("funnel", "received") == str(summary["funnel"]["received"])
    assert value("period", "timezone", measure="") == "UTC"
    for code, n in summary["outcomes"]["totals"].items():
        assert value("outcome", code) == str(n)
    for code, reasons in summary["outcomes"]["reasons"].items():
        for reason, n in reasons.items():
            assert value("outcome_reason", reason, code) == str(n)
    stage = summary["times_by_agency"]["agency-a"]["received_to_offered_s"]
    assert value("time_s", "received_to_offered_s", "agency-a", "p90") == str(stage["p90"])
    assert value("backup_requests", "", measure="requests") == "1"
    gaps = [r for r in found if r["section"] == "coverage_gap"]
    assert len(gaps) == 168 and (gaps[3]["group"], gaps[3]["item"], gaps[3]["value"]) == ("mon", "03:00", "1")
    assert sum(int(r["value"]) for r in gaps) == 1


def test_a_withheld_area_cell_reads_suppressed_in_every_figure():
    """Eleven calls downtown at 03:xx and one elsewhere: every zone is withheld (the twelfth would
    be told by subtraction), the grand total and hour 3 over all zones shown."""
    calls = eleven_downtown() | {"u1": _story(20, "diverted", on_scene_min=5)}
    report = {"from": None, "to": None, "timezone": "UTC"}
    report |= _report(calls, {**dict.fromkeys(calls, "downtown"), "u1": "unzoned"})
    found = rows(tables.areas(report))
    assert list(found[0]) == list(tables.AREA_COLUMNS)
    figures = tables.AREA_COLUMNS[2:]
    by = {(r["zone"], r["hour"]): r for r in found}
    assert len(found) == 1 + 4 * 25 + 24
    for zone in ("downtown", "river", "unzoned", "unlocated"):
        for hour in ["all", *(f"{h:02d}" for h in range(24))]:
            assert [by[(zone, hour)][c] for c in figures] == ["suppressed"] * len(figures), (zone, hour)
    assert by[("all", "all")]["calls"] == "12"
    assert by[("all", "03")]["calls"] == "12" and by[("all", "04")]["calls"] == "suppressed"


def test_a_shown_area_cell_has_its_figures():
    calls = eleven_downtown()
    report = {"from": None, "to": None, "timezone": "UTC"} | _report(calls, dict.fromkeys(calls, "downtown"))
    row = next(r for r in rows(tables.areas(report)) if (r["zone"], r["hour"]) == ("downtown", "03"))
    assert row == {
        "zone": "downtown",
        "hour": "03",
        "calls": "11",
        "diversion_rate": "0.6364",
        "police_involvement_rate": "0.2727",
        "hand_back_rate": "0.0909",
        "on_scene_count": "9",
        "on_scene_p50_s": "300.0",
        "on_scene_p90_s": "540.0",
    }


def test_the_workforce_is_one_row_per_hour_of_the_week():
    calls = week_of_calls()
    report = workforce.workforce(calls, outcomes.outcomes(calls, None), WEEK, LA, TEAMS, 0.9, 15)
    found = rows(tables.workforce(report))
    assert len(found) == 168 and list(found[0]) == list(tables.WORKFORCE_COLUMNS)
    monday_03 = found[3]
    assert (monday_03["day"], monday_03["arrivals"], monday_03["teams_needed"]) == ("mon", "12", "3")
    assert monday_03["shortfall"] == "1"
    # Without a busy time observed there is no staffing figure: an empty cell, never a zero.
    unknown = rows(tables.workforce(workforce.workforce({}, {}, WEEK, LA, TEAMS, 0.9, 15)))
    assert unknown[3]["teams_needed"] == "" and unknown[3]["shortfall"] == ""


def test_the_shadow_differences_are_one_row_per_pair_of_routes():
    compared = [
        shadow.Compared("c1", "review", "community"),
        shadow.Compared("c2", "review", "community"),
        shadow.Compared("c3", "police", "police"),
        shadow.Compared("c4", "community", "police"),
    ]
    found = rows(tables.shadow(shadow.differences(compared)))
    assert found == [
        {"active_route": "review", "other_route": "community", "calls": "2", "call_ids": "c1 c2"},
        {"active_route": "community", "other_route": "police", "calls": "1", "call_ids": "c4"},
    ]


def test_a_value_holding_a_comma_or_quote_stays_one_cell():
    text = tables.render(("a", "b"), [['x, "y"', None]])
    assert text == 'a,b\r\n"x, ""y""",\r\n'
