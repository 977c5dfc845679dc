"""The PSAP request rate's moving window: what it admits, what it refuses, and that it costs no thread."""

from __future__ import annotations

import threading

import pytest

from shared.throttle import MovingWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_admits_amount_in_any_window_and_says_when_the_next_one_may_come():
    clock = Clock()
    window = MovingWindow(clock)
    for _ in range(3):  # at 1000, 1010 and 1020
        assert window.hit("psap-a", 3, 60) is None
        clock.now += 10
    # The fourth within 60 s of the first: refused until the first leaves the window, at 1060.
    assert window.hit("psap-a", 3, 60) == pytest.approx(30)
    clock.now = 1059.9
    assert window.hit("psap-a", 3, 60) == pytest.approx(0.1)
    clock.now = 1060.0
    assert window.hit("psap-a", 3, 60) is None
    # A moving window, not a fixed one: those of 1010 and 1020 are still in it, with this one.
    assert window.hit("psap-a", 3, 60) == pytest.approx(10)


def test_refusals_are_not_counted_and_keys_are_separate():
    clock = Clock()
    window = MovingWindow(clock)
    assert window.hit("psap-a", 1, 10) is None
    for _ in range(100):  # a flood of refused requests does not push the next admission back
        clock.now += 0.05
        assert window.hit("psap-a", 1, 10) is not None
    assert window.hit("psap-b", 1, 10) is None
    clock.now = 1010.0
    assert window.hit("psap-a", 1, 10) is None


def test_a_changed_limit_keeps_the_requests_already_admitted():
    clock = Clock()
    window = MovingWindow(clock)
    for _ in range(5):
        assert window.hit("psap-a", 10, 60) is None
    assert window.hit("psap-a", 5, 60) is not None  # lowered to 5: the five admitted count
    assert window.hit("psap-a", 7, 60) is None  # raised to 7: room for two more
    assert window.hit("psap-a", 7, 60) is None
    assert window.hit("psap-a", 7, 60) is not None


def test_a_zero_limit_refuses_everything():
    window = MovingWindow(Clock())
    assert window.hit("psap-a", 0, 60) == 60


def test_counting_requests_starts_no_thread(monkeypatch):
    # The `limits` package's memory storage started a timer thread for requests it counted, at
    # every request a second apart: a thread's start and end each time.
    started: list[threading.Thread] = []
    original = threading.Thread.start

    def counting_start(self: threading.Thread) -> None:
        started.append(self)
        original(self)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    clock = Clock()
    window = MovingWindow(clock)
    for _ in range(50):
        clock.now += 1
        window.hit("psap-a", 600, 60)
    assert started == []
