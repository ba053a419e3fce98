"""Erlang B/C: the numeric check from tech.md, the recursion against the closed form, staffing."""

from __future__ import annotations

import math

import pytest

from simulation.erlang import (
    erlang_b,
    erlang_c,
    mean_wait,
    prob_wait_within,
    servers_needed,
    staffing_by_slot,
)


def test_tech_md_numeric_check_120_per_hour_6_minutes_13_counters():
    lam, mu = 120 / 60, 1 / 6  # per minute
    assert mean_wait(lam, mu, 13) == pytest.approx(4.2, abs=0.05)
    assert prob_wait_within(10, lam, mu, 13) == pytest.approx(0.867, abs=0.0005)


def _erlang_b_closed(c: int, a: float) -> float:
    num = a**c / math.factorial(c)
    return num / sum(a**k / math.factorial(k) for k in range(c + 1))


def _erlang_c_closed(c: int, a: float) -> float:
    top = a**c / math.factorial(c) * c / (c - a)
    return top / (sum(a**k / math.factorial(k) for k in range(c)) + top)


@pytest.mark.parametrize("c,a", [(1, 0.5), (2, 1.5), (5, 4.25), (13, 12.0), (20, 3.0)])
def test_recursion_matches_closed_forms(c, a):
    assert erlang_b(c, a) == pytest.approx(_erlang_b_closed(c, a), rel=1e-12)
    assert erlang_c(c, a) == pytest.approx(_erlang_c_closed(c, a), rel=1e-12)


def test_mm1_reduces_to_textbook():
    lam, mu = 0.8, 1.0
    assert erlang_c(1, lam / mu) == pytest.approx(0.8)
    assert mean_wait(lam, mu, 1) == pytest.approx(lam / (mu * (mu - lam)))


def test_unstable_station_waits_forever_without_raising():
    assert mean_wait(5.0, 1.0, 5) == math.inf
    assert prob_wait_within(100, 6.0, 1.0, 5) == 0.0
    assert erlang_c(3, 3.5) == 1.0


def test_nobody_arrives_nobody_waits():
    assert mean_wait(0.0, 1.0, 1) == 0.0
    assert servers_needed(0.0, 1.0, 0.9, 10) == 0


def test_servers_needed_is_the_fewest_meeting_the_target():
    lam, mu = 2.0, 1 / 6
    c = servers_needed(lam, mu, 0.8, 10)
    assert prob_wait_within(10, lam, mu, c) >= 0.8
    assert prob_wait_within(10, lam, mu, c - 1) < 0.8
    assert c == 13  # tech.md: 13 counters give 86.7% within 10 min; 12 must fall short of 80%


def test_max_utilisation_adds_counters():
    lam, mu = 2.0, 1 / 6
    assert servers_needed(lam, mu, 0.5, 60, max_utilisation=0.8) >= math.ceil(12 / 0.8)


def test_staffing_by_slot_follows_the_load():
    needs = staffing_by_slot([10, 40, 80, 0], slot_minutes=60, service_minutes=6, share=0.9, within_minutes=10)
    cs = [n.counters for n in needs]
    assert cs[3] == 0 and cs[0] < cs[1] < cs[2]
    assert all(n.within_share >= 0.9 for n in needs)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        servers_needed(1.0, 1.0, 1.5, 10)
    with pytest.raises(ValueError):
        erlang_b(-1, 1.0)
