"""Requests before fan-out (pushes.give_way): while the writer has a request to apply, commit or
answer, a flush's pushes to the consoles and a round to the boards wait for it — at most
MAX_GIVE_WAY, so pushes still go under a load that keeps the writer busy.

The real server runs in-process on a loopback port with a store that can hold the writer inside
its commit (writer_support.HeldStore): a held call is a writer that stays busy for as long as the
test wants.
"""

from __future__ import annotations

import asyncio
import json

from queue_server import pushes

from .test_outbox import _frames, _frames_within, _hello, _issue


async def _pushes_within(ws, seconds: float, kind: str) -> list[dict]:
    """The pushes of ``kind`` that arrive within ``seconds``."""
    return [f for f in await _frames_within(ws, seconds) if f.get("push") == kind]


async def _snapshot_within(ws, seconds: float) -> list[str] | None:
    """The numbers of the first full queue snapshot pushed within ``seconds`` (None: none came)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        for f in await _pushes_within(ws, min(left, 0.25), "queue"):
            if f["data"].get("full"):
                return sorted(e["number"] for e in f["data"]["entries"])  # (a console orders them itself)
    return None


async def _lobby(held):
    """A kiosk that issued two tickets, and two open consoles (counters 1 and 2)."""
    tokens = held.tokens()
    k = await _hello(held.url, role="kiosk", device="k1", token=tokens.roles["kiosk"], site="honcho")
    for i in range(2):
        await k.send(json.dumps({**_issue(f"g{i}"), "id": i + 1}))
    await _frames(k, 2)
    consoles = []
    for n in (1, 2):
        c = await _hello(held.url, role="counter", site="honcho", counter=n, token=tokens.counters["honcho"][n])
        await c.send(json.dumps({"type": "open", "id": 1}))
        await _frames(c, 1)
        consoles.append(c)
    await _pushes_within(consoles[0], 2 * pushes.FLUSH_INTERVAL, "queue")  # the open's deltas: gone by now
    return k, *consoles


async def _hold_a_call(held, console) -> None:
    """Hold the writer inside the commit of ``console``'s call_next."""
    held.qs.store.hold()
    await console.send(json.dumps({"type": "call_next", "id": 9}))
    assert await asyncio.to_thread(held.qs.store.entered.wait, 30)
    assert not held.qs.writer.quiet.is_set()


def test_a_flush_waits_for_the_writer(held, monkeypatch):
    """Console A asks for its queue again (the snapshot comes at the next flush) while console
    B's call is held in its commit: no snapshot in three flush intervals; once the call is
    committed and answered, the snapshot comes, and shows the call (ticket 1 no longer waits)."""
    monkeypatch.setattr(pushes, "MAX_GIVE_WAY", 60.0)

    async def scenario():
        k, a, b = await _lobby(held)
        await _hold_a_call(held, b)
        await a.send(json.dumps({"type": "resync", "id": 2}))
        (pending,) = await _frames(a, 1)
        assert pending["result"] == {"pending": True}  # a resync needs no writer: answered at once
        assert await _pushes_within(a, 3 * pushes.FLUSH_INTERVAL, "queue") == []
        held.qs.store.release()
        (called,) = await _frames(b, 1)
        assert called["result"]["ticket"]["number"] == "1"
        assert await _snapshot_within(a, 10) == ["2"]  # the call committed: ticket 1 left the queue
        for ws in (k, a, b):
            await ws.close()

    asyncio.run(scenario())


def test_pushes_go_even_while_the_writer_stays_busy(held, monkeypatch):
    """The same, with the call held for good: the snapshot comes anyway, after MAX_GIVE_WAY, while
    the writer is still inside its commit (pushes are late under load, never starved)."""
    monkeypatch.setattr(pushes, "MAX_GIVE_WAY", 0.3)

    async def scenario():
        k, a, b = await _lobby(held)
        await _hold_a_call(held, b)
        await a.send(json.dumps({"type": "resync", "id": 2}))
        await _frames(a, 1)
        assert await _snapshot_within(a, 10) == ["1", "2"]  # from committed state: ticket 1 still waits
        assert not held.qs.writer.quiet.is_set()  # and the call is still held in its commit
        held.qs.store.release()
        await _frames(b, 1)
        for ws in (k, a, b):
            await ws.close()

    asyncio.run(scenario())


def test_a_board_round_waits_for_the_writer(held, monkeypatch):
    """A push queued for the boards while a call is held in its commit reaches the board only
    after the writer is quiet again."""
    monkeypatch.setattr(pushes, "MAX_GIVE_WAY", 60.0)
    qs = held.qs
    tokens = held.tokens()

    async def scenario():
        k, a, b = await _lobby(held)
        board = await _hello(held.url, role="display", token=tokens.roles["display"], site="honcho")
        await _hold_a_call(held, b)
        end = {"seq": 0, "number": "Z9", "counter": 9, "reason": "test", "at": 0}
        held.loop.call_soon_threadsafe(lambda: pushes.push(qs, qs.hubs["honcho"], "boards", "call_end", end))
        assert await _pushes_within(board, 5 * pushes.BOARD_PUSH_INTERVAL, "call_end") == []
        held.qs.store.release()
        got: list[dict] = []
        for _ in range(20):
            got += await _pushes_within(board, 0.25, "call_end")
            if any(f["data"]["number"] == "Z9" for f in got):
                break
        assert [f["data"]["number"] for f in got] == ["Z9"], got
        for ws in (k, a, b, board):
            await ws.close()

    asyncio.run(scenario())


def test_the_bound_is_per_round_not_per_slice(monkeypatch):
    """Beside the live tests: give_way on its own, with a writer that never rests. A round that
    has already given way for MAX_GIVE_WAY goes on at once with its next slices; a round that has
    just begun waits for the writer (here: until its bound, shortened for the test)."""
    from types import SimpleNamespace

    async def scenario():
        loop = asyncio.get_running_loop()
        busy = SimpleNamespace(writer=SimpleNamespace(quiet=asyncio.Event()))  # never set
        monkeypatch.setattr(pushes, "MAX_GIVE_WAY", 600.0)
        async with asyncio.timeout(5):  # (a wait of 600 s would fail here, not hang)
            await pushes.give_way(busy, since=loop.time() - 600.0)
        monkeypatch.setattr(pushes, "MAX_GIVE_WAY", 0.2)
        start = loop.time()
        await pushes.give_way(busy, since=start)
        assert loop.time() >= start + 0.19  # it did wait, up to the bound (timers may fire a hair early)
        quiet = SimpleNamespace(writer=SimpleNamespace(quiet=asyncio.Event()))
        quiet.writer.quiet.set()
        monkeypatch.setattr(pushes, "MAX_GIVE_WAY", 600.0)
        async with asyncio.timeout(5):  # a quiet writer: no wait at all
            await pushes.give_way(quiet, since=loop.time())

    asyncio.run(scenario())
