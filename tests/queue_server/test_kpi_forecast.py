"""Forecast accuracy from the event log: predictions in `issued`/`completed`, actual waits from `called`."""

from __future__ import annotations

import asyncio

import pytest

from queue_server.kpi import Period, compute
from queue_server.kpi_forecast import Forecast, accuracy, pair
from queue_server.storage import Store

from .kpi_log import D1, LogBuilder, T
from .test_server_integration import counter, issue, kiosk


def test_pair_matches_each_prediction_with_the_first_call_of_its_step():
    ev = [
        {"at": 0, "kind": "issued", "ticket": "A", "step": None,
         "payload": {"waits": {"shimin": {"step": 0, "wait_minutes": 10.0, "ahead": 2}}}},
        {"at": 600 + 120, "kind": "called", "ticket": "A", "step": 0, "payload": {}},  # 12 min
        {"at": 900, "kind": "called", "ticket": "A", "step": 0, "payload": {}},  # a second call: not a new wait
        {"at": 1200, "kind": "completed", "ticket": "A", "step": 0,
         "payload": {"waits": {"hoken_nenkin": {"step": 1, "wait_minutes": 4.0, "ahead": 0}}}},
        {"at": 1200 + 60, "kind": "called", "ticket": "A", "step": 1, "payload": {}},  # 1 min
        {"at": 50, "kind": "issued", "ticket": "B", "step": None,
         "payload": {"waits": {"shimin": {"step": 0, "wait_minutes": None, "ahead": 0}}}},  # unknown: not scored
    ]
    got = pair(ev, offset=0)
    assert got == [Forecast("shimin", 0, 10.0, 12.0), Forecast("hoken_nenkin", 0, 4.0, 1.0)]


def test_accuracy_figures():
    rows = [Forecast("d", 9, 10, 12), Forecast("d", 9, 20, 10), Forecast("d", 9, 4, 5)]
    a = accuracy(rows)
    # errors -2, +10, -1; mean actual 9; RMSE sqrt(105/3)
    assert a.n == 3 and a.mae == pytest.approx(13 / 3, abs=0.01)
    assert a.rase == pytest.approx((105 / 3) ** 0.5 / 9, abs=0.001)
    assert a.within5 == pytest.approx(2 / 3, abs=1e-4)
    assert a.within25 == pytest.approx(2 / 3, abs=1e-4)  # |−2| ≤ 3, |10| > 2.5, |−1| ≤ 1.25
    assert accuracy([]).n == 0


def test_kpi_report_has_forecast_tables(tmp_path):
    b = LogBuilder()
    b.ev(D1, "09:00", "issued", "A", waits={"shimin": {"step": 0, "wait_minutes": 10.0, "ahead": 1}})
    b.called(D1, "09:20", "A", 0, 1, "shimin")
    b.ev(D1, "10:00", "issued", "B", waits={"shimin": {"step": 0, "wait_minutes": 5.0, "ahead": 0}})
    b.called(D1, "10:04", "B", 0, 1, "shimin")
    store = Store(f"sqlite:///{tmp_path / 'k.db'}")
    store.migrate()
    b.write(store)
    r = compute(store.engine, Period("honcho", D1, D1), department_names={"shimin": "市民課"}, now=T(D1, "23:00"))
    rows = r.tables["forecast"].as_dicts()
    assert rows[0]["department"] == "shimin" and rows[0]["name"] == "市民課" and rows[0]["n"] == 2
    assert rows[0]["mae"] == pytest.approx(5.5)  # |10 − 20| and |5 − 4|
    hours = {x["hour"]: x["n"] for x in r.tables["forecast_hour"].as_dicts()}
    assert hours == {9: 1, 10: 1}


def test_server_logs_the_wait_shown_at_issue_and_at_each_queue_entry(live):
    async def scenario():
        k = await kiosk(live)
        shimin = await counter(live, 1)
        await counter(live, 5)
        first = await issue(k, "fc-1", purposes=("certificate",))
        second = await issue(k, "fc-2")  # death: shimin then hoken_nenkin
        assert "wait_kind" in second and "wait_low" in second
        await shimin.ok("call_next")
        await shimin.ok("start")
        await shimin.ok("complete")
        await shimin.ok("call_next")
        await shimin.ok("start")
        await shimin.ok("complete")
        third = await issue(k, "fc-3", purposes=("certificate",))
        await shimin.ok("call", ticket=third["ticket"]["id"])
        await shimin.ok("transfer", department="zeimu")
        return first, second

    first, second = asyncio.run(scenario())
    store = Store(live.db_url)
    with store.engine.connect() as conn:
        from queue_server.kpi_forecast import read_events

        events = read_events(conn, "honcho", 0, 4e9, 0)
    issued = {e["ticket"]: e["payload"] for e in events if e["kind"] == "issued"}
    p = issued[second["ticket"]["id"]]
    assert p["wait_minutes"] == second["wait_minutes"]  # the figure shown is the figure logged
    assert p["waits"]["shimin"]["step"] == 0 and p["waits"]["shimin"]["ahead"] == 1
    released = [e for e in events if e["kind"] == "completed" and e["ticket"] == second["ticket"]["id"]]
    assert released and "hoken_nenkin" in released[0]["payload"]["waits"]
    # a transfer puts the step in another queue: that wait is logged too
    moved = [e for e in events if e["kind"] == "transferred"]
    assert moved and moved[0]["payload"]["waits"]["zeimu"]["step"] == 0
