"""The flusher computes a busy site's waits at most every WAITS_INTERVAL (queue_server/pushes.py),
and never leaves the last change out: against a real server on loopback, tickets issued for two
seconds cost at most one computation a second, and the waits pushed to a board after the last
issue count every ticket."""

from __future__ import annotations

import asyncio
import time

from queue_server import pushes
from tests.support.live_server import Client

from .test_health import _serve
from .writer_support import make_server


def test_due_waits_are_the_stale_sites_computed_an_interval_ago_or_never():
    computed = {"honcho": 100.0, "yawata": 100.0 - pushes.WAITS_INTERVAL}
    due = pushes.due_waits({"honcho", "yawata", "hirata"}, computed, 100.0)
    assert due == {"yawata", "hirata"}  # honcho: just computed; yawata: an interval ago; hirata: never
    assert pushes.due_waits(set(), computed, 1e9) == set()  # nothing changed: nothing due
    assert pushes.due_waits({"honcho"}, computed, 100.0 + pushes.WAITS_INTERVAL) == {"honcho"}


def test_a_busy_site_has_its_waits_computed_once_a_second_and_after_its_last_change(tmp_path, monkeypatch):
    runs: list[float] = []
    real = pushes.shown_waits

    def counted(*args):
        runs.append(time.monotonic())
        return real(*args)

    monkeypatch.setattr(pushes, "shown_waits", counted)
    qs = make_server(tmp_path)
    tokens = qs.tokens

    async def body(port):
        url = f"ws://127.0.0.1:{port}/ws"
        board, _ = await Client.open(url, role="display", device="b", token=tokens.roles["display"], site="honcho")
        kiosk, _ = await Client.open(url, role="kiosk", device="k", token=tokens.roles["kiosk"], site="honcho")
        await asyncio.sleep(2 * pushes.FLUSH_INTERVAL)
        runs.clear()
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 2.0:  # a change at every flush for two seconds
            await kiosk.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key=f"c{n}")
            n += 1
            await asyncio.sleep(pushes.FLUSH_INTERVAL / 2)
        busy = time.monotonic() - t0
        last_issue = time.monotonic()

        def counts_all(p):
            return p["push"] == "waits" and any(d["waiting"] == n for d in p["data"])

        await board.wait_push(counts_all, timeout=pushes.WAITS_INTERVAL + 5 * pushes.FLUSH_INTERVAL + 5)
        computed_during = [t for t in runs if t <= last_issue]
        # the flusher ran ~busy/FLUSH_INTERVAL times with a change each time; the waits at most once
        # an interval (and once at the start)
        assert len(computed_during) <= busy / pushes.WAITS_INTERVAL + 1, (len(computed_during), busy)
        assert len(runs) >= 2  # and again after the last change: the board counts every ticket
        for c in (board, kiosk):
            await c.close()

    asyncio.run(_serve(qs, body))
