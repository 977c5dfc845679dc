"""Erlang C (M/M/c): the chance a call waits, and the teams a service level needs. Pure."""

from __future__ import annotations

import math

# Far above any crisis service's staffing: a search that reaches it has no answer.
MAX_TEAMS = 10_000


def erlang_b(c: int, a: float) -> float:
    """The Erlang B blocking probability of `c` servers offered `a` erlangs.

    By the recursion B(0) = 1, B(k) = a·B(k-1) / (k + a·B(k-1)): every step is a ratio of
    numbers below k + a, so it never overflows as the textbook's a^c / c! does.
    """
    if c < 0 or a < 0:
        raise ValueError("servers and load must not be negative")
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """The chance an arriving call waits for one of `c` servers offered `a` erlangs (1 when a >= c:
    the queue grows without bound, so every call waits)."""
    if a <= 0:
        return 0.0
    if a >= c:
        return 1.0
    b = erlang_b(c, a)
    return c * b / (c - a * (1 - b))


def within(c: int, arrivals_per_h: float, service_h: float, wait_h: float) -> float:
    """P(wait <= T) = 1 - C(c, a)·exp(-(c·mu - lambda)·T) for arrivals per hour `lambda`, mean
    service `1/mu` hours and T `wait_h` hours; 0 when the queue is unstable (a >= c)."""
    if arrivals_per_h <= 0:
        return 1.0
    a = arrivals_per_h * service_h
    if a >= c:
        return 0.0
    mu = 1 / service_h
    return 1 - erlang_c(c, a) * math.exp(-(c * mu - arrivals_per_h) * wait_h)


def servers_needed(arrivals_per_h: float, service_h: float, wait_h: float, share: float) -> int:
    """The fewest servers so that `share` of calls wait at most `wait_h` hours (0 with no arrivals)."""
    if not 0 < share < 1:
        raise ValueError("share must be between 0 and 1")
    if arrivals_per_h <= 0 or service_h <= 0:
        return 0
    c = math.floor(arrivals_per_h * service_h) + 1  # the fewest that keep the queue stable
    while within(c, arrivals_per_h, service_h, wait_h) < share:
        c += 1
        if c > MAX_TEAMS:
            raise ValueError("no staffing up to MAX_TEAMS meets the target")
    return c
