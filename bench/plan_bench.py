#!/usr/bin/env python3
"""Planning page benchmark (docs/planning.md): bytes and requests of the first screen of /plan/,
the time on a slow phone network they imply, and plan / slots / forecast / book round trips on the
real server. Prints a table and JSON; never fails on time.

    .venv/bin/python bench/plan_bench.py [--rounds 200] [--json FILE]

Network profiles (applied in Debian's chromium through the DevTools protocol, the real page
against the real server): "slow 4G" as Lighthouse's mobile run (150 ms RTT, 1.6 Mbit/s) and a
poor 3G (300 ms RTT, 700 kbit/s). The time is from navigation to the life-event list on screen
(the hello snapshot has arrived), with an empty cache.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.live_server import Client, LiveServer  # noqa: E402

FIRST_SCREEN = ["/plan/", "/plan/plan.css", "/plan/plan.js", "/plan/common.js", "/plan/messages.ja.json"]
PROFILES = {"slow 4G (150 ms, 1.6 Mbit/s)": (150, 1_600_000), "poor 3G (300 ms, 700 kbit/s)": (300, 700_000)}
DEATH = {"purposes": ["death"], "answers": {"death_filed": "yes", "deceased_age": "80"}, "lang": "ja"}


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def page_weight(http: str) -> dict:
    sizes = {}
    for path in FIRST_SCREEN:
        req = urllib.request.Request(http + path, headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(req) as r:
            sizes[path] = len(r.read())  # bytes on the wire (gzip)
    return {"requests": len(sizes), "bytes": sum(sizes.values()), "by_file": sizes}


def first_screen(http: str) -> dict:
    """Seconds to the life-event list in chromium under each network profile (median of 3)."""
    from playwright.sync_api import sync_playwright

    from tests.web.conftest import ARGS, CHROMIUM

    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        for name, (rtt, bps) in PROFILES.items():
            times = []
            for _ in range(3):
                ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale="ja-JP")
                page = ctx.new_page()
                cdp = ctx.new_cdp_session(page)
                cdp.send("Network.enable")
                cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": rtt,
                         "downloadThroughput": bps / 8, "uploadThroughput": bps / 8})
                t0 = time.perf_counter()
                page.goto(f"{http}/plan/?site=honcho")
                page.wait_for_selector("[data-purpose=death]")
                times.append(time.perf_counter() - t0)
                ctx.close()
            out[name] = round(statistics.median(times), 2)
        browser.close()
    return out


async def round_trips(url: str, rounds: int) -> dict:
    p, _ = await Client.open(url, role="planner", site="honcho")
    out = {}
    for kind, body in (("plan", DEATH), ("slots", DEATH), ("forecast", DEATH), ("booking", {"code": "000000"})):
        times = []
        for _ in range(rounds if kind != "forecast" else max(5, rounds // 10)):
            t0 = time.perf_counter()
            await p.request(kind, **body)
            times.append((time.perf_counter() - t0) * 1000)
            if kind == "booking":
                break  # unknown codes are rate-limited per site: one is enough
        out[kind] = {"n": len(times), "p50_ms": round(statistics.median(times), 2), "p95_ms": round(pct(times, 95), 2)}
        await p.close()
        p, _ = await Client.open(url, role="planner", site="honcho")  # a fresh request budget
    await p.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30, help="plan round trips (the read budget is 40 per connection)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        srv = LiveServer(db_url=f"sqlite:///{tmp}/b.db", secrets=Path(tmp) / "s.toml").start()
        try:
            weight = page_weight(srv.http)
            shown = first_screen(srv.http)
            trips = asyncio.run(round_trips(srv.url, min(args.rounds, 38)))
        finally:
            srv.kill()
    result = {"machine": platform.platform(), "page": weight, "first_screen_seconds": shown, "round_trips": trips}
    print(f"first screen: {weight['requests']} requests + the websocket, {weight['bytes'] / 1024:.1f} KiB gzipped")
    for path, n in weight["by_file"].items():
        print(f"  {path:22} {n / 1024:7.1f} KiB")
    for name, secs in shown.items():
        print(f"  life events on screen, {name}: {secs} s")
    print("round trips on loopback (server + client):")
    for kind, r in trips.items():
        print(f"  {kind:9} n={r['n']:3}  p50 {r['p50_ms']:7.2f} ms  p95 {r['p95_ms']:7.2f} ms")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
