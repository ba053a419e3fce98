"""Calibrate the simulation from the event log: arrivals, routes, service times, behaviour, staffing.

What is fitted (docs/kpi.md, "Calibration", has the formulas):

- **Arrivals.** Tickets per local day and purpose follow the simulation's model
  ``N_p(D) = rate_p × weekday(D) × month(D)`` (simulation/arrivals.py); the Poisson maximum-likelihood
  fit of that multiplicative model is found by iterative proportional fitting over the daily counts,
  and the factors are scaled to average 1 over the observed days. Clock-hour weights are the
  arrival rate per open minute of each hour relative to the whole day's.
- **Routes.** The log does not keep the kiosk answers (they can be personal), only each ticket's
  route: so every distinct route of a purpose becomes a scenario purpose of its own, with its share
  of the purpose's rate, its steps' ``after`` rebuilt from the catalogue as the planner builds them.
- **Service.** A completed step lasts the sum of its procedures' times (the simulation's own model,
  simulation/routing.py). Grouping steps by their procedure set, the means (and variances) of the
  groups are linear in the procedures' means (and variances); weighted least squares solves them.
  A procedure only ever served together with the same others is not identified on its own: its
  group's total still is, and that is what a route needs.
- **Behaviour and staffing.** No-show share per wait, mean call-to-start (walk) and recall gaps,
  assistance share; each counter's usual opening windows (open on at least half the days).
- **What is not fitted** is listed (``Calibration.defaulted``): patience and balking, weekdays never
  observed (factor 1.0), procedures only known from the catalogue, gaps the log has no event for.
- **Uncertainty.** A bootstrap over days (``BOOTSTRAP`` resamples of the observed days with
  replacement) gives a 95% percentile interval for each purpose's tickets per day and each
  procedure's mean minutes: a fit from five days carries that much sampling noise.
- **A log it cannot fit fails loudly** (:class:`CalibrationError`, exit status 2 with the reasons):
  service times too short to be real (a demo replayed in compressed wall-clock time), or no route
  left that an open counter serves.

The intervals (waits, services, open periods) are those of queue_server.kpi, built by
:func:`queue_server.kpi.log_tables`: calibration fits the same numbers the KPI report shows.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine

from .config import CityConfig, minutes_of
from .kpi import day_of, log_tables, period_for

BOOTSTRAP = 200  # resamples of the days for the intervals
MIN_SERVICE_SECONDS = 20.0  # a median completed step shorter than this is no real counter's log
WORKING_DAYS_PER_YEAR = 243.0  # the scenarios' default; rates are written as yearly = per day × this
SLOT = 5  # minutes: resolution of the counters' usual opening windows
MIN_N = 2  # a procedure set needs this many steps before its variance is used


@dataclass(frozen=True, slots=True)
class ProcedureFit:
    id: str
    mean_minutes: float
    cv: float
    steps: int  # completed steps that included it
    alone: int  # of which it was the only procedure
    identified: bool  # its own mean is determined by the log (not only its group's total)
    source: str  # "log", "log mean, prior cv" or "prior"


@dataclass(frozen=True, slots=True)
class VariantStep:
    department: str
    procedures: tuple[str, ...]
    after: tuple[int, ...]
    minutes: float
    cv: float


@dataclass(frozen=True, slots=True)
class RouteVariant:
    key: str  # scenario purpose key
    purpose: str  # the kiosk purpose(s) it came from, "+"-joined
    count: int
    share: float  # of its purpose's tickets
    steps: tuple[VariantStep, ...]


@dataclass(frozen=True)
class Calibration:
    site: str
    first: dt.date
    last: dt.date
    days: tuple[dt.date, ...]  # the observed working days (Mon-Fri with tickets)
    tickets: int
    rates: Mapping[str, float]  # purpose -> tickets per day at weekday and month factor 1
    weekday: tuple[float, ...]  # Monday..Friday
    months: Mapping[int, float]
    hour_weights: Mapping[int, float]
    open_minute: float
    close_minute: float
    procedures: Mapping[str, ProcedureFit]
    variants: tuple[RouteVariant, ...]
    behaviour: Mapping[str, float]
    counters: Mapping[int, tuple[tuple[float, float], ...]]  # usual windows, minutes of the day
    target_minutes: float
    notes: tuple[str, ...] = field(default=())
    defaulted: tuple[str, ...] = field(default=())  # parameters not fitted from the log, and why
    # 95% bootstrap intervals over days: "rate:PURPOSE" (tickets a day), "proc:ID" (mean minutes)
    intervals: Mapping[str, tuple[float, float]] = field(default_factory=dict)


class CalibrationError(ValueError):
    """The log cannot be fitted into a scenario; ``reasons`` says why, each in one sentence."""

    def __init__(self, reasons: Sequence[str]):
        self.reasons = tuple(reasons)
        super().__init__("; ".join(self.reasons))


# ----------------------------------------------------------------------------- pure fitting


def fit_arrivals(
    counts: Mapping[tuple[dt.date, str], int], days: Sequence[dt.date], iterations: int = 200
) -> tuple[dict[str, float], dict[int, float], dict[int, float]]:
    """Rates per purpose and factors per weekday and month, maximising the Poisson likelihood of
    ``counts[(day, purpose)] ~ Poisson(rate[purpose] × weekday[wd(day)] × month[month(day)])``.

    Iterative proportional fitting: each factor in turn is set so that the model's total over its
    margin equals the observed total (the likelihood equations of a log-linear Poisson model).
    Factors are then scaled to average 1 over ``days`` (so a rate is a typical day's count).
    """
    purposes = sorted({p for _, p in counts})
    n_p = defaultdict(float)
    n_w = defaultdict(float)
    n_m = defaultdict(float)
    for (d, p), n in counts.items():
        n_p[p] += n
        n_w[d.weekday()] += n
        n_m[d.month] += n
    w = {d.weekday(): 1.0 for d in days}
    m = {d.month: 1.0 for d in days}
    rate = {p: n_p[p] / max(1, len(days)) for p in purposes}
    for _ in range(iterations):
        exposure = sum(w[d.weekday()] * m[d.month] for d in days)
        rate = {p: n_p[p] / exposure for p in purposes}
        total = sum(rate.values()) or 1.0
        for k in w:
            e = sum(m[d.month] for d in days if d.weekday() == k)
            w[k] = n_w[k] / (total * e) if e else 1.0
        for k in m:
            e = sum(w[d.weekday()] for d in days if d.month == k)
            m[k] = n_m[k] / (total * e) if e else 1.0
    cw = sum(w[d.weekday()] for d in days) / len(days) if days else 1.0
    cm = sum(m[d.month] for d in days) / len(days) if days else 1.0
    w = {k: v / cw for k, v in w.items()} if cw else w
    m = {k: v / cm for k, v in m.items()} if cm else m
    rate = {p: r * cw * cm for p, r in rate.items()}
    return rate, w, m


def open_minutes_by_hour(open_minute: float, close_minute: float) -> dict[int, float]:
    """Minutes of each clock hour inside the opening hours (08:30-17:15 gives 30 for hour 8)."""
    out = {}
    for h in range(24):
        overlap = min(close_minute, (h + 1) * 60) - max(open_minute, h * 60)
        if overlap > 0:
            out[h] = float(overlap)
    return out


def fit_hours(counts: Mapping[int, int], open_minute: float, close_minute: float) -> tuple[dict[int, float], list[str]]:
    """Relative arrival rate per open minute of each clock hour; the day's average rate is 1.

    Tickets issued outside the opening hours count in the nearest open hour (the simulation only
    generates arrivals while the site is open).
    """
    mins = open_minutes_by_hour(open_minute, close_minute)
    notes = []
    n = defaultdict(float)
    for h, c in counts.items():
        if h in mins:
            n[h] += c
        elif mins and c:
            near = min(mins, key=lambda x: abs(x - h))
            n[near] += c
            notes.append(f"{c} ticket(s) issued in hour {h:02d} (outside opening hours) counted in hour {near:02d}")
    total, open_total = sum(n.values()), sum(mins.values())
    if not total:
        return {h: 1.0 for h in mins}, notes
    avg = total / open_total
    return {h: (n[h] / mins[h]) / avg for h in sorted(mins)}, notes


def fit_service(
    groups: Mapping[tuple[str, ...], tuple[int, float, float]], priors: Mapping[str, tuple[float, float]]
) -> dict[str, ProcedureFit]:
    """Procedure means and CVs (minutes) from step durations grouped by procedure set.

    ``groups[procs] = (n, sum, sum of squares)`` of the service seconds of completed steps that
    served exactly ``procs``. Means: weighted least squares of group means on the 0/1 design
    matrix (weights n). Variances: the same on group sample variances (weights n - 1). ``priors``
    (catalogue minutes, cv) fill procedures the log cannot determine.
    """
    import numpy as np

    procs = sorted({p for g in groups for p in g})
    if not procs:
        return {}
    idx = {p: i for i, p in enumerate(procs)}
    rows, ys, ws, vrows, vs, vws = [], [], [], [], [], []
    steps = defaultdict(int)
    alone = defaultdict(int)
    for g, (n, s, ss) in groups.items():
        if n <= 0:
            continue
        a = np.zeros(len(procs))
        for p in set(g):
            a[idx[p]] = 1.0
            steps[p] += n
        if len(set(g)) == 1:
            alone[g[0]] += n
        mean = s / n
        rows.append(a)
        ys.append(mean)
        ws.append(math.sqrt(n))
        if n >= MIN_N:
            var = max(0.0, (ss - n * mean * mean) / (n - 1))
            vrows.append(a)
            vs.append(var)
            vws.append(math.sqrt(n - 1))
    A, y, W = np.array(rows), np.array(ys), np.array(ws)
    mu = np.linalg.lstsq(A * W[:, None], y * W, rcond=None)[0]
    if vrows:
        V, v, VW = np.array(vrows), np.array(vs), np.array(vws)
        var = np.linalg.lstsq(V * VW[:, None], v * VW, rcond=None)[0]
    else:
        var = np.full(len(procs), np.nan)
    rank = np.linalg.matrix_rank(A)
    in_var = set(np.nonzero(np.array(vrows).sum(axis=0))[0]) if vrows else set()
    out = {}
    for p, i in idx.items():
        # identified: dropping its column lowers the rank (no combination of others mimics it)
        ident = rank > np.linalg.matrix_rank(np.delete(A, i, axis=1)) if A.shape[1] > 1 else rank == 1
        m_min = float(mu[i]) / 60.0
        pm, pcv = priors.get(p, (max(m_min, 1.0), 0.5))
        if m_min <= 0:
            out[p] = ProcedureFit(p, float(pm), float(pcv), steps[p], alone[p], False, "prior")
        elif i in in_var:
            sd_min = math.sqrt(max(0.0, float(var[i]))) / 60.0
            out[p] = ProcedureFit(p, m_min, sd_min / m_min, steps[p], alone[p], bool(ident), "log")
        else:  # too few repeats to see its spread: the mean is the log's, the CV the prior's
            out[p] = ProcedureFit(p, m_min, float(pcv), steps[p], alone[p], bool(ident), "log mean, prior cv")
    return out


def usual_windows(intervals: Sequence[tuple[int, float, float]], n_days: int) -> tuple[tuple[float, float], ...]:
    """Windows (minutes of the day) in which a counter was open on at least half of ``n_days``.

    ``intervals`` are (day number, start minute, end minute) of its open periods.
    """
    if not n_days:
        return ()
    slots = defaultdict(set)
    for day, a, b in intervals:
        t = math.floor(a / SLOT) * SLOT
        while t < b:
            # a slot counts as open when the counter was open for most of it
            if min(b, t + SLOT) - max(a, t) >= SLOT / 2:
                slots[t].add(day)
            t += SLOT
    open_slots = sorted(t for t, ds in slots.items() if len(ds) * 2 >= n_days)
    out: list[list[float]] = []
    for t in open_slots:
        if out and abs(out[-1][1] - t) < 1e-9:
            out[-1][1] = t + SLOT
        else:
            out.append([t, t + SLOT])
    return tuple((a, b) for a, b in out)


def route_after(steps: Sequence[tuple[str, tuple[str, ...]]], prerequisites: Mapping[str, Sequence[str]]) -> list[tuple[int, ...]]:
    """Each step's ``after``: earlier steps holding a prerequisite of one of its procedures (the
    planner's rule, queue_server.core.journey.plan_visit)."""
    where = {p: i for i, (_, procs) in enumerate(steps) for p in procs}
    out = []
    for i, (_, procs) in enumerate(steps):
        out.append(tuple(sorted({where[a] for p in procs for a in prerequisites.get(p, ())
                                 if a in where and where[a] != i and where[a] < i})))
    return out


# ----------------------------------------------------------------------------- reading the log


def fit(engine: Engine, city: CityConfig, site: str, first: str | dt.date, last: str | dt.date,
        catalogue: Any = None) -> Calibration:
    """Read the log of ``site`` over the local dates and fit every figure of the scenario."""
    if site not in city.sites:
        raise ValueError(f"unknown site {site!r}; sites: {', '.join(city.sites)}")
    period = period_for(site, first, last, city.timezone)
    off = period.offset()
    cfg = city.sites[site]
    open_m, close_m = float(minutes_of(cfg.open)), float(minutes_of(cfg.close))
    notes: list[str] = []
    with log_tables(engine, period) as (conn, dialect):
        q = lambda sql: conn.execute(text(sql)).all()  # noqa: E731
        per_day = q("SELECT day, purposes, COUNT(*) AS n FROM kpi_tk GROUP BY day, purposes")
        per_hour = q("SELECT hour, COUNT(*) AS n FROM kpi_tk GROUP BY hour")
        routes = q("SELECT purposes, route, COUNT(*) AS n FROM kpi_tk GROUP BY purposes, route")
        tk = q("SELECT COUNT(*) AS n, SUM(assistance) AS a FROM kpi_tk")[0]
        svc = q("SELECT procs, COUNT(*) AS n, SUM(service) AS s, SUM(service * service) AS ss FROM kpi_svc GROUP BY procs")
        svc_day = q("""SELECT t.day, s.procs, COUNT(*) AS n, SUM(s.service) AS s, SUM(s.service * s.service) AS ss
                       FROM kpi_svc s JOIN kpi_tk t ON t.ticket = s.ticket GROUP BY t.day, s.procs""")
        median_svc = q("SELECT service FROM kpi_svc ORDER BY service")
        waits = q("SELECT COUNT(*) FROM kpi_wait")[0][0]
        no_shows = q("SELECT COUNT(*) FROM kpi_ev WHERE kind = 'no_show'")[0][0]
        walk = q("SELECT AVG(occupied - serving) FROM kpi_occ WHERE kind = 'completed'")[0][0]
        recall = q("""
            SELECT AVG(gap) FROM (
                SELECT kind, at - LAG(at) OVER (PARTITION BY ticket, step ORDER BY seq) AS gap
                FROM kpi_ev WHERE kind IN ('called', 'recalled')) AS g
            WHERE kind = 'recalled'""")[0][0]
        opens = q("SELECT counter, day, start_at, end_at FROM kpi_open")
        # patience: tickets cancelled while waiting (not the end-of-day sweep), and every wait as exposure
        gave_up = conn.execute(text(f"""
            SELECT COUNT(*) AS n, SUM(e.at - t.at) AS s FROM events e JOIN kpi_tk t ON t.ticket = e.ticket
            WHERE e.site = :site AND e.kind = 'cancelled'
              AND COALESCE({dialect.jtext('reason', 'e.payload')}, '') <> 'end_of_day'
              AND NOT EXISTS (SELECT 1 FROM kpi_ev c WHERE c.ticket = e.ticket AND c.kind = 'called' AND c.at <= e.at)"""),
            {"site": site}).all()[0]
        waited = q("SELECT SUM(wait) FROM kpi_wait")[0][0]
    if not tk.n:
        raise ValueError(f"no tickets at {site} from {period.first} to {period.last}: nothing to calibrate")

    def pkey(raw: str) -> str:
        return "+".join(json.loads(raw))

    # arrivals: weekend days (rare Saturday openings) are outside the simulation's calendar
    counts: dict[tuple[dt.date, str], int] = defaultdict(int)
    for r in per_day:
        counts[(day_of(r.day), pkey(r.purposes))] += int(r.n)
    all_days = sorted({d for d, _ in counts})
    days = [d for d in all_days if d.weekday() < 5]
    if len(days) < len(all_days):
        notes.append(f"{len(all_days) - len(days)} weekend day(s) with tickets left out (the scenario calendar is Mon-Fri)")
    counts = {k: v for k, v in counts.items() if k[0].weekday() < 5}
    rates, wd, months = fit_arrivals(counts, days)
    hours, hour_notes = fit_hours({int(r.hour): int(r.n) for r in per_hour}, open_m, close_m)
    notes += hour_notes

    # service per procedure
    priors: dict[str, tuple[float, float]] = {}
    prereq: dict[str, tuple[str, ...]] = {}
    if catalogue is not None:
        for pid, proc in catalogue.procedures.items():
            priors[pid] = (float(proc.minutes) or 1.0, float(proc.cv))
            prereq[pid] = tuple(proc.after)
    groups: dict[tuple[str, ...], tuple[int, float, float]] = {}
    for r in svc:
        g = tuple(sorted(json.loads(r.procs or "[]")))
        if g:
            n0, s0, ss0 = groups.get(g, (0, 0.0, 0.0))
            groups[g] = (n0 + int(r.n), s0 + float(r.s or 0), ss0 + float(r.ss or 0))
    procs = fit_service(groups, priors)

    # routes as purposes
    by_purpose: dict[str, dict[tuple, int]] = defaultdict(lambda: defaultdict(int))
    planned: dict[str, list[float]] = defaultdict(list)
    for r in routes:
        steps = tuple((s["department"], tuple(s.get("procedures", ()))) for s in json.loads(r.route or "[]"))
        by_purpose[pkey(r.purposes)][steps] += int(r.n)
        for s in json.loads(r.route or "[]"):
            ps = s.get("procedures") or []
            for p in ps:
                planned[p].append(float(s.get("minutes", 0.0)) / max(1, len(ps)))
    for p, ms in planned.items():
        if p not in procs:
            prior = priors.get(p, (sum(ms) / len(ms) if ms else 8.0, 0.5))
            procs[p] = ProcedureFit(p, max(prior[0], 0.1), prior[1], 0, 0, False, "prior")
    variants = []
    for purpose in sorted(by_purpose):
        total = sum(by_purpose[purpose].values())
        for i, (steps, n) in enumerate(sorted(by_purpose[purpose].items(), key=lambda kv: (-kv[1], kv[0])), 1):
            afters = route_after(steps, prereq)
            vsteps = []
            for (dept, ps), after in zip(steps, afters, strict=True):
                mean = sum(procs[p].mean_minutes for p in ps) if ps else 8.0
                sd = math.sqrt(sum((procs[p].mean_minutes * procs[p].cv) ** 2 for p in ps)) if ps else 4.0
                vsteps.append(VariantStep(dept, ps, after, mean, sd / mean if mean > 0 else 0.5))
            variants.append(RouteVariant(f"{_slug(purpose)}_{i}", purpose, n, n / total, tuple(vsteps)))

    # staffing: each counter's usual windows
    intervals: dict[int, list[tuple[int, float, float]]] = defaultdict(list)
    for r in opens:
        base = (int(r.day) * 86400.0 - off)
        intervals[int(r.counter)].append((int(r.day), (float(r.start_at) - base) / 60.0, (float(r.end_at) - base) / 60.0))
    # every counter of the site: one never opened in the period gets no window (the scenario drops it)
    numbers = sorted({c.number for c in cfg.counters} | set(intervals))
    counters = {c: usual_windows(intervals.get(c, []), len(days)) for c in numbers}
    served = {d for c, ws in counters.items() if ws for d in (cfg.counter(c).departments if cfg.counter(c) else ())}
    kept = []
    for v in variants:
        missing = {s.department for s in v.steps} - served
        if missing:
            notes.append(f"route {v.key} ({v.count} tickets) left out: no counter usually open for {', '.join(sorted(missing))}")
        else:
            kept.append(v)

    # what cannot be fitted, and what was left at a default
    problems = []
    svcs = [float(r[0]) for r in median_svc if r[0] is not None]
    if svcs and svcs[len(svcs) // 2] < MIN_SERVICE_SECONDS:
        problems.append(
            f"the median completed step took {svcs[len(svcs) // 2]:.1f} s: no counter serves that fast. Was this log "
            "written in compressed time (a live demo at --speed > 1 stamps the wall clock)? Use a log with real times"
        )
    if not kept:
        problems.append(
            f"no route can be simulated: {len(variants)} route(s) need departments no counter was usually open for "
            f"(counters open on at least half of the {len(days)} day(s))" if variants else "no route in the log"
        )
    if problems:
        raise CalibrationError(problems)
    # exponential patience by maximum likelihood: leavers over the total time spent waiting (the
    # served waits are censored observations of patience: they waited that long and stayed)
    n_left = int(gave_up.n or 0)
    exposure = float(waited or 0.0) + float(gave_up.s or 0.0)
    patience = exposure / n_left / 60.0 if n_left and exposure > 0 else None
    defaulted = ["balking: not in the log (who leaves without a ticket leaves no event)",
                 "reservations: booked tickets arrive as walk-ins"]
    if patience is None:
        defaulted.insert(0, "patience: no ticket was cancelled while waiting (nobody leaves in the scenario; set it, "
                            "stating the estimate)")
    else:
        notes.append(f"patience: exponential, mean {patience:.1f} min from {n_left} ticket(s) cancelled while waiting "
                     "(maximum likelihood, the served waits as censored observations); silent leavers look like no-shows")
    unseen = [("Mon", "Tue", "Wed", "Thu", "Fri")[k] for k in range(5) if k not in wd]
    if unseen:
        defaulted.append(f"weekday factor 1.0 for {', '.join(unseen)}: no such day observed")
    if walk is None:
        defaulted.append("walk_seconds 30: no completed call-to-start interval in the log")
    if recall is None:
        defaulted.append("recall_seconds 60: no recall in the log")
    prior_only = sorted(p for p, f in procs.items() if f.source == "prior")
    if prior_only:
        defaulted.append(f"{len(prior_only)} procedure(s) from the catalogue, never completed in the log: {', '.join(prior_only[:8])}"
                         + (" …" if len(prior_only) > 8 else ""))
    if len(days) < 5:
        notes.append(f"only {len(days)} working day(s): the intervals below are wide, and weekday factors rest on one day each")
    intervals = _bootstrap(counts, days, svc_day, priors, pkey)

    behaviour = {
        "patience_minutes": patience or 0.0,
        "no_show": (no_shows / waits) if waits else 0.0,
        "walk_seconds": float(walk) if walk is not None else 30.0,
        "recall_seconds": float(recall) if recall is not None else 60.0,
        "assistance": float(tk.a or 0) / float(tk.n),
    }
    return Calibration(
        site=site, first=period.first, last=period.last, days=tuple(days), tickets=int(tk.n), rates=rates,
        weekday=tuple(wd.get(k, 1.0) for k in range(5)), months=months, hour_weights=hours,
        open_minute=open_m, close_minute=close_m, procedures=dict(sorted(procs.items())), variants=tuple(kept),
        behaviour=behaviour, counters=counters, target_minutes=float(city.policy.wait_target_minutes),
        notes=tuple(notes), defaulted=tuple(defaulted), intervals=intervals,
    )


def _bootstrap(counts, days, svc_day, priors, pkey, n: int = BOOTSTRAP, seed: int = 0) -> dict[str, tuple[float, float]]:
    """95% percentile intervals over days resampled with replacement: tickets a day per purpose,
    and each procedure's mean minutes (refitted by :func:`fit_service` on each resample)."""
    import random

    if len(days) < 2:
        return {}
    rng = random.Random(seed)
    per_day: dict[dt.date, dict[str, int]] = defaultdict(dict)
    for (d, p), c in counts.items():
        per_day[d][p] = c
    svc_by_day: dict[dt.date, list[tuple[tuple[str, ...], int, float, float]]] = defaultdict(list)
    for r in svc_day:
        g = tuple(sorted(json.loads(r.procs or "[]")))
        if g:
            svc_by_day[day_of(r.day)].append((g, int(r.n), float(r.s or 0), float(r.ss or 0)))
    purposes = sorted({p for _, p in counts})
    samples: dict[str, list[float]] = defaultdict(list)
    for _ in range(n):
        pick = [rng.choice(days) for _ in days]
        for p in purposes:
            samples[f"rate:{p}"].append(sum(per_day[d].get(p, 0) for d in pick) / len(pick))
        samples["rate:*"].append(sum(sum(per_day[d].values()) for d in pick) / len(pick))
        groups: dict[tuple[str, ...], tuple[int, float, float]] = {}
        for d in pick:
            for g, k, s1, s2 in svc_by_day.get(d, ()):
                n0, a0, b0 = groups.get(g, (0, 0.0, 0.0))
                groups[g] = (n0 + k, a0 + s1, b0 + s2)
        for pid, f in fit_service(groups, priors).items():
            if f.source != "prior":
                samples[f"proc:{pid}"].append(f.mean_minutes)
    out = {}
    for k, xs in samples.items():
        xs.sort()
        if len(xs) >= n // 2:
            out[k] = (xs[int(0.025 * (len(xs) - 1))], xs[int(round(0.975 * (len(xs) - 1)))])
    return out


def _slug(purpose: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", purpose.replace("+", "_and_"))


# ----------------------------------------------------------------------------- output


def _hhmm(m: float) -> str:
    m = int(round(m))
    return f"{m // 60:02d}:{m % 60:02d}"


def _q(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def scenario_toml(cal: Calibration, name: str = "calibrated") -> str:
    """A lobby scenario in the format of simulation/scenario.py, every figure sourced to the log."""
    src = f"calibrated from the event log: {cal.site} {cal.first}..{cal.last}, {cal.tickets} tickets, {len(cal.days)} days"
    lines = [
        f"# Calibrated by `python run.py calibrate` from the event log of {cal.site}, {cal.first} to {cal.last}.",
        "# Arrivals, routes and service times are fitted (docs/kpi.md, Calibration); every figure's",
        "# source says so. Not fitted: balking, reservations (checked-in tickets arrive",
        "# as walk-ins), rework (a procedure added at a counter is not simulated).",
        "#",
        "# Service time per procedure (minutes; n = completed steps including it, alone = served alone):",
    ]
    for p in cal.procedures.values():
        flag = f"  ({p.source})" if p.source != "log" else ""
        flag += "" if p.identified or p.source == "prior" else "  (only its group's total is determined)"
        lines.append(f"#   {p.id:<28} mean {p.mean_minutes:7.2f}  cv {p.cv:5.2f}  n {p.steps:6d}  alone {p.alone:6d}{flag}")
    for n in cal.notes:
        lines.append(f"# note: {n}")
    for n in cal.defaulted:
        lines.append(f"# not fitted: {n}")
    if cal.intervals:
        lines.append(f"# 95% bootstrap intervals over the {len(cal.days)} days (tickets a day; mean minutes):")
        for k, (lo, hi) in sorted(cal.intervals.items()):
            lines.append(f"#   {k:<36} {lo:8.2f} – {hi:8.2f}")
    lines += [
        "",
        "[scenario]",
        f"name = {_q(name)}",
        f"title = {_q(f'実績から推定（{cal.site} {cal.first}〜{cal.last}）')}",
        'kind = "lobby"',
        f"site = {_q(cal.site)}",
        "",
        "[calendar]",
        "days = [" + ", ".join(_q(d.isoformat()) for d in cal.days) + "]",
        "holidays = []",
        f"working_days_per_year = {WORKING_DAYS_PER_YEAR:g}",
        "",
        "[target]",
        "share = 0.9                          # estimate: the service level to meet",
        f"within_minutes = {cal.target_minutes:g}",
        "",
        "[behaviour]",
        *(["patience_minutes = 0                 # not fitted: nobody cancelled while waiting, nobody leaves",
           "leave_cancels = 0.0"] if not cal.behaviour.get("patience_minutes") else
          [f"patience_minutes = {cal.behaviour['patience_minutes']:.2f}      # exponential MLE from the log's cancellations",
           'patience_distribution = "exponential"',
           "leave_cancels = 1.0                  # the log only shows those who cancelled"]),
        f"no_show = {cal.behaviour['no_show']:.4f}                 # no-shows per wait, from the log",
        f"walk_seconds = {cal.behaviour['walk_seconds']:.1f}             # mean call-to-start, from the log",
        f"recall_seconds = {cal.behaviour['recall_seconds']:.1f}",
        f"assistance = {cal.behaviour['assistance']:.4f}",
        "",
        "[arrivals]",
        f"source = {_q(src)}",
        "site_share = 1.0                     # rates are this site's own",
        "weekday = [" + ", ".join(f"{w:.4f}" for w in cal.weekday) + "]   # Mon..Fri",
        "after_holiday = 1.0",
        "hour_weights = { " + ", ".join(f'"{h}" = {w:.4f}' for h, w in cal.hour_weights.items()) + " }",
    ]
    if len(cal.months) > 1:
        for mon, f in sorted(cal.months.items()):
            lines += ["", "[[arrivals.month]]", f"month = {mon}", f"factor = {f:.4f}", "purposes = []",
                      f"source = {_q(src)}"]
    for v in cal.variants:
        yearly = cal.rates[v.purpose] * v.share * WORKING_DAYS_PER_YEAR
        steps = []
        for s in v.steps:
            after = f", after = [{', '.join(str(a) for a in s.after)}]" if s.after else ""
            procs = ", ".join(_q(x) for x in s.procedures)  # live mode replays the step through the planner
            steps.append(f"{{ department = {_q(s.department)}, minutes = {s.minutes:.3f}, cv = {s.cv:.3f}{after}, "
                         f"procedures = [{procs}] }}")
        lines += [
            "",
            f"[purposes.{v.key}]",
            f"# {v.purpose}: {v.count} tickets ({v.share:.1%} of the purpose); procedures: "
            + " | ".join(",".join(s.procedures) for s in v.steps),
            f"yearly = {yearly:.3f}              # {cal.rates[v.purpose] * v.share:.3f} a day × {WORKING_DAYS_PER_YEAR:g}",
            f"source = {_q(src)}",
            f"purpose = {_q(v.purpose)}                # the catalogue purpose these steps are a plan of",
            "route = [" + ", ".join(steps) + "]",
        ]
    total = cal.intervals.get("rate:*")
    fitted = sum(cal.rates.values())
    if total and fitted > 0:
        lines += ["", "# The sampling uncertainty of the fit: `simulate` also runs the scenario with every arrival",
                  "# volume at both ends of this 95% bootstrap interval (as factors of the fitted volume).",
                  "[calibration]", f"arrivals = [{total[0] / fitted:.4f}, {total[1] / fitted:.4f}]",
                  f"source = {_q(src + ', bootstrap over days')}"]
    lines += ["", "[staffing]", "slot_minutes = 60", "lunch = false                        # breaks are in the windows below", "counters = ["]
    for c, wins in cal.counters.items():
        # the scenario takes times of day: a counter left open to midnight ends at 23:59
        hours = ", ".join(f'["{_hhmm(a)}", "{_hhmm(min(b, 1439))}"]' for a, b in wins if a < 1439)
        note = "usual opening from the log" if hours else "not opened in the period"
        lines.append(f"  {{ number = {c}, hours = [{hours}], note = {_q(note)} }},")
    lines.append("]")
    return "\n".join(lines) + "\n"


def calibration_to_dict(cal: Calibration) -> dict[str, Any]:
    d = asdict(cal)
    d["first"], d["last"] = cal.first.isoformat(), cal.last.isoformat()
    d["days"] = [x.isoformat() for x in cal.days]
    d["counters"] = {str(k): [list(w) for w in v] for k, v in cal.counters.items()}
    d["hour_weights"] = {str(k): v for k, v in cal.hour_weights.items()}
    d["months"] = {str(k): v for k, v in cal.months.items()}
    d["intervals"] = {k: list(v) for k, v in cal.intervals.items()}
    return d


def format_calibration(cal: Calibration) -> str:
    out = [f"較正 {cal.site} {cal.first}〜{cal.last}: {cal.tickets} 件, {len(cal.days)} 日", "", "■ 来庁（1日あたり、曜日係数1のとき）"]
    out += [f"  {p:<30} {r:8.2f}" for p, r in sorted(cal.rates.items())]
    out.append("■ 曜日係数 月火水木金: " + " ".join(f"{w:.2f}" for w in cal.weekday))
    out.append("■ 時間帯係数: " + " ".join(f"{h}時 {w:.2f}" for h, w in cal.hour_weights.items()))
    out.append("■ 手続き別処理時間（分）")
    for p in cal.procedures.values():
        mark = "" if p.identified else " *"
        out.append(f"  {p.id:<28} 平均 {p.mean_minutes:6.2f}  変動係数 {p.cv:4.2f}  工程 {p.steps:5d}  単独 {p.alone:5d}{mark}")
    out.append("  (* 単独では決まらない: 組み合わせの合計のみ)")
    out.append(f"■ 経路 {len(cal.variants)} 種類")
    b = cal.behaviour
    out.append(f"■ 不在 {b['no_show']:.3f}, 呼出から開始 {b['walk_seconds']:.0f} 秒, 再呼出間隔 {b['recall_seconds']:.0f} 秒, 支援 {b['assistance']:.3f}")
    if cal.intervals:
        out.append("■ 95%区間（日のブートストラップ）: " + ", ".join(
            f"{k.split(':', 1)[1]} {lo:.2f}–{hi:.2f}" for k, (lo, hi) in sorted(cal.intervals.items()) if k.startswith("rate:")))
    out += [f"注: {n}" for n in cal.notes]
    out += [f"未推定 not fitted: {n}" for n in cal.defaulted]
    return "\n".join(out)
