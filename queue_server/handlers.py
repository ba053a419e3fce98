"""Which handler applies a request: the writer calls :func:`execute` for every job of a batch.
Each role's requests live in their own module (kiosk_handlers, counter_handlers, admin_handlers;
the planning page's in planner_api); this module only routes by type."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import admin_handlers, counter_handlers, forms_api, kiosk_handlers, planner_api, reprint
from .hub import SiteHub
from .jobs import Job, Outcome

if TYPE_CHECKING:
    from .server import QueueServer


def execute(server: QueueServer, hub: SiteHub, job: Job, now: float) -> Outcome:
    """Apply one request to the site's memory; the writer commits, replies and pushes."""
    c, b, t = job.client, job.req.body, job.req.type
    if t == "issue":
        return kiosk_handlers.issue(server, hub, c, b, now)
    if t in planner_api.WRITES:
        return planner_api.execute(server, hub, c, t, b, now)
    if t == "end_of_day":  # internal, never from a client (not in protocol.FIELDS)
        return admin_handlers.end_of_day(hub, now)
    if t == "help":
        return kiosk_handlers.help_call(hub, c, b, now)
    if t == "device_fault":
        return kiosk_handlers.device_fault(hub, c, b, now)
    if t == "print_result":
        return reprint.print_result(hub, c, b, now)
    if t == "reprint":
        return reprint.reprint(server, hub, c, b, now)
    if t in forms_api.WRITES:  # counts-only event for the 書かない窓口 KPIs (kpi_forms.py)
        return forms_api.printed(server, hub, c, b, now)
    if t == "status":  # the citizen's phone
        return Outcome(hub.public_view(hub.lobby.tickets[c.ticket], now))
    if t == "reserve":
        return admin_handlers.reserve(server, hub, b, now)
    if t == "reservations":
        return admin_handlers.reservations(server, hub, b, now)
    if t == "snapshot":
        return admin_handlers.snapshot(hub, now)
    if t == "cancel":
        return admin_handlers.cancel(hub, b, now)
    return counter_handlers.execute(server, hub, c, t, b, now)  # counter role from here on
