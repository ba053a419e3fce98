"""Which ticket a counter calls next. Pure.

Candidates are tickets with a READY step in one of the counter's departments and no step now
called or being served elsewhere (a citizen is at one counter at a time). A ticket waits in
every ready department's queue at once; the first counter that calls it takes it.

Order:

1. A booked ticket whose slot has come (``reserved_for`` ≤ now + reservation_grace) goes first,
   earliest slot first, then by check-in. The server sets ``reserved_for`` only for a check-in on
   time (by slot start + ``booking.late_minutes``); a late arrival is a walk-in.
2. Then tickets whose ready-wait has reached the aging bound (*escalated*), oldest first.
3. Then the priority class (assistance needed), then the longest ready-wait (FIFO in a class).

Why bookings go before escalated walk-ins (docs/planning.md, "The priority rule"): under April
overload every walk-in waits past the 20-minute bound, so with escalation first a booked
bereavement family waited like everyone else and the booking promised nothing. A booking is a
promise of a time; walk-ins are protected instead by the booking capacity in site.toml, which
limits how much counter time bookings can take. The bound that follows: a ticket checked in on
time, once its slot has started and it is ready, is called after at most ⌈(B+1)/c⌉ service times,
B the due booked tickets ahead of it (same or earlier slot) and c the open counters of its
department (tests/queue_server/test_dispatch_booking.py checks it with hypothesis).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from operator import itemgetter

from .model import Priority, Step, StepState, Ticket

_first = itemgetter(0)

# Members as module constants: in Python 3.11 ``StepState.READY`` is a metaclass lookup (~0.3 µs)
# and the simulation asks these functions for every call of every counter.
_READY = StepState.READY
_CALLED = StepState.CALLED
_SERVING = StepState.SERVING
_RESERVATION = Priority.RESERVATION
_ASSISTANCE = Priority.ASSISTANCE
_NORMAL = Priority.NORMAL
_MINUS_ASSISTANCE = -int(Priority.ASSISTANCE)  # dispatch_key's class term, as constants
_MINUS_NORMAL = -int(Priority.NORMAL)


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    aging_bound: float = 20 * 60.0  # seconds
    reservation_grace: float = 5 * 60.0  # a reservation counts as due this long before its slot


def priority(ticket: Ticket, now: float, policy: DispatchPolicy) -> Priority:
    """The ticket's class at ``now``: reservations count only once their slot is (nearly) due."""
    if ticket.reserved_for is not None and now >= ticket.reserved_for - policy.reservation_grace:
        return _RESERVATION
    if ticket.assistance:
        return _ASSISTANCE
    return _NORMAL


def ready_steps(ticket: Ticket, departments: frozenset[str] | set[str]) -> list[Step]:
    """Steps of a callable ticket that a counter with these departments could call now."""
    if ticket.closed is not None:
        return []
    found = []
    for s in ticket.steps:
        state = s.state
        if state is _CALLED or state is _SERVING:
            return []  # the citizen is at another counter
        if state is _READY and s.department in departments:
            found.append(s)
    return found


def dispatch_key(ticket: Ticket, step: Step, now: float, policy: DispatchPolicy) -> tuple:
    """Sort key: smaller is called first."""
    since = step.ready_since if step.ready_since is not None else ticket.issued_at
    booked = ticket.reserved_for
    if booked is not None and now >= booked - policy.reservation_grace:
        return (0, -1, booked, ticket.issued_at, ticket.number)  # a due booking: before escalated walk-ins
    if now - since >= policy.aging_bound:
        return (0, 0, since, ticket.issued_at, ticket.number)
    return (1, -int(priority(ticket, now, policy)), since, ticket.issued_at, ticket.number)


def queue_for(
    tickets: Iterable[Ticket], departments: frozenset[str] | set[str], now: float, policy: DispatchPolicy
) -> list[tuple[Ticket, Step]]:
    """The counter's queue in call order: one entry per ticket (its best ready step), ordered by
    :func:`dispatch_key`, which is computed here in line (a `queue` read keys every waiting
    ticket: with 300 of them the calls to ready_steps, dispatch_key and priority were two thirds
    of the read; tests/queue_server/test_dispatch.py holds it to the definition)."""
    grace = policy.reservation_grace
    aging = policy.aging_bound
    entries = []
    for t in tickets:
        if t.closed is not None:
            continue
        found = []  # ready_steps(t, departments), in line as in choose_next
        for s in t.steps:
            state = s.state
            if state is _CALLED or state is _SERVING:
                found = []  # the citizen is at another counter
                break
            if state is _READY and s.department in departments:
                found.append(s)
        if not found:
            continue
        if len(found) > 1:  # the first of the smallest keys, as min() over the steps (rare)
            best, step = min(((dispatch_key(t, s, now, policy), s) for s in found), key=_first)
        else:  # the usual case, dispatch_key in line
            step = found[0]
            booked = t.reserved_for
            since = step.ready_since if step.ready_since is not None else t.issued_at
            if booked is not None and now >= booked - grace:
                best = (0, -1, booked, t.issued_at, t.number)
            elif now - since >= aging:
                best = (0, 0, since, t.issued_at, t.number)
            else:  # (priority(): not a due booking here, so assistance or normal)
                best = (1, _MINUS_ASSISTANCE if t.assistance else _MINUS_NORMAL, since, t.issued_at, t.number)
        entries.append((best, t, step))
    entries.sort(key=_first)
    return [(t, s) for _, t, s in entries]


def choose_next(
    tickets: Iterable[Ticket], departments: frozenset[str] | set[str], now: float, policy: DispatchPolicy
) -> tuple[Ticket, Step] | None:
    """The ticket and step the counter should call now, or None when its queue is empty."""
    best: tuple | None = None
    chosen: tuple[Ticket, Step] | None = None
    for t in tickets:
        if t.closed is not None:  # ready_steps(t, departments), in line: one call fewer per ticket
            continue
        found = []
        for s in t.steps:
            state = s.state
            if state is _CALLED or state is _SERVING:
                found = []  # the citizen is at another counter
                break
            if state is _READY and s.department in departments:
                found.append(s)
        for s in found:
            if chosen is None:  # the first entry needs no key until there is a second to compare
                chosen = (t, s)
                continue
            if best is None:
                best = dispatch_key(chosen[0], chosen[1], now, policy)
            key = dispatch_key(t, s, now, policy)
            if key < best:
                best, chosen = key, (t, s)
    return chosen
