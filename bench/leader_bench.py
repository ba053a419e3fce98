#!/usr/bin/env python3
"""Leader lock benchmark: what the per-commit fence costs, and how long a --standby takes to serve
after the leader is SIGKILLed. Prints a table and JSON; never fails on time.

- fence: median time of one group commit (one event row) with and without the leader fence, in
  alternating blocks, on SQLite and PostgreSQL.
- takeover: real `run.py server` processes; SIGKILL the leader, then time until a kiosk that keeps
  reconnecting and retrying gets a ticket from the new leader (what a citizen waits at worst).

PostgreSQL uses a private throwaway cluster (Debian's postgresql) unless --pg URL names one.

    .venv/bin/python bench/leader_bench.py [--runs 5] [--commits 400] [--pg URL | --no-pg] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from queue_server import leader  # noqa: E402
from queue_server.config import load_city  # noqa: E402
from queue_server.storage import Batch, Store  # noqa: E402
from tests.support.live_server import Client  # noqa: E402
from tests.support.server_process import Server  # noqa: E402

SITES = sorted(load_city().sites)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fence_cost(url: str, commits: int) -> dict:
    store = Store(url)
    store.migrate()
    claim = leader.Claim(url, SITES)
    lease = claim.try_acquire()
    assert lease is not None, "the benchmark database is led by someone else"
    times: dict[bool, list[float]] = {False: [], True: []}
    seq = 0
    block = 20
    for i in range(commits // block):
        fenced = i % 2 == 1
        store.fence = lease.fence if fenced else None
        for _ in range(block):
            seq += 1
            ev = {"site": "honcho", "seq": seq, "at": float(seq), "kind": "noted", "ticket": None, "step": None,
                  "counter": None, "actor": "bench", "payload": {}}
            t0 = time.perf_counter()
            store.write(Batch(events=[ev]))
            times[fenced].append(time.perf_counter() - t0)
    lease.release()
    claim.close()
    store.engine.dispose()
    plain, fenced = statistics.median(times[False]) * 1000, statistics.median(times[True]) * 1000
    return {"db": url.split(":")[0], "commits": seq, "plain_ms": plain, "fenced_ms": fenced,
            "overhead_ms": fenced - plain}


async def _first_ticket_after(urls: list[str], token: str, key: str) -> float:
    """Seconds until some server answers an `issue` with this key (reconnecting as a kiosk does)."""
    t0 = time.monotonic()
    while True:
        for url in urls:
            try:
                c, hello = await Client.open(url, role="kiosk", device="kiosk-1", site="honcho", token=token)
            except Exception:
                continue
            try:
                if "result" in hello:
                    r = await c.request("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key=key)
                    if "result" in r:
                        return time.monotonic() - t0
            except Exception:
                pass
            finally:
                with contextlib.suppress(Exception):
                    await c.close()
        await asyncio.sleep(0.05)


def takeover(url: str, tmp: Path, same_port: bool) -> dict:
    from queue_server.tokens import read

    secrets = tmp / "secrets.toml"
    port = _free_port()
    lead = Server(url, secrets, port=port).listening()
    standby = Server(url, secrets, port=port if same_port else _free_port(), standby=True)
    try:
        standby.wait_for(r"standby: another server leads")
        token = read(secrets).roles["kiosk"]
        lead.kill(signal.SIGKILL)  # returns once the process is gone
        ticket_s = asyncio.run(_first_ticket_after([lead.url, standby.url], token, "after-kill"))
        standby.listening(timeout=5)  # it did take over (its ready line is out)
        return {"db": url.split(":")[0], "same_port": same_port, "first_ticket_s": ticket_s}
    finally:
        for s in (lead, standby):
            s.kill()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="takeovers per database")
    ap.add_argument("--commits", type=int, default=400, help="commits per fence measurement")
    ap.add_argument("--pg", default=None, help="a PostgreSQL URL (default: start a private cluster)")
    ap.add_argument("--no-pg", action="store_true", help="SQLite only")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    results: dict = {"machine": f"{platform.node()} {platform.machine()} {platform.python_version()}",
                     "date": time.strftime("%Y-%m-%d"), "fence": [], "takeover": []}
    with contextlib.ExitStack() as stack:
        pg = args.pg
        if pg is None and not args.no_pg:
            from tests.support.postgres import private_cluster

            try:
                pg = stack.enter_context(private_cluster())
            except FileNotFoundError as e:
                print(f"PostgreSQL skipped: {e}")
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        n = 0

        def fresh(kind: str) -> str:
            nonlocal n
            n += 1
            if kind == "sqlite":
                return f"sqlite:///{tmp / f'b{n}.db'}"
            from tests.support.postgres import create_database

            return create_database(pg, f"bench_{n}_{int(time.time())}")

        kinds = ["sqlite"] + (["postgres"] if pg else [])
        for kind in kinds:
            results["fence"].append(fence_cost(fresh(kind), args.commits))
        for kind in kinds:
            for _ in range(args.runs):
                d = tmp / f"run{n}"
                d.mkdir()
                results["takeover"].append(takeover(fresh(kind), d, same_port=kind == "sqlite"))
    print(f"{'db':>10} {'commit':>10} {'fenced':>10} {'overhead':>10}")
    for r in results["fence"]:
        print(f"{r['db']:>10} {r['plain_ms']:>8.3f}ms {r['fenced_ms']:>8.3f}ms {r['overhead_ms']:>8.3f}ms")
    print(f"\n{'db':>10} {'runs':>5} {'kill → first ticket: median':>28} {'max':>8}")
    for kind in sorted({r["db"] for r in results["takeover"]}):
        xs = [r["first_ticket_s"] for r in results["takeover"] if r["db"] == kind]
        print(f"{kind:>10} {len(xs):>5} {statistics.median(xs):>27.2f}s {max(xs):>7.2f}s")
    print(json.dumps(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
