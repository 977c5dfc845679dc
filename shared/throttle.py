"""Request rates: a client's requests in a moving window, and its failed authentications (a few
recorded one by one, a flood counted)."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


class MovingWindow:
    """At most `amount` requests per key in any `period_s`: each key keeps the times of its last
    `amount` admitted requests, so a request is one comparison or two, and no timer runs."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._admitted: dict[str, deque[float]] = {}

    def hit(self, key: str, amount: int, period_s: float) -> float | None:
        """Admit one request of `key` (None) or refuse it, uncounted, with the seconds until one
        would be admitted."""
        if amount <= 0:
            return period_s
        now = self._clock()
        times = self._admitted.get(key)
        if times is None or times.maxlen != amount:
            # A new key, or its limit changed: the admitted times so far still count, up to the new limit.
            times = self._admitted[key] = deque(times or (), maxlen=amount)
        while times and times[0] <= now - period_s:
            times.popleft()
        if len(times) < amount:
            times.append(now)
            return None
        return times[0] + period_s - now


@dataclass
class _Window:
    started: float
    failures: int = 0
    counted: int = 0  # failures past the burst: answered 429, recorded only in the summary
    path: str = ""


@dataclass(frozen=True)
class Summary:
    """The failures of one client past the burst in one window, to record as a single event."""

    client: str
    count: int
    window_s: float
    last_path: str


class FailureThrottle:
    """Fixed windows per client: the first `burst` failures of a window pass (each recorded), later
    ones are refused with a retry time and counted; a window's count becomes one Summary once it ends.
    """

    def __init__(
        self,
        burst: int = 10,
        window_s: float = 60.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.window_s = window_s
        self._max_clients = max_clients
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._ended: list[Summary] = []
        # When the oldest window ends: before then there is nothing to close (checked per request).
        self._next_end = math.inf

    def failure(self, client: str, path: str) -> float | None:
        """Count one failure; None to record it as usual, else the seconds until the client may retry."""
        now = self._clock()
        self._close_ended(now)
        window = self._windows.get(client)
        if window is None:
            if len(self._windows) >= self._max_clients:
                # A spray from very many addresses: keep the memory bounded, count them together.
                client = "many-clients"
                window = self._windows.setdefault(client, _Window(now))
            else:
                window = self._windows[client] = _Window(now)
            self._next_end = min(self._next_end, window.started + self.window_s)
        window.failures += 1
        window.path = path
        if window.failures <= self.burst:
            return None
        window.counted += 1
        return max(1.0, window.started + self.window_s - now)

    def ended(self) -> list[Summary]:
        """Summaries of windows that have ended since the last call (each given once)."""
        self._close_ended(self._clock())
        done, self._ended = self._ended, []
        return done

    def _close_ended(self, now: float) -> None:
        if now < self._next_end:
            return
        for client in [c for c, w in self._windows.items() if now - w.started >= self.window_s]:
            window = self._windows.pop(client)
            if window.counted:
                self._ended.append(Summary(client, window.counted, self.window_s, window.path))
        self._next_end = min((w.started + self.window_s for w in self._windows.values()), default=math.inf)


def retry_after(seconds: float) -> str:
    """A Retry-After header value: whole seconds, rounded up."""
    return str(max(1, math.ceil(seconds)))
