"""When to come: the forecast from a simulated month of events in a real database, against a
direct computation from the same events (docs/planning.md states the method and the tolerance)."""

from __future__ import annotations

import datetime as dt
import math
import random
import statistics
import uuid
from zoneinfo import ZoneInfo

from queue_server.core import forecast as FC
from queue_server.core.erlang import mean_wait
from queue_server.forecast_history import read_history
from queue_server.storage import Batch, Store

TZ = ZoneInfo("Asia/Tokyo")
TOLERANCE = 0.1  # minutes: the figures are rounded to 0.1 minute, nothing else may differ
FIRST = dt.date(2026, 3, 2)  # a Monday
HOURS = range(8, 17)


def true_rate(weekday: int, hour: int) -> float:
    """Arrivals per hour at 市民課 in the simulated month: Monday and late morning are busiest."""
    return 5.0 + (6.0 if weekday == 0 else 0.0) + (4.0 if hour in (9, 10) else 0.0) - (2.0 if hour == 12 else 0.0)


def poisson(rng: random.Random, lam: float) -> int:
    n, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return n
        n += 1


def simulated_month(rng: random.Random) -> tuple[list[dict], dict[tuple[str, int], int], list[float]]:
    """Four weeks of weekdays: issued/started/completed events, plus the direct figures."""
    events, counts, services = [], {}, []
    seq = 0
    for i in range(28):
        day = FIRST + dt.timedelta(days=i)
        if day.weekday() >= 5:
            continue
        for h in HOURS:
            n = poisson(rng, true_rate(day.weekday(), h))
            counts[(day.isoformat(), h)] = n
            for _ in range(n):
                at = dt.datetime(day.year, day.month, day.day, h, tzinfo=TZ).timestamp() + rng.uniform(0, 3600)
                minutes = rng.expovariate(1 / 8.0)
                services.append(minutes)
                tid = str(uuid.uuid4())
                for kind, when, payload in (
                    ("issued", at, {"steps": [{"department": "shimin", "procedures": ["juminhyo"], "minutes": 8}]}),
                    ("started", at + 300, {"department": "shimin"}),
                    ("completed", at + 300 + minutes * 60, {"department": "shimin"}),
                ):
                    seq += 1
                    events.append({"site": "honcho", "seq": seq, "at": when, "kind": kind, "ticket": tid, "step": 0,
                                   "counter": 1, "actor": "test", "payload": payload})
    return events, counts, services


def test_forecast_of_a_simulated_month_matches_a_direct_computation(tmp_path):
    rng = random.Random(14)
    events, counts, services = simulated_month(rng)
    store = Store(f"sqlite:///{tmp_path / 'lobby.db'}")
    store.migrate()
    store.write(Batch(events=events))
    now = dt.datetime(2026, 3, 30, 7, 0, tzinfo=TZ).timestamp()  # the Monday after, before opening
    history = read_history(store.engine, "honcho", now, TZ)
    prof = FC.profile(history, TZ)
    days = ["2026-03-30", "2026-03-31"]  # a Monday and a Tuesday
    booked = {("shimin", "2026-03-31", 10): 2}
    result = FC.forecast(prof, ["shimin"], days, "08:30", "17:15", {"shimin": 3.5}, booked, {"shimin": 5.0})
    assert result["history"] is True and result["history_days"] == 20
    service = statistics.fmean(services)  # direct: the mean of every simulated service
    for d in result["days"]:
        wd = dt.date.fromisoformat(d["day"]).weekday()
        same = [(FIRST + dt.timedelta(days=i)).isoformat() for i in range(28) if (FIRST + dt.timedelta(days=i)).weekday() == wd]
        assert d["samples"] == len(same) == 4
        for cell in d["hours"]:
            h = cell["hour"]
            per_day = [counts.get((day, h), 0) for day in same]
            b = booked.get(("shimin", d["day"], h), 0)
            sd = statistics.stdev(per_day)

            def wq(lam: float) -> float:  # 3.5 counters round to 4
                return min(mean_wait(lam / 60, 1 / service, 4), FC.WAIT_CAP)  # per minute in, minutes out

            direct = wq(statistics.fmean(per_day) + b)
            assert abs(cell["wait"] - direct) <= TOLERANCE, (d["day"], h, cell, direct)
            assert abs(cell["low"] - wq(max(0.0, statistics.fmean(per_day) - sd) + b)) <= TOLERANCE
            assert abs(cell["high"] - wq(statistics.fmean(per_day) + sd + b)) <= TOLERANCE
            assert cell["low"] <= cell["wait"] <= cell["high"]
            assert cell["level"] == ("quiet" if cell["wait"] < 10 else "busy" if cell["wait"] < 30 else "crowded")
            if 8 < h < 17:  # a whole hour of arrivals: the estimate is near the true rate
                assert abs(statistics.fmean(per_day) - true_rate(wd, h)) <= 3 * math.sqrt(true_rate(wd, h) / 4)
    monday_10 = result["days"][0]["hours"][2]["wait"]
    tuesday_15 = result["days"][1]["hours"][7]["wait"]
    assert monday_10 > tuesday_15  # the busy Monday morning shows as busier


def test_a_new_site_says_no_history_and_counts_only_bookings():
    prof = FC.profile(FC.History((), (), ()), TZ)
    result = FC.forecast(prof, ["shimin", "hoken_nenkin"], ["2026-04-01"], "08:30", "17:15",
                         {"shimin": 1.0, "hoken_nenkin": 1.0}, {("shimin", "2026-04-01", 9): 5}, {"shimin": 10.0})
    assert result["history"] is False and result["history_days"] == 0
    hours = {c["hour"]: c for c in result["days"][0]["hours"]}
    assert hours[10]["wait"] == 0 and hours[9]["wait"] > 0  # five bookings at 9 on one counter
    assert hours[9]["low"] == hours[9]["wait"] == hours[9]["high"]  # no history: no spread to show


def test_seasonal_factor_from_the_same_months_a_year_before():
    """April a year ago had twice the daily tickets of February–March a year ago: an April day's
    arrivals are doubled; with no year-old history the factor is 1."""
    window = tuple(f"2027-0{m}-{d:02d}" for m in (2, 3) for d in (1, 8, 15, 22))
    months = (("2026-02", 2000, 20), ("2026-03", 2000, 20), ("2026-04", 4000, 20))
    arrivals = tuple((dt.datetime(2027, 2, 1, 9, 30, tzinfo=TZ).timestamp(), "shimin") for _ in range(10))
    prof = FC.profile(FC.History(arrivals, (), window, months), TZ)
    assert FC.season_factor(prof, "2027-04-05") == 2.0
    assert FC.season_factor(prof, "2027-03-01") == 1.0
    assert FC.season_factor(FC.profile(FC.History(arrivals, (), window), TZ), "2027-04-05") == 1.0
    april = FC.forecast(prof, ["shimin"], ["2027-04-05", "2027-03-01"], "08:30", "17:15", {"shimin": 2.0}, {}, {})
    assert april["days"][0]["season"] == 2.0
    assert april["days"][0]["hours"][1]["wait"] > april["days"][1]["hours"][1]["wait"]  # 9:00, both Mondays
