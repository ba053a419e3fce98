"""Boards' pushes coalesced (queue_server/board_out.py) against a real server on loopback: every
call reaches every board once and in seq order with the waits pushes between them, the frames
parse as any websocket client parses them (long ones too), and a board that stops reading is
closed with the slow-client reason while the other boards keep hearing every call."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from queue_server import pushes
from queue_server.board_out import BoardOut, text_frame
from queue_server.jobs import Client as ServerClient
from tests.support.live_server import Client

from .test_health import _serve
from .writer_support import close_frame, make_server, stalled_client


def test_a_push_is_framed_once_for_every_board():
    out = BoardOut()
    a, b = ServerClient(ws=None, role="display"), ServerClient(ws=None, role="display")  # type: ignore[arg-type]
    out.queue([a, b], '{"push":"call"}')
    out.queue([a], '{"push":"waits"}')
    pending = out.take()
    assert pending[a][0] is pending[b][0], "framed again per board"
    assert pending[a][0] == text_frame('{"push":"call"}') and len(pending[a]) == 2 and len(pending[b]) == 1
    assert out.take() == {}


async def _cycle(console: Client, n: int) -> list[str]:
    called = []
    for _ in range(n):
        r = await console.ok("call_next")
        if r.get("ticket"):
            called.append(r["ticket"]["number"])
            await console.ok("start")
            await console.ok("complete")
    return called


@pytest.mark.parametrize("fan_out_slice", [None, 1])
def test_boards_hear_every_call_once_in_seq_order(tmp_path, monkeypatch, fan_out_slice):
    if fan_out_slice:  # each board its own slice of the round, the loop turning between slices
        monkeypatch.setattr(pushes, "FAN_OUT_SLICE", fan_out_slice)
    qs = make_server(tmp_path)
    tokens = qs.tokens

    async def body(port):
        url = f"ws://127.0.0.1:{port}/ws"
        boards = [(await Client.open(url, role="display", device=f"b{i}", token=tokens.roles["display"], site="honcho"))[0]
                  for i in range(3)]
        kiosk, _ = await Client.open(url, role="kiosk", device="k", token=tokens.roles["kiosk"], site="honcho")
        consoles = [(await Client.open(url, role="counter", counter=n, token=tokens.counters["honcho"][n],
                                       site="honcho"))[0] for n in (1, 2)]
        for c in consoles:
            await c.ok("open", staff="x")
        # a long waits push too: names in seven languages for every department (> 125 bytes)
        for i in range(12):
            await kiosk.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key=f"i{i}")
        called = [n for ns in await asyncio.gather(*(_cycle(c, 6) for c in consoles)) for n in ns]
        assert len(called) == 12
        for b in boards:
            await b.wait_push(lambda p, b=b: sum(1 for q in b.pushes if q["push"] == "call") >= 12)
        await asyncio.sleep(3 * pushes.FLUSH_INTERVAL)
        for b in boards:
            calls = [p["data"]["number"] for p in b.pushes if p["push"] == "call"]
            assert sorted(calls) == sorted(called), "a call missing or twice"
            seqs = [p["seq"] for p in b.pushes]
            assert seqs == sorted(seqs), f"pushes out of seq order: {seqs}"
            assert any(p["push"] == "waits" and len(json.dumps(p)) > 1000 for p in b.pushes)
        for c in [*boards, kiosk, *consoles]:
            await c.close()

    asyncio.run(_serve(qs, body))


def test_a_board_that_stops_reading_is_closed_and_the_others_hear_every_call(tmp_path, monkeypatch):
    monkeypatch.setattr(pushes, "MAX_CLIENT_BUFFER", 64 * 1024)
    monkeypatch.setattr(pushes, "DROP_GRACE", 30.0)
    qs = make_server(tmp_path)
    tokens = qs.tokens

    async def body(port):
        url = f"ws://127.0.0.1:{port}/ws"
        healthy, _ = await Client.open(url, role="display", device="good", token=tokens.roles["display"], site="honcho")
        slow, stalled = await stalled_client(qs, port, {"role": "display", "site": "honcho", "device": "slow",
                                                        "token": tokens.roles["display"]}, lambda c: c.device == "slow")
        kiosk, _ = await Client.open(url, role="kiosk", device="k", token=tokens.roles["kiosk"], site="honcho")
        console, _ = await Client.open(url, role="counter", counter=1, token=tokens.counters["honcho"][1], site="honcho")
        await console.ok("open", staff="x")
        called = 0
        for n in range(3000):  # calls, recalls and call ends it does not read (~0.5 kB each)
            await kiosk.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key=f"s{n}")
            if (await console.ok("call_next")).get("ticket"):
                called += 1
                for _ in range(3):
                    await console.ok("recall")
                await console.ok("start")
                await console.ok("complete")
            if qs.metrics.slow_dropped:
                break
        assert qs.metrics.slow_dropped == 1, "the stalled board was never dropped"
        await asyncio.sleep(3 * pushes.FLUSH_INTERVAL)
        assert stalled.ws.transport is None or stalled.ws.transport.get_write_buffer_size() \
            <= pushes.MAX_CLIENT_BUFFER + 64 * 1024, "written to after it was dropped"
        rcvd = await close_frame(slow)
        assert rcvd is not None and rcvd.code == 1013 and rcvd.reason == pushes.SLOW_CLOSE_REASON, rcvd
        assert sum(1 for p in healthy.pushes if p["push"] == "call" and not p["data"]["recall"]) == called
        for c in (healthy, kiosk, console):
            await c.close()

    asyncio.run(_serve(qs, body))


def test_a_push_no_one_hears_is_not_even_encoded(tmp_path, monkeypatch):
    """pushes.push encodes a push only when its audience has a client (every event goes to the
    admin audience, which is usually empty); with one client there, it is encoded once."""
    qs = make_server(tmp_path)
    hub = qs.hubs["honcho"]
    encoded = []
    real = pushes.P.push
    monkeypatch.setattr(pushes.P, "push", lambda *a, **k: encoded.append(a) or real(*a, **k))
    pushes.push(qs, hub, "admin", "event", {"kind": "called"})
    assert encoded == []
    # a client whose socket is gone: the push is encoded, then not written (send_frame skips it)
    admin = ServerClient(ws=SimpleNamespace(transport=None), role="admin", site="honcho")  # type: ignore[arg-type]
    qs.clients.add(admin)
    qs.clients.placed(admin)  # (as its hello does)
    pushes.push(qs, hub, "admin", "event", {"kind": "called"})
    assert [a[0] for a in encoded] == ["event"]
    qs.clients.discard(admin)
