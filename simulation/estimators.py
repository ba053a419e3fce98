"""Estimator comparison: every wait estimate the lobby could have shown, against the wait that followed.

A :class:`LobbyDay` (the same core moves and dispatch as the server) is run with hooks: whenever
a step enters a queue (at issue, or released by a completed step), every estimator of
:mod:`queue_server.core.estimators` gives that step's wait from what the lobby knows at that moment —
its queue, its open counters and its recent calls and services — and the harness later records
when the step was actually called. ``run.py simulate SCENARIO --estimators`` prints MAE and RASE
(root average squared error relative to the mean wait, Ibrahim & Whitt) per estimator, for all
waits and for waits over 5 minutes; docs/prediction.md holds the table.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field

from queue_server.core import estimators as E
from queue_server.core.estimate import all_department_waits
from queue_server.core.model import Counter, CounterState, StepState

from .model import LobbyDay, _Counter, _Visit
from .scenario import Scenario

ESTIMATORS = ("formula", "ql", "ql_left", "les", "hol", "hol_scaled", "blend", "blend_cal", "blend_cal_hol",
              "ql_staff_hol", "ql_hol", "ql_hol_turn", "shipped")
SHIPPED = "shipped"  # queue_server.core.estimators.shipped_wait, what queue_server.hub shows
NAMES = {
    "formula": "current formula: planned work ahead / open counters (a shared counter counts 1/k)",
    "ql": "QL: (ahead + 1) / calls per minute in the last 30 min",
    "ql_left": "QL counting walk-outs as departures too",
    "les": "LES: wait of the last ticket called",
    "hol": "HOL: elapsed wait of the head of the line",
    "hol_scaled": "HOL x (ahead + 1) / (head's ahead at entry + 1)",
    "blend": "planned work / (open counters x share of recent calls x measured speed)",
    "blend_cal": "blend x actual/predicted ratio of the last 12 calls",
    "blend_cal_hol": "mean of blend_cal and HOL",
    "ql_staff_hol": "mean of HOL and ql_left scaled by open counters now / mean over 30 min",
    "ql_hol": "mean of ql_left (blend before 3 calls) and HOL",
    "ql_hol_turn": "ql_hol, a ticket's simultaneous queues taken one at a time",
    "shipped": "0.9 x mean of ql_left, HOL and planned work (blend), queues taken one at a time",
}


@dataclass
class Sample:
    department: str
    at: float  # seconds since midnight, when the step entered its queue
    estimates: dict[str, float | None]
    actual: float | None = None  # minutes until the step was called; None if never called
    features: dict[str, float | None] = field(default_factory=dict)  # the inputs, for tuning offline


class MeasuredDay(LobbyDay):
    """A LobbyDay that estimates every queue entry with every estimator."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.samples: list[Sample] = []
        self.pending: dict[tuple[str, int], Sample] = {}
        self.history = E.History()
        self.seen_calls: set[tuple[str, float]] = set()
        self.all_visits: dict[str, _Visit] = {}
        self.entry_ahead: dict[tuple[str, int], int] = {}  # (ticket, step) -> tickets ahead when it queued

    # ------------------------------------------------------------ hooks
    def _arrive(self, purpose: str, slot: float | None, now: float) -> None:
        before = self.number
        super()._arrive(purpose, slot, now)
        if self.number != before:
            tid = f"{self.rec.day}-{self.number}"
            v = self.visits.get(tid)
            if v is not None:
                self.all_visits[tid] = v
                self._measure(v, now)

    def _enter(self, v: _Visit, now: float) -> None:
        super()._enter(v, now)
        self._measure(v, now)

    def _patience_over(self, v: _Visit, epoch: int) -> None:
        ready = [s.department for s in v.ticket.steps if s.state is StepState.READY]
        super()._patience_over(v, epoch)
        if v.ticket.closed is not None and not v.busy:
            for d in ready:
                self.history.add_left(self.env.now, d)

    def _busy_end(self, c: _Counter, v: _Visit, d: int, now: float) -> None:
        called_at = v.busy_since
        self._note_call(v, called_at, c.number, self.departments[d])
        dept = self.departments[d]
        for s in v.ticket.steps:
            if s.department == dept and s.counter == c.number:
                if s.started_at is not None and s.completed_at is not None:
                    self.history.add_service(E.Service(now, c.number, s.minutes, (now - s.started_at) / 60.0))
                sample = self.pending.pop((v.ticket.id, s.index), None)
                if sample is not None:
                    sample.actual = (called_at - sample.at) / 60.0
        super()._busy_end(c, v, d, now)

    # ------------------------------------------------------------ measuring
    def _note_call(self, v: _Visit, at: float, counter: int, department: str) -> None:
        key = (v.ticket.id, at)
        if key in self.seen_calls:
            return
        self.seen_calls.add(key)
        step = next((s for s in v.ticket.steps if s.department == department and s.counter == counter), None)
        ready = step.ready_since if step is not None and step.ready_since is not None else v.ticket.issued_at
        sample = self.pending.get((v.ticket.id, step.index)) if step is not None else None
        predicted = sample.estimates.get("blend") if sample is not None else None
        self.history.add_call(E.Call(at, counter, department, max(0.0, at - ready), predicted))

    def _catch_up_calls(self) -> None:
        for v in self.visits.values():
            if v.busy:
                s = v.ticket.active_step
                if s is not None and s.counter is not None:
                    self._note_call(v, v.busy_since, s.counter, s.department)

    def _measure(self, v: _Visit, now: float) -> None:
        new = [s for s in v.ticket.steps if s.state is StepState.READY and s.ready_since == now
               and (v.ticket.id, s.index) not in self.pending]
        if not new or v.busy:
            return
        self._catch_up_calls()
        tickets = [x.ticket for x in self.visits.values()]  # the lobby cannot know who left
        counters = [
            Counter(self.sc.site, c.number, c.departments,
                    state=CounterState.OPEN if c.on_duty else CounterState.CLOSED)
            for c in self.counters
        ]
        waiting = {d: 0 for d in self.departments}
        for x in self.visits.values():
            if not x.busy:
                for s in x.ticket.steps:
                    if s.state is StepState.READY:
                        waiting[s.department] += 1
        depts = sorted({s.department for s in new})
        base = all_department_waits(depts, tickets, counters, now, self.policy)
        cap = E.capacity(counters, self.history, waiting, now)
        blend = all_department_waits(depts, tickets, counters, now, self.policy, capacity=cap)
        tid = v.ticket.id
        staffed_now: dict[str, float] = {}  # every department's effective counters, not only those measured now
        for split in cap.values():
            for dd, x in split.items():
                staffed_now[dd] = staffed_now.get(dd, 0.0) + x
        self.history.add_staffing(now, staffed_now)
        made: list[tuple[Sample, float]] = []
        for s in new:
            d = s.department
            bw, xw = base[d], blend[d]
            ahead = bw.ranks.get(tid, bw.waiting)
            serving = [c for c in counters if c.state is CounterState.OPEN and d in c.departments]
            busy = {x.ticket.active_step.counter for x in self.visits.values() if x.busy and x.ticket.active_step}
            idle = sum(1 for c in serving if c.number not in busy)
            head, head_key = self._head(d, now, tid)
            self.entry_ahead[(tid, s.index)] = ahead
            hs = E.hol_scaled(head, self.entry_ahead.get(head_key) if head_key else None, ahead)
            ql = E.ql_wait(ahead, idle, E.departure_rate(self.history.calls, d, now, since=self.history.start))
            rate = E.departure_rate(self.history.calls, d, now, self.history.left, self.history.start)
            f = bw.positions.get(tid)
            b = xw.positions.get(tid)
            cal = None if b is None else b * E.calibration(self.history.calls, d, now)
            h = _or(E.hol_wait(head), cal) if ahead >= idle else 0.0
            rate = E.departure_rate(self.history.calls, d, now, self.history.left, self.history.start)
            staffed = None if rate is None else rate * self.history.staffing_ratio(d, xw.counters, now)
            ql_left = E.ql_wait(ahead, idle, rate)
            ql_staff = E.ql_wait(ahead, idle, staffed)
            hol = h if h is not None else None

            def half(x: float | None, y: float | None) -> float | None:
                return None if x is None else (x if y is None else (x + y) / 2)

            est = {
                "formula": f,
                "ql": ql if ql is not None else f,
                "ql_left": ql_left if ql_left is not None else b,
                "les": _or(E.les_wait(self.history.calls, d, now), f) if ahead >= idle else 0.0,
                "hol": _or(E.hol_wait(head), f) if ahead >= idle else 0.0,
                "hol_scaled": _or(hs, cal) if ahead >= idle else 0.0,
                "blend": b,
                "blend_cal": cal,
                "blend_cal_hol": half(cal, hol),
                "ql_staff_hol": half(ql_staff if ql_staff is not None else b, hol),
                "ql_hol": E.ql_hol_wait(ahead, idle, rate, b, head),
                "shipped": E.shipped_wait(ahead, idle, rate, b, head),
            }
            sample = Sample(d, now, est, features={"minutes": s.minutes,
                "ahead": ahead, "idle": idle, "rate": rate, "work": b, "head": head, "les": E.les_wait(self.history.calls, d, now),
                "counters": xw.counters, "staff_ratio": self.history.staffing_ratio(d, xw.counters, now)})
            self.samples.append(sample)
            self.pending[(tid, s.index)] = sample
            made.append((sample, s.minutes))
        # a citizen with several queues at once is served in one at a time
        minutes = [m for _, m in made]
        for key, source in (("ql_hol_turn", "ql_hol"), ("shipped", "shipped")):
            turned = E.one_at_a_time([x.estimates[source] for x, _ in made], minutes)
            for (x, _), w in zip(made, turned, strict=True):
                x.estimates[key] = w

    def _head(self, department: str, now: float, exclude: str) -> tuple[float | None, tuple[str, int] | None]:
        best, key = None, None
        for x in self.visits.values():
            if x.busy or x.ticket.id == exclude:
                continue
            for s in x.ticket.steps:
                if (s.state is StepState.READY and s.department == department and s.ready_since is not None
                        and (best is None or s.ready_since < best)):
                    best, key = s.ready_since, (x.ticket.id, s.index)
        return (None, None) if best is None else (now - best, key)


def _or(a: float | None, b: float | None) -> float | None:
    return b if a is None else a


# ------------------------------------------------------------------ scoring


@dataclass
class Score:
    n: int = 0
    mean_wait: float = 0.0
    mae: dict[str, float] = field(default_factory=dict)
    rase: dict[str, float] = field(default_factory=dict)
    within5: dict[str, float] = field(default_factory=dict)
    unknown: dict[str, int] = field(default_factory=dict)


def score(samples: list[Sample], min_wait: float = 0.0) -> Score:
    """MAE (minutes), RASE (root mean squared error / mean actual wait) and the share within ±5
    minutes per estimator, over samples that were called and waited more than ``min_wait``
    minutes. An estimator without a figure (no open counter) is scored as the formula's None:
    counted in ``unknown`` and left out."""
    rows = [s for s in samples if s.actual is not None and s.actual > min_wait]
    out = Score(n=len(rows))
    if not rows:
        return out
    out.mean_wait = sum(s.actual for s in rows) / len(rows)  # type: ignore[misc]
    for e in ESTIMATORS:
        errs = [s.estimates[e] - s.actual for s in rows if s.estimates.get(e) is not None]  # type: ignore[operator]
        out.unknown[e] = len(rows) - len(errs)
        if errs:
            out.mae[e] = sum(abs(x) for x in errs) / len(errs)
            out.rase[e] = math.sqrt(sum(x * x for x in errs) / len(errs)) / out.mean_wait if out.mean_wait else 0.0
            out.within5[e] = sum(1 for x in errs if abs(x) <= 5) / len(errs)
    return out


def ratio_quantiles(samples: list[Sample], estimator: str, min_wait: float = 5.0) -> tuple[float, float]:
    """10th and 90th percentiles of actual / estimate for waits over ``min_wait`` (the range shown)."""
    r = sorted(s.actual / s.estimates[estimator] for s in samples  # type: ignore[operator]
               if s.actual is not None and s.actual > min_wait and (s.estimates.get(estimator) or 0) > 1)
    if not r:
        return (1.0, 1.0)
    return (r[int(0.1 * (len(r) - 1))], r[int(0.9 * (len(r) - 1))])


def measure_day(sc: Scenario, router, day: dt.date, seed: int) -> list[Sample]:
    d = MeasuredDay(sc, router, day, random.Random(seed))
    d.run()
    return d.samples


def compare(sc: Scenario, router, days: list[dt.date], seeds: int = 3, seed: int = 1) -> dict[str, list[Sample]]:
    """Samples per day label (``seeds`` independent runs of each day pooled)."""
    out: dict[str, list[Sample]] = {}
    for day in days:
        rows: list[Sample] = []
        for r in range(seeds):
            rows.extend(measure_day(sc, router, day, seed * 1000 + r))
        out[day.isoformat()] = rows
    return out


def table(results: dict[str, list[Sample]]) -> str:
    """A Markdown table: per day and estimator, MAE and RASE over all waits and over waits > 5 min."""
    lines = ["| day | estimator | n | mean wait | MAE | RASE | ±5 min | n (>5) | mean (>5) | MAE (>5) | MAE/mean (>5) | RASE (>5) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, samples in results.items():
        a, b = score(samples), score(samples, 5.0)
        for e in ESTIMATORS:
            if e not in a.mae:
                continue
            rel = b.mae.get(e, 0.0) / b.mean_wait if b.mean_wait else 0.0
            lines.append(
                f"| {label} | {e} | {a.n} | {a.mean_wait:.1f} | {a.mae[e]:.1f} | {a.rase[e]:.2f} | {a.within5[e]:.0%} "
                f"| {b.n} | {b.mean_wait:.1f} | {b.mae.get(e, 0):.1f} | {rel:.1%} | {b.rase.get(e, 0):.2f} |"
            )
    return "\n".join(lines)


def run_cli(sc: Scenario, day_index: int, replications: int, seed: int) -> int:
    """``run.py simulate SCENARIO --estimators``: the comparison table for one day of the scenario."""
    from .runner import router_for

    days = sorted(sc.days) if hasattr(sc, "days") else []
    if not days:
        print("--estimators: the scenario has no days")
        return 2
    day = days[min(day_index, len(days) - 1)]
    res = compare(sc, router_for(sc), [day], seeds=replications, seed=seed)
    print(table(res))
    lo, hi = ratio_quantiles(res[day.isoformat()], SHIPPED)
    print(f"\nshipped: {SHIPPED}; actual/estimate 10th-90th percentile for waits > 5 min: {lo:.2f}-{hi:.2f}")
    return 0
