"""The department-waits recomputation as it was before issue 20 made it cheap: kept only here, as
the reference the property test (test_waits_reference.py) holds the fast version to.

Copied from queue_server/core/estimate.py (all_department_waits, _effective_counters),
queue_server/core/estimators.py (capacity, counter_shares, counter_speeds, departure_rate,
shipped_wait, one_at_a_time) and queue_server/hub.py (SiteHub.waits(fresh=True): _shown,
work_waits, _one_at_a_time, _head_waited, _waited) at commit c345e76, unchanged but for names.
Do not optimise it: its worth is being the obviously-correct one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from queue_server.core.dispatch import DispatchPolicy, dispatch_key
from queue_server.core.estimate import MINUTE, Capacity, DepartmentWait
from queue_server.core.estimators import (
    RATE_WINDOW,
    SHARE_WINDOW,
    SHIPPED_SCALE,
    SPEED_MAX,
    SPEED_MIN,
    SPEED_PRIOR,
    SPEED_WINDOW,
    Call,
    History,
    Service,
)
from queue_server.core.model import Counter, CounterState, StepState, Ticket

# ------------------------------------------------------------------ queue_server/core/estimate.py


def _wait(position: int, idle: int, work_minutes: float, c_d: float) -> float | None:
    if c_d <= 0:
        return None
    if position < idle:
        return 0.0
    return work_minutes / c_d


def effective_counters(
    department: str, counters: Iterable[Counter], capacity: Capacity | None = None
) -> tuple[float, list[Counter]]:
    serving = [c for c in counters if c.state is CounterState.OPEN and department in c.departments]
    if capacity is not None:
        return sum(capacity.get(c.number, {}).get(department, 1.0 / len(c.departments)) for c in serving), serving
    return sum(1.0 / len(c.departments) for c in serving), serving


def all_department_waits(
    departments: Iterable[str],
    tickets: Iterable[Ticket],
    counters: Iterable[Counter],
    now: float,
    policy: DispatchPolicy,
    capacity: Capacity | None = None,
) -> dict[str, DepartmentWait]:
    departments = list(departments)
    counters = list(counters)
    wanted = set(departments)
    queues: dict[str, list[tuple[tuple, Ticket, float]]] = {d: [] for d in departments}
    busy_at: dict[int, float] = {}
    for t in tickets:
        if t.closed is not None:
            continue
        s = t.active_step
        if s is not None:
            if s.counter is not None:
                spent = (now - s.started_at) / MINUTE if s.started_at is not None else 0.0
                busy_at[s.counter] = max(0.0, s.minutes - spent)
            continue
        best: dict[str, tuple[tuple, float]] = {}
        for st in t.steps:
            if st.state.value == "ready" and st.department in wanted:
                key = dispatch_key(t, st, now, policy)
                if st.department not in best or key < best[st.department][0]:
                    best[st.department] = (key, st.minutes)
        for d, (key, minutes) in best.items():
            queues[d].append((key, t, minutes))
    out = {}
    for d in departments:
        c_d, serving = effective_counters(d, counters, capacity)
        q = sorted(queues[d], key=lambda e: e[0])
        idle = sum(1 for c in serving if c.number not in busy_at)
        work = sum(busy_at.get(c.number, 0.0) for c in serving)
        positions: dict[str, float | None] = {}
        ranks: dict[str, int] = {}
        for n, (_, t, minutes) in enumerate(q):
            positions[t.id] = _wait(n, idle, work, c_d)
            ranks[t.id] = n
            work += minutes
        out[d] = DepartmentWait(d, len(q), c_d, _wait(len(q), idle, work, c_d), positions, ranks)
    return out


# ------------------------------------------------------------------ queue_server/core/estimators.py


def counter_shares(
    counters: Iterable[Counter], calls: Iterable[Call], waiting: Mapping[str, int], now: float
) -> dict[int, dict[str, float]]:
    counts: dict[tuple[int, str], int] = {}
    for c in calls:
        if now - SHARE_WINDOW <= c.at <= now:
            counts[(c.counter, c.department)] = counts.get((c.counter, c.department), 0) + 1
    out: dict[int, dict[str, float]] = {}
    for c in counters:
        if c.state is not CounterState.OPEN or not c.departments:
            continue
        weight = {d: counts.get((c.number, d), 0) + 1.0 for d in c.departments}
        busy = sum(weight[d] for d in c.departments if waiting.get(d, 0) > 0)
        out[c.number] = {d: weight[d] / (weight[d] + busy - (weight[d] if waiting.get(d, 0) > 0 else 0.0))
                         for d in c.departments}
    return out


def counter_speeds(services: Iterable[Service], now: float) -> dict[int, float]:
    planned: dict[int, float] = {}
    actual: dict[int, float] = {}
    for s in services:
        if now - SPEED_WINDOW <= s.at <= now and s.actual > 0:
            planned[s.counter] = planned.get(s.counter, 0.0) + s.planned
            actual[s.counter] = actual.get(s.counter, 0.0) + s.actual
    out = {}
    for n, p in planned.items():
        ratio = (p + SPEED_PRIOR * 10) / (actual[n] + SPEED_PRIOR * 10)
        out[n] = min(SPEED_MAX, max(SPEED_MIN, ratio))
    return out


def capacity(
    counters: Iterable[Counter], history: History, waiting: Mapping[str, int], now: float
) -> dict[int, dict[str, float]]:
    counters = list(counters)
    shares = counter_shares(counters, history.calls, waiting, now)
    speeds = counter_speeds(history.services, now)
    return {n: {d: s * speeds.get(n, 1.0) for d, s in split.items()} for n, split in shares.items()}


def departure_rate(calls: Iterable[Call], department: str, now: float,
                   left: Iterable[tuple[float, str]] = (), since: float | None = None) -> float | None:
    n = sum(1 for c in calls if c.department == department and now - RATE_WINDOW <= c.at <= now)
    if n < 3:
        return None
    n += sum(1 for at, d in left if d == department and now - RATE_WINDOW <= at <= now)
    span = RATE_WINDOW if since is None else min(RATE_WINDOW, max(now - since, MINUTE))
    return n / (span / MINUTE)


def ql_wait(ahead: int, idle: int, rate: float | None) -> float | None:
    if ahead < idle:
        return 0.0
    if rate is None or rate <= 0:
        return None
    return (ahead + 1 - idle) / rate


def shipped_wait(ahead: int, idle: int, rate: float | None, work: float | None,
                 head_waited: float | None, waited: float = 0.0) -> float | None:
    if work is None:
        return None
    if ahead < idle:
        return 0.0
    ql = ql_wait(ahead, idle, rate)
    parts = [ql if ql is not None else work, work]
    if head_waited is not None:
        parts.append(max(0.0, head_waited - waited) / MINUTE)
    return SHIPPED_SCALE * sum(parts) / len(parts)


def one_at_a_time(waits: list[float | None], minutes: list[float]) -> list[float | None]:
    order = sorted((i for i, w in enumerate(waits) if w is not None), key=lambda i: (waits[i], i))
    out: list[float | None] = list(waits)
    free = 0.0
    for i in order:
        start = max(waits[i], free)  # type: ignore[type-var]
        out[i] = start
        free = start + minutes[i]
    return out


# ------------------------------------------------------------------ queue_server/hub.py (SiteHub)


def hub_waits(hub, now: float) -> dict[str, DepartmentWait]:
    """What ``hub.waits(now, fresh=True)`` returned, without touching the hub's caches."""
    return _shown(hub, _work_waits(hub, now), now)


def _shown(hub, work: Mapping[str, DepartmentWait], now: float) -> dict[str, DepartmentWait]:
    out = {}
    busy = {c for c in hub.lobby.counters if hub.lobby.ticket_at(c) is not None}
    positions: dict[str, dict[str, float | None]] = {}
    newcomers: dict[str, float | None] = {}
    for d, x in work.items():
        idle = sum(1 for c in hub.lobby.counters.values()
                   if c.state is CounterState.OPEN and d in c.departments and c.number not in busy)
        rate = departure_rate(hub.history.calls, d, now, hub.history.left, hub.history.start)
        head = _head_waited(hub, d, x, now)
        positions[d] = {}
        for tid, v in x.positions.items():
            n = x.ranks.get(tid, 0)
            positions[d][tid] = shipped_wait(n, idle, rate, v, head if n > 0 else None, _waited(hub, tid, d, now))
        newcomers[d] = shipped_wait(x.waiting, idle, rate, x.wait_minutes, head)
    _one_at_a_time(hub, positions)
    for d, x in work.items():
        out[d] = DepartmentWait(d, x.waiting, x.counters, newcomers[d], positions[d], x.ranks)
    return out


def _one_at_a_time(hub, positions: dict[str, dict[str, float | None]]) -> None:
    where: dict[str, list[str]] = {}
    for d, xs in positions.items():
        for tid in xs:
            where.setdefault(tid, []).append(d)
    for tid, depts in where.items():
        t = hub.lobby.tickets.get(tid)
        if len(depts) < 2 or t is None:
            continue
        minutes = [next((s.minutes for s in t.steps if s.department == d and s.state is StepState.READY), 0.0)
                   for d in depts]
        for d, w in zip(depts, one_at_a_time([positions[d][tid] for d in depts], minutes), strict=True):
            positions[d][tid] = w


def _waited(hub, tid: str, department: str, now: float) -> float:
    t = hub.lobby.tickets.get(tid)
    if t is None:
        return 0.0
    for s in t.steps:
        if s.department == department and s.state is StepState.READY:
            return now - (s.ready_since if s.ready_since is not None else t.issued_at)
    return 0.0


def _work_waits(hub, now: float) -> dict[str, DepartmentWait]:
    counters = list(hub.lobby.counters.values())
    waiting = {d: len(hub.lobby.waiting_for([d])) for d in hub.config.departments}
    cap = capacity(counters, hub.history, waiting, now)
    return all_department_waits(
        hub.config.departments, hub.lobby.open_tickets(), counters, now, hub.lobby.policy, capacity=cap
    )


def _head_waited(hub, department: str, w: DepartmentWait, now: float) -> float | None:
    head = next((tid for tid, r in w.ranks.items() if r == 0), None)
    t = hub.lobby.tickets.get(head) if head else None
    if t is None:
        return None
    since = [s.ready_since for s in t.steps if s.department == department and s.ready_since is not None
             and s.state is StepState.READY]
    return now - since[0] if since else None
