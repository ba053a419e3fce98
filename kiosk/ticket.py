"""From the server's ``issue`` reply to what the printer prints and the done screen shows. Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from printers.layout import PrintableTicket, RouteLine, shared_counters
from queue_server.core import ruby
from queue_server.core.i18n import pick

#: Ticket times are the site's local time, never UTC (a ticket printed at 08:30 says 8:30).
SITE_TZ = ZoneInfo("Asia/Tokyo")


def whole_minutes(value: Any) -> int | None:
    """Minutes rounded up for display ("about 13 min" for 12.5); None stays unknown."""
    if value is None:
        return None
    return max(0, math.ceil(float(value)))


def wait_words(messages: Any, lang: str, data: Mapping[str, Any] | None) -> str:
    """The wait for the first counter as the citizen reads it: a range ("約20〜30分") when the
    server sends one (``wait_low``/``wait_high``, where the estimate is uncertain), else one figure,
    "soon", or "ask at the counter"."""
    data = data or {}
    wait = whole_minutes(data.get("wait_minutes"))
    if wait is None:
        return messages.get("plan.wait_unknown", lang)
    low, high = data.get("wait_low"), data.get("wait_high")
    if isinstance(low, int | float) and isinstance(high, int | float) and high > low:
        return messages.get("plan.wait_range", lang, low=int(low), high=int(high))
    if wait <= 0:
        return messages.get("plan.wait_soon", lang)
    return messages.get("plan.wait", lang, minutes=wait)


def site_shared_counters(site_config: Mapping[str, Any] | None, result: Mapping[str, Any]) -> frozenset[int]:
    """Counters of the ticket's site that serve several departments (from site.toml), so the
    ticket and the done screen say "4番窓口（共用）" instead of two overlapping ranges."""
    if not site_config:
        return frozenset()
    sites = site_config.get("sites", {})
    key = (result.get("ticket") or {}).get("site") or next(iter(sites), None)
    counters = (sites.get(key) or {}).get("counters", [])
    return shared_counters((c["number"], c.get("departments", ())) for c in counters)


def route_lines(result: Mapping[str, Any], lang: str, shared: frozenset[int] = frozenset()) -> tuple[RouteLine, ...]:
    """The route in visiting order, department names in ``lang`` and in Japanese (the signs)."""
    lines = []
    for r in result.get("route", []):
        counters = tuple(r.get("counters") or ())
        names = r.get("name") or {}
        lines.append(RouteLine(
            department_name=ruby.bracketed(pick(names, lang) or r.get("department", "")),
            floor=r.get("floor"),
            counters=counters,
            department_name_ja=names.get("ja", "") if isinstance(names, Mapping) else "",
            shared=tuple(n for n in counters if n in shared),
        ))
    return tuple(lines)


def printable_ticket(result: Mapping[str, Any], lang: str, shared: frozenset[int] = frozenset()) -> PrintableTicket:
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
        route=route_lines(result, lang, shared),
        documents=tuple(ruby.bracketed(d["name"]) for d in plan.get("documents", [])),
        wait_minutes=whole_minutes(result.get("wait_minutes")),
        total_minutes=whole_minutes(result.get("visit_minutes")),
        status_url=str(t.get("status_url", "")),
        external=external,
        wait_range=_range(result),
    )


def _range(result: Mapping[str, Any]) -> tuple[int, int] | None:
    """The server's wait range, when it sent one (queue_server/core/estimators.py wait_fields)."""
    low, high = result.get("wait_low"), result.get("wait_high")
    if isinstance(low, int | float) and isinstance(high, int | float) and high > low:
        return int(low), int(high)
    return None
