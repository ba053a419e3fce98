"""Live mode against the real queue server on a loopback port: numbers move on its board."""

from __future__ import annotations

import asyncio
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
