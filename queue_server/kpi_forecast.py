"""Forecast accuracy KPI: were the waits we showed right?

Every ``issued`` event logs, per department the ticket queued for, the wait in minutes it was
shown (``payload.waits[department] = {"step", "wait_minutes", "ahead"}``), and so do every
``completed`` event for the steps it released and every ``transferred`` / ``requeued`` event for
the step that went back into a queue. The step's next ``called`` event says how long it
really waited. Per department and per hour of the prediction (local time) this module reports the
mean absolute error (MAE, minutes), RASE (root mean squared error over the mean actual wait, as
Ibrahim & Whitt measure delay estimators) and the shares within ±5 minutes and within ±25 %.
Steps never called (left, cancelled, end of day) have no actual wait and are left out.

:func:`pair` and :func:`accuracy` are pure; :func:`forecast_tables` reads the log and builds the
KPI tables that :func:`queue_server.kpi.compute` adds to the report (docs/kpi.md, docs/prediction.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

# events that put a step in a queue and log the wait it was shown
PREDICTING = ("issued", "completed", "transferred", "requeued")


@dataclass(frozen=True, slots=True)
class Forecast:
    department: str
    hour: int  # local hour of the prediction
    predicted: float  # minutes shown
    actual: float  # minutes until called


def pair(events: Iterable[Mapping[str, Any]], offset: int = 9 * 3600) -> list[Forecast]:
    """Predictions matched with the first call of the same (ticket, step), in log order.

    ``events`` are rows with ``at``, ``kind``, ``ticket``, ``step`` and a ``payload`` dict;
    ``offset`` is the site's UTC offset in seconds (for the hour).
    """
    open_: dict[tuple[str, int], tuple[str, float, float]] = {}
    out = []
    for e in events:
        kind = e["kind"]
        if kind in PREDICTING:
            for dept, w in ((e.get("payload") or {}).get("waits") or {}).items():
                if isinstance(w, Mapping) and w.get("wait_minutes") is not None and w.get("step") is not None:
                    open_[(e["ticket"], int(w["step"]))] = (dept, float(e["at"]), float(w["wait_minutes"]))
        elif kind == "called" and e.get("step") is not None:
            got = open_.pop((e["ticket"], int(e["step"])), None)
            if got is not None:
                dept, at, predicted = got
                hour = int(((at + offset) % 86400) // 3600)
                out.append(Forecast(dept, hour, predicted, (float(e["at"]) - at) / 60.0))
    return out


@dataclass(frozen=True, slots=True)
class Accuracy:
    n: int
    mean_actual: float | None
    mae: float | None
    rase: float | None
    within5: float | None
    within25: float | None


def accuracy(rows: Iterable[Forecast]) -> Accuracy:
    """MAE, RASE and the shares within ±5 min and ±25 % (of the actual wait; waits under a minute
    count as within 25 % when the error is under a minute) over ``rows``."""
    rows = list(rows)
    if not rows:
        return Accuracy(0, None, None, None, None, None)
    n = len(rows)
    errs = [r.predicted - r.actual for r in rows]
    mean_actual = sum(r.actual for r in rows) / n
    rmse = math.sqrt(sum(e * e for e in errs) / n)
    return Accuracy(
        n=n,
        mean_actual=round(mean_actual, 2),
        mae=round(sum(abs(e) for e in errs) / n, 2),
        rase=round(rmse / mean_actual, 3) if mean_actual > 0 else None,
        within5=round(sum(1 for e in errs if abs(e) <= 5) / n, 4),
        within25=round(sum(1 for r, e in zip(rows, errs, strict=True) if abs(e) <= max(0.25 * r.actual, 1.0)) / n, 4),
    )


def read_events(conn: Connection, site: str, start: float, end: float, slack: float) -> list[dict[str, Any]]:
    """Predicting and called events from ``start`` to ``end + slack`` in log order."""
    rows = conn.execute(text(
        "SELECT at, kind, ticket, step, payload FROM events WHERE site = :site AND at >= :start AND at < :end "
        "AND kind IN ('issued', 'completed', 'transferred', 'requeued', 'called') ORDER BY seq"), {"site": site, "start": start, "end": end + slack})
    out = []
    for at, kind, ticket, step, payload in rows:
        if isinstance(payload, str):
            payload = json.loads(payload)
        if kind != "called" and at >= end:
            continue  # predictions made after the period belong to the next one
        out.append({"at": at, "kind": kind, "ticket": ticket, "step": step, "payload": payload or {}})
    return out


def forecast_tables(conn: Connection, site: str, start: float, end: float, slack: float, offset: int,
                    names: Mapping[str, str]) -> dict[str, Any]:
    """The KPI tables ``forecast`` (by department, with a total row) and ``forecast_hour``."""
    from .kpi import Column, Table

    rows = pair(read_events(conn, site, start, end, slack), offset)
    cols = (Column("n", "件数"), Column("mean_actual", "実際の平均待ち", "分"), Column("mae", "平均絶対誤差", "分"),
            Column("rase", "RASE"), Column("within5", "±5分以内", "比率"), Column("within25", "±25%以内", "比率"))

    def cells(a: Accuracy) -> tuple[Any, ...]:
        return (a.n, a.mean_actual, a.mae, a.rase, a.within5, a.within25)

    by_dept = sorted({r.department for r in rows})
    dept_rows = [(d, names.get(d, d), *cells(accuracy(r for r in rows if r.department == d))) for d in by_dept]
    if rows:
        dept_rows.append(("(all)", "全体", *cells(accuracy(rows))))
    hour_rows = [(h, *cells(accuracy(r for r in rows if r.hour == h))) for h in sorted({r.hour for r in rows})]
    return {
        "forecast": Table("forecast", "待ち時間予測の精度（課別）",
                          (Column("department", "課"), Column("name", "課名"), *cols), dept_rows),
        "forecast_hour": Table("forecast_hour", "待ち時間予測の精度（時間帯別）", (Column("hour", "時"), *cols), hour_rows),
    }
