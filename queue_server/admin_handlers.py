"""The admin page's requests, applied by the writer: the lobby snapshot, cancelling a ticket,
reservations made at the desk and their list, and the end of day (sent by the server itself)."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from . import planner_api
from .core import booking as B
from .core.lobby import log_only
from .hub import SiteHub
from .jobs import Outcome
from .plan_preview import make_plan
from .storage import Batch, reservation_row

if TYPE_CHECKING:
    from .server import QueueServer


def end_of_day(hub: SiteHub, now: float) -> Outcome:
    """Cancel the earlier days' waiting tickets (internal: never from a client)."""
    ch = hub.lobby.end_day(hub.day, now)
    return Outcome({"cancelled": len(ch.tickets)}, ch)


def snapshot(hub: SiteHub, now: float) -> Outcome:
    return Outcome({"board": hub.board_view(now), "tickets": [hub.ticket_view(x) for x in hub.lobby.tickets.values()]})


def cancel(hub: SiteHub, b: dict[str, Any], now: float) -> Outcome:
    ch = hub.lobby.cancel(b["ticket"], now, b.get("reason") or "")
    return Outcome({"ticket": hub.ticket_view(hub.lobby.tickets[b["ticket"]])}, ch)


def reservations(server: QueueServer, hub: SiteHub, b: dict[str, Any], now: float) -> Outcome:
    """A day's bookings with states, procedure lists and capacity (planner_api)."""
    return Outcome(planner_api.reservations_view(server, hub, b.get("day") or server.local_day(now), now))


def reserve(server: QueueServer, hub: SiteHub, b: dict[str, Any], now: float) -> Outcome:
    """Book a slot (来庁予約); the citizen checks in at the kiosk with the code."""
    B.check_reservation_slot(b["day"], b["start"])  # a BookingError is answered as it is (writer)
    make_plan(server, {"purposes": b["purposes"], "answers": {}})  # purposes must exist
    start = datetime.fromisoformat(f"{b['day']}T{b['start']}").replace(tzinfo=server.tz).timestamp()
    minutes = b.get("minutes") or 60
    B.check_reservation_minutes(minutes)
    while True:
        code = f"{secrets.randbelow(10**6):06d}"
        if (b["day"], code) not in hub.reservations:
            break
    row = reservation_row(id=str(uuid.uuid4()), site=hub.key, day=b["day"], slot_start=start,
                          slot_end=start + minutes * 60, purposes=list(b["purposes"]), code=code, created_at=now)
    hub.reservations[(b["day"], code)] = row

    def undo() -> None:
        hub.reservations.pop((b["day"], code), None)

    ev = log_only("reserved", {"day": b["day"], "start": b["start"], "minutes": minutes,
                               "purposes": list(b["purposes"])})
    return Outcome({"reservation": row}, ev, Batch(reservations=[row]), undo=undo)
