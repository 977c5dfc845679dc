"""The oversight summary of a scenario whose answers are known, computed from redacted events."""

import json
from typing import Any

from services.audit import domain, reports
from tests.audit_scenario import EXPECTED, scenario


def public_events() -> list[dict[str, Any]]:
    return [domain.redact(json.loads(e.to_bytes())) for e in scenario()]


def test_the_summary_of_the_scenario_has_the_known_figures():
    assert reports.summary(public_events()) == EXPECTED


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
