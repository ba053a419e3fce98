"""The waits every screen shows, for all departments in one pass. Pure: no I/O, no clock.

The figure is :func:`queue_server.core.estimators.shipped_wait` (docs/prediction.md) over the
planned work of :func:`queue_server.core.estimate.all_department_waits`, then a ticket queueing
in several departments at once is taken one at a time
(:func:`queue_server.core.estimators.one_at_a_time`). The server recomputes this after every
change, on its event loop, for every queued ticket (issue 20), so it is done here in one pass
over the counters and one over the tickets, where composing those functions read all the
counters once per department and each ticket's steps once per queue it stands in.
tests/queue_server/test_waits_reference.py holds it to that composition, to the last bit.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from operator import itemgetter

from .dispatch import DispatchPolicy, dispatch_key
from .estimate import Capacity, DepartmentWait, _wait
from .estimators import SHIPPED_SCALE, shipped_wait
from .model import Counter, CounterState, Step, StepState, Ticket

# members as constants (an enum member lookup costs a metaclass call; see dispatch.py)
_OPEN = CounterState.OPEN
_READY, _CALLED, _SERVING = StepState.READY, StepState.CALLED, StepState.SERVING
_NONE: Mapping[str, float] = {}
_first = itemgetter(0)
MINUTE = 60.0


def shown_waits(
    departments: Iterable[str],
    tickets: Iterable[Ticket],
    counters: Iterable[Counter],
    busy: Container[int],
    capacity: Capacity,
    rates: Mapping[str, float | None],
    now: float,
    policy: DispatchPolicy,
) -> dict[str, DepartmentWait]:
    """Each department's queue with the shipped wait of every ticket in it and of a newcomer.

    ``tickets`` are the lobby's open tickets, each once, in the lobby's order (equal dispatch
    keys keep it); ``busy`` the counters with a ticket called or served there
    (:meth:`queue_server.core.lobby.Lobby.busy_counters`: the others take a ticket at once);
    ``capacity`` is :func:`queue_server.core.estimators.capacity` and ``rates``
    :func:`queue_server.core.estimators.departure_rates` for these departments. ``counters``,
    ``waiting``, ``positions`` and ``ranks`` of the result are those of ``all_department_waits``
    with this capacity; ``wait_minutes`` and ``positions`` hold the shipped figures.
    """
    departments = list(dict.fromkeys(departments))
    queues: dict[str, list[tuple[tuple, Ticket, float, float, float]]] = {d: [] for d in departments}
    serving: dict[str, list[Counter]] = {d: [] for d in departments}  # open counters, in the counters' order
    for c in counters:
        if c.state is _OPEN:
            for d in c.departments:
                if d in serving:
                    serving[d].append(c)
    busy_at: dict[int, float] = {}  # counter -> planned minutes left of the step there
    # a ticket in several queues: (its wait, its turn in the departments' order, the department's
    # shown waits, the planned minutes of its step there) for each of them where the wait is known
    several: dict[str, list[tuple[float, int, dict[str, float | None], float]]] = {}
    for t in tickets:
        if t.closed is not None:
            continue
        ready: list[Step] = []
        active = None
        for st in t.steps:  # t.active_step and the ready steps, in one scan
            state = st.state
            if state is _READY:
                ready.append(st)
            elif state is _CALLED or state is _SERVING:
                active = st
                break
        if active is not None:
            if active.counter is not None:
                spent = (now - active.started_at) / MINUTE if active.started_at is not None else 0.0
                left = active.minutes - spent
                busy_at[active.counter] = left if left > 0.0 else 0.0  # max(0.0, left)
            continue
        # A queue entry: (dispatch key, ticket, planned minutes of its best step there, seconds
        # its first ready step there has waited, that step's planned minutes): the best step
        # orders the queue and adds its work, the first is the one the citizen is told about.
        since = key = None
        entries = 0
        for st in ready:
            s = st.ready_since
            if s is None:
                s = t.issued_at
            # dispatch_key reads only the step's ready_since (or the issue time): steps that
            # became ready together (a plan's first steps) share one key
            if key is None or s != since:
                since, key = s, dispatch_key(t, st, now, policy)
            q = queues.get(st.department)
            if q is None:  # not a department asked for
                continue
            if q and q[-1][1] is t:  # a second ready step in one department: the one called first
                if key < q[-1][0]:
                    q[-1] = (key, t, st.minutes, q[-1][3], q[-1][4])
            else:
                q.append((key, t, st.minutes, now - s, st.minutes))
                entries += 1
        if entries > 1:
            several[t.id] = []
    out: dict[str, DepartmentWait] = {}
    for d in departments:
        c_d = 0  # effective counters, added as sum() adds: from 0, in the counters' order
        work = 0  # the residual work at the busy counters, the same way
        idle = 0  # counters with no step of an open ticket: the planned work's idle counters
        free = 0  # counters the lobby has no ticket at: the shown figure's idle counters
        for c in serving[d]:
            n = c.number
            c_d += capacity.get(n, _NONE).get(d, 1.0 / len(c.departments))
            work += busy_at.get(n, 0.0)
            if n not in busy_at:
                idle += 1
            if n not in busy:
                free += 1
        q = sorted(queues[d], key=_first)
        # shipped_wait's three figures, in line (it runs for every queued ticket): QL with the
        # measured departure rate (or the planned work before 3 calls), HOL, the planned work
        rate = rates[d]
        by_rate = rate is not None and rate > 0
        head = None  # seconds the head of the queue has waited (SiteHub._head_waited)
        if q and q[0][1].id:
            since_head = [s.ready_since for s in q[0][1].steps
                          if s.department == d and s.ready_since is not None and s.state is _READY]
            head = now - since_head[0] if since_head else None
        known = not c_d <= 0  # _wait's own test (c_d <= 0: unknown), NaN included
        positions = {}
        ranks: dict[str, int] = {}
        for n, (_, t, minutes, waited, step_minutes) in enumerate(q):
            tid = t.id
            if not known:  # no open counter: unknown
                w = None
            elif n < free:  # an idle counter takes it at once
                w = 0.0
            else:
                planned = 0.0 if n < idle else work / c_d  # _wait(n, idle, work, c_d)
                ql = (n + 1 - free) / rate if by_rate else planned
                if n > 0 and head is not None:
                    hol = head - waited
                    w = SHIPPED_SCALE * (0 + ql + planned + (hol if hol > 0.0 else 0.0) / MINUTE) / 3
                else:
                    w = SHIPPED_SCALE * (0 + ql + planned) / 2
            positions[tid] = w
            ranks[tid] = n
            work += minutes
            turns = several.get(tid)
            if turns is not None and w is not None:  # (an unknown wait takes no turn)
                turns.append((w, len(turns), positions, step_minutes))
        newcomer = shipped_wait(len(q), free, rate, _wait(len(q), idle, work, c_d), head)
        out[d] = DepartmentWait(d, len(q), c_d, newcomer, positions, ranks)
    # one_at_a_time, in line: a ticket's queues in order of their waits (ties: the departments'
    # order), each waiting max(its wait, the previous one's + that step's planned minutes)
    for tid, turns in several.items():
        turns.sort()
        after = 0.0
        for w, _, positions, step_minutes in turns:
            positions[tid] = start = after if after > w else w  # max(w, after)
            after = start + step_minutes
    return out
