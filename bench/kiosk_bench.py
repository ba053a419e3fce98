#!/usr/bin/env python3
"""Kiosk benchmark: touch on "Get a number" → the done screen with the number drawn, printing
excluded (no printer configured), against the real server on a loopback port.

The kiosk runs in-process under SDL_VIDEODRIVER=offscreen with its real Kivy frame loop (60 fps
cap), its websocket client thread and the 死亡① list (7 departments). Each round walks to the list
untimed, then times: touch → IssueSucceeded on the UI thread → done page built → the first frame
that shows it flipped to the screen (Window.on_flip).
Prints a table and JSON; never fails on time.

    .venv/bin/python bench/kiosk_bench.py [--rounds 30] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
os.environ.setdefault("KIVY_HOME", str(Path(tempfile.gettempdir()) / "madoguchi-kivy-bench"))

from kiosk.app import KioskSettings, prepare_kivy  # noqa: E402

prepare_kivy(1920, 1080)

from kivy.base import EventLoop  # noqa: E402
from kivy.core.window import Window  # noqa: E402
from kivy.tests.common import UnitTestTouch  # noqa: E402

from kiosk import flow as F  # noqa: E402
from kiosk.app import KioskShell  # noqa: E402
from kiosk.screens.widgets import BigButton  # noqa: E402
from tests.kiosk.test_flow import DEATH_1  # noqa: E402
from tests.support.live_server import Client, LiveServer  # noqa: E402


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def pump(until, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not until():
        EventLoop.idle()
        if time.monotonic() > deadline:
            raise TimeoutError("kiosk did not get there")


async def open_counters(srv: LiveServer) -> None:
    for n in (1, 2, 5, 6, 7, 10, 11):
        c, _ = await Client.open(srv.url, role="counter", site="honcho", counter=n,
                                 token=srv.tokens().counters["honcho"][n], staff="bench")
        await c.ok("open")
        await c.close()


def to_plan(shell: KioskShell) -> None:
    """Walk to the 死亡① list through the flow (untimed), as touches would."""
    shell.dispatch(F.Restart())
    shell.dispatch(F.ChooseLanguage("ja"))
    shell.dispatch(F.ChoosePurpose("death"))
    while shell.state.screen is F.Screen.QUESTION:
        shell.dispatch(F.Answer(DEATH_1[shell.state.question]))
    pump(lambda: shell.state.waits is not None)
    for _ in range(3):
        EventLoop.idle()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        srv = LiveServer(db_url=f"sqlite:///{tmp}/bench.db", secrets=Path(tmp) / "secrets.toml").start()
        try:
            asyncio.run(open_counters(srv))
            settings = KioskSettings(server=srv.url, device="kiosk-bench", token=srv.tokens().roles["kiosk"])
            shell = KioskShell(settings)
            root = shell.build()
            Window.add_widget(root)
            EventLoop.ensure_window()
            pump(lambda: shell.state.online)
            to_ack, to_page, to_frame = [], [], []
            flips: list[float] = []
            Window.bind(on_flip=lambda *_: flips.append(time.perf_counter()))
            for i in range(args.rounds + 2):  # the first two warm caches (fonts, textures)
                to_plan(shell)
                button = next(w for w in root.walk(restrict=True) if isinstance(w, BigButton)
                              and w.name == "take-number")
                x, y = button.to_window(*button.center)
                acked: list[float] = []
                original = shell.dispatch

                def spy(event, original=original, acked=acked):
                    if isinstance(event, F.IssueSucceeded) and not acked:
                        acked.append(time.perf_counter())
                    original(event)

                shell.dispatch = spy  # type: ignore[method-assign]
                rendered: list[float] = []
                shell.on_render = lambda st, rendered=rendered: rendered.append(time.perf_counter()) \
                    if st.screen is F.Screen.DONE else None
                touch = UnitTestTouch(x, y)
                t0 = time.perf_counter()
                touch.touch_down()
                touch.touch_up()
                pump(lambda: shell.state.screen is F.Screen.DONE)
                pump(lambda r=rendered: bool(flips) and bool(r) and flips[-1] > r[0])
                drawn = next(t for t in flips if t > rendered[0])  # the first frame showing the page
                flips.clear()
                shell.dispatch = original  # type: ignore[method-assign]
                if i >= 2:
                    to_ack.append((acked[0] - t0) * 1000)
                    to_page.append((rendered[0] - t0) * 1000)
                    to_frame.append((drawn - t0) * 1000)
            shell.stop()
        finally:
            srv.kill()

    rows = [("touch → ticket on UI thread", to_ack), ("touch → done page built", to_page),
            ("touch → done page drawn", to_frame)]
    print(f"kiosk touch-to-ticket, {args.rounds} rounds, 死亡① (7 departments), no printer, "
          f"{platform.python_version()} {platform.machine()}")
    print(f"{'':32} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, xs in rows:
        print(f"{name:32} {pct(xs, 50):8.1f} {pct(xs, 90):8.1f} {pct(xs, 99):8.1f} {max(xs):8.1f}")
    out = {name: {"p50": round(pct(xs, 50), 1), "p90": round(pct(xs, 90), 1), "p99": round(pct(xs, 99), 1),
                  "max": round(max(xs), 1), "mean": round(statistics.fmean(xs), 1)} for name, xs in rows}
    print(json.dumps({"kiosk_touch_to_ticket_ms": out, "rounds": args.rounds}))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
