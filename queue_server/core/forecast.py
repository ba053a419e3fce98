"""When to come (来庁のおすすめ時間): expected waits by hour for the next opening days. Pure core.

Method (docs/planning.md):

1. From the site's own event log: arrivals per department by weekday × hour (each ``issued``
   event counts once for every department on its route, at the issue time) and the mean service
   minutes per department (``started`` → ``completed`` of a step). Each weekday × hour gives one
   count per observed opening day of that weekday, so the mean and the spread over weeks are known.
   With the same months of the year before in the log, arrivals are scaled by the seasonal
   factor (:func:`season_factor`).
2. The booked load of the day and hour (bookings of the citizen's departments) is added to the
   arrival rate: a booked citizen takes a counter like anyone else.
3. Each department is an M/M/c station (Erlang C, queue_server.core.erlang) with c the counters that
   serve it (a counter shared by k departments counts 1/k). Its mean wait for the mean arrival
   rate is the figure; the rates one standard deviation below and above give the range.
4. The citizen's route waits at each of its departments in turn: the route's wait is the sum.
5. Levels: under 10 minutes 空いています (quiet), under 30 やや混雑 (busy), else 混雑 (crowded).

With no history yet only the bookings and the catalogue's service priors are known: the answer
says ``history: false`` and the page says so instead of pretending to know the lobby.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from .erlang import mean_wait

HISTORY_DAYS = 56  # eight weeks: four to eight samples of each weekday × hour
QUIET, BUSY = 10.0, 30.0  # minutes: the level thresholds
WAIT_CAP = 120.0  # minutes: beyond this a figure means nothing more than "very long"


@dataclass(frozen=True)
class History:
    """What the forecast reads from the event log (no ticket ids, nothing personal)."""

    arrivals: tuple[tuple[float, str], ...]  # (issued at, department)
    services: tuple[tuple[str, float], ...]  # (department, service minutes)
    days: tuple[str, ...]  # local dates on which the lobby was open (any ticket issued)
    months: tuple[tuple[str, int, int], ...] = ()  # ("YYYY-MM", tickets, open days) over ~13 months


@dataclass(frozen=True)
class Profile:
    days_by_weekday: Mapping[int, int]
    counts: Mapping[tuple[str, int, int], tuple[int, ...]]  # (department, weekday, hour) -> one count per day
    service_minutes: Mapping[str, float]
    months: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # "YYYY-MM" -> (tickets, open days)
    window: tuple[str, ...] = ()  # the dates the weekday × hour counts come from

    @property
    def has_history(self) -> bool:
        return bool(self.days_by_weekday)


def profile(history: History, tz: ZoneInfo) -> Profile:
    """Arrivals per department × weekday × hour, per observed day, and mean service minutes."""
    days_by_wd: dict[int, list[str]] = defaultdict(list)
    for d in sorted(set(history.days)):
        days_by_wd[dt.date.fromisoformat(d).weekday()].append(d)
    index = {d: i for ds in days_by_wd.values() for i, d in enumerate(ds)}
    raw: dict[tuple[str, int, int], list[int]] = {}
    for at, dept in history.arrivals:
        local = dt.datetime.fromtimestamp(at, tz)
        day = local.date().isoformat()
        if day not in index:
            continue
        wd = local.weekday()
        key = (dept, wd, local.hour)
        raw.setdefault(key, [0] * len(days_by_wd[wd]))[index[day]] += 1
    svc: dict[str, list[float]] = defaultdict(list)
    for dept, minutes in history.services:
        svc[dept].append(minutes)
    return Profile({wd: len(ds) for wd, ds in days_by_wd.items()}, {k: tuple(v) for k, v in raw.items()},
                   {d: statistics.fmean(v) for d, v in svc.items()},
                   {m: (n, d) for m, n, d in history.months}, tuple(sorted(set(history.days))))


def season_factor(prof: Profile, day: str) -> float:
    """How much busier ``day``'s month was a year ago than the history window's months a year ago.

    The weekday × hour counts come from the last eight weeks; April (年度替わり) or March is busier
    than the weeks before it. With the same months of the year before in the log, the ratio of
    their daily tickets scales the arrivals; without them (less than a year of history) 1.0.
    Clamped to 0.5–3 so one odd month cannot make a wild forecast.
    """
    d = dt.date.fromisoformat(day)
    target = prof.months.get(f"{d.year - 1}-{d.month:02d}")
    window = {f"{int(x[:4]) - 1}{x[4:7]}" for x in prof.window}
    past = [prof.months[m] for m in window if m in prof.months]
    if not target or not target[1] or not past or not sum(n for _, n in past):
        return 1.0
    before = sum(t for t, _ in past) / sum(n for _, n in past)
    return 1.0 if before <= 0 else min(3.0, max(0.5, (target[0] / target[1]) / before))


def counters_per_department(counters: Iterable[Any]) -> dict[str, float]:
    """Counter capacity per department: a counter shared by k departments counts 1/k for each."""
    out: dict[str, float] = defaultdict(float)
    for c in counters:
        for d in c.departments:
            out[d] += 1 / len(c.departments)
    return dict(out)


def booked_load(bookings: Iterable[Mapping[str, Any]], tz: ZoneInfo) -> dict[tuple[str, str, int], int]:
    """Bookings per (department, day, hour) of their slot start."""
    out: dict[tuple[str, str, int], int] = defaultdict(int)
    for r in bookings:
        local = dt.datetime.fromtimestamp(r["slot_start"], tz)
        out[(r.get("department") or "", r["day"], local.hour)] += 1
    return dict(out)


def station_wait(arrivals_per_hour: float, service_minutes: float, counters: float) -> float:
    """Mean minutes in queue of an M/M/c station (c = rounded counters, at least one); capped."""
    c = max(1, round(counters))
    w = mean_wait(arrivals_per_hour / 60.0, 1.0 / service_minutes, c)
    return WAIT_CAP if math.isinf(w) else min(WAIT_CAP, w)


def level(minutes: float) -> str:
    return "quiet" if minutes < QUIET else "busy" if minutes < BUSY else "crowded"


def forecast(prof: Profile, route: Sequence[str], days: Sequence[str], open_hhmm: str, close_hhmm: str,
             counters: Mapping[str, float], booked: Mapping[tuple[str, str, int], int],
             priors: Mapping[str, float]) -> dict[str, Any]:
    """Expected route waits by hour for ``days`` (see the module docstring for the method)."""
    first, last = int(open_hhmm[:2]), int(close_hhmm[:2])
    hours = list(range(first, last + (1 if close_hhmm[3:] != "00" else 0)))
    out_days = []
    for day in days:
        wd = dt.date.fromisoformat(day).weekday()
        n = prof.days_by_weekday.get(wd, 0)
        season = season_factor(prof, day)
        cells = []
        for h in hours:
            mid = lo = hi = 0.0
            for d in dict.fromkeys(route):
                counts = prof.counts.get((d, wd, h), ())
                counts = tuple(counts) + (0,) * (n - len(counts))
                mean = season * (statistics.fmean(counts) if counts else 0.0)
                sd = season * (statistics.stdev(counts) if len(counts) > 1 else 0.0)
                b = booked.get((d, day, h), 0)
                svc = prof.service_minutes.get(d) or priors.get(d) or 8.0
                cap = counters.get(d, 1.0)
                mid += station_wait(mean + b, svc, cap)
                lo += station_wait(max(0.0, mean - sd) + b, svc, cap)
                hi += station_wait(mean + sd + b, svc, cap)
            mid, lo, hi = (min(WAIT_CAP, x) for x in (mid, lo, hi))
            cells.append({"hour": h, "wait": round(mid, 1), "low": round(lo, 1), "high": round(hi, 1),
                          "level": level(mid)})
        out_days.append({"day": day, "weekday": wd, "samples": n, "season": round(season, 2), "hours": cells})
    return {"history": prof.has_history, "history_days": sum(prof.days_by_weekday.values()),
            "route": list(dict.fromkeys(route)), "days": out_days,
            "thresholds": {"quiet": QUIET, "busy": BUSY}, "cap": WAIT_CAP}
