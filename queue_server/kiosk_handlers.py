"""The kiosk's requests, applied by the writer: issue a ticket (with a booking's check-in), and the
help and device-fault calls that reach the counters."""

from __future__ import annotations

import secrets
import uuid
from typing import TYPE_CHECKING, Any

from . import planner_api
from . import protocol as P
from .core.estimators import wait_fields
from .core.forms import forms_for
from .core.lobby import log_only, with_payload
from .core.model import Ticket
from .core.numbering import number_prefix, ticket_kind
from .core.transitions import new_ticket
from .hub import SiteHub
from .jobs import Client, Outcome, Reply
from .plan_preview import first_wait, make_plan, plan_text, rounded, visit
from .storage import Batch

if TYPE_CHECKING:
    from .server import QueueServer


def issue(server: QueueServer, hub: SiteHub, c: Client, b: dict[str, Any], now: float) -> Outcome:
    """A new ticket for the citizen's plan (or their booking's), numbered in its series."""
    reservation = None
    code = b.get("reservation_code")
    reserved_for = None
    if code is not None:
        # cancelled, other day, other site, used: planner_api names each (late: no priority)
        reservation, reserved_for = planner_api.check_in(server, hub, code, now)
        if not b.get("purposes"):  # the answers given at home are not asked again
            b = {**b, "purposes": reservation["purposes"], "answers": reservation.get("answers") or {}}
    plan = make_plan(server, b)
    route = planner_api.B.consult_route(plan.route, reservation)  # a consultation booking: its desk
    if not route:
        raise Reply("empty_route", "nothing to queue for: every procedure is online, external or elsewhere", "purposes")
    lang = b.get("lang") or "ja"
    prefix = number_prefix(server.city.numbering, ticket_kind(plan.purposes, reservation is not None))
    day = server.local_day(now)
    number = hub.next_number(day, prefix)
    prefill = b.get("prefill")
    if prefill is not None:
        prefill = {k: str(v)[:200] for k, v in prefill.items() if k in ("name", "address", "birth_date", "sex")}
    ticket = new_ticket(
        ticket_id=str(uuid.uuid4()),
        site=hub.key,
        day=day,
        prefix=prefix,
        number=number,
        purposes=plan.purposes,
        lang=lang,
        route=route,
        now=now,
        public_token=secrets.token_urlsafe(16),
        assistance=bool(b.get("assistance")) and c.role in ("kiosk", "admin"),
        reserved_for=reserved_for,
        device=c.device,
    )
    procedures = [p for st in plan.steps for p in st.procedures]
    facts = {
        "prefilled": prefill is not None,
        # every procedure of the visit could have been done online or at a convenience store
        "online_capable": bool(procedures) and all(p.alternative is not None for p in procedures),
        "to_confirm": sum(1 for p in procedures if p.to_confirm),
        # forms the route's procedures need (config/forms): the 書かない窓口 KPI's denominator
        "forms": len(forms_for(server.forms_desk.forms, [p for st in ticket.steps for p in st.procedures])),
        "device": c.device,
    }
    ch = hub.lobby.issue(ticket, facts)
    hub.by_token[ticket.public_token] = ticket.id
    server.forms_desk.on_issue(ticket.id, day, b.get("answers") or {})

    # what this ticket is shown, logged in its `issued` event (KPI: forecast accuracy)
    shown = hub.predictions_for(ticket, now)
    waits = hub.waits(now)
    firsts = [shown[r.department]["wait_minutes"] for r in route if not r.after and r.department in shown]
    firsts = [f for f in firsts if f is not None]
    wait = min(firsts) if firsts else first_wait(route, waits)
    minutes = visit(route, waits)
    ch = with_payload(ch, {"wait_minutes": rounded(wait), "visit_minutes": rounded(minutes), "waits": shown})
    # the reply as text, its plan encoded once per plan (plan_text): the same bytes as the dict
    # {"ticket", "route", "plan", "wait_minutes", …} encoded whole (tests/queue_server/test_issue_reply.py)
    head = P.dumps({"ticket": ticket_header(server, hub, ticket), "route": route_view(hub, [r.department for r in route])})
    tail = P.dumps({
        "wait_minutes": rounded(wait),
        "visit_minutes": rounded(minutes),
        **wait_fields(wait, min((shown[d]["ahead"] or 0 for d in shown), default=0), 1.0),
        "prefilled": prefill is not None,
    })
    result = P.Encoded(f'{head[:-1]},"plan":{plan_text(server, plan)},{tail[1:]}')

    extra = Batch(new_tickets=[(ticket, prefill)], numbers={(hub.key, day, prefix): number})
    if reservation is not None:
        reservation["ticket"] = ticket.id
        extra.reservations.append(dict(reservation))

    def undo() -> None:
        hub.by_token.pop(ticket.public_token, None)
        if reservation is not None:
            reservation["ticket"] = None
    return Outcome(result, ch, extra, undo=undo)


def ticket_header(server: QueueServer, hub: SiteHub, ticket: Ticket) -> dict[str, Any]:
    """The ticket part of the ``issue`` reply (also what a reprint prints: queue_server/reprint.py)."""
    return {
        "id": ticket.id,
        "number": ticket.label,
        "day": ticket.day,
        "issued_at": ticket.issued_at,
        "public_token": ticket.public_token,
        "status_url": f"{server.city.public_base_url.rstrip('/')}/status/?t={ticket.public_token}&site={hub.key}",
        "site": hub.key,
        "site_name": dict(hub.config.name),
    }


def route_view(hub: SiteHub, departments: list[str]) -> list[dict[str, Any]]:
    """The route as the ticket prints it: each department with its counters and floor."""
    return [{"department": d, "name": dict(hub.config.department_names.get(d, {})), **hub.department_place(d)}
            for d in departments]


def help_call(hub: SiteHub, c: Client, b: dict[str, Any], now: float) -> Outcome:
    """A citizen at the kiosk asks for help: every console hears it."""
    alert = {"device": c.device, "reason": (b.get("reason") or "")[:200], "at": now, "kind": "help"}
    return _alert(hub, "help_requested", alert)


def device_fault(hub: SiteHub, c: Client, b: dict[str, Any], now: float) -> Outcome:
    """The kiosk reports its printer or card reader failing: every console hears it."""
    alert = {"device": c.device, "device_kind": b["device_kind"], "code": b["code"],
             "detail": (b.get("detail") or "")[:200], "at": now, "kind": "fault"}
    return _alert(hub, "device_fault", alert)


def _alert(hub: SiteHub, kind: str, alert: dict[str, Any]) -> Outcome:
    hub.help_alerts.append(alert)
    del hub.help_alerts[:-100]
    return Outcome({"ok": True}, log_only(kind, alert), pushes=[("counters", "help", alert)])
