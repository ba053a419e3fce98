"""What-ifs from the command line and paired comparisons with common random numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from simulation.runner import run_replications
from simulation.scenario import parse_scenario
from simulation.whatif import WhatIfError, apply, paired

ROOT = Path(__file__).resolve().parents[2]

TOML = """
[scenario]
name = "small"
kind = "lobby"
site = "honcho"
[calendar]
days = ["2026-06-09", "2026-06-10"]
[target]
share = 0.9
within_minutes = 15
[behaviour]
patience_minutes = 60
leave_cancels = 0.5
no_show = 0.02
[arrivals]
source = "test"
site_share = 1.0
hour_weights = { "8" = 1.0, "9" = 1.0, "10" = 1.2, "11" = 1.4, "12" = 1.4, "13" = 1.2, "14" = 1.0, "15" = 0.9, "16" = 0.7 }
[purposes.cert]
yearly = 60000
source = "test"
route = [{ department = "shimin", minutes = 5, cv = 0.6 }]
[purposes.tax]
yearly = 8000
source = "test"
route = [{ department = "zeimu", minutes = 8, cv = 0.5 }]
"""


@pytest.fixture(scope="module")
def small():
    import tomllib

    return parse_scenario(tomllib.loads(TOML), "<small>")


def test_counters_by_name_or_key_add_and_close(small):
    n_shimin = sum("shimin" in c.departments for c in small.counters)
    plus = apply(small, [("counters", "市民課=+1")])
    assert sum("shimin" in c.departments for c in plus.counters) == n_shimin + 1
    new = plus.counters[-1]
    assert new.departments == ("shimin",) and new.number == max(c.number for c in small.counters) + 1
    assert new.windows == ((510.0, 720.0), (780.0, 1035.0))  # an hour's lunch
    minus = apply(small, [("counters", "shimin=-1,zeimu=+2")])
    assert sum("shimin" in c.departments for c in minus.counters) == n_shimin - 1
    assert sum(c.departments == ("zeimu",) for c in minus.counters) == 2
    assert "counters" in minus.title
    with pytest.raises(WhatIfError, match="--counters.*'宇宙課'"):
        apply(small, [("counters", "宇宙課=+1")])
    with pytest.raises(WhatIfError, match="DEPARTMENT=\\+N"):
        apply(small, [("counters", "shimin+1")])


@pytest.mark.parametrize("spec", ["×1.2", "x1.2", "*1.2", "1.2", "X1.2"])
def test_arrivals_factor_in_every_spelling(small, spec):
    sc = apply(small, [("arrivals", spec)])
    assert sc.purposes["cert"].yearly == pytest.approx(72000) and sc.purposes["tax"].yearly == pytest.approx(9600)


def test_arrivals_for_one_purpose_cutoff_reservations_and_patience(small):
    sc = apply(small, [("arrivals", "tax×2"), ("cutoff", "16:30"), ("reservations", "tax@09:00,13:30/booked=0.5"), ("patience", "none")])
    assert sc.purposes["tax"].yearly == 16000 and sc.purposes["cert"].yearly == 60000
    assert sc.cutoff_minute == 990.0
    (r,) = sc.reservations
    assert r.purpose == "tax" and r.slots == (540.0, 810.0) and r.booked == 0.5
    assert sc.behaviour.patience_minutes is None
    assert apply(sc, [("cutoff", "none"), ("reservations", "none")]).cutoff_minute is None
    for kind, bad, msg in (("cutoff", "18:00", "outside"), ("cutoff", "4pm", "HH:MM"), ("reservations", "ghost@09:00", "unknown purpose"),
                           ("reservations", "tax@09:00/color=red", "unknown option"), ("arrivals", "lots", "FACTOR")):
        with pytest.raises(WhatIfError, match=msg):
            apply(small, [(kind, bad)])


def test_paired_comparison_finds_one_extra_counter_and_not_a_null_change(small):
    reps = 8
    a = run_replications(small, reps, seed=3)
    b = run_replications(apply(small, [("counters", "shimin=+1")]), reps, seed=3)
    rows = {(r["scope"], r["figure"]): r for r in paired(a, b)}
    w = rows[("shimin", "wait_mean")]
    assert w["significant"] and w["diff"] < 0 and w["diff"] + w["ci"] < 0
    assert rows[("shimin", "within_target")]["diff"] > 0
    # a null change: the same scenario on other citizens (another seed) — no difference found
    other = run_replications(small, reps, seed=4)
    null = {(r["scope"], r["figure"]): r for r in paired(a, other)}
    assert not null[("shimin", "wait_mean")]["significant"]
    assert not null[("zeimu", "wait_mean")]["significant"]
    # and the same citizens under the same scenario: exactly no difference
    same = paired(a, run_replications(small, reps, seed=3))
    assert all(r["diff"] == 0 and not r["significant"] for r in same)
    # common random numbers pay: the paired interval is narrower than an unpaired one would be
    b_other = run_replications(apply(small, [("counters", "shimin=+1")]), reps, seed=4)
    unpaired = {(r["scope"], r["figure"]): r for r in paired(a, b_other)}[("shimin", "wait_mean")]
    assert w["ci"] < unpaired["ci"]


def test_compare_on_the_command_line(tmp_path):
    f = tmp_path / "small.toml"
    f.write_text(TOML, encoding="utf-8")
    out = tmp_path / "cmp.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), "compare", str(f), "--counters", "市民課=+1", "-r", "4", "-j", "1",
         "--quiet", "--json", str(out), "--plot", str(tmp_path / "cmp.png")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "B − A" in r.stdout and "counters 市民課=+1" in r.stdout
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["replications"] == 4 and any(x["scope"] == "shimin" and x["significant"] for x in data["rows"])
    assert (tmp_path / "cmp.png").read_bytes()[:4] == b"\x89PNG"
    bad = subprocess.run([sys.executable, str(ROOT / "run.py"), "compare", str(f), "--arrivals", "lots"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--arrivals" in bad.stderr
    none = subprocess.run([sys.executable, str(ROOT / "run.py"), "compare", str(f)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert none.returncode == 2 and "what-if" in none.stderr


def test_patience_sensitivity_moves_the_headline_figures(small):
    from simulation.whatif import format_sensitivity, sensitivity

    busy = apply(small, [("arrivals", "cert×1.4")])
    rows = {r["patience"]: r for r in sensitivity(busy, ["20", "60", "none"], replications=3, seed=2)}
    assert rows["none"]["abandoned"]["mean"] == 0
    assert rows["20"]["abandoned"]["mean"] > rows["60"]["abandoned"]["mean"] > 0
    # the fewer who give up, the longer the served wait: the headline wait shows the assumption
    assert rows["20"]["wait_mean"]["mean"] < rows["60"]["wait_mean"]["mean"] < rows["none"]["wait_mean"]["mean"]
    text = format_sensitivity(busy, list(rows.values()))
    assert "patience" in text and "none" in text
