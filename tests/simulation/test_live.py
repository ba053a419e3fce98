"""Live mode against the real queue server on a loopback port: numbers move on its board."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from simulation.live import run_live, ws_endpoint
from simulation.scenario import load_scenario
from tests.support.live_server import Client, LiveServer

SCENARIOS = Path(__file__).resolve().parents[2] / "config" / "scenarios"


@pytest.fixture
def server(tmp_path):
    srv = LiveServer(db_url=f"sqlite:///{tmp_path / 'lobby.db'}", secrets=tmp_path / "secrets.toml").start()
    yield srv
    srv.kill()


def test_ws_endpoint():
    assert ws_endpoint("ws://127.0.0.1:8765") == "ws://127.0.0.1:8765/ws"
    assert ws_endpoint("ws://127.0.0.1:8765/ws") == "ws://127.0.0.1:8765/ws"
    with pytest.raises(ValueError):
        ws_endpoint("http://x")


@pytest.mark.slow
def test_live_mode_issues_calls_and_completes_through_the_protocol(server):
    sc = load_scenario(SCENARIOS / "normal_week.toml")

    async def go():
        tokens = server.tokens()
        board, _ = await Client.open(server.url, role="display", site="honcho", device="test-board", token=tokens.roles["display"])
        # a Monday's first 40 minutes at ×600: about four seconds of wall time
        stats = await run_live(sc, f"ws://127.0.0.1:{server.port}", 600.0, server.secrets, seed=3, minutes=40)

        def heard(_p: dict) -> bool:  # a board hears the last calls up to 50 ms after their replies
            return sum(1 for p in board.pushes if p.get("push") == "call") >= stats.issued

        with contextlib.suppress(TimeoutError):
            await board.wait_push(heard, timeout=5)
        calls = [p for p in board.pushes if p.get("push") == "call"]
        await board.close()
        return stats, calls

    stats, calls = asyncio.run(go())
    assert stats.errors == []
    assert stats.issued >= 5
    assert stats.called >= stats.issued  # every ticket called at least once (some have several steps)
    assert stats.completed + stats.no_shows == stats.called
    assert len(calls) >= stats.issued  # the board saw the numbers called


def test_live_service_follows_the_offline_models_spread():
    """A step the server planned is served with the offline model's law: its planned minutes as
    mean and √Σ(minutesᵢ·cvᵢ)² over its procedures as sd (cv 0.5 only for unknown procedures)."""
    import math as _m
    import random as _r

    from simulation.live import step_service
    from simulation.model import draw_service

    procs = {"a": (10.0, 0.2), "b": (5.0, 0.8)}
    p = step_service({"minutes": 15.0, "procedures": ["a", "b"]}, procs)
    rng = _r.Random(3)
    xs = [draw_service(rng, p) / 60 for _ in range(40000)]
    mean = sum(xs) / len(xs)
    sd = _m.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs))
    assert mean == pytest.approx(15.0, rel=0.02)
    assert sd == pytest.approx(_m.hypot(10 * 0.2, 5 * 0.8), rel=0.05)  # not 0.5 × 15 = 7.5
    q = step_service({"minutes": 8.0, "procedures": ["zzz"]}, procs)
    assert q[2] == pytest.approx(_m.sqrt(_m.log(1 + 0.25)))  # unknown procedure: cv 0.5


def replayed_scenario(tmp: Path) -> Path:
    """A calibrated scenario's shape: route-given purposes with `purpose` and each step's
    `procedures` (what `calibrate` writes), one the planner cannot make, one without procedures."""
    p = tmp / "replay.toml"
    p.write_text("""
[scenario]
name = "replay"
kind = "lobby"
site = "honcho"
[calendar]
days = ["2026-06-03"]
[arrivals]
source = "test"
site_share = 1.0
hour_weights = { "8" = 1.0, "9" = 1.0 }
[behaviour]
no_show = 0.0
[purposes.certificate_1]
yearly = 4860
source = "test"
purpose = "certificate"
route = [{ department = "shimin", minutes = 9.0, cv = 0.1, procedures = ["koseki_certificate"] }]
[purposes.certificate_2]
yearly = 2430
source = "test"
purpose = "certificate"
route = [{ department = "shimin", minutes = 3.0, cv = 0.1, procedures = ["juminhyo"] }]
[purposes.odd]
yearly = 243
source = "test"
purpose = "certificate"
route = [{ department = "shimin", minutes = 3.0, procedures = ["juminhyo", "no_such_procedure"] }]
[purposes.bare]
yearly = 243
source = "test"
route = [{ department = "shimin", minutes = 3.0 }]
[staffing]
lunch = false
""", encoding="utf-8")
    return p


def test_replay_plans_finds_the_answers_for_a_calibrated_route(tmp_path):
    from queue_server.core.journey import plan_visit
    from simulation.live import replay_plans
    from simulation.routing import load_for

    sc = load_scenario(replayed_scenario(tmp_path))
    cat = load_for(sc)
    ok, bad = replay_plans(sc, cat)
    assert set(ok) == {"certificate_1", "certificate_2"}
    assert set(bad) == {"odd", "bare"} and "procedures" in bad["bare"]
    for key, want in (("certificate_1", ("koseki_certificate",)), ("certificate_2", ("juminhyo",))):
        pid, answers = ok[key]
        assert pid == "certificate"
        (step,) = plan_visit(cat, [pid], answers, "ja").route
        assert (step.department, step.procedures) == ("shimin", want)


@pytest.mark.slow
def test_live_mode_replays_a_calibrated_scenario(tmp_path):
    """`unknown purpose 'certificate_1'` no more: route-given purposes are issued as the catalogue
    purpose with answers whose plan is the route, and served with the route's own minutes."""
    clock = tmp_path / "clock.json"
    srv = LiveServer(db_url=f"sqlite:///{tmp_path / 'r.db'}", secrets=tmp_path / "secrets.toml",
                     extra=["--clock", str(clock)]).start()
    sc = load_scenario(replayed_scenario(tmp_path))
    said: list[str] = []
    try:
        stats = asyncio.run(run_live(sc, srv.url, 600.0, srv.secrets, seed=5, minutes=45, log=said.append,
                                     clock_file=clock))
    finally:
        srv.stop()
    assert stats.errors == []
    assert stats.issued >= 5 and stats.completed == stats.called
    assert any("odd skipped" in m for m in said) and any("bare skipped" in m for m in said)
    # the log, calibrated, shows the routes' own service minutes (9 and 3), not the planner's (6)
    from queue_server.calibrate import fit
    from queue_server.config import load_city
    from queue_server.storage import Store
    from simulation.routing import load_for

    cal = fit(Store(f"sqlite:///{tmp_path / 'r.db'}").engine, load_city(), "honcho", "2026-06-03", "2026-06-03", load_for(sc))
    assert cal.tickets == stats.issued
    means = {v.steps[0].procedures: v.steps[0].minutes for v in cal.variants}
    assert set(means) <= {("koseki_certificate",), ("juminhyo",)}
    if ("koseki_certificate",) in means:
        assert means[("koseki_certificate",)] == pytest.approx(9.0, abs=1.5)
    if ("juminhyo",) in means:
        assert means[("juminhyo",)] == pytest.approx(3.0, abs=1.0)
