"""Booking KPIs (来庁予約): no-shows, punctuality, booked vs walk-in waits, bookings made ahead.

Read inside :func:`queue_server.kpi.compute`'s connection, after the shared temporary tables are
built (``kpi_tk`` tickets with their ``reserved`` flag, ``kpi_wait`` waits), plus the
``reservations`` table for the bookings whose slot falls in the period. 来庁予約率 and the spread
of visitors over days (日ごとの来庁者数の均一度) are in the summary table already; this table adds
what only the bookings know. docs/kpi.md and docs/planning.md define each figure.
"""

from __future__ import annotations

import statistics
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .core.booking import BookingConfig

_DEFAULTS = BookingConfig()


def _r(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(float(x), nd)


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def booking_rows(bookings: list[dict[str, Any]], checkins: dict[str, float], waits: dict[int, list[float]],
                 now: float, cfg: BookingConfig = _DEFAULTS) -> list[tuple[str, str, Any, str]]:
    """The booking KPIs as (key, 指標, value, unit) rows. Pure.

    ``bookings``: reservation rows of the period; ``checkins``: ticket id -> issue time;
    ``waits``: {1: waits of booked tickets, 0: of walk-ins} in minutes.
    """
    live = [b for b in bookings if not b.get("cancelled_at")]
    checked = [b for b in live if b.get("ticket")]
    due = [b for b in live if b.get("ticket") or now > b["slot_start"] + cfg.no_show_minutes * 60]
    no_show = [b for b in due if not b.get("ticket")]
    lateness = [(checkins[b["ticket"]] - b["slot_start"]) / 60 for b in checked if b["ticket"] in checkins]
    on_time = [x for x in lateness if x <= cfg.late_minutes]
    lead = [(b["slot_start"] - b["created_at"]) / 86400 for b in bookings if b.get("created_at")]
    booked_w, walk_w = waits.get(1, []), waits.get(0, [])
    return [
        ("bookings", "予約数（期間内の枠）", len(bookings), "件"),
        ("bookings_cancelled", "予約の取消", len(bookings) - len(live), "件"),
        ("bookings_checked_in", "予約の受付（来庁）", len(checked), "件"),
        ("booking_no_shows", "予約の無断不来庁", len(no_show), "件"),
        ("booking_no_show_share", "予約の無断不来庁率", _share(len(no_show), len(due)), "比率"),
        ("booking_on_time_share", f"予約時刻どおりの受付（{cfg.late_minutes}分以内）", _share(len(on_time), len(lateness)), "比率"),
        ("booking_lateness_mean", "受付時刻 − 予約時刻 平均（負は早着）", _r(statistics.fmean(lateness)) if lateness else None, "分"),
        ("booking_lead_days_mean", "予約から来庁までの日数 平均", _r(statistics.fmean(lead)) if lead else None, "日"),
        ("wait_booked_mean", "平均待ち時間（予約）", _r(statistics.fmean(booked_w)) if booked_w else None, "分"),
        ("wait_walk_in_mean", "平均待ち時間（予約なし）", _r(statistics.fmean(walk_w)) if walk_w else None, "分"),
    ]


def table(conn: Connection, site: str, first: str, last: str, now: float) -> Any:
    """The 来庁予約 KPI table of the period (reads the temporary tables of kpi._build)."""
    from .kpi import Column, Table

    rows = conn.execute(text(
        "SELECT slot_start, ticket, created_at, cancelled_at FROM reservations "
        "WHERE site = :site AND day >= :first AND day <= :last"), {"site": site, "first": first, "last": last})
    bookings = [dict(r._mapping) for r in rows]
    checkins = {r.ticket: r.at for r in conn.execute(text("SELECT ticket, at FROM kpi_tk"))}
    waits: dict[int, list[float]] = {0: [], 1: []}
    for reserved, wait in conn.execute(text(
            "SELECT t.reserved, w.wait FROM kpi_wait w JOIN kpi_tk t ON t.ticket = w.ticket")):
        waits[1 if reserved else 0].append(wait / 60)
    # an empty period has an empty table, like every other group (not a page of zeros and "-")
    found = booking_rows(bookings, checkins, waits, now) if bookings or checkins else []
    return Table("bookings", "来庁予約", (
        Column("kpi", "キー"), Column("name", "指標"), Column("value", "値"), Column("unit", "単位"),
    ), found)
