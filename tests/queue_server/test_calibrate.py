"""Calibration round trip: a known arrival and service process drives the real server, over its
websocket protocol, for two working weeks of simulated time; calibrating its event log gives back
the parameters that produced it, within statistical tolerances.

The simulation's live mode plays one day in scaled wall time (its log is checked in
test_calibrate_live.py); weekday and clock-hour factors need weeks of arrivals, so here the queue
server runs in-process with a settable clock (QueueServer's ``clock``), a kiosk client issues
tickets at the arrival times drawn by the simulation's own generator (simulation.arrivals.generate
from a truth scenario), and counter clients call, start, recall, mark no-shows and complete with
service times drawn per procedure. Nothing waits for wall time: the clock jumps from event to event.

Tolerances are four standard errors of each estimate computed from the truth (Poisson counts,
binomial shares, means of lognormal times), so a correct fit passes for almost any seed and a fit
off by a few standard errors fails.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
import math
import random
from dataclasses import replace
from pathlib import Path

import pytest

from queue_server.calibrate import fit, fit_arrivals, fit_hours, fit_service, scenario_toml, usual_windows
from queue_server.config import DEFAULT_CONFIG_DIR, load_city
from queue_server.loaders import load_catalogue
from queue_server.storage import Store
from queue_server.tokens import ensure_for_city
from tests.support.live_server import Client

TZ = dt.timezone(dt.timedelta(hours=9))
DAYS = [dt.date(2026, 6, 1) + dt.timedelta(days=i) for i in range(12) if (dt.date(2026, 6, 1) + dt.timedelta(days=i)).weekday() < 5]
RATES = {"certificate": 80.0, "consultation": 10.0}  # tickets a day at weekday factor 1
WEEKDAY = (1.3, 1.0, 0.9, 0.8, 1.0)
HOURS = {8: 0.6, 9: 1.0, 10: 1.3, 11: 1.4, 12: 1.1, 13: 1.2, 14: 1.0, 15: 0.8, 16: 0.5, 17: 0.3}
CERTIFICATES = {"juminhyo": 0.45, "koseki": 0.2, "inkan": 0.15, "juminhyo,inkan": 0.2}
SERVICE = {  # minutes, cv — lognormal per procedure; a step lasts the sum of its procedures
    "juminhyo": (5.0, 0.4),
    "koseki_certificate": (9.0, 0.5),
    "inkan_certificate": (3.0, 0.3),
    "consultation_intake": (20.0, 0.5),
    "consult_living": (5.0, 0.5),
}
NO_SHOW = 0.03
WALK, RECALL = 30.0, 60.0  # seconds
COUNTERS = {1: "shimin", 2: "shimin", 3: "shimin", 12: "soudan"}
OPEN, CLOSE = 8 * 60 + 30, 17 * 60 + 15


def truth_scenario(tmp: Path) -> Path:
    """The arrival process in the simulation's scenario format, so its own generator draws it."""
    hw = ", ".join(f'"{h}" = {w}' for h, w in HOURS.items())
    p = tmp / "truth.toml"
    p.write_text(f"""
[scenario]
name = "truth"
kind = "lobby"
site = "honcho"
[calendar]
days = [{", ".join(f'"{d}"' for d in DAYS)}]
working_days_per_year = 243
[arrivals]
source = "test truth"
site_share = 1.0
weekday = {list(WEEKDAY)}
hour_weights = {{ {hw} }}
[purposes.certificate]
yearly = {RATES["certificate"] * 243}
source = "test truth"
route = [{{ department = "shimin", minutes = 6 }}]
[purposes.consultation]
yearly = {RATES["consultation"] * 243}
source = "test truth"
route = [{{ department = "soudan", minutes = 25 }}]
""", encoding="utf-8")
    return p


def lognormal(rng: random.Random, mean: float, cv: float) -> float:
    s2 = math.log(1 + cv * cv)
    return rng.lognormvariate(math.log(mean) - s2 / 2, math.sqrt(s2))


class Clock:
    def __init__(self, t: float):
        self.t = t

    def __call__(self) -> float:
        return self.t


class Driver:
    """Kiosk and counters acting at simulated instants; the server is the state authority."""

    def __init__(self, url: str, tokens, clock: Clock, rng: random.Random, compress: float = 1.0):
        self.url, self.tokens, self.clock, self.rng = url, tokens, clock, rng
        self.compress = compress  # > 1: counter times shrunk, as a demo replayed faster than real time
        self.heap: list = []
        self.seq = itertools.count()
        self.keys = itertools.count(1)
        self.idle: set[int] = set()
        self.pause_pending: set[int] = set()
        self.paused: set[int] = set()

    async def connect(self) -> None:
        self.kiosk, _ = await Client.open(self.url, role="kiosk", token=self.tokens.roles["kiosk"], device="kiosk-1",
                                          site="honcho")
        self.counters = {}
        for n in COUNTERS:
            c, _ = await Client.open(self.url, role="counter", token=self.tokens.counters["honcho"][n], site="honcho",
                                     counter=n)
            self.counters[n] = c

    def at(self, t: float, kind: str, *data) -> None:
        heapq.heappush(self.heap, (t, next(self.seq), kind, data))

    async def day(self, day: dt.date, arrivals: list[tuple[float, str]]) -> None:
        base = dt.datetime.combine(day, dt.time(0), TZ).timestamp()
        for n in COUNTERS:
            self.at(base + OPEN * 60, "open", n)
        self.at(base + 12 * 3600, "pause", 1)  # counter 1 takes its lunch break 12:00-13:00
        self.at(base + 13 * 3600, "resume", 1)
        for minute, purpose in arrivals:
            self.at(base + minute * 60, "arrive", purpose)
        last = base + CLOSE * 60
        while self.heap:
            t, _, kind, data = heapq.heappop(self.heap)
            self.clock.t = t
            last = max(last, t)
            await getattr(self, f"_{kind}")(*data)
        self.clock.t = last
        for c in self.counters.values():
            await c.ok("close")
        self.idle.clear()

    async def _open(self, n: int) -> None:
        await self.counters[n].ok("open")
        self.idle.add(n)
        await self._call(n)

    async def _pause(self, n: int) -> None:
        if n in self.idle:
            self.idle.discard(n)
            await self.counters[n].ok("pause")
            self.paused.add(n)
        else:
            self.pause_pending.add(n)

    async def _resume(self, n: int) -> None:
        if n in self.pause_pending:  # still serving since 12:00: the break is skipped
            self.pause_pending.discard(n)
            return
        self.paused.discard(n)
        await self._open(n)

    async def _arrive(self, purpose: str) -> None:
        if purpose == "certificate":
            r, acc, pick = self.rng.random(), 0.0, None
            for v, p in CERTIFICATES.items():
                acc += p
                if r < acc:
                    pick = v
                    break
            answers = {"certificates": pick or "juminhyo"}
        else:
            answers = {"consult_topic": "living"}
        await self.kiosk.ok("issue", purposes=[purpose], answers=answers, idempotency_key=f"k-{next(self.keys)}")
        dept = "shimin" if purpose == "certificate" else "soudan"
        for n in sorted(self.idle):
            if COUNTERS[n] == dept:
                await self._call(n)
                break

    async def _call(self, n: int) -> None:
        res = await self.counters[n].ok("call_next")
        if res["ticket"] is None:
            self.idle.add(n)
            return
        self.idle.discard(n)
        step = next(s for s in res["ticket"]["steps"] if s["state"] == "called")
        if self.rng.random() < NO_SHOW:
            self.at(self.clock.t + RECALL, "recall", n, 1)
        else:
            self.at(self.clock.t + WALK, "start", n, tuple(step["procedures"]))

    async def _recall(self, n: int, k: int) -> None:
        await self.counters[n].ok("recall")
        self.at(self.clock.t + RECALL, "recall" if k < 2 else "no_show", n, *((k + 1,) if k < 2 else ()))

    async def _no_show(self, n: int) -> None:
        await self.counters[n].ok("no_show")
        await self._next(n)

    async def _start(self, n: int, procedures: tuple[str, ...]) -> None:
        await self.counters[n].ok("start")
        minutes = sum(lognormal(self.rng, *SERVICE[p]) for p in procedures)
        self.at(self.clock.t + minutes * 60 / self.compress, "complete", n)

    async def _complete(self, n: int) -> None:
        await self.counters[n].ok("complete")
        await self._next(n)

    async def _next(self, n: int) -> None:
        if n in self.pause_pending:
            self.pause_pending.discard(n)
            await self.counters[n].ok("pause")
            self.paused.add(n)
            return
        await self._call(n)


async def produce_log(db_url: str, tmp: Path, n_days: int | None = None, compress: float = 1.0) -> None:
    from queue_server.server import QueueServer, run_server
    from simulation.arrivals import generate
    from simulation.scenario import load_scenario

    city = load_city()
    cat = load_catalogue(DEFAULT_CONFIG_DIR / "catalogue", city.raw)
    tokens, _ = ensure_for_city(tmp / "secrets.toml", city)
    clock = Clock(dt.datetime.combine(DAYS[0], dt.time(8), TZ).timestamp())
    qs = QueueServer(city, Store(db_url), tokens, cat, clock=clock)
    qs.announcer = None  # no voice synthesis here (the real announcer starts a process)
    ready: asyncio.Future = asyncio.get_running_loop().create_future()
    stop: asyncio.Future = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(run_server(qs, "127.0.0.1", 0, ready.set_result, stop))
    port = await asyncio.wait_for(ready, 60)
    try:
        sc = load_scenario(truth_scenario(tmp))
        rng = random.Random(20260601)
        driver = Driver(f"ws://127.0.0.1:{port}/ws", tokens, clock, rng, compress)
        await driver.connect()
        for i, day in enumerate(sc.days[:n_days]):
            await driver.day(day, generate(sc, day, random.Random(1000 + i)))
    finally:
        stop.set_result(None)
        await server


@pytest.fixture(scope="module")
def produced(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("calibrate")
    url = f"sqlite:///{tmp / 'log.db'}"
    import os

    old = os.environ.get("MADOGUCHI_SQLITE_SYNC")
    os.environ["MADOGUCHI_SQLITE_SYNC"] = "OFF"  # a test log needs no durability: faster commits
    try:
        asyncio.run(produce_log(url, tmp))
    finally:
        if old is None:
            del os.environ["MADOGUCHI_SQLITE_SYNC"]
        else:
            os.environ["MADOGUCHI_SQLITE_SYNC"] = old
    city = load_city()
    cat = load_catalogue(DEFAULT_CONFIG_DIR / "catalogue", city.raw)
    return tmp, Store(url), fit(Store(url).engine, city, "honcho", DAYS[0], DAYS[-1], cat)


# ----------------------------------------------------------------------------- expected counts


def _open_minutes(h: int) -> float:
    return max(0.0, min(CLOSE, (h + 1) * 60) - max(OPEN, h * 60))


def _mass() -> float:
    return sum(w * _open_minutes(h) for h, w in HOURS.items())


def expected_total(purpose: str | None = None) -> float:
    rates = RATES if purpose is None else {purpose: RATES[purpose]}
    return sum(r * WEEKDAY[d.weekday()] for d in DAYS for r in rates.values())


def tol(expected_count: float) -> float:
    """Four relative standard errors of a Poisson count."""
    return 4.0 / math.sqrt(expected_count)


# ----------------------------------------------------------------------------- round trip


def test_rates_per_purpose_come_back(produced):
    _, _, cal = produced
    # the fit scales weekday factors to average 1 over the days observed, so compare the product
    mean_w = sum(WEEKDAY[d.weekday()] for d in DAYS) / len(DAYS)
    for p, r in RATES.items():
        true = r * mean_w
        assert abs(cal.rates[p] - true) / true < tol(expected_total(p)), (p, cal.rates[p], true)


def test_weekday_factors_come_back(produced):
    _, _, cal = produced
    mean_w = sum(WEEKDAY[d.weekday()] for d in DAYS) / len(DAYS)
    for k in range(5):
        true = WEEKDAY[k] / mean_w
        n = sum(RATES.values()) * WEEKDAY[k] * sum(1 for d in DAYS if d.weekday() == k)
        assert abs(cal.weekday[k] - true) / true < tol(n), (k, cal.weekday[k], true)


def test_hour_weights_come_back(produced):
    _, _, cal = produced
    avg = _mass() / (CLOSE - OPEN)  # the truth's average weight per open minute
    total = expected_total()
    for h, w in HOURS.items():
        true = w / avg
        n = total * w * _open_minutes(h) / _mass()
        assert abs(cal.hour_weights[h] - true) / true < tol(n), (h, cal.hour_weights[h], true)


def test_service_per_procedure_comes_back(produced):
    _, _, cal = produced
    for p in ("juminhyo", "koseki_certificate", "inkan_certificate"):
        mean, cv = SERVICE[p]
        f = cal.procedures[p]
        assert f.identified and f.source == "log"
        n = f.alone
        assert abs(f.mean_minutes - mean) / mean < 4 * cv / math.sqrt(n), (p, f)
        # the sample CV of a lognormal is noisier than a normal's: 5 standard errors of sd/mean
        assert abs(f.cv - cv) < 5 * cv * math.sqrt((1 + 2 * cv * cv) / (2 * n)), (p, f)


def test_a_procedure_set_always_served_together_keeps_its_total(produced):
    _, _, cal = produced
    intake, living = cal.procedures["consultation_intake"], cal.procedures["consult_living"]
    assert not intake.identified and not living.identified  # always in one step together
    (route,) = [v for v in cal.variants if v.purpose == "consultation"]
    (step,) = route.steps
    mean = SERVICE["consultation_intake"][0] + SERVICE["consult_living"][0]
    sd = math.hypot(*(SERVICE[p][0] * SERVICE[p][1] for p in ("consultation_intake", "consult_living")))
    n = intake.steps
    assert abs(step.minutes - mean) < 4 * sd / math.sqrt(n), step
    assert abs(step.cv - sd / mean) < 5 * (sd / mean) * math.sqrt(1 / (2 * n)) * 1.5, step


def test_routes_and_their_shares_come_back(produced):
    _, _, cal = produced
    cert = {v.steps[0].procedures: v for v in cal.variants if v.purpose == "certificate"}
    expect = {("juminhyo",): 0.45, ("koseki_certificate",): 0.2, ("inkan_certificate",): 0.15,
              ("juminhyo", "inkan_certificate"): 0.2}
    assert set(cert) == set(expect)
    n = sum(v.count for v in cert.values())
    for procs, share in expect.items():
        assert abs(cert[procs].share - share) < 4 * math.sqrt(share * (1 - share) / n), (procs, cert[procs].share)
        assert [s.department for s in cert[procs].steps] == ["shimin"]


def test_behaviour_comes_back(produced):
    _, _, cal = produced
    b = cal.behaviour
    waits = sum(v.count for v in cal.variants)
    assert abs(b["no_show"] - NO_SHOW) < 4 * math.sqrt(NO_SHOW * (1 - NO_SHOW) / waits)
    assert b["walk_seconds"] == pytest.approx(WALK)
    assert b["recall_seconds"] == pytest.approx(RECALL)
    assert b["assistance"] == 0.0


def test_counter_windows_come_back(produced):
    _, _, cal = produced
    one = cal.counters[1]
    assert one[0] == (OPEN, 12 * 60) and one[1][0] == 13 * 60 and one[1][1] >= CLOSE
    assert cal.counters[2][0][0] == OPEN and cal.counters[12][0][0] == OPEN
    assert cal.counters[5] == ()  # never opened: the scenario drops it


def test_the_scenario_loads_and_the_simulation_runs_it(produced):
    from simulation.runner import replicate
    from simulation.scenario import load_scenario

    tmp, _, cal = produced
    path = tmp / "calibrated.toml"
    path.write_text(scenario_toml(cal, "calibrated"), encoding="utf-8")
    sc = load_scenario(path)
    assert sc.days == tuple(DAYS)
    assert [c.number for c in sc.counters] == [1, 2, 3, 12]
    out = replicate(replace(sc, days=sc.days[:1]), seed=1, replication=0)
    assert out  # one simulated day of the calibrated lobby


def test_the_calibrated_scenario_gives_back_the_logs_waits(produced):
    """The round trip's last leg: the waits the calibrated scenario simulates agree with the waits
    the log shows, within their combined 95% intervals (the log's over its days, the simulation's
    over its replications)."""
    from queue_server.kpi import compute, period_for
    from simulation.runner import run_replications
    from simulation.scenario import load_scenario
    from simulation.stats import combine, mean_ci

    tmp, store, cal = produced
    path = tmp / "calibrated_waits.toml"
    path.write_text(scenario_toml(cal, "calibrated_waits"), encoding="utf-8")
    sc = load_scenario(path)
    log_days = [r["wait_mean"] for r in compute(store.engine, period_for("honcho", DAYS[0], DAYS[-1])).tables["daily"].as_dicts()]
    log = mean_ci(log_days)
    sim = combine(sc, run_replications(sc, 6, seed=5))["overall"]["wait_mean"]
    assert log["n"] == len(DAYS) and log["mean"] > 0.5  # people did wait
    assert abs(sim["mean"] - log["mean"]) <= log["ci"] + sim["ci"], (log, sim)


def test_the_kpi_report_of_the_produced_log_is_consistent(produced):
    from queue_server.kpi import Period, compute

    _, store, cal = produced
    r = compute(store.engine, Period("honcho", DAYS[0], DAYS[-1]))
    s = r.summary()
    assert s["tickets"] == cal.tickets
    assert s["visitors"] + s["no_shows"] == s["tickets"]  # everyone is served or a no-show
    assert s["recalls"] == 2 * s["no_shows"]  # the driver recalls twice before a no-show


def test_calibrate_cli_writes_a_scenario_and_json(produced, capsys):
    import json

    from run import main
    from simulation.scenario import load_scenario

    tmp, store, cal = produced
    out, js = tmp / "cli.toml", tmp / "cli.json"
    rc = main(["calibrate", "--db", store.url, "--site", "honcho", "--from", str(DAYS[0]), "--to", str(DAYS[-1]),
               "--out", str(out), "--json", str(js)])
    assert rc == 0
    assert "手続き別処理時間" in capsys.readouterr().out
    assert load_scenario(out).name == "cli"
    data = json.loads(js.read_text(encoding="utf-8"))
    assert data["tickets"] == cal.tickets and data["rates"] == pytest.approx(dict(cal.rates))


def test_what_is_not_fitted_is_said_and_intervals_cover_the_truth(produced):
    _, _, cal = produced
    assert any("patience" in d for d in cal.defaulted)
    mean_w = sum(WEEKDAY[d.weekday()] for d in DAYS) / len(DAYS)
    for p, r in RATES.items():
        lo, hi = cal.intervals[f"rate:{p}"]
        assert lo < r * mean_w < hi, (p, lo, hi, r * mean_w)  # tickets a day over these days
        assert hi - lo > 0.02 * r  # and it is an interval: a few days carry sampling noise
    lo, hi = cal.intervals["proc:juminhyo"]
    assert lo < SERVICE["juminhyo"][0] < hi
    toml = scenario_toml(cal)
    assert "# not fitted: patience" in toml and "bootstrap intervals" in toml


def test_simulate_on_a_calibrated_scenario_shows_the_fits_uncertainty(produced, capsys):
    from run import main
    from simulation.scenario import load_scenario

    tmp, _, cal = produced
    path = tmp / "with_interval.toml"
    path.write_text(scenario_toml(cal, "with_interval"), encoding="utf-8")
    lo, hi = load_scenario(path).arrival_interval
    assert lo < 1.0 < hi
    rc = main(["simulate", str(path), "-r", "3", "-j", "1", "--quiet", "--days", str(DAYS[0])])
    out = capsys.readouterr().out
    assert rc == 0 and "calibration's uncertainty" in out and "(low / fitted / high)" in out


def test_a_log_in_compressed_time_fails_loudly(tmp_path, capsys):
    """A demo replayed 600× faster than real time: calibrate refuses it, exit 2, with the reason."""
    from queue_server.calibrate import CalibrationError
    from run import main

    url = f"sqlite:///{tmp_path / 'fast.db'}"
    asyncio.run(produce_log(url, tmp_path, n_days=1, compress=600.0))
    city = load_city()
    with pytest.raises(CalibrationError, match="compressed time"):
        fit(Store(url).engine, city, "honcho", DAYS[0], DAYS[0])
    out = tmp_path / "never.toml"
    rc = main(["calibrate", "--db", url, "--site", "honcho", "--from", str(DAYS[0]), "--to", str(DAYS[0]), "--out", str(out)])
    assert rc == 2 and not out.exists()
    assert "cannot be fitted" in capsys.readouterr().err


# ----------------------------------------------------------------------------- pure parts


def test_fit_arrivals_is_exact_on_expected_counts():
    days = DAYS
    counts = {(d, p): r * WEEKDAY[d.weekday()] for d in days for p, r in RATES.items()}
    rates, w, _ = fit_arrivals(counts, days)
    mean_w = sum(WEEKDAY[d.weekday()] for d in days) / len(days)
    assert rates["certificate"] == pytest.approx(RATES["certificate"] * mean_w)
    assert w[0] == pytest.approx(1.3 / mean_w)


def test_fit_hours_counts_early_tickets_in_the_first_open_hour():
    w, notes = fit_hours({7: 10, 8: 20, 9: 60}, OPEN, 10 * 60)
    # 30 tickets in the 30 open minutes of hour 8, 60 in hour 9: equal rates per minute
    assert w == {8: pytest.approx(1.0), 9: pytest.approx(1.0)}
    assert "hour 07" in notes[0]


def test_fit_service_solves_sums_and_flags_what_it_cannot_split():
    g = {("a",): (10, 10 * 300.0, 10 * 300.0**2 + 9 * 60.0**2),
         ("a", "b"): (10, 10 * 500.0, 10 * 500.0**2 + 9 * 100.0**2),
         ("c", "d"): (5, 5 * 600.0, 5 * 600.0**2 + 4 * 60.0**2)}
    f = fit_service(g, {})
    assert f["a"].mean_minutes == pytest.approx(5.0) and f["b"].mean_minutes == pytest.approx(200 / 60)
    assert f["a"].cv == pytest.approx(1.0 / 5.0)  # sd 60 s of a 300 s mean
    assert f["b"].cv == pytest.approx(math.sqrt(100**2 - 60**2) / 200)
    assert f["a"].identified and f["b"].identified
    assert not f["c"].identified and f["c"].mean_minutes + f["d"].mean_minutes == pytest.approx(10.0)


def test_usual_windows_need_half_the_days():
    iv = [(1, 510, 720), (1, 780, 1035), (2, 510, 720), (2, 780, 1035), (3, 510, 1035)]
    assert usual_windows(iv, 3) == ((510, 720), (780, 1035))
    assert usual_windows(iv, 2) == ((510, 1035),)  # with 2 days, counter open at lunch on one is half


def test_patience_is_fitted_from_cancellations_with_served_waits_as_censored(tmp_path):
    """Served waits 10, 20, 30 min and two tickets cancelled after 15 and 25 min while waiting:
    exponential maximum likelihood = total waiting time / leavers = (60 + 40) / 2 = 50 min."""
    from queue_server.calibrate import scenario_toml
    from tests.queue_server.kpi_log import D1, LogBuilder

    b = LogBuilder()
    b.ev(D1, "08:30", "counter_open", counter=1, staff="x")
    s = [("shimin", ("juminhyo",))]
    for i, (t, w) in enumerate((("09:00", 10), ("09:40", 20), ("10:30", 30))):
        h, m = (int(x) for x in t.split(":"))
        call = f"{h + (m + w) // 60:02d}:{(m + w) % 60:02d}"
        done = f"{h + (m + w + 5) // 60:02d}:{(m + w + 5) % 60:02d}"
        b.issued(D1, t, f"S{i}", s)
        b.called(D1, call, f"S{i}", 0, 1, "shimin"), b.started(D1, call, f"S{i}", 0, 1, "shimin")
        b.completed(D1, done, f"S{i}", 0, 1, "shimin", ["juminhyo"], True)
    b.issued(D1, "11:00", "L1", s)
    b.ev(D1, "11:15", "cancelled", "L1", reason="")
    b.issued(D1, "11:05", "L2", s)
    b.ev(D1, "11:30", "cancelled", "L2", reason="")
    b.ev(D1, "17:15", "counter_closed", counter=1, staff="x")
    store = Store(f"sqlite:///{tmp_path / 'p.db'}")
    store.migrate()
    b.write(store)
    cal = fit(store.engine, load_city(), "honcho", D1, D1)
    assert cal.behaviour["patience_minutes"] == pytest.approx(50.0)
    assert not any(d.startswith("patience") for d in cal.defaulted)
    toml = scenario_toml(cal)
    assert 'patience_distribution = "exponential"' in toml and "patience_minutes = 50.00" in toml
