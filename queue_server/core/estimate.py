"""Wait estimates per department and per ticket. Pure.

Baseline formula (documented in docs/protocol.md, "Wait estimates"). For department *d*:

- ``c_d`` — effective counters: every open counter serving *d* contributes ``1/k`` where *k* is
  the number of departments it serves (a shared counter gives each department a share of its time).
- ``R_d`` — residual work at the counters now busy with a *d* step: for each, the step's planned
  minutes minus the minutes already spent (never below zero; a called step counts in full).
- The tickets queued for *d* in dispatch order have planned minutes ``m_0, m_1, …``.

The ticket at position *n* (0 = next to be called) waits::

    W_n = 0                                  if n < idle_d (an idle counter will call it at once)
    W_n = (R_d + m_0 + … + m_{n-1}) / c_d    otherwise

and a newcomer waits ``W_N`` with N the queue length. With exponential service and one department
this is the M/M/c conditional wait (n+1)/(cμ) when every m equals the mean; using each ticket's
planned minutes makes a long bereavement session count for more than a certificate. No open
counter for *d* means the wait is unknown (None), never a made-up number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter

from .dispatch import DispatchPolicy, dispatch_key, queue_for
from .model import ACTIVE_STEP_STATES, Counter, CounterState, Step, StepState, Ticket

MINUTE = 60.0
# members as constants (an enum member lookup costs a metaclass call; see dispatch.py)
_OPEN = CounterState.OPEN
_READY, _CALLED, _SERVING = StepState.READY, StepState.CALLED, StepState.SERVING
_NONE: Mapping[str, float] = {}
_first = itemgetter(0)


@dataclass(frozen=True, slots=True)
class DepartmentWait:
    department: str
    waiting: int  # tickets in the queue
    counters: float  # effective open counters (c_d)
    wait_minutes: float | None  # for a newcomer; None when no counter serves the department
    positions: Mapping[str, float | None]  # ticket id -> its own estimated wait, minutes
    ranks: Mapping[str, int] = field(default_factory=dict)  # ticket id -> tickets ahead of it


Capacity = Mapping[int, Mapping[str, float]]  # counter -> department -> effective counters it gives


def _effective_counters(
    department: str, counters: Iterable[Counter], capacity: Capacity | None = None
) -> tuple[float, list[Counter]]:
    serving = [c for c in counters if c.state is CounterState.OPEN and department in c.departments]
    if capacity is not None:
        # measured shares and speeds (queue_server.core.estimators.capacity); 1/k for a counter it lacks
        return sum(capacity.get(c.number, {}).get(department, 1.0 / len(c.departments)) for c in serving), serving
    return sum(1.0 / len(c.departments) for c in serving), serving


def department_wait(
    department: str,
    tickets: Iterable[Ticket],
    counters: Iterable[Counter],
    now: float,
    policy: DispatchPolicy,
) -> DepartmentWait:
    """Queue length and estimated waits for one department (see the module docstring)."""
    tickets = list(tickets)
    counters = list(counters)
    c_d, serving = _effective_counters(department, counters)
    queue = queue_for(tickets, frozenset({department}), now, policy)
    busy_at: dict[int, float] = {}
    for t in tickets:
        s = t.active_step
        if s is not None and s.counter is not None and s.state in ACTIVE_STEP_STATES:
            spent = (now - s.started_at) / MINUTE if s.started_at is not None else 0.0
            busy_at[s.counter] = max(0.0, s.minutes - spent)
    idle = sum(1 for c in serving if c.number not in busy_at)
    residual = sum(busy_at.get(c.number, 0.0) for c in serving)
    positions: dict[str, float | None] = {}
    ranks: dict[str, int] = {}
    work = residual
    for n, (t, s) in enumerate(queue):
        positions[t.id] = _wait(n, idle, work, c_d)
        ranks[t.id] = n
        work += s.minutes
    return DepartmentWait(
        department=department,
        waiting=len(queue),
        counters=c_d,
        wait_minutes=_wait(len(queue), idle, work, c_d),
        positions=positions,
        ranks=ranks,
    )


def _wait(position: int, idle: int, work_minutes: float, c_d: float) -> float | None:
    if c_d <= 0:
        return None
    if position < idle:
        return 0.0
    return work_minutes / c_d


def all_department_waits(
    departments: Iterable[str],
    tickets: Iterable[Ticket],
    counters: Iterable[Counter],
    now: float,
    policy: DispatchPolicy,
    capacity: Capacity | None = None,
) -> dict[str, DepartmentWait]:
    """department_wait for each department, in one pass over the tickets and one over the
    counters (the server recomputes this after every change: a scan of the lobby, or of all the
    counters, per department was its largest block of the event loop — issue 20).

    ``capacity`` replaces the 1/k split of shared counters with measured shares and speeds (the
    shipped estimator, see queue_server/core/estimators.py and docs/prediction.md)."""
    departments = list(departments)
    queues: dict[str, list[tuple[tuple, Ticket, float]]] = {d: [] for d in departments}
    # each department's open counters, in the counters' order: the sums below add in that order
    serving: dict[str, list[Counter]] = {d: [] for d in departments}
    for c in counters:
        if c.state is _OPEN:
            for d in c.departments:
                if d in serving:
                    serving[d].append(c)
    busy_at: dict[int, float] = {}
    for t in tickets:
        if t.closed is not None:
            continue
        ready: list[Step] = []
        active = None
        for st in t.steps:  # t.active_step and the ready steps of the departments asked, in one scan
            state = st.state
            if state is _CALLED or state is _SERVING:
                active = st
                break
            if state is _READY and st.department in queues:
                ready.append(st)
        if active is not None:
            if active.counter is not None:
                spent = (now - active.started_at) / MINUTE if active.started_at is not None else 0.0
                busy_at[active.counter] = max(0.0, active.minutes - spent)
            continue
        # each ready department's best step (dispatch order) joins that queue; the entries of
        # one ticket are the last ones of their queues until the next ticket
        since = key = None
        queued: list[str] = []
        for st in ready:
            # dispatch_key reads only the step's ready_since (or the issue time): steps that became
            # ready together (a plan's first steps) share one key
            s = st.ready_since if st.ready_since is not None else t.issued_at
            if key is None or s != since:
                since, key = s, dispatch_key(t, st, now, policy)
            q = queues[st.department]
            if st.department not in queued:
                queued.append(st.department)
                q.append((key, t, st.minutes))
            elif key < q[-1][0]:  # a second ready step in one department: the one called first
                q[-1] = (key, t, st.minutes)
    out = {}
    for d in departments:
        here = serving[d]
        if capacity is not None:
            # measured shares and speeds (queue_server.core.estimators.capacity); 1/k for a counter it lacks
            c_d = sum(capacity.get(c.number, _NONE).get(d, 1.0 / len(c.departments)) for c in here)
        else:
            c_d = sum(1.0 / len(c.departments) for c in here)
        q = sorted(queues[d], key=_first)
        idle = sum(1 for c in here if c.number not in busy_at)
        work = sum(busy_at.get(c.number, 0.0) for c in here)
        positions: dict[str, float | None] = {}
        ranks: dict[str, int] = {}
        known = not c_d <= 0  # _wait's own test (c_d <= 0: unknown), NaN included
        for n, (_, t, minutes) in enumerate(q):  # _wait(n, idle, work, c_d), in line
            positions[t.id] = (0.0 if n < idle else work / c_d) if known else None
            ranks[t.id] = n
            work += minutes
        out[d] = DepartmentWait(d, len(q), c_d, _wait(len(q), idle, work, c_d), positions, ranks)
    return out


def ticket_wait(ticket: Ticket, waits: Mapping[str, DepartmentWait]) -> float | None:
    """A waiting ticket's estimated wait: the shortest among the queues it stands in."""
    found = [w.positions[ticket.id] for w in waits.values() if ticket.id in w.positions]
    known = [f for f in found if f is not None]
    return min(known) if known else None


def ticket_rank(ticket: Ticket, waits: Mapping[str, DepartmentWait]) -> int | None:
    """Tickets ahead of this one in the shortest of its queues, from precomputed waits."""
    found = [w.ranks[ticket.id] for w in waits.values() if ticket.id in w.ranks]
    return min(found) if found else None


def ticket_position(ticket: Ticket, tickets: Iterable[Ticket], now: float, policy: DispatchPolicy) -> int | None:
    """How many tickets are ahead of this one in the shortest of its department queues."""
    best: int | None = None
    departments = {s.department for s in ticket.steps if s.state.value == "ready"}
    tickets = list(tickets)
    for d in departments:
        q = queue_for(tickets, frozenset({d}), now, policy)
        for n, (t, _) in enumerate(q):
            if t.id == ticket.id:
                best = n if best is None else min(best, n)
                break
    return best


def visit_minutes(route_minutes: Iterable[tuple[str, float]], waits: Mapping[str, DepartmentWait]) -> float | None:
    """Expected time in the building for a new plan: each step's queue wait plus its service.

    ``route_minutes`` is (department, service minutes) per step. Unknown when a department has no
    open counter.
    """
    total = 0.0
    for department, minutes in route_minutes:
        w = waits.get(department)
        if w is None or w.wait_minutes is None:
            return None
        total += w.wait_minutes + minutes
    return total
