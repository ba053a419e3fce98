"""bench/bulk_sql_bench.py runs end to end and prints a figure for each of its three paths, and
the events its compiled path wrote are in the database (a bench whose statement silently did
nothing would print the fastest figure of all)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_bench_prints_a_figure_per_path() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "bulk_sql_bench.py"), "--rows", "20", "--rounds", "2"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    for path in ("Connection.execute", "BulkStatement.run", "driver only"):
        line = next(li for li in out.splitlines() if path in li)
        figures = [float(x) for x in re.findall(r"\d+\.\d", line)]
        assert len(figures) == 2 and all(f > 0 for f in figures), line
    assert "rows written 120 of 120" in out
