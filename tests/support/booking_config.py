"""A copy of config/ with other booking rules (and hours), for tests that book against a real server.

A test that must check in on the day it books opens the site all day, every day, with short
slots, and starts the server's clock at today's noon (``noon_clock``): the last slot of the day
ends before midnight.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def booking_config_dir(tmp: Path, capacity: dict[str, int] | None = None, all_day: bool = False,
                       **booking: object) -> Path:
    """config/ copied to ``tmp/config`` with ``[booking]`` keys and capacities replaced."""
    target = tmp / "config"
    shutil.copytree(ROOT / "config", target)
    site = target / "site.toml"
    text = site.read_text(encoding="utf-8")
    for key, value in booking.items():
        text, n = re.subn(rf"(?m)^{key} = [^#\n]*", f"{key} = {_toml(value)} ", text, count=1)
        assert n == 1, key
    for dept, places in (capacity or {}).items():
        text, n = re.subn(rf"(?m)^({dept}) = \d+", rf"\g<1> = {places}", text, count=1)
        assert n == 1, dept
    if all_day:
        text = text.replace('hours = { open = "08:30", close = "17:15" }', 'hours = { open = "00:00", close = "23:59" }')
        text = re.sub(r"(?m)^weekdays = .*$", "weekdays = [0, 1, 2, 3, 4, 5, 6]", text)
        text = re.sub(r"(?m)^closed_dates = .*$", "closed_dates = []", text)
    site.write_text(text, encoding="utf-8")
    return target


def _toml(v: object) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return f'"{v}"' if isinstance(v, str) else str(v)


def noon_clock(tmp: Path) -> list[str]:
    """`run.py server` options that start the server's day at today's noon in Japan (speed 1,
    queue_server/simclock.py). With the wall clock, an all-day booking config still has no slot
    left in the last minutes before midnight, and a test that books today failed then (CI, 23:52)."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from queue_server.simclock import write_clock

    japan = ZoneInfo("Asia/Tokyo")
    clock = tmp / "noon-clock.json"
    write_clock(clock, dt.datetime.combine(dt.datetime.now(japan).date(), dt.time(12), japan).timestamp(), 1.0)
    return ["--clock", str(clock)]
