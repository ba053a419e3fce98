"""The pure booking rules (queue_server/core/booking.py): days, slots, refusals, check-in, states, config."""

import datetime as dt
import tomllib
from pathlib import Path

import pytest

from queue_server.core import booking as B
from queue_server.core.problems import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CFG = B.BookingConfig(capacity={"shimin": 2}, closed_dates=frozenset({"2026-12-31"}))


def row(day="2026-12-01", start=1000.0, code="123456", **kw):
    return {"id": "x", "site": "honcho", "day": day, "slot_start": start, "slot_end": start + 1800, "purposes": ["death"],
            "code": code, "ticket": None, "department": "shimin", **kw}


def test_opening_days_skip_weekends_and_closed_dates_and_slots_fit_the_day():
    days = B.opening_days(dt.date(2026, 12, 30), 3, CFG)  # Wed; 31 closed; Sat/Sun skipped
    assert [d.isoformat() for d in days] == ["2026-12-30", "2027-01-01", "2027-01-04"]
    slots = B.slot_times("08:30", "17:15", CFG)
    assert slots[0] == "08:30" and slots[-1] == "16:30" and len(slots) == 17


def test_check_slot_names_each_refusal():
    ok = {"cfg": CFG, "department": "shimin", "day": "2026-12-02", "start": "10:00", "slot_start": 10_000.0,
          "now": 0.0, "today": "2026-12-01", "open_days": ["2026-12-01", "2026-12-02"], "day_slots": ["10:00"],
          "taken": 1}
    assert B.check_slot(**ok) is None
    for change, code in (({"taken": 2}, "slot_full"), ({"department": None}, "not_bookable"),
                         ({"day": "2026-11-30"}, "slot_past"), ({"day": "2026-12-09"}, "slot_closed"),
                         ({"start": "10:10"}, "slot_closed"), ({"now": 9_500.0}, "slot_past")):
        with pytest.raises(B.BookingError) as e:
            B.check_slot(**{**ok, **change})
        assert e.value.code == code, change


def test_check_in_target_tells_what_is_wrong():
    today = "2026-12-01"
    assert B.check_in_target([row()], today)["code"] == "123456"
    cases = [
        ([row(ticket="t1")], "reservation_used"),
        ([row(cancelled_at=5.0)], "booking_cancelled"),
        ([row(day="2026-12-03")], "booking_other_day"),
        ([row(day="2026-11-20")], "booking_expired"),
        ([], "unknown_reservation"),
    ]
    for found, code in cases:
        with pytest.raises(B.BookingError) as e:
            B.check_in_target(found, today)
        assert e.value.code == code and e.value.field == "reservation_code"
    with pytest.raises(B.BookingError) as e:
        B.check_in_target([], today, other_sites=["yawata"])
    assert e.value.code == "booking_other_site"


def test_late_and_no_show_follow_the_config():
    r = row(start=0.0)
    assert B.on_time(r, 15 * 60, CFG) and not B.on_time(r, 15 * 60 + 1, CFG)
    assert B.state(r, 30 * 60, CFG) == "booked" and B.state(r, 30 * 60 + 1, CFG) == "no_show"
    assert B.state({**r, "ticket": "t"}, 10**9, CFG) == "checked_in"
    assert B.state({**r, "cancelled_at": 1.0}, 0, CFG) == "cancelled"
    assert B.used([r, {**r, "cancelled_at": 2.0}, {**r, "department": "zeimu"}], r["day"], 0.0, "shimin") == 1


def test_shipped_config_loads_and_bad_booking_config_lists_every_problem():
    raw = tomllib.loads((ROOT / "config" / "site.toml").read_text(encoding="utf-8"))
    assert B.booking_problems(raw) == []
    cfg = B.load_booking(raw, "honcho")
    assert cfg.places("shimin") >= 1 and cfg.places("zeimu") == 0
    bad = {**raw, "booking": {**raw["booking"], "slot_minutes": 0, "weekdays": [7],
                              "capacity": {"shimin": -1, "nowhere": 1}}}
    with pytest.raises(ConfigError) as e:
        B.load_booking(bad, "honcho")
    where = [p.where for p in e.value.problems]
    assert {"booking.slot_minutes", "booking.weekdays", "booking.capacity.shimin", "booking.capacity.nowhere"} <= set(where)


def test_answers_of_past_bookings_are_erased_and_the_rest_kept(tmp_path):
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from queue_server.planner_api import erase_answers_before
    from queue_server.storage import Batch, ReservationRow, Store

    store = Store(f"sqlite:///{tmp_path / 'b.db'}")
    store.migrate()
    rows = [row(day=d, code=c, answers={"deceased_age": "80"}, lang="ja", created_at=1.0, cancelled_at=None)
            | {"id": c} for d, c in (("2026-11-30", "111111"), ("2026-12-01", "222222"))]
    store.write(Batch(reservations=rows))
    erase_answers_before(store.engine, "honcho", "2026-12-01")
    with Session(store.engine) as s:
        got = {r.code: (r.answers, r.purposes) for r in s.scalars(select(ReservationRow))}
    assert got["111111"] == ({}, ["death"]) and got["222222"] == ({"deceased_age": "80"}, ["death"])
