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


# ---------------------------------------------------------------------------- Erlang A (M/M/c+M)


@dataclass(frozen=True, slots=True)
class ErlangA:
    """Steady state of an M/M/c+M queue (Palm): exponential patience with rate θ per waiting citizen."""

    p_wait: float  # P(an arrival finds every counter busy) (PASTA)
    p_abandon: float  # share of arrivals who leave before service
    queue_mean: float  # L_q, time-average number waiting
    wait_mean: float  # E[time in queue] over every arrival (served or not) = L_q / λ
    utilisation: float  # busy counters / c


def erlang_a(arrival_rate: float, service_rate: float, abandon_rate: float, c: int, tol: float = 1e-15) -> ErlangA:
    """M/M/c+M by its birth–death chain: π_{k+1} = π_k·λ / (min(k+1, c)·μ + max(k+1−c, 0)·θ).

    With θ > 0 the chain is stable at any load (abandonment makes it so), so the sum is cut where
    the terms fall below ``tol`` of the total, never at an arbitrary queue length. θ = 0 is
    Erlang C (needs λ < cμ). Rates in any consistent unit; the wait in that unit's reciprocal.
    """
    if arrival_rate < 0 or service_rate <= 0 or abandon_rate < 0 or c < 1:
        raise ValueError("need λ >= 0, μ > 0, θ >= 0 and c >= 1")
    if arrival_rate == 0:
        return ErlangA(0.0, 0.0, 0.0, 0.0, 0.0)
    if abandon_rate == 0 and arrival_rate >= c * service_rate:
        raise ValueError("without abandonment the queue is unstable for λ >= cμ")
    # unnormalised π_k with π_0 = 1, rescaled when it grows, to stay in floating range
    terms = [1.0]
    k = 0
    total = 1.0
    while True:
        k += 1
        rate_out = min(k, c) * service_rate + max(k - c, 0) * abandon_rate
        nxt = terms[-1] * arrival_rate / rate_out
        terms.append(nxt)
        total += nxt
        if total > 1e250:
            terms = [t / total for t in terms]
            total = 1.0
        if k > c and nxt < tol * total and arrival_rate < rate_out:
            break
        if k > 10_000_000:
            raise ValueError("Erlang A: the distribution does not converge")
    pi = [t / total for t in terms]
    p_wait = sum(pi[c:])
    lq = sum((j - c) * p for j, p in enumerate(pi) if j > c)
    busy = sum(min(j, c) * p for j, p in enumerate(pi))
    return ErlangA(
        p_wait=p_wait,
        p_abandon=abandon_rate * lq / arrival_rate,
        queue_mean=lq,
        wait_mean=lq / arrival_rate,
        utilisation=busy / c,
    )


def square_root_staffing(offered_load: float, beta: float = 1.0) -> int:
    """Halfin–Whitt square-root staffing: c = ⌈R + β·√R⌉ for offered load R = λ/μ (0 when R = 0)."""
    if offered_load <= 0:
        return 0
    return math.ceil(offered_load + beta * math.sqrt(offered_load))


def servers_needed_erlang_a(
    arrival_rate: float, service_rate: float, abandon_rate: float, max_abandon: float, max_servers: int = 500
) -> int:
    """The fewest counters with Erlang A's share of arrivals who give up ≤ ``max_abandon``."""
    if arrival_rate <= 0:
        return 0
    for c in range(1, max_servers + 1):
        if erlang_a(arrival_rate, service_rate, abandon_rate, c).p_abandon <= max_abandon:
            return c
    raise ValueError(f"more than {max_servers} counters needed")
