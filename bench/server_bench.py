#!/usr/bin/env python3
"""Queue server benchmark: issue and call-next latency with N concurrent counters, operations/s,
and the time to push one call to N subscribers. Prints a table and JSON; never fails on time.

Runs the real server as a separate process on a loopback port with a temporary SQLite database
and a site config with as many counters as the largest N.

    .venv/bin/python bench/server_bench.py [--counters 10 50 200] [--subscribers 100 1000] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.live_server import Client, LiveServer  # noqa: E402

KIOSKS = 8
BACKLOG = 300  # tickets waiting at most during the load run


def pct(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def make_config(tmp: Path, counters: int) -> Path:
    """config/ with the main office given `counters` extra certificate counters (numbers 101…)."""
    cfg = tmp / "config"
    shutil.copytree(ROOT / "config", cfg)
    extra = "".join(
        f"\n[[sites.honcho.counters]]\nnumber = {100 + i}\ndepartments = [\"shimin\"]\nfloor = 1\n" for i in range(1, counters + 1)
    )
    (cfg / "site.toml").write_text((cfg / "site.toml").read_text(encoding="utf-8") + extra, encoding="utf-8")
    return cfg


async def load_run(live: LiveServer, n_counters: int, seconds: float) -> dict:
    tokens = live.tokens()
    # one connection per kiosk, as in a lobby (a connection's requests are answered in order)
    kiosks = [(await Client.open(live.url, role="kiosk", device=f"bench-{k}", token=tokens.roles["kiosk"],
                                 site="honcho"))[0] for k in range(KIOSKS)]
    counters = []
    for i in range(1, n_counters + 1):
        c, r = await Client.open(live.url, role="counter", site="honcho", counter=100 + i,
                                 token=tokens.counters["honcho"][100 + i])
        await c.ok("open")
        counters.append(c)
    issue_lat: list[float] = []
    call_lat: list[float] = []
    ops = 0
    stop_at = time.perf_counter() + seconds
    seq = 0
    served = 0

    async def kiosk_loop(k: int):
        nonlocal ops, seq
        while time.perf_counter() < stop_at:
            if seq - served > BACKLOG:  # a real lobby holds a few hundred waiting, not an unbounded pile
                await asyncio.sleep(0.005)
                continue
            seq += 1
            t0 = time.perf_counter()
            r = await kiosks[k].request("issue", purposes=["certificate"], answers={}, lang="ja",
                                    idempotency_key=f"b{n_counters}-{k}-{seq}")
            issue_lat.append(time.perf_counter() - t0)
            assert "result" in r, r
            ops += 1

    async def counter_loop(c: Client):
        nonlocal ops, served
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            r = await c.request("call_next")
            call_lat.append(time.perf_counter() - t0)
            ops += 1
            if r.get("result", {}).get("ticket"):
                await c.request("start")
                await c.request("complete")
                ops += 2
                served += 1
            else:
                await asyncio.sleep(0.01)

    t0 = time.perf_counter()
    await asyncio.gather(*(kiosk_loop(k) for k in range(KIOSKS)), *(counter_loop(c) for c in counters))
    wall = time.perf_counter() - t0
    for c in [*kiosks, *counters]:
        await c.close()
    return {
        "counters": n_counters,
        "issue_p50_ms": pct(issue_lat, 50) * 1e3,
        "issue_p99_ms": pct(issue_lat, 99) * 1e3,
        "call_next_p50_ms": pct(call_lat, 50) * 1e3,
        "call_next_p99_ms": pct(call_lat, 99) * 1e3,
        "ops_per_s": ops / wall,
        "requests": ops,
    }


async def fanout_run(live: LiveServer, n: int, rounds: int = 5) -> dict:
    tokens = live.tokens()
    boards = []
    for i in range(0, n, 100):
        opened = await asyncio.gather(*(Client.open(live.url, role="display", token=tokens.roles["display"], site="honcho")
                                        for _ in range(min(100, n - i))))
        boards += [c for c, _ in opened]
    kiosk, _ = await Client.open(live.url, role="kiosk", device="bench", token=tokens.roles["kiosk"], site="honcho")
    counter, _ = await Client.open(live.url, role="counter", site="honcho", counter=101, token=tokens.counters["honcho"][101])
    await counter.ok("open")
    all_ms, last_ms, server_ms = [], [], []
    for r in range(rounds):
        await kiosk.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key=f"fan-{n}-{r}")
        cur = await counter.ok("current")
        if cur["ticket"]:
            await counter.ok("start")
            await counter.ok("complete")
        for b in boards:
            b.pushes.clear()
            b.push_event.clear()
        t0 = time.perf_counter()
        await counter.ok("call_next")
        arrivals = await asyncio.gather(*(_arrival(b) for b in boards))
        ms = [(a - t0) * 1e3 for a in arrivals]
        all_ms += ms
        last_ms.append(max(ms))
        server_ms.append(_server_broadcast_ms(live))
    for c in [*boards, kiosk, counter]:
        await c.close()
    return {"subscribers": n, "push_p50_ms": pct(all_ms, 50), "push_last_p50_ms": statistics.median(last_ms),
            "push_last_max_ms": max(last_ms), "server_broadcast_ms": statistics.median(server_ms)}


def _server_broadcast_ms(live: LiveServer) -> float:
    """The server's own time to hand the call to every subscriber (from /metrics)."""
    import re
    import urllib.request

    text = urllib.request.urlopen(f"{live.http}/metrics", timeout=10).read().decode()
    m = re.search(r"madoguchi_last_broadcast_seconds\{[^}]*\} ([\d.]+)", text)
    return float(m.group(1)) * 1e3 if m else float("nan")


async def _arrival(b: Client) -> float:
    await b.wait_push(lambda p: p["push"] == "call", timeout=30)
    return time.perf_counter()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counters", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--subscribers", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    results = {"machine": f"{platform.node()} {platform.machine()} {platform.python_version()}",
               "date": time.strftime("%Y-%m-%d"), "load": [], "fanout": []}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        cfg = make_config(tmp, max(args.counters))
        for n in args.counters:
            live = LiveServer(db_url=f"sqlite:///{tmp / f'load{n}.db'}", secrets=tmp / "secrets.toml", config_dir=cfg).start()
            try:
                results["load"].append(asyncio.run(load_run(live, n, args.seconds)))
            finally:
                live.kill()
        for n in args.subscribers:
            live = LiveServer(db_url=f"sqlite:///{tmp / f'fan{n}.db'}", secrets=tmp / "secrets.toml", config_dir=cfg).start()
            try:
                results["fanout"].append(asyncio.run(fanout_run(live, n)))
            finally:
                live.kill()
    print(f"{'counters':>8} {'issue p50':>10} {'issue p99':>10} {'call p50':>10} {'call p99':>10} {'ops/s':>8}")
    for r in results["load"]:
        print(f"{r['counters']:>8} {r['issue_p50_ms']:>9.2f}ms {r['issue_p99_ms']:>9.2f}ms "
              f"{r['call_next_p50_ms']:>9.2f}ms {r['call_next_p99_ms']:>9.2f}ms {r['ops_per_s']:>8.0f}")
    print(f"\n{'subscribers':>11} {'server':>10} {'push p50':>10} {'last p50':>10} {'last max':>10}")
    for r in results["fanout"]:
        print(f"{r['subscribers']:>11} {r['server_broadcast_ms']:>9.2f}ms {r['push_p50_ms']:>9.2f}ms "
              f"{r['push_last_p50_ms']:>9.2f}ms {r['push_last_max_ms']:>9.2f}ms")
    print(json.dumps(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
