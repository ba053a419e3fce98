"""A counter console's queue as entries that do not depend on the clock, and deltas of them. Pure.

A console used to be sent its whole queue in call order (the `queue` reply, queue_server/queue_reply.py) whenever anything
changed: the cost of one change grew with the consoles times the queue length. Instead each
console keeps a map ticket id -> *entry* and is sent only the entries of the tickets a change
touched (``queue`` push, docs/protocol.md). An entry holds what the call order, the priority
marks and the minutes waited are computed from — never those results, which change with the
clock alone — so a ticket's entry changes only when the ticket does:

- the order is :func:`order` (the dispatch rule of dispatch.py applied to entries, mirrored in
  counter/web/console.js), computed by the console at any ``now``;
- the waited minutes and the 優先/予約/長時間 marks likewise.

Deltas are state-based: they carry the entry (or its absence) of every touched ticket as it is
after the last change, so applying one twice, or to a view that already has some of its
changes, gives the same view (:func:`apply`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .dispatch import DispatchPolicy, ready_steps
from .model import Priority, Ticket

Entry = dict[str, Any]


def entry(ticket: Ticket | None, departments: frozenset[str]) -> Entry | None:
    """The ticket's entry in the queue of a counter with these departments, or None when it is
    not in that queue (closed, at a counter, or no ready step there).

    Every ready step the counter could call is listed: which one the counter would take can
    depend on the clock (a due booking takes its first step, otherwise the longest-ready).
    """
    if ticket is None:
        return None
    steps = ready_steps(ticket, departments)
    if not steps:
        return None
    return {
        "ticket": ticket.id,
        "number": ticket.label,
        "n": ticket.number,
        "issued_at": ticket.issued_at,
        "reserved_for": ticket.reserved_for,
        "assistance": ticket.assistance,
        "steps": [
            {"step": s.index, "department": s.department, "procedures": list(s.procedures),
             "since": s.ready_since if s.ready_since is not None else ticket.issued_at}
            for s in steps
        ],
    }


def touches(ticket: Ticket | None, departments: frozenset[str]) -> bool:
    """Whether any step of the ticket (in any state) belongs to these departments."""
    return ticket is not None and any(s.department in departments for s in ticket.steps)


def step_key(e: Entry, step: Mapping[str, Any], now: float, policy: DispatchPolicy) -> tuple:
    """dispatch.dispatch_key of one of the entry's steps: smaller is called first."""
    since = step["since"]
    booked = e["reserved_for"]
    if booked is not None and now >= booked - policy.reservation_grace:
        return (0, -1, booked, e["issued_at"], e["n"])
    if now - since >= policy.aging_bound:
        return (0, 0, since, e["issued_at"], e["n"])
    return (1, -int(Priority.ASSISTANCE if e["assistance"] else Priority.NORMAL), since, e["issued_at"], e["n"])


def best_step(e: Entry, now: float, policy: DispatchPolicy) -> Mapping[str, Any]:
    """The step the counter would call (the first of the smallest key, as dispatch.queue_for)."""
    return min(e["steps"], key=lambda s: step_key(e, s, now, policy))


def order(entries: Iterable[Entry], now: float, policy: DispatchPolicy) -> list[Entry]:
    """The entries in call order at ``now`` (dispatch.queue_for's order)."""
    keyed = [(step_key(e, best_step(e, now, policy), now, policy), e) for e in entries]
    keyed.sort(key=lambda x: x[0])
    return [e for _, e in keyed]


def shown(e: Entry, now: float, policy: DispatchPolicy) -> dict[str, Any]:
    """What the console shows of an entry at ``now``: the fields of an entry of the `queue` reply."""
    s = best_step(e, now, policy)
    booked = e["reserved_for"]
    if booked is not None and now >= booked - policy.reservation_grace:
        mark: str | None = "reservation"
    else:
        mark = "assistance" if e["assistance"] else None
    return {"ticket": e["ticket"], "number": e["number"], "department": s["department"], "step": s["step"],
            "procedures": list(s["procedures"]), "waited_minutes": round((now - s["since"]) / 60, 1),
            "priority": mark, "escalated": now - s["since"] >= policy.aging_bound}


def apply(view: Mapping[str, Entry], delta: Mapping[str, Any]) -> dict[str, Entry]:
    """The view (ticket id -> entry) after a delta ``{"entries": [...], "removed": [ids]}``,
    or after a full snapshot ``{"full": true, "entries": [...]}``."""
    out = {} if delta.get("full") else dict(view)
    for tid in delta.get("removed", ()):
        out.pop(tid, None)
    for e in delta.get("entries", ()):
        out[e["ticket"]] = e
    return out
