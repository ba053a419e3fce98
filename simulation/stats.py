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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .model import (
    ABSENT,
    ASSISTED,
    BALKED,
    BIN,
    BOOKED,
    CUTOFF,
    GONE,
    LEFT,
    MIN,
    OUTCOMES,
    SERVED,
    UNSERVED,
    DayRecord,
)
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
    outcome_n = [[0] * len(OUTCOMES) for _ in range(nd)]
    no = len(OUTCOMES)
    sl_n = int(math.ceil((sc.close_minute - sc.open_minute) / SL_SLOT_MINUTES))
    # by class (walk-in, booked, assisted) per department: served, wait sum, within, exits, lost
    by_class = [{c: [0, 0.0, 0, 0, 0] for c in CLASSES} for _ in range(nd)]
    per_day: dict[str, Any] = {}
    abandon_w = [[] for _ in range(nd)]  # minutes waited before leaving (LEFT and GONE citizens' steps)
    absent_busy = [0.0] * nd
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
        # this day's figures: outcome counts per department, waits, and per 30-minute slot
        d_out = [[0] * no for _ in range(nd)]
        d_wsum = [0.0] * nd
        d_exits = [0] * nd
        d_in = [0] * nd
        d_sl = [[[0, 0, 0.0, 0] for _ in range(sl_n)] for _ in range(nd)]  # exits, within, wait sum, served
        d_hour: list[dict[int, list[int]]] = [{} for _ in range(nd)]  # hour -> outcome counts
        open_m = sc.open_minute
        for d, ready, w, o, cls in zip(r.st_dept, r.st_ready, r.st_wait, r.st_outcome, r.st_class, strict=True):
            outcome_n[d][o] += 1
            d_out[d][o] += 1
            h = int(ready // 3600)
            hc = d_hour[d].get(h)
            if hc is None:
                hc = d_hour[d][h] = [0] * no
            hc[o] += 1
            bc = by_class[d]
            cells = (bc["booked"] if cls & BOOKED else bc["walk_in"],) + ((bc["assisted"],) if cls & ASSISTED else ())
            if o >= BALKED:  # never queued: a lost citizen, not a queue exit
                for cell in cells:
                    cell[4] += 1
                continue
            exits[d] += 1
            d_exits[d] += 1
            qsum[d] += w
            k = _slot_of(slots, ready / MIN, starts)
            if k is not None:
                slot_n[d][k] += 1
            j = int((ready / MIN - open_m) // SL_SLOT_MINUTES)
            sl = d_sl[d][j] if 0 <= j < sl_n else None
            if sl is not None:
                sl[0] += 1
            ok = o in (SERVED, ABSENT, GONE) and w <= target
            for cell in cells:
                cell[3] += 1
                if ok:
                    cell[2] += 1
                if o == SERVED:
                    cell[0] += 1
                    cell[1] += w
                elif o != ABSENT:
                    cell[4] += 1
            if o == SERVED:
                waits[d].append(w)
                d_wsum[d] += w
                cell = hourly[d].setdefault(h, [0.0, 0.0])
                cell[0] += w / MIN
                cell[1] += 1
                if sl is not None:
                    sl[2] += w
                    sl[3] += 1
            if ok:
                within[d] += 1
                d_in[d] += 1
                if k is not None:
                    slot_in[d][k] += 1
                if sl is not None:
                    sl[1] += 1
        # citizens (one per arrival that got as far as a route): their fate, wait before leaving
        fates = [0] * no
        d_left_w: list[float] = []
        c_hour: dict[int, list[int]] = {}
        for issued, fate, dept, lw in zip(r.tk_issued, r.tk_fate, r.tk_dept, r.tk_left_wait, strict=True):
            fates[fate] += 1
            h = int(issued // 3600)
            ch = c_hour.get(h)
            if ch is None:
                ch = c_hour[h] = [0] * no
            ch[fate] += 1
            if lw >= 0 and fate in (LEFT, GONE):
                d_left_w.append(lw / MIN)
                if dept >= 0:
                    abandon_w[dept].append(lw / MIN)
        for d in range(nd):
            absent_busy[d] += r.absent_busy[d] if r.absent_busy else 0.0
        per_day[r.day] = {
            "citizens": _citizens(fates, d_left_w),
            "citizens_by_hour": {str(h): _fate_counts(v) for h, v in sorted(c_hour.items())},
            "departments": {
                depts[d]: {
                    **_fate_counts(d_out[d]),
                    "exits": d_exits[d],
                    "wait_mean": d_wsum[d] / MIN / d_out[d][SERVED] if d_out[d][SERVED] else None,
                    "within_target": d_in[d] / d_exits[d] if d_exits[d] else None,
                    "absent_counter_minutes": (r.absent_busy[d] if r.absent_busy else 0.0) / MIN,
                    "slot_within": [x[1] / x[0] if x[0] else None for x in d_sl[d]],
                    "slot_exits": [x[0] for x in d_sl[d]],
                    "slot_wait": [x[2] / MIN / x[3] if x[3] else None for x in d_sl[d]],
                    "hourly": {str(h): _fate_counts(v) for h, v in sorted(d_hour[d].items())},
                }
                for d in range(nd)
                if sum(d_out[d])
            },
        }
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
        for p, a, b, st, fate in zip(r.tk_purpose, r.tk_issued, r.tk_closed, r.tk_state, r.tk_fate, strict=True):
            if fate < BALKED:  # those with a ticket
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
        if sum(outcome_n[d]) == 0 and dept_duty[d] == 0:
            continue
        f = _wait_figures(waits[d], exits[d], within[d])
        lam = exits[d] / horizon if horizon else 0.0
        f.update(
            {
                "exits": exits[d],
                "absent": outcome_n[d][ABSENT],
                "left": outcome_n[d][LEFT],
                "unserved": outcome_n[d][UNSERVED],
                "gone": outcome_n[d][GONE],
                "balked": outcome_n[d][BALKED],
                "cutoff": outcome_n[d][CUTOFF],
                "abandoned": outcome_n[d][LEFT] + outcome_n[d][GONE],
                "lost": sum(outcome_n[d][o] for o in LOST),
                "lost_share": sum(outcome_n[d][o] for o in LOST) / sum(outcome_n[d]) if sum(outcome_n[d]) else None,
                "abandon_wait_mean": sum(abandon_w[d]) / len(abandon_w[d]) if abandon_w[d] else None,
                "absent_counter_minutes": absent_busy[d] / MIN,
                "classes": {
                    c: {
                        "served": v[0],
                        "wait_mean": v[1] / MIN / v[0] if v[0] else None,
                        "within_target": v[2] / v[3] if v[3] else None,
                        "lost": v[4],
                    }
                    for c, v in by_class[d].items()
                    if v[3] or v[4]
                },
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
    all_fates = [0] * no
    left_all: list[float] = []
    for r in days:
        for fate, lw in zip(r.tk_fate, r.tk_left_wait, strict=True):
            all_fates[fate] += 1
            if lw >= 0 and fate in (LEFT, GONE):
                left_all.append(lw / MIN)
    classes_all: dict[str, list[float]] = {c: [0, 0.0, 0, 0, 0] for c in CLASSES}
    for bc in by_class:
        for c, v in bc.items():
            for i in range(5):
                classes_all[c][i] += v[i]
    return {
        "citizens": _citizens(all_fates, left_all),
        "classes": {
            c: {
                "served": v[0],
                "wait_mean": v[1] / MIN / v[0] if v[0] else None,
                "within_target": v[2] / v[3] if v[3] else None,
                "lost": v[4],
            }
            for c, v in classes_all.items()
        },
        "by_day": per_day,
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


SL_SLOT_MINUTES = 30.0  # the per-day service-level slots of the report
CLASSES = ("walk_in", "booked", "assisted")  # assisted overlaps the other two
LOST = (LEFT, GONE, UNSERVED, BALKED, CUTOFF)  # citizens who went home without being served
FATES = ("served", "abandoned", "absent", "balked", "cutoff", "unserved")


def _fate_counts(v: Sequence[int]) -> dict[str, int]:
    """Outcome counts folded into the planner's categories (LEFT and GONE are both abandoned)."""
    return {
        "served": v[SERVED],
        "abandoned": v[LEFT] + v[GONE],
        "absent": v[ABSENT],
        "balked": v[BALKED],
        "cutoff": v[CUTOFF],
        "unserved": v[UNSERVED],
    }


def _citizens(fates: Sequence[int], left_waits: Sequence[float]) -> dict[str, Any]:
    """Citizens who came (took a ticket or were turned away) by fate, the share lost, the wait before leaving."""
    came = sum(fates)
    out: dict[str, Any] = {"came": came, **_fate_counts(fates)}
    out["lost"] = sum(fates[o] for o in LOST)
    out["lost_share"] = out["lost"] / came if came else None
    out["abandon_wait_mean"] = sum(left_waits) / len(left_waits) if left_waits else None
    return out


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
    "gone", "balked", "cutoff", "abandoned", "lost", "lost_share", "abandon_wait_mean", "absent_counter_minutes",
)  # fmt: skip
CITIZEN_FIGURES = ("came", *FATES, "lost", "lost_share", "abandon_wait_mean")
DAY_DEPT_FIGURES = (*FATES, "wait_mean", "within_target", "absent_counter_minutes")
CLASS_FIGURES = ("served", "wait_mean", "within_target", "lost")


def _ci_table(rows: Sequence[Mapping[str, Any] | None], keys: Iterable[str]) -> dict[str, Any]:
    """Each key's mean and 95% CI across replications (a missing row or value is left out)."""
    return {k: mean_ci(row.get(k) if row else None for row in rows) for k in keys}


def _ci_list(rows: Sequence[Sequence[float | None] | None], n: int) -> list[dict[str, Any]]:
    """Position by position, the mean and 95% CI across replications."""
    return [mean_ci(row[i] if row and i < len(row) else None for row in rows) for i in range(n)]


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
        out["departments"][d]["classes"] = {
            c: _ci_table([row["classes"].get(c) if row else None for row in rows], CLASS_FIGURES)
            for c in CLASSES
            if any(row and c in row["classes"] for row in rows)
        }
        nslots = len(sc.slots())
        out["departments"][d]["slot_exits"] = [sum(row["slot_exits"][k] for row in rows if row) for k in range(nslots)]
        out["departments"][d]["slot_within"] = [sum(row["slot_within"][k] for row in rows if row) for k in range(nslots)]
    out["overall"] = {
        k: mean_ci(r["overall"].get(k) for r in reps)
        for k in ("served", "wait_mean", "wait_p50", "wait_p90", "wait_max", "within_target", "utilisation", "queue_mean")
    }
    out["citizens"] = _ci_table([r["citizens"] for r in reps], CITIZEN_FIGURES)
    out["classes"] = {c: _ci_table([r["classes"][c] for r in reps], CLASS_FIGURES) for c in CLASSES}
    # by day: the citizens, and per department its figures and the service level per 30-minute slot
    by_day: dict[str, Any] = {}
    for day in reps[0]["by_day"]:
        rows_d = [r["by_day"].get(day) for r in reps]
        dd: dict[str, Any] = {
            "citizens": _ci_table([x["citizens"] if x else None for x in rows_d], CITIZEN_FIGURES),
            "departments": {},
        }
        for d in depts:
            drows = [x["departments"].get(d) if x else None for x in rows_d]
            if not any(drows):
                continue
            n = max(len(x["slot_within"]) for x in drows if x)
            cell = _ci_table(drows, DAY_DEPT_FIGURES)
            cell["slot_within"] = _ci_list([x["slot_within"] if x else None for x in drows], n)
            cell["slot_wait"] = _ci_list([x["slot_wait"] if x else None for x in drows], n)
            cell["slot_exits"] = [mean_ci(x["slot_exits"][i] if x else 0 for x in drows)["mean"] for i in range(n)]
            hours = sorted({h for x in drows if x for h in x["hourly"]}, key=int)
            cell["hourly"] = {
                h: {f: mean_ci((x["hourly"].get(h, {}).get(f, 0) if x else 0) for x in drows)["mean"] for f in FATES}
                for h in hours
            }
            dd["departments"][d] = cell
        by_day[day] = dd
    out["by_day"] = by_day
    out["sl_slot_minutes"] = SL_SLOT_MINUTES
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
