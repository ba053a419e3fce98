"""The model on the M/M/c station: against Erlang C, and against a heapq Lindley oracle.

The oracle (Kiefer–Wolfowitz: each FCFS customer takes the earliest free counter) is fed the
very same random stream the model uses — arrivals from simulation.arrivals.generate, then one
exponential service draw per customer in order — so the model must reproduce its waits
customer by customer, not just on average. Erlang C then checks the mean over replications.
"""

from __future__ import annotations

import heapq
import random

import pytest

from queue_server.core.erlang import mean_wait
from simulation.arrivals import generate
from simulation.model import MIN, SERVED, LobbyDay, scenario_router
from simulation.runner import replicate, stream_seed
from simulation.stats import combine, mean_ci


def lindley_waits(arrivals: list[float], services: list[float], c: int) -> list[float]:
    free = [0.0] * c
    waits = []
    for a, s in zip(arrivals, services, strict=True):
        f = heapq.heappop(free)
        start = max(a, f)
        waits.append(start - a)
        heapq.heappush(free, start + s)
    return waits


@pytest.mark.parametrize("c,rho", [(1, 0.7), (3, 0.9), (5, 0.85)])
def test_model_waits_equal_the_lindley_oracle_customer_by_customer(make_station, c, rho):
    sc = make_station(c, rho, service_minutes=2.0, hours=40.0)
    seed = 12345
    rec = LobbyDay(sc, scenario_router(sc), sc.days[0], random.Random(seed)).run()
    model = [w for w, o in zip(rec.st_wait, rec.st_outcome, strict=True) if o == SERVED]

    rng = random.Random(seed)
    arrivals = [t * MIN for t, _ in generate(sc, sc.days[0], rng)]
    mean = sc.purposes["service"].route[0].minutes * MIN
    services = [rng.expovariate(1.0 / mean) for _ in arrivals]
    oracle = lindley_waits(arrivals, services, c)

    assert len(model) == len(oracle) > 500
    assert max(abs(a - b) for a, b in zip(model, oracle, strict=True)) < 1e-6
    assert sum(1 for w in oracle if w > 0) > 50  # the check is not vacuous: people did queue


@pytest.mark.parametrize("rho,hours", [(0.5, 12.0), (0.7, 12.0), (0.9, 24.0)])
def test_mean_wait_matches_erlang_c_within_the_confidence_interval(make_station, rho, hours):
    c, svc = 3, 1.0
    sc = make_station(c, rho, service_minutes=svc, hours=hours, warmup_hours=hours / 12)
    reps = [replicate(sc, seed=2024, replication=r) for r in range(8)]
    got = combine(sc, reps)["departments"]["desk"]["wait_mean"]
    expected = mean_wait(rho * c / svc, 1.0 / svc, c)
    assert got["n"] == 8
    assert abs(got["mean"] - expected) <= got["ci"], (got, expected)
    # the interval is narrow enough to mean something: an error of 60% would fall outside it
    assert got["ci"] < 0.6 * expected


@pytest.mark.parametrize("c,rho,hours", [(1, 0.9, 400.0), (3, 0.5, 100.0), (3, 0.9, 250.0), (5, 0.85, 120.0)])
def test_the_oracle_itself_matches_erlang_c_tightly(make_station, c, rho, hours):
    """Long runs of the oracle (14x faster than SimPy): the model equals it stream for stream."""
    sc = make_station(c, rho, service_minutes=1.0, hours=hours, warmup_hours=hours / 15)
    means = []
    for r in range(12):
        rng = random.Random(stream_seed(99, r, 0))
        arrivals = [t * MIN for t, _ in generate(sc, sc.days[0], rng)]
        services = [rng.expovariate(1.0 / MIN) for _ in arrivals]
        waits = lindley_waits(arrivals, services, c)
        kept = [w for a, w in zip(arrivals, waits, strict=True) if a >= sc.warmup_minutes * MIN]
        means.append(sum(kept) / len(kept) / MIN)
    got = mean_ci(means)
    expected = mean_wait(rho * c, 1.0, c)
    assert abs(got["mean"] - expected) <= got["ci"], (got, expected)
    assert got["ci"] < 0.15 * expected


def test_utilisation_is_rho(make_station):
    sc = make_station(4, 0.8, service_minutes=1.0, hours=8.0, warmup_hours=1.0)
    reps = [replicate(sc, seed=7, replication=r) for r in range(4)]
    u = combine(sc, reps)["departments"]["desk"]["utilisation"]
    assert abs(u["mean"] - 0.8) <= max(u["ci"], 0.03)  # finite runs also count the final drain


def test_streams_differ_by_replication_and_day():
    assert len({stream_seed(1, r, d) for r in range(5) for d in range(5)}) == 25
