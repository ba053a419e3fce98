"""Erlang B and C for an M/M/c station, and a per-slot staffing rule built on them. Pure.

Notation (../shared/data/tech.md, "Simulation"): arrival rate λ, service rate μ per counter,
c counters, offered load A = λ/μ. Erlang B by the stable recursion B₀ = 1,
B_k = A·B_{k−1} / (k + A·B_{k−1}); Erlang C = c·B_c / (c − A(1 − B_c)), the probability that an
arrival waits. Mean wait in queue Wq = C / (cμ − λ); P(wait ≤ t) = 1 − C·e^{−(cμ−λ)t}.

Rates and times only need consistent units (per minute and minutes, or per second and seconds).
An unstable station (A ≥ c) waits forever: Wq is ``inf`` and P(wait ≤ t) is 0, never an exception,
so a staffing search can walk c upwards through unstable values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def erlang_b(c: int, load: float) -> float:
    """Blocking probability of an M/M/c/c loss system with offered load ``load`` = λ/μ."""
    if c < 0:
        raise ValueError(f"c must be >= 0, not {c}")
    if load < 0:
        raise ValueError(f"offered load must be >= 0, not {load}")
    b = 1.0
    for k in range(1, c + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(c: int, load: float) -> float:
    """Probability that an arrival waits in an M/M/c queue (1.0 when the station is unstable)."""
    if c <= 0:
        return 1.0
    if load <= 0:
        return 0.0
    if load >= c:
        return 1.0
    b = erlang_b(c, load)
    return c * b / (c - load * (1.0 - b))


def mean_wait(arrival_rate: float, service_rate: float, c: int) -> float:
    """Mean wait in queue Wq (same time unit as 1/rates); ``inf`` when λ ≥ cμ."""
    if arrival_rate <= 0:
        return 0.0
    if service_rate <= 0 or c <= 0 or arrival_rate >= c * service_rate:
        return math.inf
    return erlang_c(c, arrival_rate / service_rate) / (c * service_rate - arrival_rate)


def prob_wait_within(t: float, arrival_rate: float, service_rate: float, c: int) -> float:
    """P(wait ≤ t) for an M/M/c queue; 0 when unstable."""
    if arrival_rate <= 0:
        return 1.0
    if service_rate <= 0 or c <= 0 or arrival_rate >= c * service_rate:
        return 0.0
    pw = erlang_c(c, arrival_rate / service_rate)
    return 1.0 - pw * math.exp(-(c * service_rate - arrival_rate) * max(t, 0.0))


def servers_needed(
    arrival_rate: float,
    service_rate: float,
    share: float,
    within: float,
    max_servers: int = 500,
    max_utilisation: float = 1.0,
) -> int:
    """The fewest counters c with P(wait ≤ ``within``) ≥ ``share`` (0 when nobody arrives).

    ``max_utilisation`` < 1 also asks that λ/(cμ) stays below it (staff need slack for breaks
    and paperwork). Raises ValueError when even ``max_servers`` is not enough.
    """
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be between 0 and 1 (exclusive), not {share}")
    if arrival_rate <= 0:
        return 0
    if service_rate <= 0:
        raise ValueError("service rate must be > 0")
    load = arrival_rate / service_rate
    c = math.floor(load) + 1  # the first stable c
    while c <= max_servers:
        if load / c <= max_utilisation and prob_wait_within(within, arrival_rate, service_rate, c) >= share:
            return c
        c += 1
    raise ValueError(f"more than {max_servers} counters needed for load {load:.1f}")


@dataclass(frozen=True, slots=True)
class SlotNeed:
    """Erlang C's answer for one time slot of one department."""

    slot: int
    arrival_rate: float  # per minute
    service_minutes: float
    counters: int
    wait_minutes: float  # Wq at that c
    within_share: float  # P(wait ≤ target) at that c


def staffing_by_slot(
    arrivals_per_slot: Sequence[float],
    slot_minutes: float,
    service_minutes: float,
    share: float,
    within_minutes: float,
) -> list[SlotNeed]:
    """Counters per slot from Erlang C, treating each slot as a steady state (the usual SIPP rule).

    ``arrivals_per_slot`` are expected arrivals in each slot. Steady state is optimistic when a
    queue carries over from a busy slot into the next one; the advisor checks by simulation.
    """
    if slot_minutes <= 0 or service_minutes <= 0:
        raise ValueError("slot and service minutes must be > 0")
    mu = 1.0 / service_minutes
    out = []
    for i, n in enumerate(arrivals_per_slot):
        lam = n / slot_minutes
        c = servers_needed(lam, mu, share, within_minutes)
        out.append(
            SlotNeed(
                slot=i,
                arrival_rate=lam,
                service_minutes=service_minutes,
                counters=c,
                wait_minutes=mean_wait(lam, mu, c) if c else 0.0,
                within_share=prob_wait_within(within_minutes, lam, mu, c) if c else 1.0,
            )
        )
    return out
