"""`run.py demo`: status URLs point at the demo's own host and port; `--busy` keeps playing one
scenario day after another, leaves no defunct process, and stops with the demo."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from queue_server.tokens import read as read_tokens
from tests.support.live_server import Client

ROOT = Path(__file__).resolve().parents[2]


def _children(pid: int) -> dict[int, str]:
    """Child pid -> state letter (R, S, Z…) from /proc."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with open(task / "children") as f:
            for c in f.read().split():
                try:
                    stat = Path(f"/proc/{c}/stat").read_text()
                    out[int(c)] = stat.rsplit(")", 1)[1].split()[0]
                except OSError:
                    pass
    return out


def _stops_cleanly(proc: subprocess.Popen, out: str) -> None:
    """SIGTERM, as a service manager stops it: the demo exits 0 within its stop bound. Reading the
    rest of its output meanwhile shows, if it hangs, the stacks it dumps (cli.DEMO_STOP_BOUND)."""
    from queue_server.cli import DEMO_STOP_BOUND

    proc.send_signal(signal.SIGTERM)
    out += proc.communicate(timeout=DEMO_STOP_BOUND + 15)[0]
    assert proc.returncode == 0, out[-6000:]


def _subreaper(on: bool) -> None:
    """Make this process the reaper of orphaned descendants, like a container's init that never
    reaps: a child the demo leaves running then shows up as defunct here too (CI saw one)."""
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)


def test_demo_status_urls_use_its_port_and_busy_runs_day_after_day_without_zombies(tmp_path):
    secrets = tmp_path / "s.toml"
    _subreaper(True)
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "demo", "--port", "0", "--no-kiosk", "--db", f"sqlite:///{tmp_path / 'd.db'}",
         "--secrets", str(secrets), "--busy", "--busy-speed", "1200", "--busy-minutes", "3"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        out = ""
        for line in proc.stdout:
            out += line
            if "Ctrl+C" in line:
                break
        port = int(re.search(r"ws://127\.0\.0\.1:(\d+)/ws", out).group(1))
        assert "8765" not in out or port == 8765

        async def issue() -> dict:
            k, _ = await Client.open(f"ws://127.0.0.1:{port}/ws", role="kiosk", device="kiosk-t",
                                     token=read_tokens(secrets).roles["kiosk"], site="honcho")
            r = await k.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key="demo-1")
            await k.close()
            return r

        r = asyncio.run(issue())
        assert r["ticket"]["status_url"].startswith(f"http://127.0.0.1:{port}/status/?t=")

        seen: set[int] = set()
        zombie_since: dict[int, float] = {}
        deadline = time.monotonic() + 120
        while len(seen) < 3 and time.monotonic() < deadline:
            now = time.monotonic()
            kids = _children(proc.pid)
            seen.update(kids)
            for pid, state in kids.items():
                if state == "Z":
                    zombie_since.setdefault(pid, now)
                    assert now - zombie_since[pid] < 3.0, f"child {pid} left defunct"
            time.sleep(0.3)
        assert len(seen) >= 3, f"only {len(seen)} simulated day(s) started"  # day after day
        _stops_cleanly(proc, out)  # the busy lobby goes too
        for pid in seen:  # each was waited for by the demo: none came to us as an orphan
            orphaned = _children(os.getpid())
            assert pid not in orphaned, f"child {pid} outlived the demo (state {orphaned.get(pid)})"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        _subreaper(False)
        for pid in seen if "seen" in locals() else ():  # orphans that came to us: reap them now
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)


def test_demo_busy_clock_runs_the_server_on_the_simulated_days(tmp_path):
    """`demo --busy --busy-clock`: live mode drives the server's clock, so the server's time (its
    `ping` answer, the time it stamps events with) is the scenario's day from 08:30 on, not now."""
    from simulation.live import sim_epoch
    from simulation.scenario import load_scenario

    secrets = tmp_path / "s.toml"
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), "demo", "--port", "0", "--no-kiosk", "--db", f"sqlite:///{tmp_path / 'd.db'}",
         "--secrets", str(secrets), "--busy", "--busy-clock", "--busy-speed", "600", "--busy-minutes", "30"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        out = ""
        for line in proc.stdout:
            out += line
            if "Ctrl+C" in line:
                break
        port = int(re.search(r"ws://127\.0\.0\.1:(\d+)/ws", out).group(1))
        clock_file = tmp_path / "sim-clock.json"
        deadline = time.monotonic() + 60
        while not clock_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert clock_file.exists(), "live mode never wrote the clock"

        async def server_time() -> float:
            d, _ = await Client.open(f"ws://127.0.0.1:{port}/ws", role="display", token=read_tokens(secrets).roles["display"])
            r = await d.ok("ping")
            await d.close()
            return r["pong"]

        now = asyncio.run(server_time())
        sc = load_scenario(ROOT / "config" / "scenarios" / "normal_week.toml")
        opening = sim_epoch(sc, 0, sc.open_minute * 60)
        assert opening <= now < sim_epoch(sc, 7, 0)  # on the scenario's week, however slow the machine
        assert abs(now - time.time()) > 86400  # and not the wall clock
        _stops_cleanly(proc, out)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
