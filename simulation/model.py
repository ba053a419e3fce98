"""The SimPy lobby: a thin shell of processes around the pure core.

What is SimPy here and what is the core:

- Every change of a ticket goes through :mod:`queue_server.core.transitions` (``new_ticket``, ``call``,
  ``recall``, ``start``, ``complete``, ``no_show``, ``cancel``); every "which ticket next" is
  :func:`queue_server.core.dispatch.choose_next`. The lobby as the live server would run it.
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

from queue_server.core import transitions as tr
from queue_server.core.dispatch import DispatchPolicy, choose_next
from queue_server.core.model import RouteStep, StepState, Ticket, TicketState

from .arrivals import generate, reservation_arrivals
from .scenario import CounterPlan, Scenario

MIN = 60.0
BIN = 15 * MIN  # queue-length resolution for plots

# Outcome codes of a step that leaves its queue (or never joins it).
# SERVED: called and served. ABSENT: called, not there (a no-show who never meant to leave: the
# behaviour's no_show share). LEFT: ran out of patience and cancelled on the phone page. GONE: ran
# out of patience and left silently — still on the board, so the counter calls and recalls them
# for nothing (the counter time absentees cost). UNSERVED: still waiting at the end of the day.
# BALKED: saw the queue at the kiosk and left without a ticket. CUTOFF: arrived after ticket issue
# stopped (受付締切). BALKED and CUTOFF never stood in a queue: they are counted as citizens lost,
# not as queue exits (Little's law and the service level are about the queue).
SERVED, ABSENT, LEFT, UNSERVED, GONE, BALKED, CUTOFF = 0, 1, 2, 3, 4, 5, 6
OUTCOMES = ("served", "absent", "left", "unserved", "gone", "balked", "cutoff")
# Citizen classes (a bit set): a booked reservation, the assistance flag.
BOOKED, ASSISTED = 1, 2

# Enum members as constants: in Python 3.11 ``StepState.READY`` is a metaclass lookup (~0.3 µs),
# and ``.value`` a descriptor call; the hot loop below tests states for every customer.
_READY = StepState.READY
_INF = math.inf
_STATE_VALUE = {s: s.value for s in TicketState}

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
    st_class: list[int] = field(default_factory=list)  # BOOKED | ASSISTED bits of the ticket
    # one row per citizen who came: purpose, arrival, close time, final ticket state ("balked" and
    # "cutoff" for those who took none), class bits, fate (the outcome code that ended the visit),
    # department of the first queue, and for those who left out of patience the wait before leaving
    tk_purpose: list[str] = field(default_factory=list)
    tk_issued: list[float] = field(default_factory=list)
    tk_closed: list[float] = field(default_factory=list)
    tk_state: list[str] = field(default_factory=list)
    tk_class: list[int] = field(default_factory=list)
    tk_fate: list[int] = field(default_factory=list)
    tk_dept: list[int] = field(default_factory=list)
    tk_left_wait: list[float] = field(default_factory=list)
    # counter seconds spent calling and recalling absent citizens (ABSENT and GONE), per department
    absent_busy: list[float] = field(default_factory=list)

    @property
    def st_reserved(self) -> list[bool]:
        """Whether each step's ticket held a reservation (the BOOKED bit of st_class)."""
        return [bool(c & BOOKED) for c in self.st_class]
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


class _Meter:
    """Queue length of one department over time: its time-integral overall and per BIN, its maximum.

    ``change`` is called on every join and leave, so it keeps the BIN holding ``t`` (``i``, ending
    at ``edge``) instead of dividing each time. Bins are those of int((t - open_s) // BIN), exactly:
    t - open_s is exact when open_s is a whole number of seconds (t >= open_s, t < 2**52), so
    ``t < edge`` holds exactly when that division gives ``i``; otherwise every change divides.
    """

    __slots__ = ("n", "t", "area", "bins", "top", "i", "edge", "fast_edge", "open_s", "nbins", "exact")

    def __init__(self, start: float, open_s: float, bins: list[float]):
        self.n = 0  # citizens in the queue now
        self.t = start  # time of the last change (statistics start at ``start``)
        self.area = 0.0
        self.bins = bins
        self.top = 0
        self.open_s = open_s
        self.nbins = len(bins)
        self.exact = float(open_s).is_integer() and start >= open_s
        self._locate()

    def _locate(self) -> None:
        if self.exact:
            self.i = i = int((self.t - self.open_s) // BIN)
            self.edge = self.open_s + (i + 1) * BIN
        else:
            self.i, self.edge = -1, -math.inf  # never the fast path below
        # the fast path's bound: the bin's edge while the bin is one of the day's
        self.fast_edge = self.edge if self.i < self.nbins else -math.inf

    def change(self, delta: int, now: float) -> None:
        last = self.t
        if now > last:
            n = self.n
            if n:
                x = n * (now - last)
                self.area += x
                if now <= self.fast_edge:
                    self.bins[self.i] += x  # last and now in one bin: the loop below in one step
                else:
                    bins, open_s, t = self.bins, self.open_s, last
                    while t < now:
                        i = int((t - open_s) // BIN)
                        if i >= self.nbins:
                            break
                        edge = min(now, open_s + (i + 1) * BIN)
                        bins[i] += n * (edge - t)
                        t = edge
            self.t = now
            if now >= self.edge:
                self._locate()
        n = self.n + delta
        self.n = n
        if n > self.top:
            self.top = n


def _drive(gen) -> None:
    """Run a generator of SimPy events as a process: resume it when the event it yielded fires.

    What simpy.Process does for the lobby's generators, without its Initialize event and per-resume
    bookkeeping (a fifth of the per-event cost). Only for generators that yield fresh events and
    handle no failures (exceptions propagate out of env.run, as from a crashed Process). The first
    step runs now, so call it where the process would have been started at time 0 (see run()).
    """
    send = gen.send

    def resume(_event: simpy.Event | None) -> None:
        try:
            event = send(None)
        except StopIteration:
            return
        event.callbacks.append(resume)

    resume(None)


class _Visit:
    """Simulation-side bookkeeping of one citizen; the lobby state is ``ticket``."""

    __slots__ = ("ticket", "service", "patience", "busy", "busy_total", "busy_since", "snap", "epoch",
                 "gone", "special", "counted", "purpose", "reserved", "cls", "fate", "first_dept", "left_wait",
                 "durations", "absent_at", "cancels")

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
        self.reserved = ticket.reserved_for is not None  # fixed at issue: no move changes it
        self.special = self.reserved or ticket.assistance
        self.cls = (BOOKED if self.reserved else 0) | (ASSISTED if ticket.assistance else 0)
        self.counted = counted
        self.purpose = purpose
        self.fate = SERVED  # changed by whatever ends the visit otherwise
        self.first_dept = -1
        self.left_wait = -1.0  # queue time when patience ran out (LEFT, GONE)
        self.durations: list[float] = []  # service seconds per step at standard speed, drawn at arrival
        self.absent_at: list[bool] | None = None  # per step: absent when called (None: nobody is)
        self.cancels = False  # out of patience: cancels on the phone (else leaves silently)


class _Counter:
    __slots__ = ("plan", "number", "departments", "dept_idx", "on_duty", "idle", "idle_since", "wake",
                 "duty_since", "duty", "busy", "busy_by_dept", "speed", "serving", "busy_bins", "single",
                 "bin_i", "bin_lo", "bin_hi")

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
        self.busy_bins: list[float] | None = None  # rec.counter_busy_bins[number], once it exists
        self.single = self.dept_idx[0] if len(self.dept_idx) == 1 else -1  # its one department
        # the busy bin of the last service start: [bin_lo, bin_hi) is bin bin_i (see _busy_end)
        self.bin_i, self.bin_lo, self.bin_hi = -1, 0.0, 0.0


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
        self.idle_n = [0] * n  # idle counters (on duty or not) serving each department: 0 skips _wake_one's scan
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
        # rows of rec.st_* and rec.tk_* (one tuple appended per record; split into columns at the end)
        self.st_rows: list[tuple[int, float, float, int, int]] = []
        self.tk_rows: list[tuple[str, float, float, str, int, int, int, float]] = []
        self.rec.absent_busy = [0.0] * n
        self.meters = [_Meter(start, self.open_s, self.rec.q_bins[d]) for d in range(n)]
        self.exact_bins = float(self.open_s).is_integer()  # see _Meter
        self.stat_start = start
        self.arrivals_done = False
        self.after_close = False
        self.done = self.env.event()
        self.number = 0
        b = sc.behaviour
        self.walk = b.walk_seconds
        self.assistance = b.assistance
        self.recall_gap = b.recall_seconds
        self.no_show = b.no_show
        self.leave_cancels = b.leave_cancels
        if b.patience_minutes:
            s2 = math.log(1.0 + b.patience_cv**2)
            self.patience_p: tuple[float, float] | None = (math.log(b.patience_minutes * MIN) - s2 / 2, math.sqrt(s2))
        else:
            self.patience_p = None
        self.patience_exp = b.patience_distribution == "exponential"
        if b.balk_queue:
            s2 = math.log(1.0 + b.balk_cv**2)
            self.balk_p: tuple[float, float] | None = (math.log(b.balk_queue) - s2 / 2, math.sqrt(s2))
        else:
            self.balk_p = None
        self.cutoff_s = sc.cutoff_minute * MIN if sc.cutoff_minute is not None else None
        self.max_recalls = sc.max_recalls

    # -------------------------------------------------------------- running

    def run(self) -> DayRecord:
        env = self.env
        for c in self.counters:
            for a, b in c.plan.windows:
                env.timeout(max(a * MIN, 0.0)).callbacks.append(lambda _e, c=c: self._duty(c, True))
                if b * MIN < self.close_s - 1e-6:  # a shift ending at closing time stays for overtime
                    env.timeout(b * MIN).callbacks.append(lambda _e, c=c: self._duty(c, False))
        # The processes start at time 0 before any event, as simpy.Process's urgent Initialize would
        # have them: the counters go idle (nobody is on duty before the duty events fire), then
        # the arrivals draw the day and schedule the first citizen (after the closing event).
        for c in self.counters:
            _drive(self._counter(c))
        env.timeout(self.close_s).callbacks.append(self._closing)
        _drive(self._arrivals())
        env.run(until=self.done)
        self._finish()
        return self.rec

    def _arrivals(self):
        env, rng, sc = self.env, self.rng, self.sc
        walk_ins = [(t * MIN, p, None) for t, p in generate(sc, self.day, rng)]
        booked = [(t * MIN, p, s * MIN) for t, p, s in reservation_arrivals(sc, self.day, rng)]
        events = sorted(walk_ins + booked, key=lambda e: e[0]) if booked else walk_ins
        timeout = env.timeout
        now = env.now  # re-read only after a timeout: nothing else moves the clock here
        for t, purpose, slot in events:
            if t > now:
                yield timeout(t - now)
                now = env.now
            self._arrive(purpose, slot, now)
        self.arrivals_done = True

    def _arrive(self, purpose: str, slot: float | None, now: float) -> None:
        rec, rng = self.rec, self.rng
        rec.arrivals += 1
        route, service = self.router(purpose, rng)
        if not route:
            rec.no_route += 1
            return
        # Everything random about this citizen is drawn now, in arrival order, whatever happens to
        # them later: two scenarios run on the same seed then meet the same citizens with the same
        # needs (common random numbers), however their counters differ. The counters draw nothing.
        assist = self.assistance > 0 and rng.random() < self.assistance
        walk_in = slot is None
        if self.patience_p and walk_in:
            pat = rng.expovariate(1.0 / (self.sc.behaviour.patience_minutes * MIN)) if self.patience_exp else rng.lognormvariate(*self.patience_p)
            cancels = rng.random() < self.leave_cancels
        else:
            pat, cancels = None, False
        tolerance = rng.lognormvariate(*self.balk_p) if self.balk_p is not None and walk_in else _INF
        if len(service) == 1:  # most routes: no list comprehension frame (Python 3.11 does not inline them)
            p = service[0]
            durations = [rng.expovariate(1.0 / p[1]) if p[0] == "exp" else draw_service(rng, p)]
        else:
            durations = [draw_service(rng, p) for p in service]
        absent_at = [rng.random() < self.no_show for _ in service] if self.no_show > 0 else None
        if walk_in and self.cutoff_s is not None and now >= self.cutoff_s:
            self._turn_away(purpose, route, now, CUTOFF, ASSISTED if assist else 0)  # 受付締切: no ticket now
            return
        self.number = number = self.number + 1
        t = tr.new_ticket(
            ticket_id=f"{rec.day}-{number}",
            site=self.sc.site,
            day=rec.day,
            prefix="R" if slot is not None else "",
            number=number,
            purposes=(purpose,),
            lang="ja",
            route=route,
            now=now,
            public_token="",
            assistance=assist,
            reserved_for=slot,
        )
        if tolerance < _INF:
            # the citizen reads the board: the longest queue among the departments of their first
            # steps, against a tolerance of their own (lognormal, mean balk_queue citizens)
            ahead = max((self.meters[self.dept_index[s.department]].n for s in t.steps if s.state is _READY), default=0)
            if ahead >= tolerance:
                self._turn_away(purpose, route, now, BALKED, ASSISTED if assist else 0)
                return
        v = _Visit(t, service, pat, now >= self.stat_start, purpose)
        v.durations = durations
        v.absent_at = absent_at
        v.cancels = cancels
        v.first_dept = self.dept_index[route[0].department]  # step 0 waits for nothing: always ready
        tid = t.id
        self.visits[tid] = v
        if pat is not None:
            self._enter(v, now)
            return
        # self._enter(v, now) for a new ticket without patience, in line: each ready step joins
        # its department's order and its queue count
        dept_index, meters, idle_n = self.dept_index, self.meters, self.idle_n
        for s in t.steps:
            if s.state is _READY:
                d = dept_index[s.department]
                order = self.order[d]
                if tid not in order:
                    order[tid] = s.ready_since if s.ready_since is not None else now
                    if v.special:
                        self.special[d][tid] = None
                    v.snap[s.index] = v.busy_total
                meters[d].change(1, now)
                if idle_n[d]:
                    self._wake_one(d)

    def _turn_away(self, purpose: str, route, now: float, outcome: int, cls: int) -> None:
        """A citizen who takes no ticket (balked, or after the cutoff): counted, never queued."""
        if now < self.stat_start:
            return
        first = -1
        for s in route:
            if not s.after:  # the steps that would have been ready at issue
                d = self.dept_index[s.department]
                first = d if first < 0 else first
                self.st_rows.append((d, now, 0.0, outcome, cls))
        self.tk_rows.append((purpose, now, now, OUTCOMES[outcome], cls, outcome, first, -1.0))

    # -------------------------------------------------------------- queue bookkeeping

    def _unmeter(self, v: _Visit, now: float) -> None:
        """The citizen goes to a counter: out of every queue count (not out of the order)."""
        for s in v.ticket.steps:
            if s.state is _READY:
                self.meters[self.dept_index[s.department]].change(-1, now)

    def _enter(self, v: _Visit, now: float) -> None:
        """The ticket is free (not at a counter): its READY steps stand in their queues."""
        t = v.ticket
        tid = t.id
        for s in t.steps:
            if s.state is not _READY:
                continue
            d = self.dept_index[s.department]
            order = self.order[d]
            if tid not in order:
                order[tid] = s.ready_since if s.ready_since is not None else now
                if v.special:
                    self.special[d][tid] = None
                v.snap[s.index] = v.busy_total
            self.meters[d].change(1, now)
            if self.idle_n[d]:
                self._wake_one(d)
        if v.patience is not None:
            v.epoch += 1
            epoch = v.epoch
            self.env.timeout(v.patience).callbacks.append(lambda _e: self._patience_over(v, epoch))

    def _queue_time(self, v: _Visit, s, at: float) -> float:
        since = s.ready_since if s.ready_since is not None else v.ticket.issued_at
        return (at - since) - (v.busy_total - v.snap.get(s.index, 0.0))

    def _record_step(self, v: _Visit, d: int, s, wait: float, outcome: int) -> None:
        if v.counted:
            ready = s.ready_since if s.ready_since is not None else v.ticket.issued_at
            self.st_rows.append((d, ready, wait, outcome, v.cls))

    def _leave_queues(self, v: _Visit, now: float, outcome: int | None, exit_at: float | None = None) -> None:
        """Take every READY step of v out of its queue; record them when ``outcome`` is given."""
        tid = v.ticket.id
        for s in v.ticket.steps:
            if s.state is not _READY:
                continue
            d = self.dept_index[s.department]
            if tid in self.order[d]:
                del self.order[d][tid]
                self.special[d].pop(tid, None)
            if not v.busy:
                self.meters[d].change(-1, now)
            if outcome is not None:
                self._record_step(v, d, s, self._queue_time(v, s, exit_at if exit_at is not None else now), outcome)

    def _close_visit(self, v: _Visit, now: float) -> None:
        t = v.ticket
        del self.visits[t.id]
        if v.counted:
            state = t.closed if t.closed is not None else t.state
            self.tk_rows.append((v.purpose, t.issued_at, now, _STATE_VALUE[state], v.cls, v.fate, v.first_dept, v.left_wait))

    def _patience_over(self, v: _Visit, epoch: int) -> None:
        if v.epoch != epoch or v.busy or v.gone or v.ticket.closed is not None:
            return
        now = self.env.now
        # the wait before leaving: the queue time of the longest-waiting ready step
        v.left_wait = max(
            (self._queue_time(v, s, now) for s in v.ticket.steps if s.state is _READY), default=0.0
        )
        if v.cancels:
            v.fate = LEFT
            self._leave_queues(v, now, LEFT)
            v.ticket = tr.cancel(v.ticket, now)
            self._close_visit(v, now)
        else:
            v.gone = True  # still on the board: becomes a no-show when called
            v.fate = GONE

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
        open_s = self.open_s
        i = int((a - open_s) // BIN)
        if 0 <= i < self.nbins and b <= open_s + (i + 1) * BIN:
            bins[i] += b - a  # within one bin: the loop below in one step
            return
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
        for d in c.dept_idx:
            self.idle_n[d] -= 1
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
        best.idle = False  # self._wake(best), in line
        idle_n = self.idle_n
        for dd in best.dept_idx:
            idle_n[dd] -= 1
        assert best.wake is not None
        best.wake.succeed()
        return True

    def _candidates(self, c: _Counter) -> list[Ticket]:
        visits = self.visits
        if c.single >= 0 and not self.special[c.single]:
            # one department, no priority ticket: the general loop below, without its dict
            first = None
            found = []
            for tid, since in self.order[c.single].items():
                v = visits[tid]
                if v.busy or v.special:
                    continue
                if first is None:
                    first = since
                elif since != first:
                    break
                found.append(v.ticket)
            return found
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
            special = self.special[d]
            if special:
                for tid in special:
                    v = visits[tid]
                    if not v.busy:
                        out[tid] = v.ticket
        return list(out.values())

    def _counter(self, c: _Counter):
        env, policy, departments = self.env, self.policy, c.departments
        visits, order, special, idle_n = self.visits, self.order, self.special, self.idle_n
        dept_index, timeout, number, speed = self.dept_index, env.timeout, c.number, c.speed
        call, start, complete = tr.call, tr.start, tr.complete
        meters, st_rows, tk_rows = self.meters, self.st_rows, self.tk_rows
        candidates, walk = self._candidates, self.walk
        single, check = c.single, self.check_dispatch
        now = env.now  # re-read after every yield, and only then
        while True:
            if c.on_duty:
                if single >= 0 and not special[single]:
                    # self._candidates(c), its one-department fast path in line (no ticket of the
                    # order is special: every special one is also in special[single])
                    first = None
                    cands = []
                    for tid, since in order[single].items():
                        v = visits[tid]
                        if v.busy:
                            continue
                        if first is None:
                            first = since
                        elif since != first:
                            break
                        cands.append(v.ticket)
                else:
                    cands = candidates(c)
                pick = choose_next(cands, departments, now, policy) if cands else None
                if check:
                    full = choose_next([v.ticket for v in visits.values()], departments, now, policy)
                    if (full and (full[0].id, full[1].index)) != (pick and (pick[0].id, pick[1].index)):
                        raise AssertionError(f"counter {c.number} at {now}: indexed pick {pick} != full scan {full}")
            else:
                pick = None
            if pick is None:
                c.idle = True
                for d in c.dept_idx:
                    idle_n[d] += 1
                c.idle_since = now
                c.wake = env.event()
                if self.after_close:
                    self._maybe_end()
                yield c.wake
                now = env.now
                continue
            # Another idle counter may be needed for work this one passed over.
            for d in c.dept_idx:
                if idle_n[d]:
                    self._wake_one(d)
            ticket, step = pick
            tid = ticket.id
            v = visits[tid]
            d = dept_index[step.department]
            # self._queue_time(v, step, now), in line
            since = step.ready_since if step.ready_since is not None else ticket.issued_at
            wait = (now - since) - (v.busy_total - v.snap.get(step.index, 0.0))
            # The citizen leaves every queue while at this counter; only the called step leaves
            # its department's order (the others keep their place, skipped while busy).
            for s in ticket.steps:  # self._unmeter(v, now), in line
                if s.state is _READY:
                    meters[dept_index[s.department]].change(-1, now)
            del order[d][tid]
            if special[d]:
                special[d].pop(tid, None)
            c.serving = True
            v.ticket = call(ticket, step.index, number, now)
            v.busy = True
            v.busy_since = now
            absent = v.gone or (v.absent_at is not None and v.absent_at[step.index])
            if absent and not v.gone:
                v.fate = ABSENT
            if v.counted:  # self._record_step(v, d, step, wait, ...), in line
                st_rows.append((d, since, wait, v.fate if absent else SERVED, v.cls))
            if absent:
                for _ in range(self.max_recalls):
                    yield env.timeout(self.recall_gap)
                    v.ticket = tr.recall(v.ticket, step.index, c.number, env.now)
                yield env.timeout(self.recall_gap)
                now = env.now
                # the ticket's other ready steps are abandoned with it
                for s in v.ticket.steps:
                    if s.state is _READY:
                        dd = self.dept_index[s.department]
                        self.order[dd].pop(ticket.id, None)
                        self.special[dd].pop(ticket.id, None)
                        self._record_step(v, dd, s, self._queue_time(v, s, v.busy_since), v.fate)
                v.ticket = tr.no_show(v.ticket, step.index, c.number, now, self.max_recalls)
                if v.counted:
                    self.rec.absent_busy[d] += now - v.busy_since
                self._busy_end(c, v, d, now)
                self._close_visit(v, now)
                continue
            if walk > 0:
                yield timeout(walk)
                now = env.now
            v.ticket = start(v.ticket, step.index, number, now)
            yield timeout(v.durations[step.index] / speed)
            now = env.now
            v.ticket = t = complete(v.ticket, step.index, number, now)
            self._busy_end(c, v, d, now)
            if t.closed is not None:  # self._close_visit(v, now), in line
                del visits[tid]
                if v.counted:
                    tk_rows.append((v.purpose, t.issued_at, now, _STATE_VALUE[t.closed], v.cls, v.fate, v.first_dept, v.left_wait))
            else:
                self._enter(v, now)  # steps released by this completion join their queues

    def _busy_end(self, c: _Counter, v: _Visit, d: int, now: float) -> None:
        c.serving = False
        v.busy = False
        a = v.busy_since
        v.busy_total += now - a
        if a < self.stat_start:  # a = max(busy_since, stat_start)
            a = self.stat_start
        if now > a:
            busy = now - a
            c.busy += busy
            c.busy_by_dept[d] += busy
            bins = c.busy_bins
            if bins is None:
                bins = c.busy_bins = self.rec.counter_busy_bins.setdefault(c.number, [0.0] * self.nbins)
            # _bin_add(bins, a, now) for a service within one bin or across one edge, in line.
            # a >= open_s, so with a whole-second open_s, a - open_s is exact and [bin_lo, bin_hi)
            # is exactly the bin int((a - open_s) // BIN) gives: the counter keeps the last one.
            hi = c.bin_hi
            if not c.bin_lo <= a < hi:
                open_s = self.open_s
                i = int((a - open_s) // BIN)
                if not (self.exact_bins and 0 <= i < self.nbins):
                    self._bin_add(bins, a, now)
                    return
                c.bin_i, c.bin_lo, c.bin_hi = i, open_s + i * BIN, open_s + (i + 1) * BIN
                hi = c.bin_hi
            i = c.bin_i
            if now <= hi:
                bins[i] += busy
            elif now <= hi + BIN and i + 1 < self.nbins:  # _bin_add's loop, two rounds
                bins[i] += hi - a
                bins[i + 1] += now - hi
                c.bin_i, c.bin_lo, c.bin_hi = i + 1, hi, hi + BIN
            else:
                self._bin_add(bins, a, now)

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
            if v.fate == SERVED:
                v.fate = UNSERVED  # (a silent leaver still on the board stays GONE)
            self._leave_queues(v, now, GONE if v.gone else UNSERVED)
            v.ticket = tr.cancel(v.ticket, now)
            self._close_visit(v, now)
        self.done.succeed()

    def _finish(self) -> None:
        now = self.env.now
        r = self.rec
        r.end_s = now
        if self.st_rows:
            r.st_dept, r.st_ready, r.st_wait, r.st_outcome, r.st_class = (list(c) for c in zip(*self.st_rows, strict=True))
        if self.tk_rows:
            (r.tk_purpose, r.tk_issued, r.tk_closed, r.tk_state, r.tk_class, r.tk_fate, r.tk_dept,
             r.tk_left_wait) = (list(c) for c in zip(*self.tk_rows, strict=True))
        for d, m in enumerate(self.meters):
            m.change(0, now)
            r.q_area[d] = m.area
            r.q_max[d] = m.top
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
