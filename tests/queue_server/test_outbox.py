"""A connection's replies (queue_server/outbox.py): in request order whatever answers them and
when, each written as soon as it and every reply before it are ready, and a batch's replies on
the socket before the batch's pushes.

The real server runs in-process on a loopback port with a store that can hold the writer inside
its commit (writer_support.HeldStore), and the client reads raw frames in the order they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from websockets.asyncio.client import connect

from queue_server import outbox
from queue_server.jobs import Client


async def _hello(url: str, **hello) -> object:
    ws = await connect(url)
    await ws.send(json.dumps({"type": "hello", "id": 0, **hello}))
    reply = json.loads(await ws.recv())
    assert "result" in reply, reply
    return ws


async def _frames(ws, n: int) -> list[dict]:
    """The next ``n`` replies (pushes skipped: a console hears its queue's deltas meanwhile)."""
    out: list[dict] = []
    while len(out) < n:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
        if "re" in frame:
            out.append(frame)
    return out


async def _frames_within(ws, seconds: float) -> list[dict]:
    """Every frame (replies and pushes) that arrives within ``seconds``."""
    frames: list[dict] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                frames.append(json.loads(await ws.recv()))
    return frames


async def _replies_within(ws, seconds: float) -> list[dict]:
    return [f for f in await _frames_within(ws, seconds) if "re" in f]


def _issue(key: str) -> dict:
    return {"type": "issue", "purposes": ["certificate"], "answers": {}, "lang": "ja", "idempotency_key": key}


def test_replies_of_every_kind_leave_in_request_order(held):
    """A console sends, without waiting: a call (its batch held in the commit), a ping (answered
    at once, but behind the call), a `current` (the writer, then the card prefill in a thread), a
    malformed request, and a `queue` read. Nothing arrives while the call is held; then all five,
    in the order they were sent."""
    qs, store = held.qs, held.qs.store
    tokens = held.tokens()

    async def scenario():
        k = await _hello(held.url, role="kiosk", device="k1", token=tokens.roles["kiosk"], site="honcho")
        c = await _hello(held.url, role="counter", site="honcho", counter=1, token=tokens.counters["honcho"][1])
        for i in range(2):
            await k.send(json.dumps({**_issue(f"t{i}"), "id": i + 1}))
        await _frames(k, 2)
        await c.send(json.dumps({"type": "open", "id": 1}))
        assert "result" in (await _frames(c, 1))[0]
        reads = qs.metrics.requests.get("queue", 0)
        store.hold()
        sent = [{"type": "call_next", "id": 10}, {"type": "ping", "id": 11}, {"type": "current", "id": 12},
                {"type": "nonsense", "id": 13}, {"type": "queue", "id": 14}]
        for msg in sent:
            await c.send(json.dumps(msg))
        assert await asyncio.to_thread(store.entered.wait, 30)
        while qs.metrics.requests.get("queue", 0) == reads:  # the last one sent: all five read and judged
            await asyncio.sleep(0.01)
        assert await _replies_within(c, 0.3) == []  # the ping's reply waits behind the held call's
        store.release()
        got = [f for f in await _frames(c, 5)]
        assert [f.get("re") for f in got] == [10, 11, 12, 13, 14], got
        assert got[0]["result"]["ticket"]["number"] == "1"
        assert got[2]["result"]["ticket"]["number"] == "1"  # read after the call: the ticket at the counter
        assert got[3]["error"]["code"] == "unknown_type"
        assert [e["number"] for e in got[4]["result"]["queue"]] == ["2"]
        for ws in (k, c):
            await ws.close()

    asyncio.run(scenario())


def test_a_batch_reply_is_on_the_socket_before_the_batch_pushes(held):
    """An admin page hears every event as a push; its own cancel's reply comes first."""
    tokens = held.tokens()

    async def scenario():
        k = await _hello(held.url, role="kiosk", device="k1", token=tokens.roles["kiosk"], site="honcho")
        await k.send(json.dumps({**_issue("x"), "id": 1}))
        ticket = (await _frames(k, 1))[0]["result"]["ticket"]["id"]
        a = await _hello(held.url, role="admin", token=tokens.roles["admin"], site="honcho")
        await a.send(json.dumps({"type": "cancel", "id": 5, "ticket": ticket}))
        frames: list[dict] = []
        while not any(f.get("push") == "event" and f["data"]["kind"] == "cancelled" for f in frames):
            frames.append(json.loads(await asyncio.wait_for(a.recv(), 30)))
        replies = [i for i, f in enumerate(frames) if f.get("re") == 5]
        assert replies and replies[0] < len(frames) - 1, frames  # the reply, then the push
        assert frames[replies[0]]["result"]["ticket"]["id"] == ticket
        for ws in (k, a):
            await ws.close()

    asyncio.run(scenario())


def test_the_outbox_is_never_stuck_by_a_reply_that_failed():
    """Beside the live tests: the bookkeeping on its own. A reply future that raised or was
    cancelled is skipped; the replies behind a pending one wait for it; every reply is counted
    sent once (no socket: nothing is written)."""

    async def scenario():
        loop = asyncio.get_running_loop()
        client = Client(ws=None)  # type: ignore[arg-type]
        first, failed, cancelled = loop.create_future(), loop.create_future(), loop.create_future()
        outbox.queue_reply(None, client, first)  # type: ignore[arg-type]
        outbox.queue_reply(None, client, "text")  # type: ignore[arg-type]
        outbox.queue_reply(None, client, failed)  # type: ignore[arg-type]
        outbox.queue_reply(None, client, cancelled)  # type: ignore[arg-type]
        failed.set_exception(RuntimeError("the reply could not be built"))
        cancelled.cancel()
        await asyncio.sleep(0)
        assert client.unsent == 4 and len(client.outbox) == 4  # all behind the first
        first.set_result("{}")
        await asyncio.sleep(0)
        assert client.unsent == 0 and not client.outbox and client.sent.is_set()

    asyncio.run(scenario())


# ---------------------------------------------------------------------------- reads at once (writer.Writer.read)


def _stage_observations(qs) -> int:
    return sum(sum(h.counts) for h in qs.metrics.stage_seconds.values())


def test_a_read_waits_for_a_batch_in_flight_and_sees_it_committed(held):
    """While a call is held in its commit, memory holds the called ticket as called but the
    database does not yet: another console's `queue` read is not answered from that memory; it
    is answered after the commit, without the called ticket. With the writer idle, the same read
    is answered at once, outside the writer (no writer stages observed), and says the same."""
    qs, store = held.qs, held.qs.store
    tokens = held.tokens()

    async def scenario():
        k = await _hello(held.url, role="kiosk", device="k1", token=tokens.roles["kiosk"], site="honcho")
        a = await _hello(held.url, role="counter", site="honcho", counter=1, token=tokens.counters["honcho"][1])
        b = await _hello(held.url, role="counter", site="honcho", counter=2, token=tokens.counters["honcho"][2])
        for i in range(2):
            await k.send(json.dumps({**_issue(f"q{i}"), "id": i + 1}))
        await _frames(k, 2)
        for ws in (a, b):
            await ws.send(json.dumps({"type": "open", "id": 1}))
            await _frames(ws, 1)
        before = _stage_observations(qs)
        await b.send(json.dumps({"type": "queue", "id": 2}))
        (idle_read,) = await _frames(b, 1)
        assert [e["number"] for e in idle_read["result"]["queue"]] == ["1", "2"]
        assert _stage_observations(qs) == before  # answered at once, not through the writer
        store.hold()
        await a.send(json.dumps({"type": "call_next", "id": 3}))
        assert await asyncio.to_thread(store.entered.wait, 30)
        assert not qs.writer.idle()
        await b.send(json.dumps({"type": "queue", "id": 4}))
        assert await _replies_within(b, 0.3) == []  # not from memory the database does not hold yet
        store.release()
        (called,) = await _frames(a, 1)
        (read,) = await _frames(b, 1)
        assert called["result"]["ticket"]["number"] == "1"
        assert [e["number"] for e in read["result"]["queue"]] == ["2"]
        for ws in (k, a, b):
            await ws.close()

    asyncio.run(scenario())


def test_a_read_at_once_says_what_the_writer_would(tmp_path):
    """`queue`, `current` and `status` answered by Writer.read equal the writer's own answers on
    the same state (in-process, beside the live tests)."""
    from . import writer_support as W

    qs = W.make_server(tmp_path)

    async def scenario():
        issued = await W.run(qs, [W.job(W.kiosk(), "issue", purposes=["certificate"], answers={}, lang="ja",
                                        idempotency_key=f"r{i}") for i in range(3)])
        await W.run(qs, [W.job(W.counter(1), "open")])
        await W.run(qs, [W.job(W.counter(1), "call_next")])
        hub = qs.hubs["honcho"]
        phone = Client(ws=None, role="public", site="honcho", ticket=issued[2]["result"]["ticket"]["id"])  # type: ignore[arg-type]
        for client, kind in ((W.counter(1), "queue"), (W.counter(1), "current"), (W.counter(2), "current"),
                             (phone, "status")):
            assert qs.writer.idle()
            direct = json.loads(qs.writer.read(W.job(client, kind)))
            (batched,) = await W.run(qs, [W.job(client, kind)])
            assert "result" in direct and {**direct, "re": None} == {**batched, "re": None}, kind
        assert hub.lobby.journal is None

    asyncio.run(scenario())
