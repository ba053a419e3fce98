"""Tickets that did not print, and printing them again from a counter console (番号札の再印刷).

Two requests, applied by the writer:

- ``print_result`` (kiosk): a ticket's print failed (the printer went offline, ran out of paper,
  its cover opened — printers/status.py checks the closing status), or a print that follows a
  failure or a console's reprint job succeeded. Logged as a ``print_failed`` / ``printed`` event
  (ticket id, number, kiosk, error code: nothing personal), so the flag survives a restart; every
  console hears it as a ``print`` push.
- ``reprint`` (counter): print the ticket again — same number, same route, same QR — on the kiosk
  that issued it, or on another connected kiosk of the site when that one is offline or its
  printer failed last (:func:`choose_kiosk`), or on the kiosk the console names. Logged as
  ``reprint_requested``; the chosen kiosk gets a ``reprint`` push, prints, and answers with a
  ``print_result`` naming the job, which reaches the consoles as the outcome.

The "not printed" flags live in ``SiteHub.not_printed`` (ticket id -> the last failure), the
kiosks whose printer failed last in ``SiteHub.printers_down`` (device -> that failure, until the
kiosk prints again), both rebuilt from the event log at start (:func:`replay`).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from .core.estimate import ticket_wait
from .core.i18n import pick
from .core.lobby import Change, Event
from .core.model import StepState
from .hub import SiteHub
from .jobs import Client, Outcome, Reply
from .plan_preview import rounded

if TYPE_CHECKING:
    from .server import QueueServer

#: The event kinds this module logs and :func:`replay` reads back.
PRINT_EVENTS = ("print_failed", "printed")


def replay(hub: SiteHub, ev: dict[str, Any]) -> None:
    """Apply one logged ``print_failed`` / ``printed`` event to the hub's "not printed" flags."""
    tid = ev.get("ticket")
    if not tid:
        return
    p = ev.get("payload") or {}
    device = p.get("device", "")
    if ev["kind"] == "print_failed":
        hub.not_printed[tid] = {"ticket": tid, "number": p.get("number", ""), "device": device,
                                "code": p.get("code", ""), "at": ev["at"]}
        if device:
            hub.printers_down[device] = {"code": p.get("code", ""), "at": ev["at"]}
    elif ev["kind"] == "printed":
        hub.not_printed.pop(tid, None)
        hub.printers_down.pop(device, None)  # that kiosk printed: its printer works again


def print_result(hub: SiteHub, c: Client, b: dict[str, Any], now: float) -> Outcome:
    """A kiosk reports how a ticket's print ended (a failure, or a success after one or for a job)."""
    t = hub.lobby.tickets.get(b["ticket"])
    if t is None:
        raise Reply("unknown_ticket", f"no ticket {b['ticket']!r} today at site {hub.key}", "ticket")
    printed = bool(b["printed"])
    kind = "printed" if printed else "print_failed"
    payload = {"number": t.label, "device": c.device, "code": "" if printed else (b.get("code") or "printer_error"),
               "job": b.get("job") or ""}
    old = hub.not_printed.get(t.id)
    old_printer = hub.printers_down.get(c.device)
    replay(hub, {"kind": kind, "ticket": t.id, "payload": payload, "at": now})

    def undo() -> None:
        for flags, key, value in ((hub.not_printed, t.id, old), (hub.printers_down, c.device, old_printer)):
            if value is None:
                flags.pop(key, None)
            else:
                flags[key] = value

    push = {"ticket": t.id, **payload, "printed": printed, "at": now}
    return Outcome({"ok": True}, Change(events=(Event(kind, t.id, payload=payload),)),
                   pushes=[("counters", "print", push)], undo=undo)


def reprint(server: QueueServer, hub: SiteHub, c: Client, b: dict[str, Any], now: float) -> Outcome:
    """Send the ticket to a kiosk to print again; the reply names the job and the kiosk."""
    tid = b["ticket"]
    t = hub.lobby.tickets.get(tid)
    if t is None:
        other = next((k for k, h in server.hubs.items() if k != hub.key and tid in h.lobby.tickets), None)
        if other is not None:
            raise Reply("ticket_other_site", f"ticket {tid!r} was issued at site {other}, not {hub.key}: "
                        "print it again at a kiosk there", "ticket")
        raise Reply("unknown_ticket", f"no ticket {tid!r} today at site {hub.key}", "ticket")
    if t.closed is not None:
        raise Reply("ticket_closed", f"ticket {t.label} is {t.closed.value}: the visit is over, "
                    "there is nothing to print again", "ticket")
    kiosks = connected_devices(server, hub)
    if not kiosks:
        raise Reply("no_kiosk", f"no kiosk of site {hub.key} is connected: ticket {t.label} cannot be printed "
                    "again until one is (check its network and power)", "ticket")
    wanted = b.get("kiosk")
    if wanted and wanted not in kiosks:
        raise Reply("kiosk_offline", f"kiosk {wanted!r} of site {hub.key} is not connected; connected: "
                    f"{', '.join(kiosks)}", "kiosk")
    kiosk, why = (wanted, "chosen") if wanted else choose_kiosk(t.device, kiosks, hub.printers_down)
    job = uuid.uuid4().hex[:16]
    # fallback: not on the issuing kiosk, and not because the console asked (``why`` says why)
    result = {"job": job, "ticket": t.id, "number": t.label, "kiosk": kiosk, "issued_by": t.device,
              "fallback": why in ("offline", "printer"), "why": why, "kiosks": kiosk_views(kiosks, hub.printers_down)}
    if why == "printer":
        result["printer_code"] = hub.printers_down[t.device]["code"]
    payload = {"number": t.label, "job": job, "kiosk": kiosk}
    ev = Event("reprint_requested", t.id, counter=c.counter, payload=payload)
    data = {"job": job, "lang": t.lang, "result": printable(server, hub, t.id, now)}
    return Outcome(result, Change(events=(ev,)), pushes=[(f"kiosk:{kiosk}", "reprint", data)])


def choose_kiosk(issued_by: str, kiosks: list[str], printers_down: dict[str, dict]) -> tuple[str, str | None]:
    """The kiosk a reprint goes to, among the connected ``kiosks`` (sorted, at least one), and
    why it is not the issuing one: None (it is), "offline" (that kiosk is not connected) or
    "printer" (its printer failed last and has not printed since). A kiosk whose printer failed
    is passed over while another's works: most reprints follow a failure at the issuing kiosk, and
    sending the ticket back there only failed again (paper out is not fixed by asking twice).
    When every connected printer has failed, the issuing kiosk (or the first) is tried anyway:
    staff may have mended it."""
    working = [k for k in kiosks if k not in printers_down]
    if issued_by in working or (not working and issued_by in kiosks):
        return issued_by, None
    # (a kiosk that gave no device name has none to miss)
    why = ("printer" if issued_by in kiosks else "offline") if issued_by else None
    return (working or kiosks)[0], why


def connected_devices(server: QueueServer, hub: SiteHub) -> list[str]:
    """The device names of the site's connected kiosks, sorted (a kiosk with no name is not one
    a reprint can be sent to by name)."""
    return sorted({k.device for k in server.clients.of(hub.key, "kiosk") if k.device})


def connected_kiosks(server: QueueServer, hub: SiteHub) -> list[dict[str, Any]]:
    """The site's connected kiosks with their printer's state (a console's hello)."""
    return kiosk_views(connected_devices(server, hub), hub.printers_down)


def kiosk_came_or_left(server: QueueServer, client: Client) -> None:
    """A named kiosk connected or left: the site's consoles get the list again at the next flush
    (``kiosks`` push, pushes.flusher), so their choice of kiosk for a reprint holds the kiosks
    there are now — once per flush, however many kiosks reconnect after a network blip."""
    if client.role == "kiosk" and client.device and client.site in server.hubs:
        server.kiosks_changed.add(client.site)
        server.dirty.add(client.site)


def kiosk_views(kiosks: list[str], printers_down: dict[str, dict]) -> list[dict[str, Any]]:
    """The connected kiosks with their printer's state, for the console's choice."""
    return [{"device": k, "printer": "ok" if k not in printers_down else printers_down[k]["code"] or "printer_error"}
            for k in kiosks]


def printable(server: QueueServer, hub: SiteHub, tid: str, now: float) -> dict[str, Any]:
    """What the kiosk prints again, in the shape of the ``issue`` reply (kiosk/ticket.py reads it):
    the same number, QR (status page) and route; the wait as estimated now; the documents each
    procedure always needs (the answers that add conditional ones are not kept)."""
    from .kiosk_handlers import route_view, ticket_header

    t = hub.lobby.tickets[tid]
    departments = list(dict.fromkeys(s.department for s in t.steps if s.state is not StepState.CANCELLED))
    docs: dict[str, str] = {}
    cat = server.catalogue
    for s in t.steps:
        for p in s.procedures:
            proc = cat.procedures.get(p) if cat is not None else None
            for d in proc.documents if proc is not None else ():
                if d in cat.documents:
                    docs.setdefault(d, pick(cat.documents[d].name, t.lang))
    wait = ticket_wait(t, hub.waits(now)) if t.active_step is None else None
    return {
        "ticket": ticket_header(server, hub, t),
        "route": route_view(hub, departments),
        "plan": {"documents": [{"id": d, "name": n} for d, n in docs.items()]},
        "wait_minutes": rounded(wait),
        "visit_minutes": None,
    }


def not_printed_view(hub: SiteHub) -> list[dict[str, Any]]:
    """Open tickets whose last print failed, oldest first (the console's "not printed" list)."""
    return sorted((dict(v) for k, v in hub.not_printed.items()
                   if (t := hub.lobby.tickets.get(k)) is not None and t.closed is None), key=lambda v: v["at"])
