"""The manager's KPIs (queue_server/kpi_manager.py) on a small log worked out by hand, through the
same compute() the admin page, CSV and Excel use."""

from __future__ import annotations

import datetime as dt

import pytest

from queue_server.kpi import Period, compute
from queue_server.storage import Store

from .kpi_log import D1, D2, LogBuilder, T


def _log() -> LogBuilder:
    b = LogBuilder()
    b.ev(D1, "08:30", "counter_open", counter=1, staff="佐藤")
    b.ev(D1, "08:30", "counter_open", counter=2, staff="田中")
    b.ev(D2, "08:30", "counter_open", counter=1, staff="佐藤")
    s = [("shimin", ("juminhyo",))]
    b.issued(D1, "09:00", "A", s)
    b.called(D1, "09:10", "A", 0, 1, "shimin"), b.started(D1, "09:11", "A", 0, 1, "shimin")
    b.completed(D1, "09:21", "A", 0, 1, "shimin", ["juminhyo"], True)  # 10 min, 佐藤
    b.issued(D1, "09:05", "B", s, assistance=True)
    b.rows[-1]["payload"]["lang"] = "en"
    b.called(D1, "09:50", "B", 0, 2, "shimin"), b.started(D1, "09:51", "B", 0, 2, "shimin")
    b.completed(D1, "09:57", "B", 0, 2, "shimin", ["juminhyo"], True)  # waited 45, served 6 min by 田中
    b.issued(D1, "09:20", "C", s, reserved=True)
    b.called(D1, "09:25", "C", 0, 1, "shimin")
    b.ev(D1, "09:28", "no_show", "C", 0, 1, department="shimin")  # absent after a 5-minute wait
    b.issued(D1, "10:00", "E", s)
    b.ev(D1, "10:40", "cancelled", "E", reason="")  # gave up after 40 minutes
    b.issued(D1, "16:30", "F", s)
    b.ev(D1, "17:30", "cancelled", "F", reason="end_of_day")
    b.issued(D2, "09:00", "G", s)
    b.called(D2, "09:02", "G", 0, 1, "shimin"), b.started(D2, "09:03", "G", 0, 1, "shimin")
    b.completed(D2, "09:11", "G", 0, 1, "shimin", ["juminhyo"], True)  # 8 min, 佐藤
    return b


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('mgr') / 'k.db'}")
    store.migrate()
    _log().write(store)
    return compute(store.engine, Period("honcho", D1, D2), target_minutes=30, now=T(dt.date(2027, 1, 1), "00:00"))


def rows(r, key):
    return r.tables[key].as_dicts()


def test_abandonment_by_reason_with_the_wait_before_leaving(report):
    got = {x["reason"]: x for x in rows(report, "abandonment")}
    assert (got["no_show"]["tickets"], got["no_show"]["wait_mean"]) == (1, 5.0)
    assert (got["cancelled"]["tickets"], got["cancelled"]["wait_mean"]) == (1, 40.0)
    assert (got["end_of_day"]["tickets"], got["end_of_day"]["wait_mean"]) == (1, 60.0)
    assert got["cancelled"]["share"] == pytest.approx(1 / 6, abs=1e-4)


def test_waits_by_language_priority_and_assistance(report):
    got = {(x["group"], x["value"]): x for x in rows(report, "waits_by_group")}
    assert got[("language", "English")]["wait_mean"] == 45.0 and got[("language", "English")]["within_target"] == 0.0
    assert got[("language", "日本語")]["n"] == 3 and got[("language", "日本語")]["wait_mean"] == pytest.approx(17 / 3, abs=0.01)
    assert got[("assistance", "支援あり")]["wait_mean"] == 45.0
    assert got[("priority", "予約")]["wait_mean"] == 5.0


def test_service_time_per_member_of_staff(report):
    got = {x["staff"]: x for x in rows(report, "staff_service")}
    assert (got["佐藤"]["steps"], got["佐藤"]["mean"]) == (2, 9.0) and got["佐藤"]["sd"] == pytest.approx(1.41, abs=0.01)
    assert (got["田中"]["steps"], got["田中"]["mean"]) == (1, 6.0)


def test_hour_by_weekday_heatmap(report):
    got = {(x["weekday"], x["hour"]): x for x in rows(report, "heatmap")}
    wed9 = got[("水", "09:00")]
    assert (wed9["tickets_per_day"], wed9["waits"], wed9["wait_mean"]) == (3.0, 3, 20.0)
    assert wed9["within_target"] == pytest.approx(2 / 3, abs=1e-4)
    assert got[("木", "09:00")]["wait_mean"] == 2.0


def test_queue_over_the_day_and_the_spread_of_the_daily_service_level(report):
    q = {x["time"]: x for x in rows(report, "queue_over_day")}
    # 09:00–09:15: on 1 April A waits 10 min and B 10 of its 45 (20 waiting-minutes / 15), on 2 April G 2 min
    assert q["09:00"]["waiting_busiest_day"] == pytest.approx(20 / 15, abs=0.01)
    assert q["09:00"]["waiting_mean"] == pytest.approx((20 / 15 + 2 / 15) / 2, abs=0.01)
    assert q["09:00"]["longest_wait"] == 45.0
    sl = {(x["group"], x["value"]): x for x in rows(report, "service_level_spread")}
    assert sl[("all", "全期間")]["days"] == 2 and sl[("all", "全期間")]["min"] == pytest.approx(2 / 3, abs=1e-4)
    assert sl[("all", "全期間")]["max"] == 1.0 and sl[("month", "2026-04")]["mean"] == pytest.approx(5 / 6, abs=1e-4)
    assert sl[("to_confirm", "「要確認」のある案内の割合")]["mean"] == 0.0
