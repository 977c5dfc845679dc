"""The benchmark's time to commitment: each call ends at whichever came first, an accepting team or
its hand-back; the deadlines it states are the ones the services read."""

import pytest

from services.matching.settings import MatchingSettings
from services.notify.settings import NotifySettings
from tools.bench.commitment import Ledger, deadline_env, deadlines, figures


def test_each_call_is_timed_to_its_first_commitment_and_open_calls_are_counted_apart():
    ledger = Ledger(
        sent_at={f"c{n}": 100.0 for n in range(5)},
        accepted_at={"c0": 110.0, "c1": 130.0, "c3": 300.0},
        handed_back={"c2": (220.0, "no_acceptance_in_time"), "c3": (221.0, "no_acceptance_in_time")},
    )
    found = figures(ledger)
    # c0 10 s and c1 30 s accepted, c2 120 s handed back, c3 handed back at 121 s before its late
    # accept; c4 neither.
    assert found["count"] == 4
    assert (found["p50"], found["p90"], found["p99"]) == (30.0, 121.0, 121.0)
    assert found["accepted"] == 2
    assert found["handed_back"] == {"no_acceptance_in_time": 2}
    assert found["open_at_end"] == 1
    assert ledger.open_calls() == ["c4"]


def test_no_commitment_yet_gives_no_percentiles():
    found = figures(Ledger(sent_at={"c": 1.0}))
    assert found["count"] == 0 and found["p50"] is None and found["open_at_end"] == 1


def test_the_stated_deadlines_are_what_matching_and_notify_read(monkeypatch: pytest.MonkeyPatch):
    stated = deadlines(60)
    for name, value in deadline_env(stated).items():
        monkeypatch.setenv(name, value)
    m, n = MatchingSettings(), NotifySettings()
    assert stated["commit_within_s"] == 60
    assert (m.offer_timeout_s, m.offer_floor_s, m.max_attempts) == (
        stated["offer_timeout_s"],
        stated["offer_floor_s"],
        stated["max_attempts"],
    )
    assert (n.repage_every_s, n.expiry_interval_s) == (stated["repage_every_s"], stated["expiry_interval_s"])
