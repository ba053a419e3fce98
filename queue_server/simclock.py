"""A clock that the simulation's live mode drives (``run.py server --clock FILE``; demo and tests only).

Live mode plays a scenario day at ``speed`` simulated seconds per wall second. So that the server
stamps its event log with the *simulated* times (a log that calibrates like a real one, instead of
a day squeezed into an hour of wall time), live mode writes a small JSON file::

    {"base": <simulated epoch seconds at the anchor>, "anchor": <wall epoch seconds>, "speed": 600}

and the server's clock reads it: ``base + (time.time() - anchor) × speed``. The file is re-read
when it changes (a new day of a busy demo writes a new anchor); until it exists the clock is the
wall clock. Once simulated, the clock never runs backwards (a later file with an earlier time holds
the clock until it catches up), because the server's day and ticket order rely on it.

Refused with ``production = true`` in [city]: a real lobby runs on the real clock.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


def write_clock(path: Path, base: float, speed: float, anchor: float | None = None) -> None:
    """Make the server's clock read ``base`` now (or at ``anchor``) and run ``speed`` × wall time."""
    if speed <= 0:
        raise ValueError(f"clock speed must be positive, got {speed}")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"base": base, "anchor": time.time() if anchor is None else anchor, "speed": speed}))
    os.replace(tmp, path)  # atomic: the server never reads half a file


class FileClock:
    """``clock()`` for QueueServer: simulated epoch seconds from the file, else the wall clock."""

    def __init__(self, path: Path, wall=time.time):
        self.path = Path(path)
        self.wall = wall
        self._stamp: tuple[int, int] | None = None
        self._law: tuple[float, float, float] | None = None  # base, anchor, speed
        self._last = float("-inf")

    def _reload(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return
        stamp = (st.st_mtime_ns, st.st_ino)
        if stamp == self._stamp:
            return
        try:
            d = json.loads(self.path.read_text())
            law = (float(d["base"]), float(d["anchor"]), float(d["speed"]))
        except (OSError, ValueError, KeyError, TypeError):
            return  # a broken file keeps the last good law (the next write is read again)
        self._stamp, self._law = stamp, law

    def __call__(self) -> float:
        self._reload()
        if self._law is None:
            return self.wall()
        base, anchor, speed = self._law
        now = max(self._last, base + (self.wall() - anchor) * speed)
        self._last = now
        return now


def clock_refusal(city_raw) -> str | None:
    """Why ``--clock`` may not be used with this config (None: it may)."""
    city = city_raw.get("city") if isinstance(city_raw.get("city"), dict) else {}
    if city.get("production") is True:
        return "--clock is for demos and tests: refused with production = true in [city] (a real lobby runs on the real clock)"
    return None
