"""Erlang C against cases worked by hand, and its edges."""

import math

import pytest

from services.audit import queueing


def test_two_servers_one_erlang():
    """lambda = 2/h, mean service 30 min (mu = 2/h), c = 2: a = lambda/mu = 1.
    B(1) = 1·1/(1 + 1) = 1/2; B(2) = 1·(1/2)/(2 + 1/2) = 1/5.
    C = c·B/(c - a(1 - B)) = 2·(1/5)/(2 - 4/5) = (2/5)/(6/5) = 1/3.
    P(wait <= 15 min) = 1 - (1/3)·exp(-(2·2 - 2)·0.25) = 1 - e^-0.5/3 = 0.79782."""
    assert queueing.erlang_b(2, 1.0) == pytest.approx(1 / 5)
    assert queueing.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert queueing.within(2, 2.0, 0.5, 0.25) == pytest.approx(1 - math.exp(-0.5) / 3)
    assert queueing.within(2, 2.0, 0.5, 0.25) == pytest.approx(0.79782, abs=1e-5)


def test_three_servers_meet_ninety_percent_where_two_do_not():
    """Same load, c = 3: B(3) = 1·(1/5)/(3 + 1/5) = 1/16; C = 3·(1/16)/(3 - 15/16) = (3/16)/(33/16)
    = 1/11. P(wait <= 15 min) = 1 - (1/11)·exp(-(3·2 - 2)·0.25) = 1 - e^-1/11 = 0.96656 >= 0.9,
    while c = 2 gives 0.798 < 0.9 and c = 1 is unstable (a = c): 3 teams are needed."""
    assert queueing.erlang_c(3, 1.0) == pytest.approx(1 / 11)
    assert queueing.within(3, 2.0, 0.5, 0.25) == pytest.approx(1 - math.exp(-1) / 11)
    assert queueing.servers_needed(2.0, 0.5, 0.25, 0.9) == 3


def test_one_server_is_m_m_1():
    """c = 1: C(1, a) = a (the server's utilisation), so P(wait <= T) = 1 - rho·exp(-(mu - lambda)T).
    lambda = 1/h, service 30 min: rho = 1/2, P(wait <= 15 min) = 1 - 0.5·e^-0.25 = 0.61060."""
    assert queueing.erlang_c(1, 0.5) == pytest.approx(0.5)
    assert queueing.within(1, 1.0, 0.5, 0.25) == pytest.approx(1 - 0.5 * math.exp(-0.25))


def test_no_arrivals_need_no_team():
    assert queueing.servers_needed(0.0, 0.5, 0.25, 0.9) == 0
    assert queueing.within(0, 0.0, 0.5, 0.25) == 1.0
    assert queueing.erlang_c(3, 0.0) == 0.0


def test_a_load_at_or_above_the_servers_is_unstable():
    """a >= c: the queue grows without bound; every call waits and none is sure of a team in T."""
    assert queueing.erlang_c(2, 2.0) == 1.0 and queueing.erlang_c(2, 3.5) == 1.0
    assert queueing.within(2, 4.0, 0.5, 0.25) == 0.0
    # The search starts above the load, so the answer is always a stable staffing.
    assert queueing.servers_needed(4.0, 0.5, 0.25, 0.9) > 2


def test_a_large_load_neither_overflows_nor_loses_precision():
    """a = 500 erlangs: a^c/c! would overflow a double; the recursion stays in (0, 1)."""
    c = queueing.servers_needed(1000.0, 0.5, 0.25, 0.9)
    assert 500 < c < 560
    assert 0 < queueing.erlang_c(c, 500.0) < 1


def test_more_servers_never_lower_the_service_level():
    levels = [queueing.within(c, 3.0, 0.75, 0.25) for c in range(3, 12)]
    assert levels == sorted(levels) and levels[-1] > 0.999


def test_a_share_outside_zero_and_one_is_refused():
    with pytest.raises(ValueError):
        queueing.servers_needed(1.0, 0.5, 0.25, 1.0)
