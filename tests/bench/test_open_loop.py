"""bench/open_loop.py works: a --quick run against the real server (one site, four sites, a
reconnect storm) accounts for every request it offered and every call every board should get
(during the storm a call a board missed or got twice must be explained by how it resumed: the
server's races are the bench's to report, not this test's). No timing is checked here: the figures are the bench's to print (docs/benchmarks.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_accounts_for_every_request_and_call(tmp_path: Path) -> None:
    out = tmp_path / "open_loop.json"
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "open_loop.py"), "--quick", "--json", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert p.returncode == 0, p.stdout + p.stderr
    res = json.loads(out.read_text())
    runs = {r["scenario"]: r for r in res["runs"]}
    assert set(runs) == {"matrix", "sites", "storm"}, res["runs"]
    for r in runs.values():
        assert "failed" not in r, r
        # every offered request is answered, still unanswered, lost with a closed socket or never sent
        assert r["offered"] == r["answered"] + r["unanswered"] + r["lost_on_close"] + r["never_sent"], r
        assert r["answered"] > 0 and r["latency"]["n"] == r["answered"], r
        assert r["push"]["calls"] > 0 and r["push"]["boards"] == r["boards"], r
        # every missing call is explained (how the board's last_seq passed it), every duplicate too
        assert sum(r["push"]["missing_why"].values()) == r["push"]["missing"], r["push"]
        # "other": not resumed past it, no truncated hello (the documented start-over): the replay lost it
        assert "other" not in r["push"]["missing_why"], r["push"]
        assert sum(r["duplicate_via"].values()) == r["push"]["duplicated"], r
        assert r["sqlite_commit"]["n"] == 200, r["sqlite_commit"]
        assert r["pushes_received"].get("counter:queue", 0) > 0, r["pushes_received"]  # consoles read their pushes
        assert r["vm_steal_ms"] >= 0, r  # read from /proc/stat (0 on bare metal)
        # the machine probe on the server's core before the run (bench/machine_probe.py)
        m = r["machine_probe"]
        assert m["units"] > 0 and m["unit_us"] > 0 and 0 <= m["lost_pct"] < 100 and m["stall_ms"] >= 0, m
        # the server's own split of its writer requests (/metrics madoguchi_request_stage_seconds)
        assert list(r["server_stages"]) == ["queued", "applied", "committed", "answered", "sent"], r["server_stages"]
        assert all(0 < v["n"] <= r["server_reply"]["n"] for v in r["server_stages"].values()), r["server_stages"]
    for name in ("matrix", "sites"):  # no reconnect there: every call reached every board once
        assert runs[name]["push"]["missing"] == 0 and runs[name]["push"]["duplicated"] == 0, runs[name]["push"]
    assert set(runs["sites"]["waiting_at_end"]) == {"honcho", "yawata", "matsuyama", "hirata"}
    storm = runs["storm"]["storm"]
    assert storm["resynced"] == storm["clients"] == 10, storm  # every dropped client came back with hello
    assert sum(runs["storm"]["reconnects"].values()) == 10, runs["storm"]["reconnects"]


def test_floor_server_run_accounts_for_every_request_and_call(tmp_path: Path) -> None:
    """The `floor` scenario (bench/floor_server.py) speaks enough of the protocol for the bench:
    every request answered, every call on every board once, with and without CPU per request, and
    with a fixed amount of work per request (the same pieces in every round)."""
    out = tmp_path / "floor.json"
    p = subprocess.run([sys.executable, str(ROOT / "bench" / "open_loop.py"), "--quick", "--scenario", "floor",
                        "--floor-burn-ms", "0", "0.5", "--floor-work-ms", "0.2", "--repeat", "2", "--json", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stdout + p.stderr
    runs = json.loads(out.read_text())["runs"]
    # --repeat 2: the whole plan twice, round after round
    assert [(r["round"], r["burn_ms"], r.get("work_ms")) for r in runs] == [
        (1, 0.0, None), (1, 0.5, None), (1, 0.0, 0.2), (2, 0.0, None), (2, 0.5, None), (2, 0.0, 0.2)], runs
    pieces = {r["work_pieces"] for r in runs if r.get("work_ms")}
    assert len(pieces) == 1 and pieces.pop() >= 1, runs  # timed once: the same work in both rounds
    assert {r["scenario"] for r in runs} == {"floor"}
    assert len({r["database"] for r in runs}) == 6, runs  # every run, every round on a fresh database
    spread = [line for line in p.stdout.splitlines() if line.startswith("| floor")]
    assert [line.split("|")[1].strip() for line in spread] == ["floor0", "floor0.5", "floorw0.2"], p.stdout
    assert all(line.split("|")[6].strip() == "2" for line in spread), spread  # two rounds each
    for r in runs:
        assert r["answered"] == r["offered"] > 0 and r["latency"]["n"] == r["answered"], r
        assert r["push"]["calls"] > 0 and r["push"]["missing"] == 0 and r["push"]["duplicated"] == 0, r["push"]
        assert r["server_reply"] == {"n": 0, "p50_le_ms": None, "p99_le_ms": None, "p999_le_ms": None}, r  # no /metrics
    assert "floor0.5" in p.stdout  # each run is named with its CPU per request


def test_floor_work_pieces_grow_with_the_time_asked_for() -> None:
    """bench/floor_server.pieces_for: at least one piece, and more pieces for more time (a piece
    takes tens of µs: 20 ms is many of them); work() does them."""
    from bench import floor_server

    assert floor_server.pieces_for(0.001) == 1
    assert floor_server.pieces_for(20.0) > 10
    floor_server.work(3)


def test_machine_probe_counts_a_stall_as_lost_time(monkeypatch) -> None:
    """bench/machine_probe.measure: a piece of work that took far longer than the others (here a
    sleep in one of them, as a stalled core would) is counted as lost time and as the stall."""
    from bench import machine_probe

    calls = [0]
    real = machine_probe._unit

    def unit() -> int:
        calls[0] += 1
        if calls[0] == 50:
            time.sleep(0.05)
        return real()

    monkeypatch.setattr(machine_probe, "_unit", unit)
    m = machine_probe.measure(0.3)
    assert m["stall_ms"] >= 45, m
    assert m["lost_pct"] >= 45 / 300 * 100 * 0.9, m  # 50 ms of 300
