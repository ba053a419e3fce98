"""The SimPy lobby: a thin shell of processes around the pure core.

What is SimPy here and what is the core:

- Every change of a ticket goes through :mod:`queue_server.transitions` (``new_ticket``, ``call``,
  ``recall``, ``start``, ``complete``, ``no_show``, ``cancel``); every "which ticket next" is
  :func:`queue_server.dispatch.choose_next`. The lobby as the live server would run it.
- SimPy supplies time: an arrival process per day, one long-lived process per counter (cheaper
  than a process per citizen), timeouts for shifts, patience and recalls.
- This module only keeps indexes and statistics: which tickets have a ready step in each
  department (so a counter does not scan the whole lobby), who is at a counter, and records.

Why a reduced candidate set is still the core's decision: ``choose_next`` orders by
(escalated, priority class, ready time, issue time, number). Among tickets with no priority flag
the smallest key in a department is always its oldest free ticket, so the counter hands
``choose_next`` the oldest free tickets of each of its departments (all of them tied at that
ready time) plus every ticket that could carry a priority (reservation or assistance). The
minimum over that subset is the minimum over the whole lobby; tests check this against the full
scan. Times are seconds from midnight of the simulated day.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

import simpy

from queue_server import transitions as tr
from queue_server.dispatch import DispatchPolicy, choose_next
from queue_server.model import RouteStep, StepState, Ticket

from .arrivals import generate, reservation_arrivals
from .scenario import CounterPlan, Scenario

MIN = 60.0
BIN = 15 * MIN  # queue-length resolution for plots

# Outcome codes of a step that leaves its queue.
SERVED, ABSENT, LEFT, UNSERVED = 0, 1, 2, 3
OUTCOMES = ("served", "absent", "left", "unserved")

# (kind, a, b): ("exp", mean s, 0) | ("logn", mu, sigma) of log-seconds | ("const", s, 0)
Service = tuple[str, float, float]
Route = tuple[tuple[RouteStep, ...], tuple[Service, ...]]
Router = Callable[[str, random.Random], Route]


def service_params(mean_minutes: float, sd_minutes: float, distribution: str = "lognormal") -> Service:
    """Service-time parameters in seconds from a mean and standard deviation in minutes."""
    mean = mean_minutes * MIN
    if distribution == "exponential":
        return ("exp", mean, 0.0)
    if sd_minutes <= 0 or mean <= 0:
        return ("const", mean, 0.0)
    s2 = math.log(1.0 + (sd_minutes / mean_minutes) ** 2)
    return ("logn", math.log(mean) - s2 / 2.0, math.sqrt(s2))


def draw_service(rng: random.Random, p: Service) -> float:
    kind, a, b = p
    if kind == "exp":
        return rng.expovariate(1.0 / a)
    if kind == "logn":
        return rng.lognormvariate(a, b)
    return a


# ------------------------------------------------------------------------------ records


@dataclass(slots=True)
class DayRecord:
    """What one simulated day produced: raw records, summarised later by stats.py."""

    day: str
    departments: tuple[str, ...]
    open_s: float
    close_s: float
    start_s: float  # statistics window start (open, or the end of the warm-up)
    end_s: float = 0.0  # the last counter finished (overtime included)
    # one row per step that left its queue: department index, ready time, queue time, outcome
    st_dept: list[int] = field(default_factory=list)
    st_ready: list[float] = field(default_factory=list)
    st_wait: list[float] = field(default_factory=list)
    st_outcome: list[int] = field(default_factory=list)
    st_reserved: list[bool] = field(default_factory=list)  # the ticket holds a reservation
    # one row per closed ticket: purpose, issue time, close time, final state, reserved
    tk_purpose: list[str] = field(default_factory=list)
    tk_issued: list[float] = field(default_factory=list)
    tk_closed: list[float] = field(default_factory=list)
    tk_state: list[str] = field(default_factory=list)
    tk_reserved: list[bool] = field(default_factory=list)
    arrivals: int = 0
    no_route: int = 0  # citizens whose plan had nothing to queue for (all external)
    # queue length: time-integral per department overall and per 15-minute bin, and maxima
    q_area: list[float] = field(default_factory=list)
    q_bins: list[list[float]] = field(default_factory=list)
    q_max: list[int] = field(default_factory=list)
    # counters: number -> (on-duty seconds, busy seconds, busy seconds per department index)
    counters: dict[int, tuple[float, float, list[float]]] = field(default_factory=dict)
    counter_busy_bins: dict[int, list[float]] = field(default_factory=dict)
    counter_duty_bins: dict[int, list[float]] = field(default_factory=dict)


# ------------------------------------------------------------------------------ the day


class _Visit:
    """Simulation-side bookkeeping of one citizen; the lobby state is ``ticket``."""

    __slots__ = ("ticket", "service", "patience", "busy", "busy_total", "busy_since", "snap", "epoch",
                 "gone", "special", "counted", "purpose")

    def __init__(self, ticket: Ticket, service: tuple[Service, ...], patience: float | None, counted: bool, purpose: str):
        self.ticket = ticket
        self.service = service
        self.patience = patience
        self.busy = False  # at a counter (called or being served)
        self.busy_total = 0.0  # seconds spent at counters so far
        self.busy_since = 0.0
        self.snap: dict[int, float] = {}  # step index -> busy_total when it became ready
        self.epoch = 0  # waiting episode, for patience timers
        self.gone = False  # left silently: absent when called
        self.special = ticket.reserved_for is not None or ticket.assistance
        self.counted = counted
        self.purpose = purpose


class _Counter:
    __slots__ = ("plan", "number", "departments", "dept_idx", "on_duty", "idle", "idle_since", "wake",
                 "duty_since", "duty", "busy", "busy_by_dept", "speed", "serving")

    def __init__(self, plan: CounterPlan, dept_index: dict[str, int]):
        self.plan = plan
        self.number = plan.number
        self.departments = frozenset(plan.departments)
        self.dept_idx = [dept_index[d] for d in plan.departments]
        self.on_duty = False
        self.idle = False
        self.idle_since = 0.0
        self.wake: simpy.Event | None = None
        self.duty_since = 0.0
        self.duty = 0.0
        self.busy = 0.0
        self.busy_by_dept = [0.0] * len(dept_index)
        self.speed = plan.speed
        self.serving = False  # between a call and the end of that visit, on duty or not


class LobbyDay:
    """One simulated day of one lobby (or one run of a station)."""

    def __init__(
        self,
        sc: Scenario,
        router: Router,
        day: dt.date,
        rng: random.Random,
        day_label: str | None = None,
        check_dispatch: bool = False,
    ):
        self.sc = sc
        self.check_dispatch = check_dispatch  # tests: compare every pick with a scan of the whole lobby
        self.router = router
        self.day = day
        self.rng = rng
        self.env = simpy.Environment()
        self.policy = DispatchPolicy(aging_bound=sc.aging_bound_minutes * MIN)
        depts = list(sc.departments)
        for c in sc.counters:
            depts.extend(d for d in c.departments if d not in depts)
        for p in sc.purposes.values():
            depts.extend(s.department for s in p.route or () if s.department not in depts)
        self.departments = tuple(depts)
        self.dept_index = {d: i for i, d in enumerate(depts)}
        n = len(depts)
        self.order: list[dict[str, float]] = [{} for _ in range(n)]  # tickets with a READY step, by ready time
        self.special: list[dict[str, None]] = [{} for _ in range(n)]  # ... of them, those that may carry priority
        self.visits: dict[str, _Visit] = {}
        self.counters = [_Counter(p, self.dept_index) for p in sc.counters]
        self.serving: list[list[_Counter]] = [[c for c in self.counters if d in c.departments] for d in depts]
        self.open_s = sc.open_minute * MIN
        self.close_s = sc.close_minute * MIN
        start = self.open_s + sc.warmup_minutes * MIN
        nbins = int(math.ceil((self.close_s - self.open_s) / BIN)) + 16  # room for overtime
        self.rec = DayRecord(
            day=day_label or day.isoformat(),
            departments=self.departments,
            open_s=self.open_s,
            close_s=self.close_s,
            start_s=start,
            q_area=[0.0] * n,
            q_bins=[[0.0] * nbins for _ in range(n)],
            q_max=[0] * n,
        )
        self.nbins = nbins
        self.q_n = [0] * n
        self.q_t = [start] * n
        self.stat_start = start
        self.arrivals_done = False
        self.after_close = False
        self.done = self.env.event()
        self.number = 0
        b = sc.behaviour
        self.walk = b.walk_seconds
        self.recall_gap = b.recall_seconds
        self.no_show = b.no_show
        self.leave_cancels = b.leave_cancels
        if b.patience_minutes:
            s2 = math.log(1.0 + b.patience_cv**2)
            self.patience_p: tuple[float, float] | None = (math.log(b.patience_minutes * MIN) - s2 / 2, math.sqrt(s2))
        else:
            self.patience_p = None
        self.max_recalls = sc.max_recalls

    # -------------------------------------------------------------- running

    def run(self) -> DayRecord:
        env = self.env
        for c in self.counters:
            for a, b in c.plan.windows:
                env.timeout(max(a * MIN, 0.0)).callbacks.append(lambda _e, c=c: self._duty(c, True))
                if b * MIN < self.close_s - 1e-6:  # a shift ending at closing time stays for overtime
                    env.timeout(b * MIN).callbacks.append(lambda _e, c=c: self._duty(c, False))
            env.process(self._counter(c))
        env.process(self._arrivals())
        env.timeout(self.close_s).callbacks.append(self._closing)
        env.run(until=self.done)
        self._finish()
        return self.rec

    def _arrivals(self):
        env, rng, sc = self.env, self.rng, self.sc
        walk_ins = [(t * MIN, p, None) for t, p in generate(sc, self.day, rng)]
        booked = [(t * MIN, p, s * MIN) for t, p, s in reservation_arrivals(sc, self.day, rng)]
        events = sorted(walk_ins + booked, key=lambda e: e[0]) if booked else walk_ins
        for t, purpose, slot in events:
            if t > env.now:
                yield env.timeout(t - env.now)
            self._arrive(purpose, slot)
        self.arrivals_done = True

    def _arrive(self, purpose: str, slot: float | None) -> None:
        now = self.env.now
        self.rec.arrivals += 1
        route, service = self.router(purpose, self.rng)
        if not route:
            self.rec.no_route += 1
            return
        self.number += 1
        assist = self.sc.behaviour.assistance > 0 and self.rng.random() < self.sc.behaviour.assistance
        t = tr.new_ticket(
            ticket_id=f"{self.rec.day}-{self.number}",
            site=self.sc.site,
            day=self.rec.day,
            prefix="R" if slot is not None else "",
            number=self.number,
            purposes=(purpose,),
            lang="ja",
            route=route,
            now=now,
            public_token="",
            assistance=assist,
            reserved_for=slot,
        )
        pat = self.rng.lognormvariate(*self.patience_p) if self.patience_p and slot is None else None
        v = _Visit(t, service, pat, now >= self.stat_start, purpose)
        self.visits[t.id] = v
        self._enter(v, now)

    # -------------------------------------------------------------- queue bookkeeping

    def _meter(self, d: int, delta: int, now: float) -> None:
        """Queue length of department d changes by delta at now: accumulate its time-integral."""
        n = self.q_n[d]
        last = self.q_t[d]
        if now > last and n:
            self.rec.q_area[d] += n * (now - last)
            bins = self.rec.q_bins[d]
            t = last
            while t < now:
                i = int((t - self.open_s) // BIN)
                if i >= self.nbins:
                    break
                edge = min(now, self.open_s + (i + 1) * BIN)
                bins[i] += n * (edge - t)
                t = edge
        if now > last:
            self.q_t[d] = now
        n += delta
        self.q_n[d] = n
        if n > self.rec.q_max[d]:
            self.rec.q_max[d] = n

    def _unmeter(self, v: _Visit, now: float) -> None:
        """The citizen goes to a counter: out of every queue count (not out of the order)."""
        for s in v.ticket.steps:
            if s.state is StepState.READY:
                self._meter(self.dept_index[s.department], -1, now)

    def _enter(self, v: _Visit, now: float) -> None:
        """The ticket is free (not at a counter): its READY steps stand in their queues."""
        t = v.ticket
        for s in t.steps:
            if s.state is not StepState.READY:
                continue
            d = self.dept_index[s.department]
            if t.id not in self.order[d]:
                self.order[d][t.id] = s.ready_since if s.ready_since is not None else now
                if v.special:
                    self.special[d][t.id] = None
                v.snap[s.index] = v.busy_total
            self._meter(d, 1, now)
            self._wake_one(d)
        if v.patience is not None:
            v.epoch += 1
            epoch = v.epoch
            self.env.timeout(v.patience).callbacks.append(lambda _e: self._patience_over(v, epoch))

    def _queue_time(self, v: _Visit, s, at: float) -> float:
        since = s.ready_since if s.ready_since is not None else v.ticket.issued_at
        return (at - since) - (v.busy_total - v.snap.get(s.index, 0.0))

    def _record_step(self, v: _Visit, d: int, s, wait: float, outcome: int) -> None:
        if not v.counted:
            return
        r = self.rec
        r.st_dept.append(d)
        r.st_ready.append(s.ready_since if s.ready_since is not None else v.ticket.issued_at)
        r.st_wait.append(wait)
        r.st_outcome.append(outcome)
        r.st_reserved.append(v.ticket.reserved_for is not None)

    def _leave_queues(self, v: _Visit, now: float, outcome: int | None, exit_at: float | None = None) -> None:
        """Take every READY step of v out of its queue; record them when ``outcome`` is given."""
        tid = v.ticket.id
        for s in v.ticket.steps:
            if s.state is not StepState.READY:
                continue
            d = self.dept_index[s.department]
            if tid in self.order[d]:
                del self.order[d][tid]
                self.special[d].pop(tid, None)
            if not v.busy:
                self._meter(d, -1, now)
            if outcome is not None:
                self._record_step(v, d, s, self._queue_time(v, s, exit_at if exit_at is not None else now), outcome)

    def _close_visit(self, v: _Visit, now: float) -> None:
        t = v.ticket
        del self.visits[t.id]
        if v.counted:
            r = self.rec
            r.tk_purpose.append(v.purpose)
            r.tk_issued.append(t.issued_at)
            r.tk_closed.append(now)
            r.tk_state.append(t.state.value)
            r.tk_reserved.append(t.reserved_for is not None)

    def _patience_over(self, v: _Visit, epoch: int) -> None:
        if v.epoch != epoch or v.busy or v.gone or v.ticket.closed is not None:
            return
        now = self.env.now
        if self.rng.random() < self.leave_cancels:
            self._leave_queues(v, now, LEFT)
            v.ticket = tr.cancel(v.ticket, now)
            self._close_visit(v, now)
        else:
            v.gone = True  # still on the board: becomes a no-show when called

    # -------------------------------------------------------------- counters

    def _duty(self, c: _Counter, on: bool) -> None:
        now = self.env.now
        if on == c.on_duty:
            return
        if on:
            c.on_duty = True
            c.duty_since = now
            if c.idle:
                self._wake(c)
        else:
            c.on_duty = False
            self._add_duty(c, c.duty_since, now)

    def _add_duty(self, c: _Counter, a: float, b: float) -> None:
        a = max(a, self.stat_start)
        if b > a:
            c.duty += b - a
            self._bin_add(self.rec.counter_duty_bins.setdefault(c.number, [0.0] * self.nbins), a, b)

    def _bin_add(self, bins: list[float], a: float, b: float) -> None:
        t = a
        while t < b:
            i = int((t - self.open_s) // BIN)
            if i >= self.nbins or i < 0:
                break
            edge = min(b, self.open_s + (i + 1) * BIN)
            bins[i] += edge - t
            t = edge

    def _wake(self, c: _Counter) -> None:
        c.idle = False
        assert c.wake is not None
        c.wake.succeed()

    def _wake_one(self, d: int) -> bool:
        """Wake the longest-idle on-duty counter serving department d, if any."""
        best = None
        for c in self.serving[d]:
            if c.idle and c.on_duty and (best is None or c.idle_since < best.idle_since):
                best = c
        if best is None:
            return False
        self._wake(best)
        return True

    def _candidates(self, c: _Counter) -> list[Ticket]:
        visits = self.visits
        out: dict[str, Ticket] = {}
        for d in c.dept_idx:
            first = None
            for tid, since in self.order[d].items():
                v = visits[tid]
                if v.busy or v.special:
                    continue
                if first is None:
                    first = since
                elif since != first:
                    break
                out[tid] = v.ticket
            for tid in self.special[d]:
                v = visits[tid]
                if not v.busy:
                    out[tid] = v.ticket
        return list(out.values())

    def _counter(self, c: _Counter):
        env, rng = self.env, self.rng
        while True:
            if c.on_duty:
                cands = self._candidates(c)
                pick = choose_next(cands, c.departments, env.now, self.policy) if cands else None
                if self.check_dispatch:
                    full = choose_next([v.ticket for v in self.visits.values()], c.departments, env.now, self.policy)
                    if (full and (full[0].id, full[1].index)) != (pick and (pick[0].id, pick[1].index)):
                        raise AssertionError(f"counter {c.number} at {env.now}: indexed pick {pick} != full scan {full}")
            else:
                pick = None
            if pick is None:
                c.idle = True
                c.idle_since = env.now
                c.wake = env.event()
                if self.after_close:
                    self._maybe_end()
                yield c.wake
                continue
            # Another idle counter may be needed for work this one passed over.
            for d in c.dept_idx:
                self._wake_one(d)
            ticket, step = pick
            v = self.visits[ticket.id]
            now = env.now
            d = self.dept_index[step.department]
            wait = self._queue_time(v, step, now)
            # The citizen leaves every queue while at this counter; only the called step leaves
            # its department's order (the others keep their place, skipped while busy).
            self._unmeter(v, now)
            del self.order[d][ticket.id]
            self.special[d].pop(ticket.id, None)
            c.serving = True
            v.ticket = tr.call(ticket, step.index, c.number, now)
            v.busy = True
            v.busy_since = now
            absent = v.gone or (self.no_show > 0 and rng.random() < self.no_show)
            self._record_step(v, d, step, wait, ABSENT if absent else SERVED)
            if absent:
                for _ in range(self.max_recalls):
                    yield env.timeout(self.recall_gap)
                    v.ticket = tr.recall(v.ticket, step.index, c.number, env.now)
                yield env.timeout(self.recall_gap)
                now = env.now
                # the ticket's other ready steps are abandoned with it
                for s in v.ticket.steps:
                    if s.state is StepState.READY:
                        dd = self.dept_index[s.department]
                        self.order[dd].pop(ticket.id, None)
                        self.special[dd].pop(ticket.id, None)
                        self._record_step(v, dd, s, self._queue_time(v, s, v.busy_since), ABSENT)
                v.ticket = tr.no_show(v.ticket, step.index, c.number, now, self.max_recalls)
                self._busy_end(c, v, d, now)
                self._close_visit(v, now)
                continue
            if self.walk > 0:
                yield env.timeout(self.walk)
            v.ticket = tr.start(v.ticket, step.index, c.number, env.now)
            yield env.timeout(draw_service(rng, v.service[step.index]) / c.speed)
            now = env.now
            v.ticket = t = tr.complete(v.ticket, step.index, c.number, now)
            self._busy_end(c, v, d, now)
            if t.closed is not None:
                self._close_visit(v, now)
            else:
                self._enter(v, now)  # steps released by this completion join their queues

    def _busy_end(self, c: _Counter, v: _Visit, d: int, now: float) -> None:
        c.serving = False
        v.busy = False
        v.busy_total += now - v.busy_since
        a = max(v.busy_since, self.stat_start)
        if now > a:
            c.busy += now - a
            c.busy_by_dept[d] += now - a
            self._bin_add(self.rec.counter_busy_bins.setdefault(c.number, [0.0] * self.nbins), a, now)

    # -------------------------------------------------------------- closing

    def _closing(self, _e: simpy.Event) -> None:
        self.after_close = True
        self._maybe_end()

    def _maybe_end(self) -> None:
        """After closing: when no counter is busy, the day is over; tickets left are unserved."""
        if not self.arrivals_done or self.done.triggered:
            return
        # a counter still serving, or woken and not yet run, may yet call someone
        if any(c.serving or not c.idle for c in self.counters):
            return
        now = self.env.now
        for v in list(self.visits.values()):
            self._leave_queues(v, now, UNSERVED)
            v.ticket = tr.cancel(v.ticket, now)
            self._close_visit(v, now)
        self.done.succeed()

    def _finish(self) -> None:
        now = self.env.now
        self.rec.end_s = now
        for d in range(len(self.departments)):
            self._meter(d, 0, now)
        for c in self.counters:
            if c.on_duty:
                self._add_duty(c, c.duty_since, now)
            self.rec.counters[c.number] = (c.duty, c.busy, list(c.busy_by_dept))


# ------------------------------------------------------------------------------ routes


def scenario_router(sc: Scenario) -> Router:
    """A router for purposes whose route is given in the scenario (station, planner-less tests)."""
    table: dict[str, Route] = {}
    for k, p in sc.purposes.items():
        if p.route is None:
            continue
        route = tuple(RouteStep(s.department, (), s.after, s.minutes) for s in p.route)
        service = tuple(service_params(s.minutes, s.minutes * s.cv, s.distribution) for s in p.route)
        table[k] = (route, service)

    def route(purpose: str, rng: random.Random) -> Route:
        return table[purpose]

    return route


def run_day(sc: Scenario, router: Router, day: dt.date, seed: int) -> DayRecord:
    """Simulate one day with its own random stream."""
    return LobbyDay(sc, router, day, random.Random(seed)).run()
