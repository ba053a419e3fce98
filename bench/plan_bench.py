#!/usr/bin/env python3
"""Planning page benchmark (docs/planning.md): bytes and requests of the first screen of /plan/,
the time on a slow phone network they imply, and plan / slots / forecast / book round trips on the
real server. Prints a table and JSON; never fails on time.

    .venv/bin/python bench/plan_bench.py [--rounds 200] [--json FILE]

Network profiles (applied in Debian's chromium through the DevTools protocol, the real page
against the real server): "slow 4G" as Lighthouse's mobile run (150 ms RTT, 1.6 Mbit/s) and a
poor 3G (300 ms RTT, 700 kbit/s). The time is from navigation to the first screen (SHOWN below:
the life events visible in the language asked for, the page's script in charge), with an empty
cache; then to "ready to ask" (the websocket's hello done), a Vietnamese visit, and a repeat
visit. Requests and bytes before the first screen are chromium's own count (DevTools events).
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

PROFILES = {"slow 4G (150 ms, 1.6 Mbit/s)": (150, 1_600_000), "poor 3G (300 ms, 700 kbit/s)": (300, 700_000)}
DEATH = {"purposes": ["death"], "answers": {"death_filed": "yes", "deceased_age": "80"}, "lang": "ja"}
# The first screen, honestly: the life-event choices visible, in the language asked for (the
# page's <html lang> and its title from that language's messages), and the page's script in
# charge of them (its state holds the site's purposes and the message table), so a tap works.
# "ready to ask" adds the websocket's hello: the first question can be sent.
SHOWN = """(lang) => { const S = window.__plan; const d = document.querySelector('[data-purpose=death]');
  return !!(S && S.snap && S.i18n && d && d.offsetHeight > 0 && document.documentElement.lang === lang
            && document.title === S.i18n.t('title', lang)); }"""
READY = "() => !!(window.__plan && window.__plan.link && window.__plan.link.state === 'online')"
# when each websocket was opened (page clock), to tell whether the first screen waited for one
SPY = """window.__ws = []; const WS0 = window.WebSocket;
const shown = (%s);
const watch = () => { if (shown(%s)) window.__shown = performance.now(); else requestAnimationFrame(watch); };
requestAnimationFrame(watch);  // every frame from the start: the first screen's time is not Playwright's
window.WebSocket = function (...a) { window.__ws.push(performance.now()); return new WS0(...a); };
window.WebSocket.prototype = WS0.prototype;
Object.assign(window.WebSocket, { OPEN: WS0.OPEN, CLOSED: WS0.CLOSED, CONNECTING: WS0.CONNECTING, CLOSING: WS0.CLOSING });"""
# everything on the page's own clock (ms from navigation start): requests and bytes are those
# that started before the first screen (the document and any resource; the browser's own count)
MEASURE = """() => { const s = window.__shown; const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource').filter((e) => e.startTime < s);
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  return { shown_ms: s, fcp_ms: fcp ? fcp.startTime : null, requests: 1 + res.length,
    bytes: nav.transferSize + res.reduce((a, e) => a + e.transferSize, 0), body_bytes: nav.encodedBodySize,
    sockets_before: window.__ws.filter((t) => t < s).length, ready_ms: performance.now() }; }"""


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def page_weight(http: str, lang: str = "ja") -> dict:
    """The first screen's document as a phone gets it (gzip), without a browser."""
    req = urllib.request.Request(http + "/plan/?site=honcho", headers={"Accept-Encoding": "gzip", "Accept-Language": lang})
    with urllib.request.urlopen(req) as r:
        return {"bytes": len(r.read()), "etag": r.headers.get("ETag")}


def _visit(browser, http: str, rtt: int, bps: int, locale: str, lang: str, repeat: bool = False,
           query: str = "") -> dict:
    """One visit under throttling, measured on the page's clock: to the first screen, to "ready
    to ask", the requests and bytes before the first screen and the websockets opened before it.
    ``repeat``: a second visit in the same context (warm cache: the document is revalidated)."""
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, locale=locale)
    ctx.add_init_script(SPY % (SHOWN, json.dumps(lang)))
    page = ctx.new_page()
    cdp = ctx.new_cdp_session(page)
    cdp.send("Network.enable")
    if repeat:
        page.goto(f"{http}/plan/?site=honcho")
        page.wait_for_function(READY)
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": rtt,
             "downloadThroughput": bps / 8, "uploadThroughput": bps / 8})
    page.goto(f"{http}/plan/?site=honcho{query}", wait_until="commit")
    page.wait_for_function("() => window.__shown !== undefined", polling="raf")
    page.wait_for_function(READY, polling="raf")
    m = page.evaluate(MEASURE)
    ctx.close()
    return m


def first_screen(http: str) -> dict:
    """Per network profile: medians of 3 cold visits (empty cache) in Japanese, one in Vietnamese,
    and one repeat visit (the document revalidated: 304)."""
    from playwright.sync_api import sync_playwright

    from tests.web.conftest import ARGS, CHROMIUM

    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        for name, (rtt, bps) in PROFILES.items():
            cold = [_visit(browser, http, rtt, bps, "ja-JP", "ja") for _ in range(3)]
            vi = _visit(browser, http, rtt, bps, "vi-VN", "vi", query="&lang=vi")  # a link in Vietnamese
            warm = _visit(browser, http, rtt, bps, "ja-JP", "ja", repeat=True)
            med = lambda key, vs=cold: round(statistics.median(v[key] or 0 for v in vs) / 1000, 2)  # noqa: E731
            out[name] = {
                "shown_s": med("shown_ms"), "fcp_s": med("fcp_ms"), "ready_s": med("ready_ms"),
                "requests": max(v["requests"] for v in cold), "bytes": max(v["bytes"] for v in cold),
                "sockets_before": max(v["sockets_before"] for v in cold),
                "vi_shown_s": round(vi["shown_ms"] / 1000, 2), "vi_requests": vi["requests"],
                "repeat_shown_s": round(warm["shown_ms"] / 1000, 2), "repeat_bytes": warm["bytes"],
                "repeat_requests": warm["requests"],
            }
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
            weight = {lang: page_weight(srv.http, lang) for lang in ("ja", "vi")}
            shown = first_screen(srv.http)
            trips = asyncio.run(round_trips(srv.url, min(args.rounds, 38)))
        finally:
            srv.kill()
    result = {"machine": platform.platform(), "page": weight, "first_screen": shown, "round_trips": trips}
    print(f"first screen document: {weight['ja']['bytes'] / 1024:.1f} KiB gzipped (ja), "
          f"{weight['vi']['bytes'] / 1024:.1f} KiB (vi)")
    for name, r in shown.items():
        print(f"  {name}: life events on screen {r['shown_s']} s (first contentful paint {r['fcp_s']} s), "
              f"ready to ask {r['ready_s']} s; before the first screen {r['requests']} request(s), "
              f"{r['bytes'] / 1024:.1f} KiB, {r['sockets_before']} websocket(s); vi {r['vi_shown_s']} s "
              f"({r['vi_requests']} request(s)); repeat visit {r['repeat_shown_s']} s, "
              f"{r['repeat_requests']} request(s), {r['repeat_bytes'] / 1024:.1f} KiB")
    print("round trips on loopback (server + client):")
    for kind, r in trips.items():
        print(f"  {kind:9} n={r['n']:3}  p50 {r['p50_ms']:7.2f} ms  p95 {r['p95_ms']:7.2f} ms")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
