#!/usr/bin/env python3
"""The machine's floor for the open-loop bench (`bench/open_loop.py --scenario floor`, issue 20).

A stand-in for the queue server that does no work of its own: the same websockets library, the
same connections (consoles, boards, kiosks) and the same load generator, every request answered
at once with the fields the generator reads, and every call pushed to every board of its site (in
the server's compact shape), so the bench's accounting of replies and calls holds. What it
measures is what this machine, its kernel and Python give any server here: the p99 below which
no server of ours can get on it.

`--burn-ms X` first spends X ms of CPU (a busy loop on the thread's own clock) on every request
after the hello: a server whose work is spread evenly, one request at a time, costing that much.
Beside the real server's CPU per request, it tells how much of the real server's tail comes from
the amount of its work and how much from how that work is bunched (batches, fan-outs, threads).

`--work-pieces N` instead does a fixed amount of *work* on every request: N pieces of the kind
the server does (dicts built, sorted, JSON-encoded and decoded; `bench/open_loop.py
--floor-work-ms` times them once, before its first run, and passes the same N to every run).
On this VM a slow stretch makes the same work take several times as much CPU (the server's
`Store.write`: 0.5 ms of CPU at the median, 3–8.5 ms at its slowest), while `--burn-ms` spends the
same CPU time whatever the core's speed; this is the floor that slows down as the server does.

    .venv/bin/python bench/floor_server.py --port 0 --burn-ms 1.5     # prints "listening on ws://…"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import statistics
import time
from collections import defaultdict
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve


def burn(seconds: float) -> None:
    """Spend this much CPU (the thread's clock: time the VM took away is not counted)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def _piece(rows: list[dict[str, Any]]) -> int:
    """One piece of server-like work: build, sort, encode and decode a small queue."""
    queue = sorted(({"id": r["id"], "number": f"A{r['n']}", "wait": r["n"] * 7 % 31} for r in rows),
                   key=lambda e: (e["wait"], e["id"]))
    return len(json.loads(json.dumps(queue)))


_ROWS = [{"id": f"t{i}", "n": i} for i in range(20)]


def pieces_for(ms: float, samples: int = 300) -> int:
    """How many pieces take ``ms`` at this core's pace now (the median of ``samples`` pieces)."""
    times = []
    for _ in range(samples):
        t = time.perf_counter()
        _piece(_ROWS)
        times.append(time.perf_counter() - t)
    return max(1, round(ms / 1000.0 / statistics.median(times)))


def work(pieces: int) -> None:
    for _ in range(pieces):
        _piece(_ROWS)


class Floor:
    def __init__(self, burn_ms: float, pieces: int = 0):
        self.burn = burn_ms / 1000.0
        self.pieces = pieces
        self.boards: dict[str, set[ServerConnection]] = defaultdict(set)
        self.numbers = itertools.count(1)
        self.seq = itertools.count(1)

    def answer(self, hello: dict[str, Any], msg: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The result of one request, and the call push it makes (a call_next), if any."""
        typ = msg.get("type")
        if typ == "call_next":
            n = next(self.numbers)
            seq = next(self.seq)
            number, counter, site = f"F{n}", hello.get("counter") or 0, hello.get("site") or ""
            push = json.dumps({"push": "call", "site": site, "seq": seq, "data": {
                "seq": seq, "number": number, "counter": counter, "recall": False}}, separators=(",", ":"))
            return {"ticket": {"id": f"t{n}", "number": number, "state": "called"}}, push
        if typ == "queue":
            return {"queue": []}, None
        if typ == "current":
            return {"ticket": None}, None
        return {"ok": True}, None

    async def handler(self, ws: ServerConnection) -> None:
        hello: dict[str, Any] = {}
        try:
            async for raw in ws:
                msg = json.loads(raw)
                rid = msg.get("id")
                if msg.get("type") == "hello":
                    hello = msg
                    if msg.get("role") == "display":
                        self.boards[msg.get("site") or ""].add(ws)
                    await ws.send(json.dumps({"re": rid, "result": {"seq": 0, "missed": 0}}, separators=(",", ":")))
                    continue
                if msg.get("type") != "open":
                    if self.burn:  # (no clock read at all for the floor with none)
                        burn(self.burn)
                    work(self.pieces)
                result, push = self.answer(hello, msg)
                await ws.send(json.dumps({"re": rid, "result": result}, separators=(",", ":")))
                if push is not None:  # after the reply, as the server does
                    broadcast(self.boards[hello.get("site") or ""], push)
        finally:
            for boards in self.boards.values():
                boards.discard(ws)


async def main_async(args: argparse.Namespace) -> None:
    floor = Floor(args.burn_ms, args.work_pieces)
    async with serve(floor.handler, args.host, args.port, compression=None, max_queue=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"floor server listening on ws://{args.host}:{port}/ws (burn {args.burn_ms} ms, "
              f"{floor.pieces} pieces of work per request)", flush=True)
        await asyncio.Future()


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--burn-ms", type=float, default=0.0, help="CPU spent on each request before its reply")
    ap.add_argument("--work-pieces", type=int, default=0,
                    help="pieces of work done on each request before its reply (pieces_for: how many take X ms)")
    args = ap.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
