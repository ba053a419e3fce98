"""Non-stationary Poisson arrivals by purpose.

A lobby day's expected arrivals of purpose *p* on date *D*::

    N_p(D) = yearly_p × site_share / working_days_per_year × f_p(D)

    f_p(D) = peak factor             if D is a listed peak day for p (a multiple of a normal day)
           = month_p(D) × weekday(D) × after_holiday(D)   otherwise

spread over the opening hours by the clock-hour weights. Rates are piecewise constant (per clock
hour, clipped to the opening hours), so exponential gaps restarted at each piece boundary give an
exact non-homogeneous Poisson process with no thinning losses. Booked reservations of a purpose
are taken out of its walk-ins: the same citizens, arriving at their slot instead.
"""

from __future__ import annotations

import datetime as dt
import random
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate

from .scenario import Scenario


@dataclass(frozen=True, slots=True)
class Piece:
    """Constant rates over [start, end) minutes of the day."""

    start: float
    end: float
    rates: dict[str, float]  # purpose -> arrivals per minute


def day_factor(sc: Scenario, purpose: str, day: dt.date) -> float:
    """f_p(D) of the module docstring."""
    a = sc.arrivals
    assert a is not None
    for pk in a.peak_days:
        if pk.date == day and (not pk.purposes or purpose in pk.purposes):
            return pk.factor
    f = 1.0
    for m in a.months:
        if m.month == day.month and (not m.purposes or purpose in m.purposes):
            f *= m.factor
    wd = day.weekday()
    f *= a.weekday[wd] if wd < len(a.weekday) else 1.0
    if _after_holiday(day, sc.holidays):
        f *= a.after_holiday
    return f


def _after_holiday(day: dt.date, holidays: frozenset[dt.date]) -> bool:
    """The first working day after a public holiday (a Monday after a holiday Friday counts too)."""
    prev = day - dt.timedelta(days=1)
    while prev.weekday() >= 5:  # skip the weekend back to the last weekday
        prev -= dt.timedelta(days=1)
    return prev in holidays


def expected_day(sc: Scenario, day: dt.date) -> dict[str, float]:
    """Expected walk-in arrivals per purpose on ``day`` (booked reservations removed)."""
    if sc.kind == "station":
        return {k: p.yearly * sc.day_minutes / 60.0 for k, p in sc.purposes.items()}
    a = sc.arrivals
    assert a is not None
    out = {}
    for k, p in sc.purposes.items():
        n = p.yearly * a.site_share / a.working_days_per_year * day_factor(sc, k, day)
        for r in sc.reservations:
            if r.purpose == k:
                n -= len(r.slots) * r.booked
        out[k] = max(n, 0.0)
    return out


def pieces(sc: Scenario, day: dt.date) -> list[Piece]:
    """The day's piecewise-constant rates."""
    if sc.kind == "station":
        return [Piece(sc.open_minute, sc.close_minute, {k: p.yearly / 60.0 for k, p in sc.purposes.items()})]
    a = sc.arrivals
    assert a is not None
    bounds = []
    t = sc.open_minute
    while t < sc.close_minute:
        nxt = min((t // 60 + 1) * 60, sc.close_minute)
        bounds.append((t, nxt, a.hour_weights.get(int(t // 60), 0.0)))
        t = nxt
    mass = sum((e - s) * w for s, e, w in bounds)
    volumes = expected_day(sc, day)
    rest = 1.0 - a.at_door
    out = [
        Piece(s, e, {k: rest * n * w / mass for k, n in volumes.items()}) for s, e, w in bounds if w > 0 and mass > 0
    ]
    if a.at_door > 0 and out:
        # the queue at the door at 08:30: a share of the day's walk-ins who came before opening
        # take their tickets in the first minutes (a piece overlapping the first hour's)
        end = min(sc.open_minute + a.door_minutes, sc.close_minute)
        out.insert(0, Piece(sc.open_minute, end, {k: a.at_door * n / (end - sc.open_minute) for k, n in volumes.items()}))
    return out


def generate(sc: Scenario, day: dt.date, rng: random.Random) -> list[tuple[float, str]]:
    """Walk-in arrivals of one day: sorted (minute of the day, purpose)."""
    out: list[tuple[float, str]] = []
    ps = pieces(sc, day)
    for pc in ps:
        keys = [k for k, r in pc.rates.items() if r > 0]
        if not keys:
            continue
        cum = list(accumulate(pc.rates[k] for k in keys))
        total = cum[-1]
        t = pc.start
        expo, rand = rng.expovariate, rng.random
        last = len(keys) - 1
        while True:
            t += expo(total)
            if t >= pc.end:
                break  # memoryless: the next piece starts afresh at its own rate
            if last:
                out.append((t, keys[min(bisect_right(cum, rand() * total), last)]))
            else:
                rand()  # one purpose: the draw that would pick it, so the stream stays the same
                out.append((t, keys[0]))
    if sc.arrivals is not None and sc.arrivals.at_door > 0:
        out.sort()  # the door's piece overlaps the first hour's
    return out


def reservation_arrivals(sc: Scenario, day: dt.date, rng: random.Random) -> list[tuple[float, str, float]]:
    """Booked citizens who come: (check-in minute, purpose, slot start minute)."""
    out = []
    for r in sc.reservations:
        for s in r.slots:
            if rng.random() < r.booked and rng.random() >= r.no_show:
                out.append((max(sc.open_minute, s - r.early_minutes), r.purpose, s))
    out.sort()
    return out


def expected_by_slot(sc: Scenario, day: dt.date) -> list[dict[str, float]]:
    """Expected walk-in arrivals per purpose in each staffing slot of the day (for Erlang C)."""
    ps = pieces(sc, day)
    out = []
    for s, e in sc.slots():
        acc: dict[str, float] = {}
        for pc in ps:
            overlap = min(e, pc.end) - max(s, pc.start)
            if overlap > 0:
                for k, r in pc.rates.items():
                    acc[k] = acc.get(k, 0.0) + r * overlap
        out.append(acc)
    return out
