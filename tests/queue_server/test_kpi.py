"""Every KPI of queue_server.kpi against values worked out by hand from tests/queue_server/kpi_log.py.

The same log and the same expectations run on SQLite and on a real PostgreSQL (fixture), so the
two dialects' SQL cannot drift apart. Times are minutes unless said otherwise.
"""

from __future__ import annotations

import datetime as dt

import pytest

from queue_server.kpi import Period, compute, period_for
from queue_server.storage import Store

from .kpi_log import D1, D2, T, hand_log

NAMES = {"shimin": "市民課", "hoken_nenkin": "国保年金課"}
FAR_FUTURE = T(dt.date(2027, 1, 1), "00:00")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    url = f"sqlite:///{tmp_path / 'kpi.db'}" if request.param == "sqlite" else request.getfixturevalue("fresh_postgres")
    store = Store(url)
    store.migrate()
    hand_log().write(store)
    yield store.engine
    store.engine.dispose()


@pytest.fixture
def report(engine):
    return compute(engine, Period("honcho", D1, D2), target_minutes=30, department_names=NAMES, now=FAR_FUTURE)


def rows(report, table):
    return report.tables[table].as_dicts()


def test_summary_every_kpi(report):
    s = report.summary()
    expected = {
        "tickets": 7,  # A B C D E | F G  (X before, Y after, Z another site: left out)
        "visitors": 5,  # tickets with a started step: A B C F G (D no-show, E cancelled)
        "open_days": 2,
        "visitors_per_day": 2.5,  # (3 + 2) / 2
        "visitors_cv": 0.2,  # population sd of [3, 2] = 0.5, / 2.5
        "waits": 9,  # A10 B15 B7 B1 C40 C10 D10 | F5 G30
        "wait_mean": 14.22,  # 128 / 9
        "wait_p50": 10.0,  # sorted 1 5 7 10 10 10 15 30 40: rank ceil(4.5) = 5
        "wait_p90": 40.0,  # rank ceil(8.1) = 9
        "wait_max": 40.0,
        "within_target": 0.8889,  # 8 of 9 within 30 (G's 30 counts as within)
        "service_mean": 8.71,  # steps 5 10 12 6 14 6 8 -> 61 / 7
        "stay_mean": 39.4,  # closed as done: A16 B55 C70 F17 G39 -> 197 / 5
        "stay_p50": 39.0,
        "stay_p90": 70.0,
        "stay_max": 70.0,
        "departments_per_visitor": 1.4,  # A1 B2 C2 (started at shimin, then hoken_nenkin) F1 G1
        "reservation_share": 0.1429,  # A: 1 / 7
        "prefill_share": 0.2857,  # A B: 2 / 7
        "online_capable_share": 0.1429,  # C
        "assistance_share": 0.1429,  # F
        "rework": 1,  # B's nenkin_change
        "rework_share": 0.2,  # 1 visitor of 5
        "transfers": 1,  # C
        "recalls": 3,  # B once, D twice
        "no_shows": 1,  # D
        "no_show_share": 0.1429,
        "cancelled": 1,  # E
        "counter_open_minutes": 1590.0,  # counter 1: 210 + 240 + 240; counter 5: 09:00 to midnight 900
        "counter_occupied_minutes": 81.0,  # counter 1: 47, counter 5: 34 (see test_counters)
        "counter_utilisation": 0.0509,  # 81 / 1590
        "counter_idle_minutes": 1509.0,
        "help_requests": 1,
        "device_faults": 1,
    }
    assert s == expected


def test_daily(report):
    assert rows(report, "daily") == [
        {"date": "2026-04-01", "weekday": "水", "tickets": 5, "visitors": 3, "reserved": 1, "prefilled": 2,
         "no_show": 1, "waits": 7, "wait_mean": 13.29,  # 10 15 7 1 40 10 10 = 93 / 7
         "wait_p90": 40.0, "within_target": 0.8571},  # rank ceil(6.3) = 7; 6 of 7
        {"date": "2026-04-02", "weekday": "木", "tickets": 2, "visitors": 2, "reserved": 0, "prefilled": 0,
         "no_show": 0, "waits": 2, "wait_mean": 17.5, "wait_p90": 30.0, "within_target": 1.0},
    ]


def test_day_is_the_local_date_not_utc(engine):
    # F was issued at 08:40 JST on 2 April = 23:40 UTC on 1 April: it belongs to 2 April.
    r = compute(engine, Period("honcho", D2, D2), now=FAR_FUTURE)
    assert r.summary()["tickets"] == 2
    r1 = compute(engine, Period("honcho", D1, D1), now=FAR_FUTURE)
    assert r1.summary()["tickets"] == 5


def test_hourly(report):
    # tickets by hour of issue; waits by the hour the ticket joined the queue
    assert rows(report, "hourly") == [
        {"hour": "08:00", "tickets": 1, "visitors": 1, "tickets_per_day": 0.5, "n": 1,
         "wait_mean": 5.0, "wait_p50": 5.0, "wait_p90": 5.0, "wait_max": 5.0, "within_target": 1.0},
        # A10 B15 B7 B1 C40 C10: 83 / 6; sorted 1 7 10 10 15 40
        {"hour": "09:00", "tickets": 3, "visitors": 3, "tickets_per_day": 1.5, "n": 6,
         "wait_mean": 13.83, "wait_p50": 10.0, "wait_p90": 40.0, "wait_max": 40.0, "within_target": 0.8333},
        {"hour": "10:00", "tickets": 2, "visitors": 1, "tickets_per_day": 1.0, "n": 2,
         "wait_mean": 20.0, "wait_p50": 10.0, "wait_p90": 30.0, "wait_max": 30.0, "within_target": 1.0},
        {"hour": "11:00", "tickets": 1, "visitors": 0, "tickets_per_day": 0.5, "n": 0,
         "wait_mean": None, "wait_p50": None, "wait_p90": None, "wait_max": None, "within_target": None},
    ]


def test_waits_per_department(report):
    assert rows(report, "waits") == [
        # 1 7 10
        {"department": "hoken_nenkin", "name": "国保年金課", "n": 3, "mean": 6.0, "p50": 7.0, "p90": 10.0,
         "max": 10.0, "within_target": 1.0},
        # 5 10 10 15 30 40: 110 / 6; rank 3 and rank ceil(5.4) = 6
        {"department": "shimin", "name": "市民課", "n": 6, "mean": 18.33, "p50": 10.0, "p90": 40.0,
         "max": 40.0, "within_target": 0.8333},
        {"department": "(all)", "name": "全体", "n": 9, "mean": 14.22, "p50": 10.0, "p90": 40.0,
         "max": 40.0, "within_target": 0.8889},
    ]


def test_service_per_step(report):
    assert rows(report, "service_step") == [
        # B 12, B 6, C 14 (C's service counts from its second start, after the transfer)
        {"department": "hoken_nenkin", "name": "国保年金課", "n": 3, "mean": 10.67, "p50": 12.0, "p90": 14.0,
         "max": 14.0, "cv": 0.39},  # sample sd 4.163 / 10.667
        # A 5, B 10, F 6, G 8
        {"department": "shimin", "name": "市民課", "n": 4, "mean": 7.25, "p50": 6.0, "p90": 10.0,
         "max": 10.0, "cv": 0.31},  # sample sd 2.217 / 7.25
        {"department": "(all)", "name": "全体", "n": 7, "mean": 8.71, "p50": 8.0, "p90": 14.0,
         "max": 14.0, "cv": 0.39},  # sample sd 3.402 / 8.714
    ]


def test_service_per_procedure(report):
    assert rows(report, "service_procedure") == [
        # inkan was only served together with juminhyo (C): no figure of its own
        {"procedure": "inkan", "n": 0, "mean": None, "p50": None, "p90": None, "max": None, "cv": None, "steps": 1},
        {"procedure": "juminhyo", "n": 2, "mean": 5.5, "p50": 5.0, "p90": 6.0, "max": 6.0, "cv": 0.13, "steps": 3},
        {"procedure": "koseki", "n": 1, "mean": 8.0, "p50": 8.0, "p90": 8.0, "max": 8.0, "cv": None, "steps": 1},
        {"procedure": "nenkin_change", "n": 1, "mean": 6.0, "p50": 6.0, "p90": 6.0, "max": 6.0, "cv": None,
         "steps": 1},
        {"procedure": "nhi_loss", "n": 1, "mean": 12.0, "p50": 12.0, "p90": 12.0, "max": 12.0, "cv": None,
         "steps": 1},
        {"procedure": "tenshutsu", "n": 1, "mean": 10.0, "p50": 10.0, "p90": 10.0, "max": 10.0, "cv": None,
         "steps": 1},
    ]


def test_purposes(report):
    assert rows(report, "purposes") == [
        # A C D E F G; visitors A C F G; stays of those done: 16 70 17 39; online-capable: C
        {"purpose": "certificate", "tickets": 6, "share": 0.8571, "visitors": 4, "stay_mean": 35.5,
         "online_capable_share": 0.1667},
        {"purpose": "move_out", "tickets": 1, "share": 0.1429, "visitors": 1, "stay_mean": 55.0,
         "online_capable_share": 0.0},
    ]


def test_departments_visited(report):
    assert rows(report, "visits") == [
        {"departments": 1, "visitors": 3, "share": 0.6},
        {"departments": 2, "visitors": 2, "share": 0.4},
    ]


def test_counters(report):
    assert rows(report, "counters") == [
        # occupied: A 6, B 13, C 5 (to the transfer), D 6 (to the no-show), F 1 (to the requeue) + 7, G 9
        # serving:  A 5, B 10, C 3, D 0, F 0 + 6, G 8
        {"counter": 1, "open_minutes": 690.0, "occupied_minutes": 47.0, "serving_minutes": 32.0,
         "utilisation": 0.0681, "idle_minutes": 643.0, "calls": 7, "completed": 4},
        # B step 1: 13 (serving 12), B step 2: 6 (6), C: 15 (14)
        {"counter": 5, "open_minutes": 900.0, "occupied_minutes": 34.0, "serving_minutes": 32.0,
         "utilisation": 0.0378, "idle_minutes": 866.0, "calls": 3, "completed": 3},
    ]


def test_open_period_is_cut_at_now_for_live_figures(engine):
    # at 11:00 on day 1: counter 1 has been open 150 min, counter 5 120 min
    r = compute(engine, Period("honcho", D1, D1), now=T(D1, "11:00"))
    by = {x["counter"]: x["open_minutes"] for x in rows(r, "counters")}
    assert by == {1: 150.0, 5: 120.0}


def test_alerts(report):
    assert rows(report, "alerts") == [{"date": "2026-04-01", "help_requested": 1, "device_fault": 1}]


def test_empty_period_gives_none_not_zero_shares(engine):
    r = compute(engine, period_for("honcho", "2026-05-01", "2026-05-31"), now=FAR_FUTURE)
    s = r.summary()
    assert s["tickets"] == 0 and s["waits"] == 0
    assert s["within_target"] is None and s["reservation_share"] is None and s["wait_mean"] is None
    assert all(not t.rows for k, t in r.tables.items() if k not in ("summary", "waits", "service_step"))
    assert rows(r, "waits") == [{"department": "(all)", "name": "全体", "n": 0, "mean": None, "p50": None,
                                 "p90": None, "max": None, "within_target": None}]


def test_period_rejects_reversed_dates():
    with pytest.raises(ValueError, match="before it starts"):
        period_for("honcho", "2026-04-30", "2026-04-01")


def test_temporary_tables_are_gone_after_a_report(engine):
    compute(engine, Period("honcho", D1, D2), now=FAR_FUTURE)
    compute(engine, Period("honcho", D1, D2), now=FAR_FUTURE)  # would fail if kpi_tk lingered
    from sqlalchemy import inspect

    assert not [t for t in inspect(engine).get_table_names() if t.startswith("kpi_")]
