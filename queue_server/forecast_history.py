"""The shell half of the wait forecast (queue_server.core.forecast): read the arrivals and service
times of the last weeks from the event log. Blocking; the server calls it in a worker thread."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from .core.forecast import HISTORY_DAYS, History
from .storage import EventRow


def read_history(engine: Any, site: str, now: float, tz: ZoneInfo, days: int = HISTORY_DAYS) -> History:
    """Arrivals and service times of the last ``days`` days from the event log (worker thread)."""
    # whole days only: today's hours still to come would count as empty
    midnight = dt.datetime.fromtimestamp(now, tz).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    since = midnight - days * 86400
    arrivals: list[tuple[float, str]] = []
    services: list[tuple[str, float]] = []
    seen: set[str] = set()
    started: dict[tuple[str, int], float] = {}
    with Session(engine) as s:
        q = (select(EventRow.at, EventRow.kind, EventRow.ticket, EventRow.step, EventRow.payload)
             .where(EventRow.site == site, EventRow.at >= since, EventRow.at < midnight,
                    EventRow.kind.in_(("issued", "started", "completed")))
             .order_by(EventRow.seq))
        for at, kind, ticket, step, payload in s.execute(q):
            if kind == "issued":
                seen.add(dt.datetime.fromtimestamp(at, tz).date().isoformat())
                for d in dict.fromkeys(st.get("department", "") for st in (payload or {}).get("steps", [])):
                    arrivals.append((at, d))
            elif kind == "started":
                started[(ticket, step)] = at
            elif (ticket, step) in started:
                services.append(((payload or {}).get("department", ""), (at - started.pop((ticket, step))) / 60))
        # tickets and open days per month over the last ~13 months: the seasonal factor
        months: dict[str, tuple[int, set[str]]] = {}
        for (at,) in s.execute(select(EventRow.at).where(
                EventRow.site == site, EventRow.kind == "issued", EventRow.at >= midnight - 400 * 86400,
                EventRow.at < midnight)):
            local = dt.datetime.fromtimestamp(at, tz).date().isoformat()
            n, days_seen = months.setdefault(local[:7], (0, set()))
            days_seen.add(local)
            months[local[:7]] = (n + 1, days_seen)
    return History(tuple(arrivals), tuple(services), tuple(sorted(seen)),
                   tuple((m, n, len(ds)) for m, (n, ds) in sorted(months.items())))
