"""The simulate and staff subcommands, end to end through run.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_cli_module_imports_only_argparse():
    code = "import sys, simulation.cli; print(sorted(m for m in ('simpy', 'matplotlib', 'queue_server') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_simulate_prints_the_table_and_writes_json_and_plots(tmp_path):
    sc = tmp_path / "tiny.toml"
    sc.write_text(
        """
[scenario]
name = "tiny"
kind = "station"
[station]
source = "test"
department = "shimin"
counters = 2
service_minutes = 2.0
arrivals_per_hour = 45
hours = 6
warmup_hours = 0.5
""",
        encoding="utf-8",
    )
    r = _run("simulate", str(sc), "-r", "3", "-j", "1", "--json", str(tmp_path / "out.json"), "--plots", str(tmp_path / "p"))
    assert r.returncode == 0, r.stderr
    assert "shimin" in r.stdout and "±" in r.stdout
    assert "3/3" in r.stderr  # the progress bar's last state
    data = json.loads((tmp_path / "out.json").read_text(encoding="utf-8"))
    f = data["departments"]["shimin"]
    assert data["replications"] == 3 and f["wait_mean"]["n"] == 3 and f["wait_mean"]["ci"] is not None
    for name in ("waits_by_hour.png", "queue_length.png", "utilisation.png"):
        png = tmp_path / "p" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_simulate_reports_scenario_problems_with_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[scenario]\nkind = "station"\n[station]\ncounters = 0\n', encoding="utf-8")
    r = _run("simulate", str(bad), "-r", "1")
    assert r.returncode == 2
    assert "bad.toml" in r.stderr and "station.counters" in r.stderr


def test_staff_rejects_a_bad_target():
    r = _run("staff", "normal_week", "--target", "soon please")
    assert r.returncode == 2 and "--target" in r.stderr
