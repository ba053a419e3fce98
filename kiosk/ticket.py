"""From the server's ``issue`` reply to what the printer prints and the done screen shows. Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from printers.layout import PrintableTicket, RouteLine
from queue_server.core import ruby
from queue_server.core.i18n import pick

#: Ticket times are the site's local time, never UTC (a ticket printed at 08:30 says 8:30).
SITE_TZ = ZoneInfo("Asia/Tokyo")


def whole_minutes(value: Any) -> int | None:
    """Minutes rounded up for display ("about 13 min" for 12.5); None stays unknown."""
    if value is None:
        return None
    return max(0, math.ceil(float(value)))


def route_lines(result: Mapping[str, Any], lang: str) -> tuple[RouteLine, ...]:
    """The route in visiting order, department names in ``lang``."""
    return tuple(
        RouteLine(
            department_name=ruby.bracketed(pick(r.get("name") or {}, lang) or r.get("department", "")),
            floor=r.get("floor"),
            counters=tuple(r.get("counters") or ()),
        )
        for r in result.get("route", [])
    )


def printable_ticket(result: Mapping[str, Any], lang: str) -> PrintableTicket:
    """The :class:`PrintableTicket` for an issue reply (what goes to ``print_ticket``)."""
    t = result["ticket"]
    plan = result.get("plan") or {}
    # Paper has no ruby: catalogue readings {市民課|しみんか} print as 市民課（しみんか）.
    external = tuple(ruby.bracketed(f"{e['name']}（{e['where']}）" if e.get("where") else e["name"])
                     for e in plan.get("external", []))
    return PrintableTicket(
        site_name=pick(t.get("site_name") or {}, lang) or t.get("site", ""),
        label=str(t["number"]),
        issued_at=datetime.fromtimestamp(float(t["issued_at"]), SITE_TZ),
        lang=lang,
        route=route_lines(result, lang),
        documents=tuple(ruby.bracketed(d["name"]) for d in plan.get("documents", [])),
        wait_minutes=whole_minutes(result.get("wait_minutes")),
        total_minutes=whole_minutes(result.get("visit_minutes")),
        status_url=str(t.get("status_url", "")),
        external=external,
    )
