"""Real-time wait estimators and how the shown figure is worded. Pure: no I/O, no clock.

The baseline (:mod:`queue_server.core.estimate`) divides the planned work ahead of a ticket by the
department's effective counters, a shared counter counting ``1/k`` for each of its *k*
departments. Two things make it wrong in a busy lobby, and this module corrects both from what the
lobby itself has just done (a :class:`History` of calls and services fed by the shell):

- **shared counters**: a counter serving 市民課 and 税務課 gives 市民課 the share of its recent calls
  that were for 市民課 — and all of its time when the other queue is empty — not a fixed half;
- **speed**: a counter staffed by a newcomer finishes planned work more slowly; its recent ratio
  of planned to actual service minutes scales its capacity.

Opening, closing and lunch breaks enter through the counters' current open state (a counter
paused for lunch contributes nothing at once, where a measured departure rate would lag).

The other estimators compared in docs/prediction.md (Ibrahim & Whitt's queue-length QL, last to
enter service LES, head of line HOL) are here too, so the simulation harness
(simulation/estimators.py) and the server run the same functions.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass

from .history_windows import HistoryWindows
from .model import Counter, CounterState

_OPEN = CounterState.OPEN  # a member lookup costs a metaclass call (see dispatch.py)
MINUTE = 60.0
SHARE_WINDOW = 60 * MINUTE  # calls that set a shared counter's split between its departments
SPEED_WINDOW = 90 * MINUTE  # services that set a counter's speed
RATE_WINDOW = 45 * MINUTE  # departures that set a department's measured rate (QL; 20, 30, 45, 60 min tried)
SPEED_MIN, SPEED_MAX = 0.5, 1.6  # a few odd services never make a counter look 3x faster or slower
SPEED_PRIOR = 3.0  # pseudo-services at speed 1: a counter's first services move it only a little


@dataclass(frozen=True, slots=True)
class Call:
    at: float  # seconds
    counter: int
    department: str
    waited: float  # seconds the step had been ready when called
    predicted: float | None = None  # minutes the shipped estimator gave this step when it queued


@dataclass(frozen=True, slots=True)
class Service:
    at: float  # completion time, seconds
    counter: int
    planned: float  # planned minutes of the step
    actual: float  # minutes from start to completion


class History:
    """Recent calls and services of one site, oldest first, pruned to the longest window."""

    def __init__(self) -> None:
        self.start: float | None = None  # time of the first observation: rates are per minute observed
        self.calls: deque[Call] = deque()
        self.services: deque[Service] = deque()
        self.staffing: deque[tuple[float, dict[str, float]]] = deque()
        self.left: deque[tuple[float, str]] = deque()  # (time, department) of tickets that left the queue uncalled
        # the windows' counts and sums, kept as observations come (capacity, history_departure_rates)
        self.windows = HistoryWindows(SHARE_WINDOW, SPEED_WINDOW, RATE_WINDOW)

    def add_staffing(self, at: float, counters: Mapping[str, float]) -> None:
        """Effective counters per department now; at most one sample a minute is kept."""
        if self.staffing and at - self.staffing[-1][0] < MINUTE:
            return
        self.staffing.append((at, dict(counters)))
        while self.staffing and self.staffing[0][0] < at - RATE_WINDOW:
            self.staffing.popleft()

    def staffing_ratio(self, department: str, now_counters: float, now: float) -> float:
        """Effective counters now over their mean in the last RATE_WINDOW (1 without samples): a
        departure rate measured while two counters were open is halved when one goes to lunch."""
        xs = [c.get(department, 0.0) for at, c in self.staffing if now - RATE_WINDOW <= at <= now]
        mean = sum(xs) / len(xs) if xs else 0.0
        if mean <= 0:
            return 1.0
        return min(3.0, max(0.2, now_counters / mean))

    def add_left(self, at: float, department: str) -> None:
        entry = (at, department)
        self.windows.add_left(entry)
        self.left.append(entry)
        while self.left and self.left[0][0] < at - RATE_WINDOW:
            self.left.popleft()

    def add_call(self, call: Call) -> None:
        if self.start is None:
            self.start = call.at
        self.calls.append(call)
        self.windows.add_call(call)
        self._prune(call.at)

    def add_service(self, service: Service) -> None:
        self.services.append(service)
        self.windows.add_service(service)
        self._prune(service.at)

    def windows_at(self, now: float) -> HistoryWindows | None:
        """The windows, if they give the scans' figures at ``now`` (else None: scan the deques)."""
        w = self.windows
        return w if w.usable(now, self.calls, self.services, self.left) else None

    def _prune(self, now: float) -> None:
        keep = max(SHARE_WINDOW, SPEED_WINDOW, RATE_WINDOW)
        while self.calls and self.calls[0].at < now - keep:
            self.calls.popleft()
        while self.services and self.services[0].at < now - keep:
            self.services.popleft()


# ------------------------------------------------------------------ shared counters and speed


def counter_shares(
    counters: Iterable[Counter], calls: Iterable[Call], waiting: Mapping[str, int], now: float
) -> dict[int, dict[str, float]]:
    """For each open counter, the share of its time each of its departments gets.

    For department *d* the split is between *d* and the counter's other departments that have
    someone waiting (an empty queue takes no time: a newcomer to *d* gets the whole counter), in
    proportion to the counter's calls in the last SHARE_WINDOW plus one pseudo-call each, so a
    counter without history splits evenly between busy queues.
    """
    counts, called = call_counts(calls, now)
    return shares_from_counts(counters, counts, called, waiting)


def call_counts(calls: Iterable[Call], now: float) -> tuple[dict[tuple[int, str], int], set[int]]:
    """Calls per (counter, department) in the SHARE_WINDOW up to ``now``, and the counters that
    made any (:class:`queue_server.core.history_windows.HistoryWindows` keeps the same figures)."""
    counts: dict[tuple[int, str], int] = {}
    called: set[int] = set()
    for c in calls:
        if now - SHARE_WINDOW <= c.at <= now:
            counts[(c.counter, c.department)] = counts.get((c.counter, c.department), 0) + 1
            called.add(c.counter)
    return counts, called


def shares_from_counts(counters: Iterable[Counter], counts: Mapping[tuple[int, str], int], called: Container[int],
                       waiting: Mapping[str, int]) -> dict[int, dict[str, float]]:
    """:func:`counter_shares` from the window's :func:`call_counts`."""
    out: dict[int, dict[str, float]] = {}
    # a counter without calls in the window splits as every other such counter of its departments:
    # computed once per department set (a lobby of 200 counters has a handful of sets; the weights
    # are whole numbers, so their sum is the same in any order the set iterates)
    uncalled: dict[frozenset[str], dict[str, float]] = {}
    for c in counters:
        if c.state is not _OPEN or not c.departments:
            continue
        if len(c.departments) == 1:  # w / (w + w - w), or w / (w + 0 - 0.0) with nobody waiting
            (d,) = c.departments
            out[c.number] = {d: 1.0}
        elif c.number not in called:
            split = uncalled.get(c.departments)
            if split is None:
                split = uncalled[c.departments] = _split(c.number, c.departments, counts, waiting)
            out[c.number] = {d: split[d] for d in c.departments}  # (equal sets may iterate differently)
        else:
            out[c.number] = _split(c.number, c.departments, counts, waiting)
    return out


def _split(number: int, departments: frozenset[str], counts: Mapping[tuple[int, str], int],
           waiting: Mapping[str, int]) -> dict[str, float]:
    weight = {d: counts.get((number, d), 0) + 1.0 for d in departments}
    busy = sum(weight[d] for d in departments if waiting.get(d, 0) > 0)
    return {d: weight[d] / (weight[d] + busy - (weight[d] if waiting.get(d, 0) > 0 else 0.0)) for d in departments}


def counter_speeds(services: Iterable[Service], now: float) -> dict[int, float]:
    """Planned over actual service minutes per counter in the last SPEED_WINDOW (1 = as planned)."""
    return speeds_from_sums(*service_sums(services, now))


def service_sums(services: Iterable[Service], now: float) -> tuple[dict[int, float], dict[int, float]]:
    """Planned and actual minutes per counter of the services in the SPEED_WINDOW up to ``now``
    (those with an actual time), each summed in the order the services came."""
    planned: dict[int, float] = {}
    actual: dict[int, float] = {}
    for s in services:
        if now - SPEED_WINDOW <= s.at <= now and s.actual > 0:
            planned[s.counter] = planned.get(s.counter, 0.0) + s.planned
            actual[s.counter] = actual.get(s.counter, 0.0) + s.actual
    return planned, actual


def speeds_from_sums(planned: Mapping[int, float], actual: Mapping[int, float]) -> dict[int, float]:
    """:func:`counter_speeds` from the window's :func:`service_sums`."""
    out = {}
    for n, p in planned.items():
        # a prior of SPEED_PRIOR services of 10 planned minutes at speed 1
        ratio = (p + SPEED_PRIOR * 10) / (actual[n] + SPEED_PRIOR * 10)
        out[n] = min(SPEED_MAX, max(SPEED_MIN, ratio))
    return out


def capacity(
    counters: Iterable[Counter], history: History, waiting: Mapping[str, int], now: float
) -> dict[int, dict[str, float]]:
    """Effective counters each open counter gives each department: share × speed.

    The shipped estimator passes this to :func:`queue_server.core.estimate.all_department_waits`.
    """
    windows = history.windows_at(now)
    if windows is not None:  # (the scans grow with the hour's calls)
        counts, called, sums = windows.share_counts(now), windows.called(), windows.service_sums(now)
    else:
        (counts, called), sums = call_counts(history.calls, now), service_sums(history.services, now)
    shares = shares_from_counts(counters, counts, called, waiting)  # fresh dicts: scaled in place
    for n, speed in speeds_from_sums(*sums).items():
        split = shares.get(n)
        if split is not None:  # (a counter without a speed keeps its share: s × 1.0 is s)
            for d, s in split.items():
                split[d] = s * speed
    return shares


# ------------------------------------------------------------------ the compared estimators


CALIBRATION_CALLS = 12  # the latest calls of a department that set its calibration
CAL_MIN, CAL_MAX = 0.4, 2.5


def calibration(calls: Iterable[Call], department: str, now: float) -> float:
    """Actual over predicted wait for the department's latest calls (1 = no correction).

    Planned work overstates the wait when people give up (a citizen who left is called, recalled
    and dropped in three minutes, not served for twenty) and understates it when services run
    long; the ratio the lobby has just measured corrects both. Only calls in the last
    SHARE_WINDOW with a prediction of 3 minutes or more count; with fewer than 3 it is 1.
    """
    rows = [c for c in calls if c.department == department and c.predicted is not None
            and c.predicted >= SOON_MINUTES and now - SHARE_WINDOW <= c.at <= now]
    rows = rows[-CALIBRATION_CALLS:]
    if len(rows) < 3:
        return 1.0
    ratio = sum(c.waited / MINUTE for c in rows) / sum(c.predicted for c in rows)  # type: ignore[misc]
    return min(CAL_MAX, max(CAL_MIN, ratio))


def departure_rate(calls: Iterable[Call], department: str, now: float,
                   left: Iterable[tuple[float, str]] = (), since: float | None = None) -> float | None:
    """Tickets leaving the department's queue per minute over the last RATE_WINDOW — called, or
    (``left``) cancelled while waiting; None with under 3 calls. ``since`` is when observation
    began (a server that started 10 minutes ago has seen 10 minutes, not RATE_WINDOW)."""
    return departure_rates(calls, (department,), now, left, since)[department]


def departure_rates(calls: Iterable[Call], departments: Iterable[str], now: float,
                    left: Iterable[tuple[float, str]] = (), since: float | None = None) -> dict[str, float | None]:
    """:func:`departure_rate` of each department, in one pass over the calls and walk-outs."""
    lo = now - RATE_WINDOW
    called = dict.fromkeys(departments, 0)
    for c in calls:
        if c.department in called and lo <= c.at <= now:
            called[c.department] += 1
    gone = dict.fromkeys(called, 0)
    for at, d in left:
        if d in gone and lo <= at <= now:
            gone[d] += 1
    return rates_from_counts(called, gone, now, since)


def history_departure_rates(history: History, departments: Iterable[str], now: float) -> dict[str, float | None]:
    """:func:`departure_rates` of a History: from its windows' counts where they hold, else by scan."""
    windows = history.windows_at(now)
    if windows is None:
        return departure_rates(history.calls, departments, now, history.left, history.start)
    calls, left = windows.rate_counts(now)
    called = {d: calls.get(d, 0) for d in departments}
    return rates_from_counts(called, {d: left.get(d, 0) for d in called}, now, history.start)


def rates_from_counts(called: Mapping[str, int], gone: Mapping[str, int], now: float,
                      since: float | None) -> dict[str, float | None]:
    span = RATE_WINDOW if since is None else min(RATE_WINDOW, max(now - since, MINUTE))
    return {d: None if n < 3 else (n + gone[d]) / (span / MINUTE) for d, n in called.items()}


def ql_wait(ahead: int, idle: int, rate: float | None) -> float | None:
    """Queue-length estimator (Ibrahim & Whitt's QL with the departure rate measured): the
    tickets ahead plus this one, divided by calls per minute; 0 when an idle counter takes it."""
    if ahead < idle:
        return 0.0
    if rate is None or rate <= 0:
        return None
    return (ahead + 1 - idle) / rate


def les_wait(calls: Iterable[Call], department: str, now: float) -> float | None:
    """Last-to-enter-service: the wait, in minutes, of the department's latest call."""
    last = None
    for c in calls:
        if c.department == department and c.at <= now and (last is None or c.at >= last.at):
            last = c
    if last is None or now - last.at > SHARE_WINDOW:
        return None
    return last.waited / MINUTE


def hol_wait(head_waited: float | None) -> float | None:
    """Head-of-line: how long, in minutes, the first ticket of the queue has waited so far."""
    return None if head_waited is None else head_waited / MINUTE


def hol_scaled(head_waited: float | None, head_ahead: int | None, ahead: int) -> float | None:
    """Head-of-line scaled by queue growth: the head waited ``head_waited`` seconds behind
    ``head_ahead`` tickets, so a ticket behind ``ahead`` tickets waits about
    head_waited × (ahead + 1) / (head_ahead + 1), in minutes. Uses what the lobby just did, so
    abandonment, slow newcomers and shared counters are all in it."""
    if head_waited is None or head_ahead is None:
        return None
    return head_waited / MINUTE * (ahead + 1) / (head_ahead + 1)


def ql_hol_wait(ahead: int, idle: int, rate: float | None, work: float | None,
                head_waited: float | None, waited: float = 0.0) -> float | None:
    """The estimator shipped before :func:`shipped_wait` (kept for the comparison): the mean of
    QL with walk-outs (``work`` until 3 calls are measured) and HOL. Arguments as there."""
    if work is None:
        return None
    if ahead < idle:
        return 0.0
    ql = ql_wait(ahead, idle, rate)
    base = ql if ql is not None else work
    if head_waited is None:
        return base
    return (base + max(0.0, head_waited - waited) / MINUTE) / 2


# The three figures of shipped_wait are averaged and scaled by SHIPPED_SCALE. Both were chosen on
# the simulation's seed 1 (docs/prediction.md; equal weights were as good as the best unequal
# ones): waits are skewed to the right (a few very long), so the figure that minimises the mean
# absolute error sits below their mean — 0.9 × the mean puts about half the waits above it.
SHIPPED_SCALE = 0.9


def shipped_wait(ahead: int, idle: int, rate: float | None, work: float | None,
                 head_waited: float | None, waited: float = 0.0) -> float | None:
    """The estimator the lobby shows (chosen by the comparison in docs/prediction.md).

    SHIPPED_SCALE × the mean of three figures that err in different directions:

    - QL with the measured departure rate: (ahead + 1) tickets at the rate tickets have left the
      department's queue in the last RATE_WINDOW, called *or walked out* (``departure_rate`` with
      ``left``) — citizens who gave up shorten everyone's wait; it jumps with the queue;
    - HOL: the head of the line has waited ``head_waited`` seconds; a ticket that has itself
      waited ``waited`` seconds has about the difference left — it lags when the queue grows;
    - ``work``: planned work ahead over the open counters (shares and speeds from
      :func:`capacity`) — it knows at once when a counter closes for lunch, but not who will
      give up. Before 3 calls are measured it also stands in for QL.

    A figure that is unknown (no head of the line: nobody ahead) is left out of the mean.
    0 when an idle counter will take it at once; None when no counter serves the department.
    A ticket queueing in several departments at once: see :func:`one_at_a_time`.
    """
    if work is None:
        return None
    if ahead < idle:
        return 0.0
    # The server computes this for every queued ticket after every change, so ql_wait and the
    # mean are written out: 0 + a + b is what sum([a, b]) adds, to the last bit.
    ql = (ahead + 1 - idle) / rate if rate is not None and rate > 0 else work  # ql_wait, or work for it
    if head_waited is None:
        return SHIPPED_SCALE * (0 + ql + work) / 2
    hol = head_waited - waited
    return SHIPPED_SCALE * (0 + ql + work + (hol if hol > 0.0 else 0.0) / MINUTE) / 3


def one_at_a_time(waits: list[float | None], minutes: list[float]) -> list[float | None]:
    """Waits of one ticket's steps that queue at the same time, a citizen being in one place.

    ``waits[i]`` is step *i*'s own queue estimate and ``minutes[i]`` its planned service. A
    citizen in two queues is called by the sooner one first and keeps the other place while
    served (the lobby skips a ticket that is at a counter), so the later step waits at least
    until that service ends: taken in order of their own estimates, each step waits
    max(its estimate, the previous step's wait + its service). Unknown waits stay unknown.
    """
    out: list[float | None] = list(waits)
    order = []  # (the server calls this for every ticket in several queues after every change: no lambda)
    for i, w in enumerate(waits):
        if w is not None:
            order.append((w, i))
    order.sort()  # by estimate, then in the order given
    free = 0.0  # when the citizen is free of the steps taken so far
    for w, i in order:
        out[i] = start = max(w, free)
        free = start + minutes[i]
    return out


# ------------------------------------------------------------------ how the figure is shown

# Spread of the shipped estimator in the simulation (docs/prediction.md, seed 7, 20 runs): for
# waits over 5 minutes, 80 % of actual waits fell within 0.76–1.59 × the estimate on 1 April and
# 0.75–1.64 × on a normal June day. The range shown is [0.75, 1.5] × the estimate, once that spread
# is at least RANGE_MIN_SPREAD minutes; below it, one figure.
RANGE_LOW, RANGE_HIGH = 0.75, 1.5
RANGE_MIN_SPREAD = 10.0
SOON_MINUTES = 3.0  # under this the figure is "まもなく" (soon), not "about 1 minute"


def _round5(x: float, up: bool) -> int:
    return int(math.ceil(x / 5.0) * 5) if up else int(math.floor(x / 5.0) * 5)


def wait_range(minutes: float | None) -> tuple[int, int] | None:
    """(low, high) whole minutes to show instead of one figure, or None when one figure is honest.

    Ranges snap to 5 minutes ("約20〜30分"); the low end is never below 5 minutes.
    """
    if minutes is None or minutes < SOON_MINUTES:
        return None
    lo, hi = minutes * RANGE_LOW, minutes * RANGE_HIGH
    if hi - lo < RANGE_MIN_SPREAD:
        return None
    lo5, hi5 = max(5, _round5(lo, up=False)), _round5(hi, up=True)
    return (lo5, hi5) if hi5 > lo5 else None


def wait_kind(minutes: float | None, waiting: int, open_counters: float) -> str:
    """Which wording a wait gets on every screen:

    - ``closed``: no open counter (受付休止中) — the figure is unknown;
    - ``soon``: under SOON_MINUTES (まもなく);
    - ``few_counters``: a wait of 10 minutes or more with nobody waiting — the counters are
      busy with long services, so the reason is shown beside the figure (窓口が少ないため);
    - ``range`` / ``minutes``: a range or one figure.
    """
    if minutes is None:
        return "closed"
    if minutes < SOON_MINUTES:
        return "soon"
    if waiting == 0 and minutes >= 10:
        return "few_counters"
    return "range" if wait_range(minutes) else "minutes"


def wait_fields(minutes: float | None, waiting: int, open_counters: float) -> dict[str, object]:
    """The fields every client reads beside ``wait_minutes``: the same wording on board, kiosk,
    ticket and phone because all of them take it from here."""
    r = wait_range(minutes)
    return {
        "wait_kind": wait_kind(minutes, waiting, open_counters),
        "wait_low": r[0] if r else None,
        "wait_high": r[1] if r else None,
    }
