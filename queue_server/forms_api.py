"""Counter messages for the forms of the visit (書かない窓口): ``forms``, ``form_values``, ``forms_printed``.

Where the values live (decided for privacy): ONLY in this process's memory, on a per-ticket
``Visit`` record — never in the database, the event log, the WAL, a push or a log line. The card
prefill stays where it is (tickets.prefill, erased at close and at midnight) and is read from the
store on each request, in a worker thread. Consequences, accepted on purpose:

- a server restart forgets typed values: the clerk types them again (the card fields come back,
  they are in the database until the visit closes);
- the values are erased as soon as the ticket is closed (done, no-show, cancelled) or its day is
  over (``prune``, called by the server's flusher every 0.2 s), whichever comes first. The
  flusher checks the tickets of the events committed since (``touched``), and every visit at a
  new day, after a site was read again, and every FULL_PRUNE_SECONDS in any case.

Only a counter with the ticket called or in service there may read or set them (the departments on
its route, each in turn). Every access is appended to the visit's audit (who, counter, department,
what, which keys — never the values) and shown on the console.

``forms`` and ``form_values`` are answered here, outside the writer. ``forms_printed`` goes through
the writer (handlers.py -> :func:`printed`): it logs one ``forms_printed`` event with counts only —
per printed form, how many fields came from the card, the answers, the ticket, were typed by staff
or left blank — so the 書かない窓口 KPIs (kpi_forms.py) survive a restart and cover any date range.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core import forms as F
from .core.lobby import Change, Event
from .jobs import Outcome, Reply
from .loaders import load_forms
from .visit_list import visit_list

ROOT = Path(__file__).resolve().parent.parent
TYPES = ("forms", "form_values")  # answered outside the writer (session.py); memory only
WRITES = ("forms_printed",)  # through the writer: logs a counts-only event (handlers.py)
# Every visit is checked at least this often (seconds), whatever was committed: the safety net for
# a visit whose ticket went without a committed event (an issue whose commit failed). Checking all
# of them at every flush took 0.7 ms with 800 open tickets, five times a second, on the event loop.
FULL_PRUNE_SECONDS = 10.0


@dataclass
class Visit:
    day: str
    answers: dict[str, str] = field(default_factory=dict)
    asked: dict[str, str] = field(default_factory=dict)
    typed: set[str] = field(default_factory=set)  # ask keys a clerk typed (KPI: typed vs filled)
    printed: set[str] = field(default_factory=set)  # form ids printed from the system (KPI)
    fields: dict[str, dict[str, int]] = field(default_factory=dict)  # form id -> origin -> count, at print
    eligible: int = 0  # forms the visit's procedures need (KPI denominator)
    audit: list[dict[str, Any]] = field(default_factory=list)


class FormsDesk:
    """The in-memory side of the forms: values per open ticket, with their audit."""

    def __init__(self, forms: dict[str, F.Form]):
        self.forms = forms
        self.visits: dict[str, Visit] = {}
        self.closed_stats: list[dict[str, Any]] = []  # counts only, per closed visit (kpi_forms)
        self.pending: set[str] = set()  # tickets of events committed since the last prune
        self.checked: tuple | None = None  # what the last full prune saw: the lobbies and days
        self.checked_at = float("-inf")  # when (the caller's clock)

    @classmethod
    def load(cls, directory: Path | None = None) -> FormsDesk:
        d = directory or ROOT / "config" / "forms"
        return cls(load_forms(d) if d.is_dir() else {})

    # ------------------------------------------------------------------ hooks from the server
    def on_issue(self, ticket_id: str, day: str, answers: dict[str, Any]) -> None:
        """Keep the kiosk answers of a new ticket for the forms (memory only, like the values)."""
        self.visits[ticket_id] = Visit(day, {k: v for k, v in answers.items() if isinstance(v, str)})

    def touched(self, ticket_id: str) -> None:
        """A committed event changed this ticket: the next prune checks it."""
        if ticket_id in self.visits:
            self.pending.add(ticket_id)

    def prune(self, lobbies: dict[str, Any], today: dict[str, str], now: float | None = None) -> int:
        """Erase the values of every visit that is closed, gone or of an earlier day.

        With ``now`` (the flusher), only the tickets touched since the last prune are checked,
        unless the lobbies or a site's day changed since the last full check, or it is
        FULL_PRUNE_SECONDS old; without, every visit."""
        seen = (tuple((k, id(lobby)) for k, lobby in lobbies.items()), tuple(sorted(today.items())))
        full = now is None or seen != self.checked or now - self.checked_at >= FULL_PRUNE_SECONDS
        candidates = list(self.visits) if full else [tid for tid in self.pending if tid in self.visits]
        self.pending.clear()
        if full:
            self.checked, self.checked_at = seen, now if now is not None else float("-inf")
        gone = []
        for tid in candidates:
            t = None
            for lobby in lobbies.values():
                t = lobby.tickets.get(tid)
                if t is not None:
                    break
            if t is None or t.closed is not None or t.day < today.get(t.site, t.day):
                gone.append(tid)
        for tid in gone:
            v = self.visits.pop(tid)
            self.closed_stats.append(self._stats(v))
            del self.closed_stats[:-10000]
        return len(gone)

    # ------------------------------------------------------------------ requests
    def handle(self, kind: str, body: dict[str, Any], *, ticket: Any, card: dict | None, site_name: str,
               staff: str, counter: int, now: float, departments: dict | None = None) -> dict[str, Any]:
        """Answer one counter request for the ticket at that counter; raises forms.FormError."""
        visit = self.visits.get(ticket.id)
        if visit is None:  # issued before a restart: the answers are gone, the card is not
            visit = self.visits[ticket.id] = Visit(ticket.day)
        step = ticket.active_step
        department = step.department if step else ""
        route_procs = [p for s in ticket.steps for p in s.procedures]
        visit_forms = F.forms_for(self.forms, route_procs)
        keys = F.ask_keys(visit_forms)
        action, names = "read", []
        if kind == "form_values":
            values = F.check_values(body.get("values") or {}, keys)
            changed = sorted(k for k, v in values.items() if visit.asked.get(k, "") != v)
            for k in changed:
                if values[k]:
                    visit.asked[k] = values[k]
                    visit.typed.add(k)
                else:
                    visit.asked.pop(k, None)
            action, names = "entered", changed
        elif kind == "forms_printed":
            ids = [f for f in body.get("forms") or [] if isinstance(f, str)]
            unknown = [f for f in ids if f not in {x.id for x in visit_forms}]
            if unknown:
                raise F.FormError(f"forms: {unknown[0]!r} is not a form of this visit")
            visit.printed.update(ids)
            action, names = "printed", ids
        visit.audit.append({"at": now, "staff": staff, "counter": counter, "department": department,
                            "action": action, "keys": names})
        del visit.audit[:-200]
        tk = {"date": _jdate(ticket.day), "site": site_name, "number": ticket.label}
        here = [f for f in visit_forms if f.department == department]
        filled = [F.fill(f, card=card, answers=visit.answers, ticket=tk, asked=visit.asked) for f in visit_forms]
        visit.eligible = len(visit_forms)
        if kind == "forms_printed":
            from .kpi_forms import count_fields

            for x in filled:
                if x["id"] in names:
                    visit.fields[x["id"]] = count_fields(x)
        labels = {}
        for f in visit_forms:
            for fld in f.fields:
                if fld.kind == "ask":
                    labels.setdefault(fld.key, fld.label)
        return {
            "ticket": {"id": ticket.id, "number": ticket.label, "lang": ticket.lang, "department": department,
                       "date": tk["date"], "site": site_name},
            "card": card is not None,
            "forms": [x for x in filled if x["id"] in {f.id for f in here}],
            "other_forms": [{"id": x["id"], "name": x["name"], "department": x["department"],
                             "department_name": dict((departments or {}).get(x["department"], {}))}
                            for x in filled if x["id"] not in {f.id for f in here}],
            "ask": [{"key": k, "label": labels[k], "value": visit.asked.get(k, "")} for k in keys],
            "audit": visit.audit[-50:],
            "departments": {d: dict((departments or {}).get(d, {})) for d in {a["department"] for a in visit.audit} if d},
        }

    # ------------------------------------------------------------------ KPI (counts, no values)
    def _stats(self, v: Visit) -> dict[str, Any]:
        totals: dict[str, int] = {}
        for counts in v.fields.values():
            for k, n in counts.items():
                totals[k] = totals.get(k, 0) + n
        return {"day": v.day, "printed": len(v.printed), "typed": len(v.typed), "eligible": v.eligible,
                "fields": totals}

    def live_stats(self) -> list[dict[str, Any]]:
        return [self._stats(v) for v in self.visits.values()]


def _jdate(day: str) -> str:
    y, m, d = day.split("-")
    return f"{y}年{int(m)}月{int(d)}日"


async def serve(server: Any, client: Any, req: Any) -> dict[str, Any]:
    """The server's hook for ``forms`` and ``form_values``: check the counter has the ticket, read
    the card's 基本4情報 (erased with the visit) in a worker thread, then ``FormsDesk.handle``."""
    hub = server.hubs[client.site]
    read_for = _ticket_at(hub, client).id
    card = await asyncio.to_thread(server.store.prefill, read_for)
    ticket = _ticket_at(hub, client)  # as it is now: the counter may have moved on meanwhile
    if ticket.id != read_for:  # never one visit's card data on another's forms
        raise Reply("no_current_ticket", "the counter has no ticket called or in service")
    return _answer(server, hub, client, ticket, req.type, req.body, server.clock(), card)


def _ticket_at(hub: Any, client: Any) -> Any:
    """The ticket called or in service at the client's counter; refused when there is none."""
    ticket = hub.lobby.ticket_at(client.counter)
    if ticket is None:
        raise Reply("no_current_ticket", "the counter has no ticket called or in service")
    return ticket


def _answer(server: Any, hub: Any, client: Any, ticket: Any, kind: str, body: dict[str, Any], now: float,
            card: dict[str, Any] | None) -> dict[str, Any]:
    try:
        out = server.forms_desk.handle(kind, body, ticket=ticket, card=card,
                                       site_name=hub.config.name.get("ja", hub.key), staff=client.staff,
                                       counter=client.counter, now=now, departments=hub.config.department_names)
    except F.FormError as e:
        raise Reply("bad_field", str(e), "values" if kind == "form_values" else "forms") from None
    # the personal list in the citizen's language, for the A4 booklet with the done steps ticked
    out["list"] = visit_list(server.catalogue, ticket, hub.config.department_names, ticket.lang)
    return out


def printed(server: Any, hub: Any, client: Any, body: dict[str, Any], now: float) -> Outcome:
    """``forms_printed``, applied by the writer: mark the forms printed in memory and log one
    ``forms_printed`` event of counts (never a value; kpi_forms.event_payload). If the commit fails
    the writer calls ``undo`` and the visit's memory is as before.

    The request has no ``idempotency_key`` on purpose (protocol.FIELDS): the writer stores the reply
    of an idempotent request in the ``requests`` table, and this reply holds the form values."""
    desk: FormsDesk = server.forms_desk
    ticket = _ticket_at(hub, client)
    before = desk.visits.get(ticket.id)
    saved = (set(before.printed), dict(before.fields), list(before.audit)) if before is not None else None
    # the writer applies this on the event loop, so this one read blocks it: a primary-key read of one
    # row, once per print (not per request of the visit), and it must see the ticket at apply time
    card = server.store.prefill(ticket.id)
    out = _answer(server, hub, client, ticket, "forms_printed", body, now, card)
    visit = desk.visits[ticket.id]

    def undo() -> None:
        if saved is None:
            desk.visits.pop(ticket.id, None)
        else:
            visit.printed, visit.fields, visit.audit[:] = saved[0], saved[1], saved[2]

    from .kpi_forms import event_payload

    step = ticket.active_step
    ids = [f for f in body.get("forms") or [] if isinstance(f, str)]
    payload = event_payload(out["ticket"]["department"], {i: visit.fields[i] for i in ids if i in visit.fields},
                            visit.eligible)
    ev = Event("forms_printed", ticket.id, step=step.index if step is not None else None, counter=client.counter,
               payload=payload)
    return Outcome(out, Change(events=(ev,)), undo=undo)
