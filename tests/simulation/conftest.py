"""Shared helpers: small scenarios built in memory, so tests do not depend on the shipped files' figures."""

from __future__ import annotations

from typing import Any

import pytest

from simulation.scenario import Scenario, parse_scenario


def station(counters: int, rho: float, service_minutes: float, hours: float, warmup_hours: float = 0.0) -> Scenario:
    """An M/M/c station at load ρ (λ = ρ·c/service)."""
    raw: dict[str, Any] = {
        "scenario": {"name": f"mm{counters}_rho{rho}", "kind": "station"},
        "station": {
            "source": "test",
            "counters": counters,
            "service_minutes": service_minutes,
            "arrivals_per_hour": rho * counters * 60.0 / service_minutes,
            "hours": hours,
            "warmup_hours": warmup_hours,
        },
        "target": {"share": 0.9, "within_minutes": 5.0},
    }
    return parse_scenario(raw, "<test station>")


@pytest.fixture
def make_station():
    return station
