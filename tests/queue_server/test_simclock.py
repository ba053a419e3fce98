"""The clock live mode drives (`run.py server --clock FILE`): simulated time, demo and tests only."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from queue_server.simclock import FileClock, clock_refusal, write_clock

ROOT = Path(__file__).resolve().parents[2]


class Wall:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_wall_clock_until_the_file_exists_then_scaled_time(tmp_path):
    wall = Wall(1000.0)
    clock = FileClock(tmp_path / "clock.json", wall)
    assert clock() == 1000.0
    write_clock(tmp_path / "clock.json", base=5000.0, speed=600.0, anchor=1000.0)
    assert clock() == 5000.0
    wall.t = 1001.5
    assert clock() == pytest.approx(5900.0)  # 1.5 wall seconds × 600


def test_a_new_day_moves_the_clock_on_but_never_back(tmp_path):
    import os

    f = tmp_path / "clock.json"
    wall = Wall(10.0)
    clock = FileClock(f, wall)
    write_clock(f, base=100_000.0, speed=60.0, anchor=10.0)
    wall.t = 20.0
    assert clock() == pytest.approx(100_600.0)
    write_clock(f, base=50_000.0, speed=60.0, anchor=20.0)  # an earlier time: held, not reversed
    os.utime(f, ns=(1, 1))  # a new mtime even on a coarse file system
    assert clock() == pytest.approx(100_600.0)
    write_clock(f, base=200_000.0, speed=60.0, anchor=20.0)  # the next day
    os.utime(f, ns=(2, 2))
    assert clock() == pytest.approx(200_000.0)


def test_bad_speed_is_refused(tmp_path):
    with pytest.raises(ValueError, match="speed"):
        write_clock(tmp_path / "c.json", 0.0, 0.0)


def test_refused_in_production():
    assert clock_refusal({"city": {"production": True}}) is not None
    assert clock_refusal({"city": {"production": False}}) is None
    assert clock_refusal({"city": {}}) is None


def test_server_refuses_clock_with_production_true(tmp_path):
    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    site = cfg / "site.toml"
    text = re.sub(r"(?m)^production = false$", "production = true", site.read_text(encoding="utf-8"), count=1)
    assert "production = true" in text
    text = re.sub(r'(?m)^public_base_url = ".*"', 'public_base_url = "https://madoguchi.example.jp/"', text)
    site.write_text(text, encoding="utf-8")
    r = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "server", "--port", "0", "--config-dir", str(cfg),
         "--db", f"sqlite:///{tmp_path / 'x.db'}", "--secrets", str(tmp_path / "s.toml"), "--clock", str(tmp_path / "c.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 1
    assert "--clock" in r.stdout and "production = true" in r.stdout, r.stdout + r.stderr
