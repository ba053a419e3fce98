#!/usr/bin/env python3
"""Server CPU per queue change with N counter consoles connected (issue 20, "pushes that scale").
Prints a table and JSON; never fails on time.

Latency benches on a shared 2-core machine measure the neighbours as much as the server; the
server process's own CPU time (utime + stime from /proc) over a fixed scenario does not. The real
server runs as a separate process on loopback (a temporary SQLite database, a config with extra
certificate counters 101…); this process holds the consoles, which read every push.

Scenario per row: `--consoles` consoles of one department (one department set) connected,
`--backlog` tickets waiting, then `--changes` changes one flush apart (alternately a kiosk issue
and a call_next at another counter). Reported: server CPU ms per change, the same with no console
connected (the difference is what the consoles cost), and the bytes of `queue` pushes each
console received per change.

    .venv/bin/python bench/push_cost.py [--consoles 0 200] [--backlog 50 300] [--changes 60] [--json FILE]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server_bench import make_config  # noqa: E402
from tests.support.live_server import Client, LiveServer  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


async def run(live: LiveServer, consoles: int, backlog: int, changes: int) -> dict:
    tokens = live.tokens()
    kiosk, _ = await Client.open(live.url, role="kiosk", device="cost", token=tokens.roles["kiosk"], site="honcho")
    worker, _ = await Client.open(live.url, role="counter", site="honcho", counter=1, token=tokens.counters["honcho"][1])
    await worker.ok("open")
    for i in range(backlog):
        await kiosk.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key=f"bl-{i}")
    watchers = [(await Client.open(live.url, role="counter", site="honcho", counter=100 + i,
                                   token=tokens.counters["honcho"][100 + i]))[0] for i in range(1, consoles + 1)]
    await asyncio.sleep(1.0)
    for w in watchers:
        w.pushes.clear()
    assert live.proc is not None
    c0, t0 = cpu_seconds(live.proc.pid), time.perf_counter()
    for i in range(changes):
        if i % 2 == 0:
            await kiosk.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key=f"ch-{i}")
        else:
            r = await worker.ok("call_next")
            if r.get("ticket"):
                await worker.ok("start")  # same flush as the call: the ticket left the queue
                await worker.ok("complete")
        await asyncio.sleep(0.3)  # one flush (0.2 s) per change
    await asyncio.sleep(0.5)
    cpu, wall = cpu_seconds(live.proc.pid) - c0, time.perf_counter() - t0
    queue_bytes = sum(len(json.dumps(p, ensure_ascii=False).encode()) for w in watchers for p in w.pushes
                      if p.get("push") == "queue")
    for c in [kiosk, worker, *watchers]:
        await c.close()
    return {"consoles": consoles, "backlog": backlog, "changes": changes, "cpu_ms_per_change": cpu / changes * 1e3,
            "wall_s": wall, "queue_bytes_per_console_per_change": queue_bytes / max(1, consoles) / changes}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--consoles", type=int, nargs="+", default=[0, 200])
    ap.add_argument("--backlog", type=int, nargs="+", default=[50, 300])
    ap.add_argument("--changes", type=int, default=60)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    rows = []
    for backlog in a.backlog:
        for consoles in a.consoles:
            with tempfile.TemporaryDirectory() as d:
                tmp = Path(d)
                live = LiveServer(db_url=f"sqlite:///{tmp / 'cost.db'}", secrets=tmp / "secrets.toml",
                                  config_dir=make_config(tmp, max(a.consoles))).start()
                try:
                    rows.append(asyncio.run(run(live, consoles, backlog, a.changes)))
                finally:
                    live.kill()
            r = rows[-1]
            print(f"backlog {backlog:4d}  consoles {consoles:4d}  server CPU {r['cpu_ms_per_change']:7.2f} ms/change"
                  f"  queue push {r['queue_bytes_per_console_per_change']:8.0f} B/console/change", flush=True)
    out = {"machine": f"{platform.machine()} {platform.python_version()}", "loadavg": os.getloadavg()[0], "rows": rows}
    print(json.dumps(out))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
