#!/usr/bin/env python3
"""Board fan-out benchmark: 50 lobby boards and 200 counter consoles connected to the real server;
how long a call takes from the counter's request to each of them, and whether every board got
every call exactly once and in order. Prints a table and JSON; never fails on time.

    .venv/bin/python bench/board_bench.py [--boards 50] [--consoles 200] [--calls 40] [--voice on|off] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import connect  # noqa: E402

from tests.support.live_server import Client, LiveServer  # noqa: E402

CALLERS = (1, 2, 3, 4)  # the shimin counters take turns calling


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


class Listener:
    """A passive board or console: records when each call push arrives (parsing only call pushes)."""

    def __init__(self, ws, role: str):
        self.ws, self.role = ws, role
        self.arrivals: dict[int, float] = {}
        self.order: list[int] = []
        self.duplicates = 0
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                now = time.perf_counter()
                if raw.startswith('{"push":"call"'):  # pushes are compact JSON: a cheap filter
                    seq = json.loads(raw)["seq"]
                    if seq in self.arrivals:
                        self.duplicates += 1
                    self.arrivals.setdefault(seq, now)
                    self.order.append(seq)
        except Exception:
            pass


async def _open(url: str, role: str, **hello) -> Listener:
    ws = await connect(url, compression=None, max_size=None)
    await ws.send(json.dumps({"type": "hello", "id": 1, "role": role, **hello}))
    reply = json.loads(await ws.recv())
    assert "result" in reply, reply
    return Listener(ws, role)


async def run(live: LiveServer, boards: int, consoles: int, calls: int) -> dict:
    tok = live.tokens()
    t0 = time.perf_counter()
    listeners = [await _open(live.url, "display", token=tok.roles["display"], site="honcho", device=f"board-{i}")
                 for i in range(boards)]
    numbers = sorted(tok.counters["honcho"])
    for i in range(consoles):
        n = numbers[i % len(numbers)]
        listeners.append(await _open(live.url, "counter", token=tok.counters["honcho"][n], site="honcho", counter=n,
                                     staff=f"staff-{i}"))
    connect_s = time.perf_counter() - t0
    kiosk, _ = await Client.open(live.url, role="kiosk", device="bench", token=tok.roles["kiosk"], site="honcho")
    for i in range(12):
        await kiosk.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key=f"bench-{i}")
    callers = {}
    for n in CALLERS:
        c, _ = await Client.open(live.url, role="counter", site="honcho", counter=n, token=tok.counters["honcho"][n])
        await c.ok("open")
        callers[n] = c

    per_client: list[float] = []
    last: list[float] = []
    request_ms: list[float] = []
    made: list[int] = []
    for i in range(calls):
        c = callers[CALLERS[i % len(CALLERS)]]
        sent = time.perf_counter()
        r = await c.ok("call_next")
        request_ms.append((time.perf_counter() - sent) * 1000)
        assert r["ticket"], "queue ran dry"
        number, counter = r["ticket"]["number"], CALLERS[i % len(CALLERS)]
        want = (number, counter)
        push = await c.wait_push(lambda p, want=want: p["push"] == "call" and p["seq"] not in made
                                 and (p["data"]["number"], p["data"]["counter"]) == want)
        seq = push["seq"]
        made.append(seq)
        deadline = time.perf_counter() + 5
        while time.perf_counter() < deadline and not all(seq in x.arrivals for x in listeners):
            await asyncio.sleep(0.002)
        got = [x.arrivals[seq] - sent for x in listeners if seq in x.arrivals]
        per_client += [g * 1000 for g in got]
        last.append(max(got) * 1000 if got else float("nan"))
        await c.ok("requeue")
        await asyncio.sleep(0.05)

    await asyncio.sleep(0.5)
    board_ls = [x for x in listeners if x.role == "display"]
    missing = sum(1 for x in board_ls for s in made if s not in x.arrivals)
    dupes = sum(x.duplicates for x in board_ls)
    out_of_order = sum(1 for x in board_ls if x.order != sorted(x.order))
    metrics = urllib.request.urlopen(f"{live.http}/metrics", timeout=5).read().decode()
    broadcast = next((float(line.split()[-1]) * 1000 for line in metrics.splitlines()
                      if line.startswith("madoguchi_last_broadcast_seconds")), float("nan"))
    for x in listeners:
        await x.ws.close()
    return {
        "boards": boards, "consoles": consoles, "calls": calls, "connect_s": round(connect_s, 2),
        "call_request_p50_ms": round(pct(request_ms, 50), 2), "call_request_p95_ms": round(pct(request_ms, 95), 2),
        "fanout_p50_ms": round(pct(per_client, 50), 2), "fanout_p95_ms": round(pct(per_client, 95), 2),
        "fanout_p99_ms": round(pct(per_client, 99), 2), "fanout_max_ms": round(max(per_client), 2),
        "all_received_p50_ms": round(pct(last, 50), 2), "all_received_max_ms": round(max(last), 2),
        "server_last_broadcast_ms": round(broadcast, 3),
        "boards_missing_calls": missing, "boards_duplicate_calls": dupes, "boards_out_of_order": out_of_order,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--boards", type=int, default=50)
    ap.add_argument("--consoles", type=int, default=200)
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--voice", choices=("on", "off"), default="on", help="server synthesises announcements (default on)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    os.environ["MADOGUCHI_VOICE"] = args.voice  # the server process inherits it
    with tempfile.TemporaryDirectory() as tmp:
        live = LiveServer(db_url=f"sqlite:///{Path(tmp) / 'bench.db'}", secrets=Path(tmp) / "secrets.toml",
                          voice=args.voice == "on").start()
        try:
            r = asyncio.run(run(live, args.boards, args.consoles, args.calls))
        finally:
            live.kill()
    r.update(voice=args.voice, python=platform.python_version(), cpus=os.cpu_count())
    print(f"{'clients':>12} {'call req p50':>12} {'fan-out p50':>11} {'p95':>8} {'p99':>8} {'all recv p50':>12} "
          f"{'all max':>8} {'server bcast':>12} {'missed/dup/order':>16}")
    print(f"{r['boards']:>4}b+{r['consoles']:>4}c {r['call_request_p50_ms']:>10.2f}ms {r['fanout_p50_ms']:>9.2f}ms "
          f"{r['fanout_p95_ms']:>6.2f}ms {r['fanout_p99_ms']:>6.2f}ms {r['all_received_p50_ms']:>10.2f}ms "
          f"{r['all_received_max_ms']:>6.2f}ms {r['server_last_broadcast_ms']:>10.3f}ms "
          f"{r['boards_missing_calls']:>6}/{r['boards_duplicate_calls']}/{r['boards_out_of_order']}")
    print(json.dumps(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
