"""Booking KPIs: no-show rate, punctuality, booked vs walk-in waits, from a real database."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from queue_server.kpi import compute, period_for
from queue_server.storage import Batch, Store

TZ = ZoneInfo("Asia/Tokyo")


def at(hhmm: str, day: str = "2026-04-01") -> float:
    return dt.datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=TZ).timestamp()


def test_booking_kpis_from_reservations_and_the_event_log(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'k.db'}")
    store.migrate()
    res = []
    for i, (slot, ticket, cancelled) in enumerate([
        ("09:00", "t-b1", None),          # checked in 5 min early
        ("09:30", "t-b2", None),          # checked in 20 min late (after late_minutes = 15)
        ("10:00", None, None),            # never came: a no-show once 10:30 has passed
        ("10:30", None, at("08:00")),     # cancelled
        ("16:30", None, None),            # still ahead at 16:10: neither kept nor missed
    ]):
        res.append({"id": f"r{i}", "site": "honcho", "day": "2026-04-01", "slot_start": at(slot),
                    "slot_end": at(slot) + 1800, "purposes": ["death"], "code": f"00000{i}", "ticket": ticket,
                    "answers": {}, "lang": "ja", "department": "shimin", "created_at": at(slot) - 2 * 86400,
                    "cancelled_at": cancelled})
    events, seq = [], 0

    def ev(kind, when, ticket, payload, step=None, counter=None):
        nonlocal seq
        seq += 1
        events.append({"site": "honcho", "seq": seq, "at": when, "kind": kind, "ticket": ticket, "step": step,
                       "counter": counter, "actor": "t", "payload": payload})

    steps = [{"department": "shimin", "procedures": ["x"], "minutes": 10}]
    for tid, issued, called, reserved in (("t-b1", "08:55", "09:01", True), ("t-b2", "09:50", "09:52", True),
                                          ("t-w1", "08:40", "09:20", False), ("t-w2", "09:00", "09:40", False)):
        ev("issued", at(issued), tid, {"reserved": reserved, "steps": steps, "purposes": ["death"]})
        ev("called", at(called), tid, {"department": "shimin", "number": "1"}, 0, 1)
    store.write(Batch(events=events, reservations=res))
    report = compute(store.engine, period_for("honcho", "2026-04-01", "2026-04-01"), now=at("16:10"))
    got = {r[0]: r[2] for r in report.tables["bookings"].rows}
    assert got["bookings"] == 5 and got["bookings_cancelled"] == 1 and got["bookings_checked_in"] == 2
    assert got["booking_no_shows"] == 1 and got["booking_no_show_share"] == round(1 / 3, 4)
    assert got["booking_on_time_share"] == 0.5 and got["booking_lateness_mean"] == 7.5  # (-5 + 20) / 2
    assert got["booking_lead_days_mean"] == 2.0
    assert got["wait_booked_mean"] == 4.0 and got["wait_walk_in_mean"] == 40.0  # (6 + 2) / 2, (40 + 40) / 2
    assert report.summary()["reservation_share"] == 0.5
