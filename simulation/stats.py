"""Figures from the model's raw records: per replication, then across replications with 95% CIs.

Definitions (docs/simulation.md repeats them for planners):

- **wait** of a step: the time its ticket stood in that department's queue — from the step becoming
  ready to its call, minus any time the citizen spent at another counter meanwhile (a ticket
  waits in every ready department at once, but waits only while it is not being served).
  Mean, p50, p90 and max are over steps *served* (called with the citizen present), in minutes.
- **within target**: steps *called* within the target wait, as a share of every step that left a
  queue — called (served, or absent when called: a no-show is not a staffing failure unless it
  waited past the target first), left (cancelled on the phone after running out of patience) or
  unserved at the end of the day. The call-centre "service level".
- **utilisation** of a department: busy time over on-duty time of the counters that serve it
  (a counter is busy from the call to the end of service, walking time and recalls included).
- **queue length**: tickets waiting for the department (time-average and maximum).
- **Little's law**: time-average queue length L against λ·W, with λ the queue exits per unit of
  time and W their mean queue time (every exit, not only the served). Each day starts and ends
  empty, so on a lobby the two agree to rounding; a gap means the bookkeeping is wrong.

Across replications each figure is the mean of the per-replication values with a 95% Student-t
confidence half-width: replications are independent, days within one replication are not
treated as independent samples.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from typing import Any

from .model import ABSENT, BIN, LEFT, MIN, SERVED, UNSERVED, DayRecord
from .scenario import Scenario

# Two-sided 95% Student-t quantiles t(0.975, df) for df = 1..30; beyond, the normal-ish tail.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t975(df: int) -> float:
    """Student-t 97.5% quantile (two-sided 95%)."""
    if df < 1:
        return math.inf
    if df <= 30:
        return _T975[df - 1]
    return 1.96 + 2.4 / df  # within 0.002 of the exact value for df > 30


def mean_ci(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """Mean of the non-None values, 95% half-width, and the count (half-width None for n < 2)."""
    xs = [float(v) for v in values if v is not None]
    n = len(xs)
    if n == 0:
        return {"mean": None, "ci": None, "n": 0}
    m = sum(xs) / n
    if n < 2:
        return {"mean": m, "ci": None, "n": n}
    var = sum((x - m) ** 2 for x in xs) / (n - 1)
    return {"mean": m, "ci": t975(n - 1) * math.sqrt(var / n), "n": n}


def percentile(sorted_xs: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile of sorted data (q in 0..1)."""
    if not sorted_xs:
        raise ValueError("no data")
    pos = (len(sorted_xs) - 1) * q
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def _wait_figures(waits_s: list[float], exits: int, within: int) -> dict[str, Any]:
    ws = sorted(w / MIN for w in waits_s)
    return {
        "served": len(ws),
        "wait_mean": sum(ws) / len(ws) if ws else None,
        "wait_p50": percentile(ws, 0.5) if ws else None,
        "wait_p90": percentile(ws, 0.9) if ws else None,
        "wait_max": ws[-1] if ws else None,
        "within_target": within / exits if exits else None,
    }


def summarise_replication(sc: Scenario, days: Sequence[DayRecord]) -> dict[str, Any]:
    """Every figure of one replication (all its days) as plain JSON-ready data."""
    depts = days[0].departments
    target = sc.target_minutes * MIN
    slots = sc.slots()
    starts = [a for a, _ in slots]
    nd = len(depts)
    waits: list[list[float]] = [[] for _ in range(nd)]
    exits = [0] * nd
    within = [0] * nd
    qsum = [0.0] * nd  # every exit's queue time, for Little's law
    outcome_n = [[0, 0, 0, 0] for _ in range(nd)]
    hourly: list[dict[int, list[float]]] = [{} for _ in range(nd)]  # hour -> [sum wait min, n]
    slot_n = [[0] * len(slots) for _ in range(nd)]  # per staffing slot: exits and within target
    slot_in = [[0] * len(slots) for _ in range(nd)]
    area = [0.0] * nd
    qmax = [0] * nd
    horizon = 0.0
    counters: dict[int, list[float]] = {}
    dept_duty = [0.0] * nd
    dept_busy = [0.0] * nd
    visits: dict[str, list[float]] = {}
    outcomes_t: dict[str, int] = {}
    overtime = []
    queue_bins: dict[str, dict[str, list[float]]] = {}
    counter_bins: dict[int, list[list[float]]] = {}
    arrivals = no_route = 0
    for r in days:
        arrivals += r.arrivals
        no_route += r.no_route
        horizon += r.end_s - r.start_s
        overtime.append(max(0.0, r.end_s - r.close_s) / MIN)
        for d, ready, w, o in zip(r.st_dept, r.st_ready, r.st_wait, r.st_outcome, strict=True):
            exits[d] += 1
            qsum[d] += w
            outcome_n[d][o] += 1
            k = _slot_of(slots, ready / MIN, starts)
            if k is not None:
                slot_n[d][k] += 1
            if o == SERVED:
                waits[d].append(w)
                h = int(ready // 3600)
                cell = hourly[d].setdefault(h, [0.0, 0.0])
                cell[0] += w / MIN
                cell[1] += 1
            if o in (SERVED, ABSENT) and w <= target:
                within[d] += 1
                if k is not None:
                    slot_in[d][k] += 1
        for d in range(nd):
            area[d] += r.q_area[d]
            qmax[d] = max(qmax[d], r.q_max[d])
        queue_bins[r.day] = {
            depts[d]: [a / BIN for a in r.q_bins[d]] for d in range(nd) if any(r.q_bins[d])
        }
        for num, (duty, busy, _by_dept) in r.counters.items():
            acc = counters.setdefault(num, [0.0, 0.0])
            acc[0] += duty
            acc[1] += busy
        for num in r.counter_duty_bins:
            cb = counter_bins.setdefault(num, [[0.0] * len(r.counter_duty_bins[num]), [0.0] * len(r.counter_duty_bins[num])])
            for i, x in enumerate(r.counter_duty_bins[num]):
                cb[0][i] += x
            for i, x in enumerate(r.counter_busy_bins.get(num, ())):
                cb[1][i] += x
        for p, a, b, st in zip(r.tk_purpose, r.tk_issued, r.tk_closed, r.tk_state, strict=True):
            visits.setdefault(p, []).append((b - a) / MIN)
            outcomes_t[st] = outcomes_t.get(st, 0) + 1
    plan_by_num = {c.number: c for c in sc.counters}
    for num, (duty, busy) in counters.items():
        for dname in plan_by_num[num].departments if num in plan_by_num else ():
            d = depts.index(dname)
            dept_duty[d] += duty
            dept_busy[d] += busy

    out_depts: dict[str, Any] = {}
    for d, name in enumerate(depts):
        if exits[d] == 0 and dept_duty[d] == 0:
            continue
        f = _wait_figures(waits[d], exits[d], within[d])
        lam = exits[d] / horizon if horizon else 0.0
        f.update(
            {
                "exits": exits[d],
                "absent": outcome_n[d][ABSENT],
                "left": outcome_n[d][LEFT],
                "unserved": outcome_n[d][UNSERVED],
                "utilisation": dept_busy[d] / dept_duty[d] if dept_duty[d] else None,
                "queue_mean": area[d] / horizon if horizon else None,
                "queue_max": qmax[d],
                "little_L": area[d] / horizon if horizon else None,
                "little_lambda_W": lam * (qsum[d] / exits[d]) if exits[d] else 0.0,
                "hourly_wait": {str(h): c[0] / c[1] for h, c in sorted(hourly[d].items())},
                "slot_exits": slot_n[d],
                "slot_within": slot_in[d],
            }
        )
        out_depts[name] = f
    all_w = [w for ws in waits for w in ws]
    overall = _wait_figures(all_w, sum(exits), sum(within))
    overall["utilisation"] = (
        sum(b for _, b in counters.values()) / sum(dd for dd, _ in counters.values()) if counters else None
    )
    overall["queue_mean"] = sum(area) / horizon if horizon else None
    overall["exits"] = sum(exits)
    return {
        "arrivals": arrivals,
        "no_route": no_route,
        "tickets": outcomes_t,
        "departments": out_depts,
        "overall": overall,
        "visit_minutes": {p: sum(v) / len(v) for p, v in sorted(visits.items())},
        "counters": {str(n): (b / d if d else None) for n, (d, b) in sorted(counters.items())},
        "counter_bins": {str(n): v for n, v in sorted(counter_bins.items())},
        "overtime_minutes": max(overtime) if overtime else 0.0,
        "queue_bins": queue_bins,
    }


def _slot_of(slots: Sequence[tuple[float, float]], minute: float, starts: Sequence[float] | None = None) -> int | None:
    """Index of the slot [a, b) holding ``minute``, or None: a binary search over the slot starts.

    Slots are sorted and do not overlap (Scenario.slots), so the last start <= minute is the only
    candidate; a linear scan per customer made a long station run's summary quadratic.
    """
    if starts is None:
        starts = [a for a, _ in slots]
    i = bisect_right(starts, minute) - 1
    if i >= 0 and minute < slots[i][1]:
        return i
    return None


DEPT_FIGURES = (
    "served", "wait_mean", "wait_p50", "wait_p90", "wait_max", "within_target", "utilisation",
    "queue_mean", "queue_max", "absent", "left", "unserved", "little_L", "little_lambda_W",
)  # fmt: skip


def combine(sc: Scenario, reps: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Across replications: each figure's mean and 95% CI; pooled data for the plots."""
    depts = sorted({d for r in reps for d in r["departments"]}, key=lambda d: _dept_rank(sc, d))
    out: dict[str, Any] = {
        "scenario": sc.name,
        "title": sc.title,
        "replications": len(reps),
        "days": [d.isoformat() for d in sc.days] if sc.kind == "lobby" else [],
        "target": {"share": sc.target_share, "within_minutes": sc.target_minutes},
        "departments": {},
    }
    for d in depts:
        rows = [r["departments"].get(d) for r in reps]
        out["departments"][d] = {k: mean_ci(row.get(k) if row else None for row in rows) for k in DEPT_FIGURES}
        hours = sorted({h for row in rows if row for h in row["hourly_wait"]}, key=int)
        out["departments"][d]["hourly_wait"] = {
            h: mean_ci(row["hourly_wait"].get(h) if row else None for row in rows) for h in hours
        }
        nslots = len(sc.slots())
        out["departments"][d]["slot_exits"] = [sum(row["slot_exits"][k] for row in rows if row) for k in range(nslots)]
        out["departments"][d]["slot_within"] = [sum(row["slot_within"][k] for row in rows if row) for k in range(nslots)]
    out["overall"] = {
        k: mean_ci(r["overall"].get(k) for r in reps)
        for k in ("served", "wait_mean", "wait_p50", "wait_p90", "wait_max", "within_target", "utilisation", "queue_mean")
    }
    out["arrivals"] = mean_ci(r["arrivals"] for r in reps)
    out["tickets"] = {
        k: mean_ci(r["tickets"].get(k, 0) for r in reps) for k in sorted({k for r in reps for k in r["tickets"]})
    }
    out["visit_minutes"] = {
        p: mean_ci(r["visit_minutes"].get(p) for r in reps)
        for p in sorted({p for r in reps for p in r["visit_minutes"]})
    }
    out["counters"] = {n: mean_ci(r["counters"].get(n) for r in reps) for n in reps[0]["counters"]}
    out["overtime_minutes"] = mean_ci(r["overtime_minutes"] for r in reps)
    # plots: queue length per 15-minute bin averaged over replications, per day and department
    qb: dict[str, dict[str, list[float]]] = {}
    for r in reps:
        for day, per in r["queue_bins"].items():
            for d, bins in per.items():
                acc = qb.setdefault(day, {}).setdefault(d, [0.0] * len(bins))
                for i, x in enumerate(bins):
                    acc[i] += x / len(reps)
    out["queue_bins"] = qb
    cb: dict[str, list[float]] = {}
    for r in reps:
        for n, (duty, busy) in r["counter_bins"].items():
            acc = cb.setdefault(n, [0.0] * (2 * len(duty)))
            for i, x in enumerate(duty):
                acc[i] += x
            for i, x in enumerate(busy):
                acc[len(duty) + i] += x
    out["counter_utilisation_by_bin"] = {
        n: [(v[len(v) // 2 + i] / v[i] if v[i] > 0 else None) for i in range(len(v) // 2)] for n, v in cb.items()
    }
    out["bin_minutes"] = BIN / MIN
    out["open_minute"] = sc.open_minute
    return out


def _dept_rank(sc: Scenario, d: str) -> tuple[int, str]:
    order = list(sc.departments)
    return (order.index(d) if d in order else len(order), d)


def little_gap(summary_rep: dict[str, Any]) -> float:
    """Largest relative gap |L − λW| / max(L, λW) over departments of one replication."""
    worst = 0.0
    for f in summary_rep["departments"].values():
        a, b = f["little_L"] or 0.0, f["little_lambda_W"] or 0.0
        if max(a, b) > 0:
            worst = max(worst, abs(a - b) / max(a, b))
    return worst
