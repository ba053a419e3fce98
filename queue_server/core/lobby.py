"""One site's lobby as a state machine with no I/O: tickets, counters, and the moves between them.

The server and the simulation both drive a Lobby. Every move returns a ``Change`` (the new values
of the tickets and counters it touches plus the events to log) that is applied at once and can be
undone with the inverse Change it returns, so the server can apply a batch of moves, write them
in one transaction, and roll back the batch if the commit fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import transitions as tr
from .dispatch import DispatchPolicy, choose_next
from .model import ACTIVE_STEP_STATES, Counter, CounterState, Ticket
from .ready_index import ReadyIndex
from .transitions import TransitionError


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    ticket: str | None = None  # ticket id
    step: int | None = None
    counter: int | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Change:
    tickets: Mapping[str, Ticket | None] = field(default_factory=dict)  # None: forget the ticket
    counters: Mapping[int, Counter] = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    undo: Change | None = None  # the inverse, set once the change has been applied


class Lobby:
    """The open tickets and the counters of one site, with the legal moves between them."""

    def __init__(self, site: str, counters: Iterable[Counter], policy: DispatchPolicy, max_recalls: int = 2):
        self.site = site
        self.counters: dict[int, Counter] = {c.number: c for c in counters}
        self.policy = policy
        self.max_recalls = max_recalls
        self.tickets: dict[str, Ticket] = {}
        self._busy: dict[int, str] = {}  # counter number -> ticket id now called or served there
        # the open tickets with a READY step, per department: "call next" looks at a few of the
        # counter's departments' tickets instead of scanning every ticket of the day
        self._ready = ReadyIndex()
        # The inverses of the moves made since the server's writer last cleared it (None: off).
        # The writer rolls a failed request, or a batch whose commit failed, back through it, so
        # memory is never ahead of the database whatever raised where.
        self.journal: list[Change] | None = None

    # ------------------------------------------------------------------ state
    def apply(self, change: Change) -> Change:
        """Apply a change; return its inverse."""
        old_tickets: dict[str, Ticket | None] = {}
        for tid, t in change.tickets.items():
            old_tickets[tid] = self.tickets.get(tid)
            self._unindex(tid)
            if t is None:
                self.tickets.pop(tid, None)
            else:
                self.tickets[tid] = t
                self._index(t)
        old_counters = {n: self.counters[n] for n in change.counters if n in self.counters}
        self.counters.update(change.counters)
        return Change(tickets=old_tickets, counters=old_counters)

    def _unindex(self, tid: str) -> None:
        old = self.tickets.get(tid)
        if old is not None:
            s = old.active_step
            if s is not None and self._busy.get(s.counter) == tid:  # type: ignore[arg-type]
                del self._busy[s.counter]  # type: ignore[arg-type]
            self._ready.remove(old)

    def _index(self, t: Ticket) -> None:
        s = t.active_step
        if s is not None and s.counter is not None:
            self._busy[s.counter] = t.id
        self._ready.add(t)

    def waiting_for(self, departments: Iterable[str]) -> list[Ticket]:
        """Open tickets with a ready step in any of these departments (some may be at a counter)."""
        return [self.tickets[i] for i in self._ready.waiting_for(departments)]

    def load(self, tickets: Iterable[Ticket]) -> None:
        """Rebuild from storage (server start)."""
        for t in tickets:
            self._unindex(t.id)  # (a ticket loaded twice: its older version leaves no entry behind)
            self.tickets[t.id] = t
            self._index(t)

    def open_tickets(self) -> list[Ticket]:
        return [t for t in self.tickets.values() if t.closed is None]

    def ticket_at(self, counter: int) -> Ticket | None:
        tid = self._busy.get(counter)
        return self.tickets.get(tid) if tid else None

    def busy_counters(self) -> set[int]:
        """The counters with a ticket now called or served there (``ticket_at`` is not None)."""
        return {n for n, tid in self._busy.items() if tid and tid in self.tickets}

    def waiting_count(self, department: str) -> int:
        """``len(waiting_for([department]))`` without building the list."""
        return self._ready.count(department)

    def counter(self, number: int) -> Counter:
        try:
            return self.counters[number]
        except KeyError:
            raise TransitionError("unknown_counter", f"site {self.site} has no counter {number}", "counter") from None

    def ticket(self, ticket_id: str) -> Ticket:
        try:
            return self.tickets[ticket_id]
        except KeyError:
            raise TransitionError("unknown_ticket", f"no open ticket {ticket_id!r} at {self.site}", "ticket") from None

    # ------------------------------------------------------------------ moves
    def issue(self, ticket: Ticket, facts: Mapping[str, Any] | None = None) -> Change:
        """Add a new ticket. ``facts`` go into the event for the KPIs (nothing personal)."""
        if ticket.id in self.tickets:
            raise TransitionError("duplicate_ticket", f"ticket {ticket.id} exists", "ticket")
        payload = {
            "number": ticket.label,
            "purposes": list(ticket.purposes),
            "lang": ticket.lang,
            "assistance": ticket.assistance,
            "reserved": ticket.reserved_for is not None,
            "steps": [{"department": s.department, "procedures": list(s.procedures), "minutes": s.minutes}
                      for s in ticket.steps],
            **(facts or {}),
        }
        ev = Event("issued", ticket.id, payload=payload)
        return self._do(Change(tickets={ticket.id: ticket}, events=(ev,)))

    def call_next(self, number: int, now: float) -> tuple[Ticket | None, Change]:
        """The counter calls the next ticket of its queue (dispatch.choose_next)."""
        counter = self._require_open(number)
        self._require_free(number)
        # the same choice as over waiting_for(counter.departments), from a few tickets (ready_index.py)
        chosen = choose_next(self._ready.candidates(counter.departments, self.tickets), counter.departments, now,
                             self.policy)
        if chosen is None:
            return None, Change()
        ticket, step = chosen
        new = tr.call(ticket, step.index, number, now)
        ev = Event("called", ticket.id, step.index, number, {"number": ticket.label, "department": step.department})
        return new, self._do(Change(tickets={ticket.id: new}, events=(ev,)))

    def call_ticket(self, number: int, ticket_id: str, now: float) -> tuple[Ticket, Change]:
        """Call a specific ticket (staff picked it from the queue list)."""
        counter = self._require_open(number)
        self._require_free(number)
        ticket = self.ticket(ticket_id)
        steps = [s for s in ticket.steps if s.state.value == "ready" and s.department in counter.departments]
        if not steps:
            raise TransitionError(
                "not_in_queue", f"ticket {ticket.label} is not waiting for counter {number}'s departments", "ticket"
            )
        new = tr.call(ticket, steps[0].index, number, now)
        ev = Event("called", ticket.id, steps[0].index, number, {"number": ticket.label, "department": steps[0].department})
        return new, self._do(Change(tickets={ticket.id: new}, events=(ev,)))

    def _current(self, number: int) -> tuple[Ticket, int]:
        self.counter(number)
        ticket = self.ticket_at(number)
        if ticket is None:
            raise TransitionError("no_current_ticket", f"counter {number} has no ticket called or in service", "counter")
        step = ticket.active_step
        assert step is not None
        return ticket, step.index

    def recall(self, number: int, now: float) -> Change:
        t, i = self._current(number)
        new = tr.recall(t, i, number, now)
        ev = Event(
            "recalled", t.id, i, number,
            {"number": t.label, "department": t.steps[i].department, "recalls": new.steps[i].recalls},
        )
        return self._do(Change(tickets={t.id: new}, events=(ev,)))

    def start(self, number: int, now: float) -> Change:
        t, i = self._current(number)
        new = tr.start(t, i, number, now)
        ev = Event("started", t.id, i, number, {"department": t.steps[i].department})
        return self._do(Change(tickets={t.id: new}, events=(ev,)))

    def complete(self, number: int, now: float) -> tuple[Ticket, Change]:
        t, i = self._current(number)
        new = tr.complete(t, i, number, now)
        ready = [s.department for s in new.steps if s.state.value == "ready"]
        step = t.steps[i]
        ev = Event(
            "completed", t.id, i, number,
            {"department": step.department, "procedures": list(step.procedures), "next": ready,
             "closed": new.closed is not None},
        )
        return new, self._do(Change(tickets={t.id: new}, events=(ev,)))

    def transfer(self, number: int, department: str, now: float) -> Change:
        t, i = self._current(number)
        new = tr.transfer(t, i, number, department, now)
        ev = Event("transferred", t.id, i, number, {"from": t.steps[i].department, "to": department})
        return self._do(Change(tickets={t.id: new}, events=(ev,)))

    def add_procedure(
        self, number: int, department: str, procedures: list[str], minutes: float, now: float
    ) -> Change:
        t, i = self._current(number)
        new = tr.add_procedure(t, i, number, department, procedures, minutes, now)
        ev = Event("procedure_added", t.id, i, number, {"department": department, "procedures": list(procedures)})
        return self._do(Change(tickets={t.id: new}, events=(ev,)))

    def no_show(self, number: int, now: float) -> Change:
        t, i = self._current(number)
        new = tr.no_show(t, i, number, now, self.max_recalls)
        ev = Event("no_show", t.id, i, number, {"department": t.steps[i].department})
        return self._do(Change(tickets={t.id: new}, events=(ev,)))

    def requeue(self, number: int, now: float) -> Change:
        t, i = self._current(number)
        new = tr.requeue(t, i, number, now)
        return self._do(Change(tickets={t.id: new}, events=(Event("requeued", t.id, i, number),)))

    def cancel(self, ticket_id: str, now: float, reason: str = "") -> Change:
        t = self.ticket(ticket_id)
        new = tr.cancel(t, now)
        return self._do(Change(tickets={t.id: new}, events=(Event("cancelled", t.id, payload={"reason": reason}),)))

    def end_day(self, today: str, now: float) -> Change:
        """Cancel every ticket of an earlier day than ``today`` that is still waiting (none being
        served): the end of day. One change with all their events and, as its undo, the inverse
        of all of them (the writer rolls the whole end of day back if its commit fails)."""
        tickets: dict[str, Ticket | None] = {}
        events: list[Event] = []
        old: dict[str, Ticket | None] = {}
        for ticket in list(self.open_tickets()):
            if ticket.day < today and ticket.active_step is None:
                ch = self.cancel(ticket.id, now, "end_of_day")
                tickets.update(ch.tickets)
                events.extend(ch.events)
                old.update(ch.undo.tickets if ch.undo else {})
        return Change(tickets=tickets, events=tuple(events), undo=Change(tickets=old))

    def set_counter(self, number: int, state: CounterState, staff: str | None = None) -> Change:
        """Open, pause or close a counter. A counter with a ticket at it must finish it first."""
        c = self.counter(number)
        if state is not CounterState.OPEN and self.ticket_at(number) is not None:
            raise TransitionError(
                "counter_busy", f"counter {number} still has a ticket: complete or return it first", "counter"
            )
        new = replace(c, state=state, staff=c.staff if staff is None else staff)
        ev = Event(f"counter_{state.value}", counter=number, payload={"staff": new.staff})
        return self._do(Change(counters={number: new}, events=(ev,)))

    # ------------------------------------------------------------------ helpers
    def _do(self, change: Change) -> Change:
        undo = self.apply(change)
        if self.journal is not None:
            self.journal.append(undo)
        return replace(change, undo=undo)

    def rollback(self, mark: int = 0) -> list[str]:
        """Undo the journalled moves after ``mark``, newest first; return the public tokens of
        the tickets this removes (issued after the mark)."""
        journal = self.journal
        if journal is None:
            return []
        gone: list[str] = []
        while len(journal) > mark:
            inverse = journal.pop()
            gone += [self.tickets[tid].public_token for tid, t in inverse.tickets.items()
                     if t is None and tid in self.tickets]
            self.apply(inverse)
        return gone

    def _require_open(self, number: int) -> Counter:
        c = self.counter(number)
        if c.state is not CounterState.OPEN:
            raise TransitionError("counter_not_open", f"counter {number} is {c.state.value}", "counter")
        return c

    def _require_free(self, number: int) -> None:
        t = self.ticket_at(number)
        if t is not None:
            s = t.active_step
            assert s is not None and s.state in ACTIVE_STEP_STATES
            raise TransitionError(
                "counter_busy", f"counter {number} is still with ticket {t.label}: complete or return it first", "counter"
            )


def with_payload(change: Change, extra: Mapping[str, Any]) -> Change:
    """The change with ``extra`` added to each of its events' payloads (what a ticket is shown)."""
    return replace(change, events=tuple(replace(e, payload={**e.payload, **extra}) for e in change.events))


def log_only(kind: str, payload: Mapping[str, Any]) -> Change:
    """A change that moves nothing and only logs one event (a help call, a device fault, a booking)."""
    return Change(events=(Event(kind, payload=payload),))
