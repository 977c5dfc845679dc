"""How long an idle background job sleeps."""

from __future__ import annotations

from shared.waits import sleep_s


def test_an_idle_job_sleeps_until_its_next_work_is_due_within_its_bounds() -> None:
    """Tried: nothing pending, work overdue, due within the bounds, and due past the longest."""
    assert sleep_s(None, 0.5, 5.0) == 5.0
    assert sleep_s(-3.0, 0.5, 5.0) == 0.5
    assert sleep_s(2.25, 0.5, 5.0) == 2.25
    assert sleep_s(60.0, 0.5, 5.0) == 5.0
