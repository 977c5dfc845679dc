"""The timers that watch an accepted assignment: which runs in each state, when it runs out, how a
miss escalates, and the jurisdiction section that sets them."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from services.notify.rules import DEFAULT_WATCH, Watch, watch_rules
from services.notify.watch import Running, missed, started
from shared.jurisdiction import Jurisdiction
from tools.jurisdictions import small

T = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)
RULES = Watch(
    en_route_within_min=5, on_scene_margin_min=10, eta_unknown_min=30, check_in_every_min=20, psap_after_min=3
)


def minutes_allowed(state: str, eta_min: float | None = None) -> float:
    running = started(state, T, RULES, eta_min)
    assert running is not None and running.fire_at == running.due_at and running.stage == "running"
    return (running.due_at - T).total_seconds() / 60


def test_each_state_after_the_accept_runs_its_own_timer_and_the_rest_none():
    assert started("accepted", T, RULES) == Running(
        "en_route", T + timedelta(minutes=5), "running", T + timedelta(minutes=5)
    )
    assert minutes_allowed("on_scene") == 20
    for state in ("offered", "declined", "expired", "withdrawn", "cleared"):
        assert started(state, T, RULES) is None, state


def test_the_on_scene_timer_allows_the_eta_the_team_gave_or_the_estimate_plus_the_margin():
    assert minutes_allowed("en_route", eta_min=12) == 22
    assert minutes_allowed("en_route", eta_min=0) == 10
    # No ETA at all (an offer from before matching sent one): the jurisdiction's stand-in.
    assert minutes_allowed("en_route") == 40


def test_a_miss_re_pages_the_agency_then_tells_the_psap_after_the_grace_then_fires_no_more():
    running = started("accepted", T, RULES)
    assert running is not None
    first = missed(running, RULES)
    assert first.escalation == "agency_repaged"
    # The grace counts from when the timer ran out, not from when the job got to it.
    assert first.after == Running(
        "en_route", running.due_at, "repaged", running.due_at + timedelta(minutes=3)
    )
    second = missed(first.after, RULES)
    assert second.escalation == "psap_told"
    assert second.after == Running("en_route", running.due_at, "overdue", None)
    with pytest.raises(ValueError, match="no more"):
        missed(second.after, RULES)


def deployment(watch: dict[str, Any] | None = None) -> Jurisdiction:
    agency = {"id": "crisis", "name": "Crisis", "token": "unit-agency-token-0001"}
    team = {"id": "t-1", "agency": "crisis", "name": "T1", "home": {"lat": 44.0, "lon": -123.0}}
    return small(psap_token="unit-psap-token-0001", agencies=[agency], teams=[team], watch=watch)


def test_the_watch_section_has_defaults_and_refuses_what_makes_no_sense():
    assert watch_rules(deployment()) == DEFAULT_WATCH
    assert (DEFAULT_WATCH.en_route_within_min, DEFAULT_WATCH.check_in_every_min) == (5, 20)
    given = watch_rules(deployment(watch={"en_route_within_min": 7, "check_in_every_min": 15}))
    assert (given.en_route_within_min, given.check_in_every_min, given.psap_after_min) == (7, 15, 5)
    for bad in ({"check_in_every_min": 0}, {"en_route_within_min": "soon"}, {"unknown_key": 1}):
        with pytest.raises(ValidationError, match="watch"):
            deployment(watch=bad)
