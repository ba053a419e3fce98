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

    .venv/bin/python bench/floor_server.py --port 0 --burn-ms 1.5     # prints "listening on ws://…"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import time
from collections import defaultdict
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve


def burn(seconds: float) -> None:
    """Spend this much CPU (the thread's clock: time the VM took away is not counted)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


class Floor:
    def __init__(self, burn_ms: float):
        self.burn = burn_ms / 1000.0
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
                if self.burn and msg.get("type") != "open":
                    burn(self.burn)
                result, push = self.answer(hello, msg)
                await ws.send(json.dumps({"re": rid, "result": result}, separators=(",", ":")))
                if push is not None:  # after the reply, as the server does
                    broadcast(self.boards[hello.get("site") or ""], push)
        finally:
            for boards in self.boards.values():
                boards.discard(ws)


async def main_async(args: argparse.Namespace) -> None:
    floor = Floor(args.burn_ms)
    async with serve(floor.handler, args.host, args.port, compression=None, max_queue=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"floor server listening on ws://{args.host}:{port}/ws (burn {args.burn_ms} ms per request)", flush=True)
        await asyncio.Future()


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--burn-ms", type=float, default=0.0, help="CPU spent on each request before its reply")
    args = ap.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
