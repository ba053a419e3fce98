#!/usr/bin/env python3
"""KPI report benchmark: a month of a busy site (~20,000 tickets) written into the events table,
then the whole KPI report (queue_server.kpi.compute), its Excel workbook and CSVs, and the
calibration fit timed. Prints a table and JSON; never fails on time.

    .venv/bin/python bench/kpi_bench.py [--tickets 20000] [--db URL] [--runs 3] [--json FILE]

The log is synthetic but shaped like the real one: 1-3 steps per ticket at five departments of a
busy site (37 counters, each holding one ticket at a time, the free one calling first), lognormal
services, recalls, no-shows, procedures added at the counter, counters opened and closed, kiosk
alerts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from queue_server.calibrate import fit  # noqa: E402
from queue_server.config import load_city  # noqa: E402
from queue_server.kpi import KpiContext, report_for  # noqa: E402
from queue_server.kpi_report import write_csv, xlsx_bytes  # noqa: E402
from queue_server.storage import EventRow, Store  # noqa: E402

TZ = ZoneInfo("Asia/Tokyo")
FIRST, LAST = dt.date(2026, 4, 1), dt.date(2026, 4, 30)
HOLIDAYS = {dt.date(2026, 4, 29)}  # 昭和の日
DEPTS = {  # department -> counters, procedures with mean minutes (a busy site: 37 counters)
    "shimin": (list(range(1, 21)), {"juminhyo": 5, "koseki_certificate": 6, "inkan_certificate": 4, "moving_out": 10, "moving_in": 15}),
    "hoken_nenkin": ([21, 22, 23, 24, 25, 26], {"nhi_join": 8, "nhi_loss": 6, "pension_change": 7}),
    "kosodate": ([27, 28, 29, 30, 31], {"child_allowance": 10, "daycare": 15}),
    "zeimu": ([32, 33], {"income_certificate": 5}),
    "soudan": ([34, 35, 36, 37], {"consultation_intake": 30}),
}
PURPOSES = [("certificate", 0.55, ["shimin"]), ("move_in", 0.15, ["shimin", "hoken_nenkin", "kosodate"]),
            ("move_out", 0.15, ["shimin", "hoken_nenkin"]), ("certificate_tax", 0.1, ["zeimu"]),
            ("consultation", 0.05, ["soudan"])]


def working_days() -> list[dt.date]:
    d, out = FIRST, []
    while d <= LAST:
        if d.weekday() < 5 and d not in HOLIDAYS:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def generate(tickets: int, rng: random.Random) -> list[dict]:
    days = working_days()
    per_day = tickets / len(days)
    rows: list[dict] = []

    def ev(at: float, kind: str, ticket: str | None = None, step: int | None = None, counter: int | None = None, **payload) -> None:
        rows.append({"site": "honcho", "at": at, "kind": kind, "ticket": ticket, "step": step, "counter": counter,
                     "actor": "", "payload": payload})

    n = 0
    for day in days:
        base = dt.datetime.combine(day, dt.time(0), TZ).timestamp()
        free = {c: base + 510 * 60 for counters, _ in DEPTS.values() for c in counters}
        for c in free:
            ev(base + 510 * 60, "counter_open", counter=c, staff="")
        arrivals = sorted(base + rng.uniform(510, 1020) * 60 for _ in range(int(rng.gauss(per_day, math.sqrt(per_day)))))
        for issued in arrivals:
            n += 1
            tid = f"t{n:06d}"
            purpose, _, route = rng.choices(PURPOSES, weights=[w for _, w, _ in PURPOSES])[0]
            steps = []
            for d in route:
                procs = list(DEPTS[d][1])
                steps.append({"department": d, "procedures": rng.sample(procs, k=min(len(procs), rng.choice([1, 1, 2]))),
                              "minutes": 8.0})
            ev(issued, "issued", tid, number=str(n), purposes=[purpose], lang="ja", assistance=rng.random() < 0.05,
               reserved=rng.random() < 0.08, steps=steps, prefilled=rng.random() < 0.4,
               online_capable=purpose == "certificate" and rng.random() < 0.6, to_confirm=0, device="kiosk-1")
            t = issued
            for i, s in enumerate(steps):
                # the department's counter free first calls it: a counter holds one ticket at a time
                counter = min(DEPTS[s["department"]][0], key=lambda c: free[c])
                t = max(t, free[counter]) + rng.uniform(5, 60)
                ev(t, "called", tid, i, counter, number=str(n), department=s["department"])
                if rng.random() < 0.02:
                    for k in (1, 2):
                        t += 60
                        ev(t, "recalled", tid, i, counter, number=str(n), department=s["department"], recalls=k)
                    ev(t + 60, "no_show", tid, i, counter, department=s["department"])
                    free[counter] = t + 60
                    break
                t += 30
                ev(t, "started", tid, i, counter, department=s["department"])
                if rng.random() < 0.03:
                    ev(t + 60, "procedure_added", tid, i, counter, department=s["department"], procedures=["extra"])
                mean = sum(DEPTS[s["department"]][1][p] for p in s["procedures"]) * 60
                t += rng.lognormvariate(math.log(mean) - 0.125, 0.5)
                last = i == len(steps) - 1
                ev(t, "completed", tid, i, counter, department=s["department"], procedures=s["procedures"],
                   next=[] if last else [steps[i + 1]["department"]], closed=last)
                free[counter] = t
        for c, t in free.items():
            ev(max(t, base + 1035 * 60) + 1, "counter_closed", counter=c, staff="")
        for _ in range(rng.randint(0, 4)):
            ev(base + rng.uniform(510, 1035) * 60, "help_requested", device="kiosk-1", reason="staff_help")
    rows.sort(key=lambda r: r["at"])
    for i, r in enumerate(rows, 1):
        r["seq"] = i
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tickets", type=int, default=20000)
    ap.add_argument("--db", default=None, help="SQLAlchemy URL of an EMPTY database (default: a temporary SQLite file)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="kpi-bench-")
    url = args.db or f"sqlite:///{tmp}/kpi.db"
    store = Store(url)
    store.migrate()
    t0 = time.perf_counter()
    rows = generate(args.tickets, random.Random(1))
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with store.engine.begin() as conn:
        for i in range(0, len(rows), 5000):
            conn.execute(EventRow.__table__.insert(), rows[i:i + 5000])
    insert_s = time.perf_counter() - t0

    city = load_city()
    ctx = KpiContext.from_city(city, "honcho")
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        report = report_for(store.engine, ctx, "honcho", FIRST, LAST)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    xlsx = xlsx_bytes(report)
    write_csv(report, Path(tmp) / "csv")
    out_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cal = fit(store.engine, city, "honcho", FIRST, LAST)
    fit_s = time.perf_counter() - t0
    s = report.summary()
    figures = {
        "database": store.dialect,
        "tickets": s["tickets"],
        "events": len(rows),
        "days": s["open_days"],
        "generate_s": round(gen_s, 2),
        "insert_s": round(insert_s, 2),
        "report_s_median": round(statistics.median(times), 3),
        "report_s_runs": [round(x, 3) for x in times],
        "xlsx_csv_s": round(out_s, 3),
        "xlsx_bytes": len(xlsx),
        "calibrate_s": round(fit_s, 3),
        "calibrated_routes": len(cal.variants),
        "wait_mean_min": s["wait_mean"],
        "wait_p90_min": s["wait_p90"],
        "utilisation": s["counter_utilisation"],
        "python": platform.python_version(),
    }
    print(f"KPI report, a month of a busy site ({figures['database']})")
    for k, v in figures.items():
        print(f"  {k:<18} {v}")
    print(json.dumps(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
