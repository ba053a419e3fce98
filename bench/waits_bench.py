#!/usr/bin/env python3
"""In-process cost of one waits recomputation (SiteHub.waits(fresh=True)), the work the flusher
does after every change: the open-loop bench's lobby (config/ plus `--counters` certificate
counters, all open), `--issued` tickets issued and `--called` of them called. Prints ms per
recomputation; `--profile` adds a cProfile listing. Never fails on time.

    .venv/bin/python bench/waits_bench.py
    .venv/bin/python bench/waits_bench.py --counters 200 --issued 300 --called 150 --profile
    .venv/bin/python bench/waits_bench.py --served 1500     # later in the day: history and closed tickets
    .venv/bin/python bench/waits_bench.py --history 0 1000 5000 20000   # the loop's part against the hour's calls

`--history N...` fills the site's history with N calls and N services spread over the last hour
(History.add_call/add_service, as the server feeds it) and prints, for each N, the CPU of
SiteHub.waits_inputs: the part the flusher does on the event loop before the rest goes to a thread.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests" / "queue_server")]

import writer_support as W  # noqa: E402
from open_loop import FIRST_EXTRA as FIRST  # noqa: E402
from open_loop import make_config  # noqa: E402

from queue_server.cli import load_catalogue_if_present  # noqa: E402
from queue_server.config import load_city  # noqa: E402
from queue_server.core import estimators as E  # noqa: E402
from queue_server.server import QueueServer  # noqa: E402
from queue_server.storage import Store  # noqa: E402
from queue_server.tokens import ensure_for_city  # noqa: E402

NOW = 1775000000.0  # 2026-04-01 08:33 JST


async def build(tmp: Path, counters: int, issued: int, called: int, served: int = 0) -> tuple[QueueServer, list[float]]:
    cfg = make_config(tmp, counters, 1)
    city = load_city(cfg / "site.toml")
    tokens, _ = ensure_for_city(tmp / "s.toml", city)
    clock = [NOW]
    qs = QueueServer(city, Store(f"sqlite:///{tmp / 'w.db'}"), tokens, load_catalogue_if_present(cfg, city),
                     clock=lambda: clock[0])
    qs.load()
    nums = [c.number for c in city.sites["honcho"].counters]
    await W.run(qs, [W.job(W.counter(n), "open", staff="bench") for n in nums])
    k = W.kiosk()
    await W.run(qs, [W.job(k, "issue", purposes=["certificate"], answers={}, lang="ja") for _ in range(issued)])
    extra = [n for n in nums if n >= 101]
    for i in range(served):  # a day under way: services in the history, closed tickets in the lobby
        n = extra[i % len(extra)]
        clock[0] += 3.0
        for step in ("call_next", "start", "complete"):
            await W.run(qs, [W.job(W.counter(n), step)])
        await W.run(qs, [W.job(k, "issue", purposes=["certificate"], answers={}, lang="ja")])
    await W.run(qs, [W.job(W.counter(n), "call_next") for n in extra][:called])
    return qs, clock


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counters", type=int, default=200, help="extra certificate counters (all open)")
    ap.add_argument("--issued", type=int, default=300)
    ap.add_argument("--called", type=int, default=150)
    ap.add_argument("--served", type=int, default=0, help="services completed first (history, closed tickets)")
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--history", type=int, nargs="*", default=[], help="calls and services in the last hour")
    a = ap.parse_args()
    qs, clock = await build(Path(tempfile.mkdtemp()), a.counters, a.issued, a.called, a.served)
    hub = qs.hubs["honcho"]

    def once() -> None:
        clock[0] += 0.01
        hub.waits(clock[0], fresh=True)

    for _ in range(5):
        once()
    t0 = time.perf_counter()
    for _ in range(a.repeat):
        once()
    per = (time.perf_counter() - t0) / a.repeat * 1000
    waiting = sum(w.waiting for w in hub.waits(clock[0]).values())
    print(f"tickets {len(hub.lobby.tickets)}, queue entries {waiting}, counters {len(hub.lobby.counters)}: "
          f"waits recomputation {per:.2f} ms")
    for n in a.history:
        h = hub.history = E.History()
        now = clock[0]
        for i in range(n):
            at = now - 3600 + i * 3600.0 / n
            h.add_call(E.Call(at, FIRST + i % a.counters, "shimin", 30.0))
            h.add_service(E.Service(at, FIRST + i % a.counters, 5.0, 6.0))
        c0 = time.process_time()
        for k in range(a.repeat):
            hub.waits_inputs(now + k * 0.2)  # a flush every 0.2 s
        print(f"history of {n} calls and {n} services: waits_inputs (on the loop) "
              f"{(time.process_time() - c0) / a.repeat * 1000:.2f} ms CPU")
    if a.profile:
        p = cProfile.Profile()
        p.enable()
        for _ in range(20):
            once()
        p.disable()
        pstats.Stats(p).sort_stats("tottime").print_stats(20)


if __name__ == "__main__":
    asyncio.run(main())
