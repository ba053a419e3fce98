"""The staffing advisor: its schedule meets the target in simulation, also on fresh random streams."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from simulation import advisor
from simulation.runner import run_replications
from simulation.scenario import load_scenario
from simulation.stats import combine

SCENARIOS = Path(__file__).resolve().parents[2] / "config" / "scenarios"


@pytest.mark.parametrize(
    "text,expected",
    [("90% within 30 min", (0.9, 30.0)), ("80%/10", (0.8, 10.0)), ("0.95 within 20 minutes", (0.95, 20.0)), ("30分以内に90%", (0.9, 30.0)), ("most people quickly", None)],
)
def test_parse_target(text, expected):
    if expected is None:
        with pytest.raises(ValueError):
            advisor.parse_target(text)
    else:
        assert advisor.parse_target(text) == pytest.approx(expected)


@pytest.fixture(scope="module")
def one_busy_day():
    sc = load_scenario(SCENARIOS / "april_peak_week.toml")
    return dataclasses.replace(sc, days=(sc.days[3],))  # Tuesday 6 April: busy, not the extreme


@pytest.fixture(scope="module")
def advice(one_busy_day):
    return advisor.advise(one_busy_day, 0.9, 30.0, replications=3, seed=1, jobs=1, rounds=6, plan=False)


def test_advice_meets_the_target_and_starts_from_erlang_c(advice):
    assert advice.met
    day = advice.days[0]
    assert day.counter_hours() >= 0.9 * day.counter_hours("erlang")
    shimin = next(g for g in day.counters if "shimin" in g)
    # the April lobby needs more 市民課 counters at its peak than the three-and-a-half it has
    assert max(day.counters[shimin]) >= 4


def test_advice_holds_on_fresh_random_streams(one_busy_day, advice):
    day = advice.days[0]
    sc = dataclasses.replace(one_busy_day, counters=advisor.schedule_counters(one_busy_day, day.counters))
    summary = combine(sc, run_replications(sc, 4, seed=777))
    for d, f in summary["departments"].items():
        exits = sum(f["slot_exits"])
        if exits >= 40:  # a department with enough citizens to judge on a day
            assert sum(f["slot_within"]) / exits >= 0.9, d


def test_a_thinner_schedule_is_judged_short(one_busy_day, advice):
    """The check can fail: two 市民課 counters fewer around midday and the advisor sees the miss."""
    day = advice.days[0]
    thin = {g: list(cs) for g, cs in day.counters.items()}
    shimin = next(g for g in thin if "shimin" in g)
    for k in range(2, 6):
        thin[shimin][k] = max(1, thin[shimin][k] - 2)
    summary = advisor._simulate(one_busy_day, one_busy_day.days[0], thin, 3, 1, 1)
    assert any(d == "shimin" for d, _k, _s in advisor._shortfalls(summary, 0.9))
