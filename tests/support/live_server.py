"""Start the real queue server as a separate process on a free loopback port, and talk to it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from websockets.asyncio.client import connect

from queue_server.tokens import read as read_tokens

ROOT = Path(__file__).resolve().parents[2]
BUSY_ATTEMPTS = 30  # a request answered busy this many times in a row is returned busy


@dataclass
class LiveServer:
    db_url: str
    secrets: Path
    config_dir: Path = ROOT / "config"
    proc: subprocess.Popen | None = None
    port: int = 0
    log: list[str] = field(default_factory=list)
    log_level: str = "WARNING"
    extra: list[str] = field(default_factory=list)  # more `run.py server` options (e.g. --clock FILE)
    voice: bool = False  # synthesising announcements costs seconds of CPU per call: only where tested

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int = 0, timeout: float = 30.0) -> LiveServer:
        cmd = [sys.executable, str(ROOT / "run.py"), "server", "--port", str(port or self.port or 0),
               "--db", self.db_url, "--secrets", str(self.secrets), "--config-dir", str(self.config_dir),
               "--log-level", self.log_level, *self.extra]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1",
                                          "MADOGUCHI_VOICE": "on" if self.voice else "off"})
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("server exited during start-up:\n" + "".join(self.log))
            self.log.append(line)
            m = re.search(r"listening on ws://[\d.]+:(\d+)/ws", line)
            if m:
                self.port = int(m.group(1))
                return self
        raise RuntimeError("server did not start in time:\n" + "".join(self.log))

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)
        if self.proc and self.proc.stdout and not self.proc.stdout.closed:
            self.log.append(self.proc.stdout.read())  # everything the server printed or logged
            self.proc.stdout.close()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def tokens(self):
        return read_tokens(self.secrets)


class Client:
    """A websocket client that matches replies to requests by id and keeps pushes."""

    _ids = itertools.count(1)

    def __init__(self, ws):
        self.ws = ws
        self.pushes: list[dict] = []
        self._waiting: dict[object, asyncio.Future] = {}
        self._reader = asyncio.create_task(self._read())
        self.push_event = asyncio.Event()
        self.busy = 0  # busy answers retried by request()

    @classmethod
    async def open(cls, url: str, **hello) -> tuple[Client, dict]:
        ws = await connect(url, compression=None, max_size=None)
        c = cls(ws)
        return c, await c.request("hello", **hello)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                if "push" in msg:
                    self.pushes.append(msg)
                    self.push_event.set()
                elif msg.get("re") in self._waiting:
                    self._waiting.pop(msg["re"]).set_result(msg)
                else:
                    self.pushes.append(msg)
        except Exception:
            pass
        for f in self._waiting.values():
            if not f.done():
                f.set_exception(ConnectionError("connection closed"))

    async def send_raw(self, raw: str | bytes, rid=None) -> dict:
        fut = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        await self.ws.send(raw)
        return await asyncio.wait_for(fut, 10)

    async def request(self, type_: str, **body) -> dict:
        """One request's reply; a ``busy`` answer (nothing was applied) is retried with the same body
        — the same idempotency key — after its retry_after and jitter, as the kiosk and console do."""
        for attempt in range(BUSY_ATTEMPTS):
            r = await self.request_once(type_, **body)
            if r.get("error", {}).get("code") != "busy":
                return r
            self.busy += 1
            await asyncio.sleep(r["error"]["retry_after"] * (1 + random.random()) * min(2 ** attempt, 8))
        return r

    async def request_once(self, type_: str, **body) -> dict:
        """One request, one reply: ``busy`` included."""
        rid = next(self._ids)
        return await self.send_raw(json.dumps({"type": type_, "id": rid, **body}), rid)

    async def ok(self, type_: str, **body) -> dict:
        r = await self.request(type_, **body)
        assert "result" in r, r
        return r["result"]

    async def wait_push(self, pred, timeout: float = 5.0) -> dict:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for p in self.pushes:
                if pred(p):
                    return p
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"no matching push; got {[p.get('push') for p in self.pushes]}")
            self.push_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.push_event.wait(), left)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
