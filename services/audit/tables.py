"""The reports as CSV, for an analyst's spreadsheet, and which of JSON or CSV a request asks for. Pure.

Each table names its columns (an allow-list: nothing a report might grow reaches a CSV unnamed),
and a withheld cell of the area report reads `suppressed` in every figure, never a number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from shared.domain_errors import NotAcceptable
from shared.jurisdiction import WEEKDAYS

Media = Literal["application/json", "text/csv"]
CSV: Media = "text/csv"
JSON: Media = "application/json"
SUPPRESSED = "suppressed"


_OFFERED: dict[str, Media] = {
    "application/json": JSON,
    "application/*": JSON,
    "*/*": JSON,
    "text/csv": CSV,
    "text/*": CSV,
}


def _weight(params: Sequence[str]) -> float:
    """The q of a media range's parameters (1 without one, 0 when it is not a number)."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def chosen(accept: str | None) -> Media:
    """JSON or CSV, whichever the Accept header prefers (JSON on a tie or without one); NotAcceptable
    (`not_acceptable`) when it accepts neither."""
    if accept is None or not accept.strip():
        return JSON
    # Rank by weight, then an exact type over a wildcard, then JSON (the API's own answer).
    ranked: list[tuple[tuple[float, bool, bool], Media]] = []
    for part in accept.split(","):
        media, *params = (p.strip().lower() for p in part.split(";"))
        offered = _OFFERED.get(media)
        q = _weight(params)
        if offered is not None and 0 < q <= 1:
            ranked.append(((q, "*" not in media, offered == JSON), offered))
    best = max(ranked, default=None)
    if best is None:
        raise NotAcceptable(
            f"this report answers {JSON} or {CSV} (Accept: {accept[:100]!r})", "not_acceptable"
        )
    return best[1]


def render(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A CSV document (RFC 4180, CRLF line ends): the header, then each row; None is an empty cell."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def _period(report: Mapping[str, Any]) -> list[list[Any]]:
    return [
        ["period", "", "from", "", _iso(report.get("from"))],
        ["period", "", "to", "", _iso(report.get("to"))],
    ]


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


SUMMARY_COLUMNS = ("section", "group", "item", "measure", "value")
PERCENTILES = ("count", "p50", "p90", "p99")


def summary(report: Mapping[str, Any]) -> str:
    """The summary as one long table: a row per figure (section, group, item, measure, value)."""
    rows = _period(report)
    rows.append(["period", "", "timezone", "", report["timezone"]])
    rows.append(["period", "", "agency", "", report.get("agency")])
    rows += [["funnel", "", step, "calls", n] for step, n in report["funnel"].items()]
    out = report["outcomes"]
    rows += [["outcome", "", code, "calls", n] for code, n in out["totals"].items()]
    for code, reasons in out["reasons"].items():
        rows += [["outcome_reason", code, reason, "calls", n] for reason, n in reasons.items()]
    rows += [["override", "", key, "calls", n] for key, n in report["overrides"].items()]
    rows += [["hand_back", "", reason, "calls", n] for reason, n in report["hand_backs"].items()]
    rows.append(["backup_requests", "", "", "requests", report["backup_requests"]])
    for agency, stages in report["times_by_agency"].items():
        for stage, figures in stages.items():
            rows += [["time_s", agency, stage, m, figures[m]] for m in PERCENTILES]
    commitment = report["time_to_commitment_s"]
    rows += [["time_s", "all", "time_to_commitment_s", m, commitment[m]] for m in PERCENTILES]
    for slot, n in enumerate(report["coverage_gaps_by_hour_of_week"]):
        rows.append(["coverage_gap", WEEKDAYS[slot // 24], f"{slot % 24:02d}:00", "calls", n])
    return render(SUMMARY_COLUMNS, rows)


AREA_COLUMNS = (
    "zone",
    "hour",
    "calls",
    "diversion_rate",
    "police_involvement_rate",
    "hand_back_rate",
    "on_scene_count",
    "on_scene_p50_s",
    "on_scene_p90_s",
)


def _area_row(zone: str, hour: str, cell: Mapping[str, Any]) -> list[Any]:
    if cell["suppressed"]:
        return [zone, hour, *[SUPPRESSED] * (len(AREA_COLUMNS) - 2)]
    times = cell["call_to_on_scene_s"] or {}
    return [
        zone,
        hour,
        cell["calls"],
        cell["diversion_rate"],
        cell["police_involvement_rate"],
        cell["hand_back_rate"],
        times.get("count"),
        times.get("p50"),
        times.get("p90"),
    ]


def areas(report: Mapping[str, Any]) -> str:
    """The area report: all calls, each zone over all hours then hour by hour, each hour over all
    zones; a withheld cell says `suppressed` in every figure."""
    rows = [_area_row("all", "all", report["total"])]
    for zone in report["zones"]:
        rows.append(_area_row(zone["zone"], "all", zone["total"]))
        rows += [_area_row(zone["zone"], f"{h['hour']:02d}", h) for h in zone["hours"]]
    rows += [_area_row("all", f"{h['hour']:02d}", h) for h in report["hours"]]
    return render(AREA_COLUMNS, rows)


WORKFORCE_COLUMNS = (
    "hour_of_week",
    "day",
    "hour",
    "observed_hours",
    "arrivals",
    "arrivals_per_h",
    "load_erlangs",
    "teams_needed",
    "teams_on_shift",
    "places_on_shift",
    "shortfall",
    "share_within_on_shift",
)


def workforce(report: Mapping[str, Any]) -> str:
    """The workforce report: one row per hour of the week (Monday 00:00 is 0, local time)."""
    return render(WORKFORCE_COLUMNS, ([h[c] for c in WORKFORCE_COLUMNS] for h in report["hours"]))


SHADOW_COLUMNS = ("active_route", "other_route", "calls", "call_ids")


def shadow(report: Mapping[str, Any]) -> str:
    """The shadow differences: one row per pair of routes, its call ids separated by spaces."""
    rows = ([p["active"], p["other"], p["calls"], " ".join(p["call_ids"])] for p in report["pairs"])
    return render(SHADOW_COLUMNS, rows)
