"""A `run.py server` process (leader or --standby) whose output a thread reads, so waiting for one
line never blocks the server on a full pipe. For tests and benchmarks that start several servers."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.live_server import ROOT


class Server:
    """A `run.py server` process whose output is read by a thread (so waiting never blocks it)."""

    def __init__(self, db_url: str, secrets: Path, port: int = 0, standby: bool = False):
        cmd = [sys.executable, str(ROOT / "run.py"), "server", "--port", str(port), "--db", db_url,
               "--secrets", str(secrets), "--config-dir", str(ROOT / "config"), "--log-level", "WARNING"]
        if standby:
            cmd.append("--standby")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", "MADOGUCHI_VOICE": "off"})
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        self.port = port
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")  # end of output

    def wait_for(self, pattern: str, timeout: float = 60.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line == "":
                raise RuntimeError(f"server exited waiting for {pattern!r}:\n" + "".join(self.log))
            self.log.append(line)
            m = re.search(pattern, line)
            if m:
                return m
        raise TimeoutError(f"no {pattern!r} in time:\n" + "".join(self.log))

    def listening(self, timeout: float = 60.0) -> Server:
        self.port = int(self.wait_for(r"listening on ws://[\d.]+:(\d+)/ws", timeout).group(1))
        return self

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def health(self, port: int | None = None) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port or self.port}/healthz", timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def output(self) -> str:
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return "".join(self.log)
            self.log.append(line)

    def kill(self, sig: int = signal.SIGKILL) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(30)
