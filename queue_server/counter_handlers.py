"""The counter console's requests, applied by the writer: call, recall, serve, finish, transfer,
add procedures, open/pause/close the counter, and read its queue and current ticket."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from . import protocol as P
from .core.lobby import with_payload
from .core.model import CounterState, StepState
from .hub import SiteHub
from .jobs import Client, Outcome, Reply

if TYPE_CHECKING:
    from .server import QueueServer

_COUNTER_STATES = {"open": CounterState.OPEN, "pause": CounterState.PAUSED, "close": CounterState.CLOSED}


def execute(server: QueueServer, hub: SiteHub, c: Client, t: str, b: dict[str, Any], now: float) -> Outcome:
    """Apply one counter request of type ``t`` for the client's counter."""
    lobby = hub.lobby
    n = c.counter
    assert n is not None
    if t == "call_next":
        got, ch = lobby.call_next(n, now)
        if got is None:
            return Outcome({"ticket": None})
        return Outcome({"ticket": hub.ticket_view(got)}, ch)
    if t == "call":
        got, ch = lobby.call_ticket(n, b["ticket"], now)
        return Outcome({"ticket": hub.ticket_view(got)}, ch)
    if t in ("recall", "start", "no_show", "requeue"):
        ch = getattr(lobby, t)(n, now)
        tid = next(iter(ch.tickets))
        if t == "requeue":  # back in its queue: log the wait it is shown now (forecast KPI)
            ch = with_payload(ch, {"waits": hub.predictions_for(lobby.tickets[tid], now)})
        return Outcome({"ticket": hub.ticket_view(lobby.tickets[tid])}, ch)
    if t == "complete":
        got, ch = lobby.complete(n, now)
        if got.closed is None:  # the steps it releases queue now: log what they are shown
            ch = with_payload(ch, {"waits": hub.predictions_for(got, now)})
        nxt = [{"department": s.department, "name": dict(hub.config.department_names.get(s.department, {}))}
               for s in got.steps if s.state in (StepState.READY, StepState.PENDING)]
        return Outcome({"ticket": hub.ticket_view(got), "next": nxt}, ch)
    if t == "transfer":
        _check_department(hub, b["department"])
        ch = lobby.transfer(n, b["department"], now)
        ch = with_payload(ch, {"waits": hub.predictions_for(lobby.tickets[next(iter(ch.tickets))], now)})
        return Outcome({"ticket": hub.ticket_view(lobby.tickets[next(iter(ch.tickets))])}, ch)
    if t == "add_procedure":
        _check_department(hub, b["department"])
        procs = [p for p in b["procedures"] if isinstance(p, str) and p]
        if len(procs) != len(b["procedures"]):
            raise Reply("bad_field", "procedures must be non-empty strings", "procedures")
        minutes = float(b.get("minutes") or server.city.policy.default_service_minutes)
        ch = lobby.add_procedure(n, b["department"], procs, minutes, now)
        return Outcome({"ticket": hub.ticket_view(lobby.tickets[next(iter(ch.tickets))])}, ch)
    if t in _COUNTER_STATES:
        staff = (b.get("staff") or c.staff or "")[:100] if t == "open" else None
        ch = lobby.set_counter(n, _COUNTER_STATES[t], staff)
        return Outcome({"counter": hub.counter_view(lobby.counters[n])}, ch)
    if t == "queue":
        return Outcome(hub.queue_replies.encode(hub, lobby.counters[n], now))  # {"queue": [...]} as text
    if t == "current":
        # the card prefill is added to the answer after the writer (with_prefill): no database read
        # here, on the event loop and inside the writer's batch
        cur = lobby.ticket_at(n)
        return Outcome({"ticket": hub.ticket_view(cur) if cur else None})
    raise Reply("unknown_type", f"no handler for {t!r}", "type")


async def with_prefill(server: QueueServer, c: Client, msg: str) -> str:
    """The writer's answer to ``current`` with the card prefill of its ticket added (shown only here,
    to the counter serving the ticket). The prefill lives in the database alone — memory never holds
    it, and it is erased there when the visit closes — so it is read after the writer answered
    (the ticket is committed by then), in a worker thread like every other database read."""
    reply = json.loads(msg)
    ticket = (reply.get("result") or {}).get("ticket")
    if not ticket:  # an error, or no ticket at the counter
        return msg
    prefill = await asyncio.to_thread(server.store.prefill, ticket["id"])
    now_here = server.hubs[c.site].lobby.ticket_at(c.counter)
    # a ticket that left this counter during the read: its card data is no longer this counter's
    ticket["prefill"] = prefill if now_here is not None and now_here.id == ticket["id"] else None
    return P.reply(reply["re"], reply["result"])


def _check_department(hub: SiteHub, d: str) -> None:
    if d not in hub.config.departments:
        raise Reply("unknown_department", f"site {hub.key} has no department {d!r}", "department")
