"""The open tickets with a READY step, per department, in the orders a call needs. Pure.

"Call next" used to hand :func:`queue_server.core.dispatch.choose_next` every ticket waiting in
the counter's departments: a scan of the whole queue for every call, so in an April queue of
1,000 a call cost several times what it costs in a quiet week (docs/benchmarks.md). This index
hands it only the tickets that can hold the smallest dispatch key, and the choice is the same.

Why a few candidates are enough: ``dispatch_key`` orders a ticket without a booking by
(escalated, priority class, ready time, issue time, number), where *escalated* means its ready
time is at least ``aging_bound`` ago and the class is assistance or normal. Within one class and
department the smallest key therefore always belongs to the entry with the smallest (ready time,
issue time, number): escalation only ever comes to the oldest first. So each department gives
its oldest *free* entry of each class (free: not at another counter), with any exactly tied with
it, and every booked ticket (few: booking capacity bounds them, and whether a booking is due
depends on the clock). The minimum over those is the minimum over the whole queue.

``choose_next`` keeps the first of equal keys in the order it is given, so the candidates come
in the order :meth:`ReadyIndex.waiting_for` lists tickets (department by department, each in the
order its tickets became ready there). tests/queue_server/test_ready_index.py checks both, against
the full scan, over random days.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping

from .model import Step, StepState, Ticket

_READY, _CALLED, _SERVING = StepState.READY, StepState.CALLED, StepState.SERVING

# (ready time, issue time, number, ticket id, step index): the tail of dispatch_key, then enough
# to tell two entries apart
Entry = tuple[float, float, int, str, int]


def _entry(t: Ticket, s: Step) -> Entry:
    return (s.ready_since if s.ready_since is not None else t.issued_at, t.issued_at, t.number, t.id, s.index)


def _free(t: Ticket) -> bool:
    """Not closed and not at a counter now (dispatch.ready_steps' first condition)."""
    return t.closed is None and not any(s.state is _CALLED or s.state is _SERVING for s in t.steps)


class ReadyIndex:
    """Per department: the ids of open tickets with a ready step there (in the order they became
    ready), their entries sorted by ready time for each class, and the booked ones."""

    def __init__(self) -> None:
        self._ids: dict[str, dict[str, int]] = {}  # department -> ticket id -> when it came in
        self._came = 0
        self._by_time: dict[tuple[str, bool], list[Entry]] = {}  # (department, assistance): not booked
        self._booked: dict[str, dict[str, None]] = {}

    def add(self, t: Ticket) -> None:
        if t.closed is not None:
            return
        for s in t.steps:
            if s.state is not _READY:
                continue
            d = s.department
            ids = self._ids.setdefault(d, {})
            if t.id not in ids:  # (a second ready step there keeps the ticket's place)
                self._came += 1
                ids[t.id] = self._came
            if t.reserved_for is not None:
                self._booked.setdefault(d, {})[t.id] = None
            else:
                insort(self._by_time.setdefault((d, t.assistance), []), _entry(t, s))

    def remove(self, t: Ticket) -> None:
        """Take out ``t`` as it was added (the version the lobby held until now)."""
        for s in t.steps:
            if s.state is not _READY:
                continue
            d = s.department
            self._ids.get(d, {}).pop(t.id, None)
            if t.reserved_for is not None:
                self._booked.get(d, {}).pop(t.id, None)
                continue
            entries = self._by_time.get((d, t.assistance))
            if entries:
                e = _entry(t, s)
                i = bisect_left(entries, e)
                if i < len(entries) and entries[i] == e:
                    del entries[i]

    def waiting_for(self, departments: Iterable[str]) -> list[str]:
        """Ids of tickets with a ready step in any of these departments (some may be at a counter)."""
        ids: dict[str, int] = {}
        for d in departments:
            ids.update(self._ids.get(d, {}))
        return list(ids)

    def count(self, department: str) -> int:
        return len(self._ids.get(department, ()))

    def candidates(self, departments: Iterable[str], tickets: Mapping[str, Ticket]) -> list[Ticket]:
        """The tickets that can be a counter's next call (module docstring), in waiting_for's order."""
        departments = list(departments)
        picked: dict[str, None] = {}
        for d in departments:
            for assistance in (False, True):
                head = None
                for e in self._by_time.get((d, assistance), ()):
                    if head is not None:
                        if e[:3] != head:
                            break
                        picked[e[3]] = None  # exactly tied with the oldest: choose_next's order decides
                    elif _free(tickets[e[3]]):
                        picked[e[3]] = None
                        head = e[:3]
            for tid in self._booked.get(d, ()):
                if _free(tickets[tid]):
                    picked[tid] = None

        def place(tid: str) -> tuple[int, int]:
            for i, d in enumerate(departments):
                came = self._ids.get(d, {}).get(tid)
                if came is not None:
                    return i, came
            raise AssertionError(tid)  # every candidate is in a department's ids

        return [tickets[tid] for tid in sorted(picked, key=place)]
