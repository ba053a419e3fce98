"""Health tells the truth: /healthz is 503 while storage fails or the writer is behind, /metrics
counts storage errors by cause, kiosks and consoles are told by a ``storage`` push."""

import asyncio
import json
import threading
import urllib.error
import urllib.request

from queue_server import writer as W
from queue_server.server import run_server
from tests.support.live_server import Client

from .writer_support import FaultyStore, make_server


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


async def _serve(qs, body):
    stop = asyncio.get_running_loop().create_future()
    port: list[int] = []
    task = asyncio.create_task(run_server(qs, "127.0.0.1", 0, port.append, stop))
    while not port:
        await asyncio.sleep(0.02)
    try:
        await body(port[0])
    finally:
        stop.set_result(None)
        await task


def test_storage_failure_turns_health_red_tells_kiosks_and_consoles_and_recovers(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "PROBE_INTERVAL", 0.1)
    qs = make_server(tmp_path)
    store: FaultyStore = qs.store  # type: ignore[assignment]
    tokens = qs.tokens

    async def body(port):
        url, http = f"ws://127.0.0.1:{port}/ws", f"http://127.0.0.1:{port}"
        k, hello = await Client.open(url, role="kiosk", device="k1", token=tokens.roles["kiosk"], site="honcho")
        assert hello["result"]["storage"]["ok"] is True
        c, _ = await Client.open(url, role="counter", site="honcho", counter=1, token=tokens.counters["honcho"][1])
        status, text = await asyncio.to_thread(_get, f"{http}/healthz")
        assert status == 200 and json.loads(text)["checks"]["storage"]["ok"] is True

        store.fail_after = 1
        probe = store.probe
        store.probe = lambda: (_ for _ in ()).throw(OSError("still full"))  # the disk stays full
        r = await k.request("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key="x")
        assert r["error"]["code"] == "storage_error" and "disk is full" in r["error"]["message"]
        for client in (k, c):
            p = await client.wait_push(lambda p: p["push"] == "storage")
            assert p["data"]["ok"] is False and p["data"]["cause"] == "disk_full"
        status, text = await asyncio.to_thread(_get, f"{http}/healthz")
        health = json.loads(text)
        assert status == 503 and not health["ok"]
        assert health["checks"]["storage"]["cause"] == "disk_full" and health["checks"]["writer"]["ok"]
        _, metrics = await asyncio.to_thread(_get, f"{http}/metrics")
        assert 'madoguchi_storage_errors_total{cause="disk_full"} 1' in metrics
        assert 'madoguchi_storage_errors_total{cause="locked"} 0' in metrics
        assert "madoguchi_storage_ok 0" in metrics
        # a kiosk connecting now learns it at once
        k2, hello2 = await Client.open(url, role="kiosk", device="k2", token=tokens.roles["kiosk"], site="honcho")
        assert hello2["result"]["storage"] == {"ok": False, "cause": "disk_full", "since": qs.clock()}

        store.probe = probe  # space freed: the probe write succeeds, everyone is told
        p = await k.wait_push(lambda p: p["push"] == "storage" and p["data"]["ok"])
        assert p["data"]["cause"] is None
        status, _ = await asyncio.to_thread(_get, f"{http}/healthz")
        assert status == 200
        r = await k.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key="x")
        assert r["ticket"]["number"] == "1"
        for client in (k, k2, c):
            await client.close()

    asyncio.run(_serve(qs, body))


def test_a_writer_that_is_behind_makes_health_red(tmp_path, monkeypatch):
    monkeypatch.setattr(W, "BEHIND_SECONDS", 0.3)
    qs = make_server(tmp_path)
    release = threading.Event()
    write = qs.store.write

    def slow_write(batch, wait=True):
        release.wait(20)
        write(batch, wait)

    qs.store.write = slow_write  # type: ignore[method-assign]
    # commits in a worker thread, as with PostgreSQL or FULL sync: a commit stalled on the event
    # loop itself would hold /healthz too (writer.INLINE_SLOW moves the next ones off the loop)
    qs.store.writes_inline = lambda: False  # type: ignore[method-assign]

    async def body(port):
        url, http = f"ws://127.0.0.1:{port}/ws", f"http://127.0.0.1:{port}"
        k, _ = await Client.open(url, role="kiosk", device="k1", token=qs.tokens.roles["kiosk"], site="honcho")
        pending = [asyncio.create_task(k.request("issue", purposes=["certificate"], answers={}, lang="ja",
                                                 idempotency_key=f"k{i}")) for i in range(3)]
        await asyncio.sleep(0.6)
        status, text = await asyncio.to_thread(_get, f"{http}/healthz")
        writer = json.loads(text)["checks"]["writer"]
        assert status == 503 and writer["ok"] is False and writer["oldest_seconds"] >= 0.3
        release.set()
        assert all("result" in r for r in await asyncio.gather(*pending))
        status, _ = await asyncio.to_thread(_get, f"{http}/healthz")
        assert status == 200
        await k.close()

    asyncio.run(_serve(qs, body))


def test_another_part_can_add_a_named_health_check(tmp_path):
    qs = make_server(tmp_path)
    qs.health_checks["leadership"] = lambda: (False, {"holder": "other-host"})
    h = qs.health()
    assert h["ok"] is False and h["checks"]["leadership"] == {"holder": "other-host", "ok": False}
    assert h["checks"]["storage"]["ok"] is True
