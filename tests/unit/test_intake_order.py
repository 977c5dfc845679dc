"""Assignment events arrive in no order across topics: which of them may still move a call's status."""

from datetime import UTC, datetime, timedelta

import pytest

from services.intake.domain import is_behind, is_late, why_late

T = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
EARLIER, LATER = T - timedelta(microseconds=1), T + timedelta(microseconds=1)


def test_an_event_older_than_the_one_that_set_the_status_is_late():
    assert is_late(T, EARLIER)


def test_a_newer_event_and_a_tie_apply():
    assert not is_late(T, LATER)
    assert not is_late(T, T)


def test_a_call_stored_before_event_times_were_recorded_takes_the_next_event():
    assert not is_late(None, EARLIER)


@pytest.mark.parametrize(
    ("seen", "status"),
    [
        (["offered", "assigned"], "offered"),  # the accept was consumed before the offer
        (["offered", "withdrawn"], "assigned"),  # an agency's accept published after the withdrawal
        (["offered", "offer_expired"], "assigned"),
        (["offered", "assigned", "en_route", "on_scene"], "en_route"),
        (["offered", "assigned", "cleared"], "backup_requested"),
    ],
)
def test_a_step_its_assignment_is_already_past_is_behind(seen: list[str], status: str):
    assert is_behind(seen, status)


@pytest.mark.parametrize(
    ("seen", "status"),
    [
        ([], "offered"),
        (["offered"], "assigned"),
        (["offered", "assigned"], "withdrawn"),  # a cancel or a raised flag takes an assigned team back
        (["offered", "assigned", "en_route", "on_scene"], "backup_requested"),
        (["offered", "assigned", "on_scene", "backup_requested"], "cleared"),
        (["offered"], "handed_back"),  # not a step of an assignment
    ],
)
def test_a_step_that_follows_its_assignment_s_progress_is_not_behind(seen: list[str], status: str):
    assert not is_behind(seen, status)


def test_event_time_decides_before_anything_else():
    assert why_late("offered", T, EARLIER, [], "offer_expired") == "older_than_status"
    # The next attempt's offer, published after attempt 1 expired, is a new assignment: it applies.
    assert why_late("offer_expired", T, LATER, [], "offered") is None


def test_an_event_newer_by_time_still_never_undoes_its_assignment_s_progress():
    assert why_late("withdrawn", T, LATER, ["offered", "withdrawn"], "assigned") == "assignment_further_along"


def test_a_cancelled_call_takes_only_the_withdrawal_of_its_team():
    assert why_late("cancelled", T, LATER, ["offered"], "withdrawn") is None
    for status in ("offer_expired", "offered", "assigned", "handed_back"):
        assert why_late("cancelled", T, LATER, [], status) == "call_cancelled"
    assert why_late("cancelled", T, EARLIER, ["offered"], "withdrawn") == "older_than_status"


def test_a_newer_event_moves_the_status():
    assert why_late("offered", T, LATER, ["offered"], "assigned") is None
    assert why_late("assigned", None, EARLIER, ["offered", "assigned"], "en_route") is None
