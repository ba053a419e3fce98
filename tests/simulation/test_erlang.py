"""Erlang B/C: the numeric check from tech.md, the recursion against the closed form, staffing."""

from __future__ import annotations

import math

import pytest

from queue_server.core.erlang import (
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


def _abandoning_station(c: int, rho: float, service_minutes: float, patience_minutes: float, hours: float, warmup: float):
    from simulation.scenario import parse_scenario

    raw = {
        "scenario": {"name": "mmc_m", "kind": "station"},
        "station": {"source": "test", "counters": c, "service_minutes": service_minutes,
                    "arrivals_per_hour": rho * c * 60.0 / service_minutes, "hours": hours, "warmup_hours": warmup},
        "behaviour": {"patience_minutes": patience_minutes, "patience_distribution": "exponential", "leave_cancels": 1.0},
        "target": {"share": 0.8, "within_minutes": 2.0},
    }
    return parse_scenario(raw, "<M/M/c+M>")


def test_erlang_a_reduces_to_erlang_c_without_abandonment():
    from queue_server.core.erlang import erlang_a

    a = erlang_a(2.0, 1 / 6, 0.0, 13)
    assert a.wait_mean == pytest.approx(mean_wait(2.0, 1 / 6, 13), rel=1e-9)
    assert a.p_wait == pytest.approx(erlang_c(13, 12.0), rel=1e-9)
    assert a.p_abandon == 0.0
    b = erlang_a(3.3, 1.0, 0.5, 3)  # overloaded: stable only through abandonment
    assert b.utilisation == pytest.approx(3.3 * (1 - b.p_abandon) / 3, rel=1e-9)  # flow balance


@pytest.mark.parametrize("c,rho,patience", [(3, 1.1, 4.0), (5, 0.9, 10.0)])
def test_model_abandonment_matches_erlang_a_within_its_interval(c, rho, patience):
    """M/M/c+M: the model's share of citizens who give up and its mean queue time (over every
    arrival, as Erlang A counts it) lie within their 95% intervals of Palm's exact values."""
    from queue_server.core.erlang import erlang_a
    from simulation.runner import replicate
    from simulation.stats import mean_ci

    svc = 1.0
    sc = _abandoning_station(c, rho, svc, patience, hours=20.0, warmup=2.0)
    exact = erlang_a(rho * c / svc, 1 / svc, 1 / patience, c)
    reps = [replicate(sc, seed=99, replication=r) for r in range(10)]
    f = [r["departments"]["desk"] for r in reps]
    ab = mean_ci(x["left"] / x["exits"] for x in f)
    wq = mean_ci(x["little_lambda_W"] / (x["exits"] / ((20.0 - 2.0) * 60.0)) for x in f)  # W = λW / λ
    assert exact.p_abandon > 0.02  # not vacuous: people do leave
    assert abs(ab["mean"] - exact.p_abandon) <= ab["ci"], (ab, exact)
    assert abs(wq["mean"] - exact.wait_mean) <= wq["ci"], (wq, exact)
