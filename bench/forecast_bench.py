#!/usr/bin/env python3
"""Forecast accuracy of the live lobby under the demo's speed-up: runs `run.py demo --busy` on a
fresh SQLite database for a while, stops it, and prints the forecast-accuracy KPI (the waits the
board, kiosk and phone showed against the waits that followed) and the KPIs' mean wait. The board
and the KPIs agree when the MAE is small against the waits. Prints figures; never fails on them.

    .venv/bin/python bench/forecast_bench.py [--seconds 180] [--speed 60] [--scenario normal_week]
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=180.0, help="how long the demo runs (real seconds)")
    ap.add_argument("--speed", type=float, default=60.0, help="simulated seconds per second")
    ap.add_argument("--scenario", default="normal_week")
    args = ap.parse_args()

    from queue_server.config import load_city
    from queue_server.kpi import KpiContext, report_for
    from queue_server.kpi_report import format_table
    from queue_server.storage import Store

    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'bench.db'}"
        demo = subprocess.Popen(
            [sys.executable, "run.py", "demo", "--port", "0", "--no-kiosk", "--db", db, "--secrets",
             str(Path(tmp) / "s.toml"), "--busy", "--busy-speed", str(args.speed), "--scenario", args.scenario],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(args.seconds)
        finally:
            demo.send_signal(signal.SIGTERM)
            demo.wait(timeout=60)
        day = dt.datetime.now(dt.timezone(dt.timedelta(hours=9))).date()
        rep = report_for(Store(db).engine, KpiContext.from_city(load_city(), "honcho"), "honcho",
                         day - dt.timedelta(days=1), day)
        print(f"demo --busy at {args.speed:g}x for {args.seconds:g} s ({args.scenario})")
        print(f"KPI mean wait: {rep.summary().get('wait_mean')} min")
        print(format_table(rep.tables["forecast"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
