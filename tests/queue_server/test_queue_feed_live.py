"""The queue feed against a real server on loopback: consoles that keep their queue from the hello
snapshot and the `queue` deltas (as counter/web/console.js does) hold the server's queue after
random requests from kiosks, counters and the admin; a console that stops reading is closed with
a clear reason instead of having pushes pile up without bound, and the others are not held up."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from queue_server import pushes
from queue_server.core import queue_feed as Q
from queue_server.core.dispatch import DispatchPolicy
from tests.support.live_server import Client

from .test_health import _serve
from .writer_support import FaultyStore, close_frame, make_server, stalled_client

CONSOLES = (1, 2, 4, 5, 6)  # shimin twice (one stream), shimin+hoken_nenkin, hoken_nenkin, hoken_nenkin+kaigo


class FeedConsole:
    """A counter console's queue, kept as console.js keeps it (onQueue)."""

    def __init__(self, client: Client, counter: int, hello: dict):
        self.client, self.counter = client, counter
        snap = hello["result"]["snapshot"]
        self.policy = DispatchPolicy(aging_bound=snap["policy"]["aging_bound"],
                                     reservation_grace=snap["policy"]["reservation_grace"])
        self.entries = Q.apply({}, snap["queue"])
        self.seq: int | None = snap["queue"]["seq"]
        self.offset = hello["result"]["server_time"] - time.time()  # the server's clock, as console.js keeps it
        self.read = 0
        self.gaps = 0
        self.deltas = 0

    @classmethod
    async def open(cls, url: str, tokens, counter: int) -> FeedConsole:
        c, hello = await Client.open(url, role="counter", site="honcho", counter=counter,
                                     token=tokens.counters["honcho"][counter])
        return cls(c, counter, hello)

    def catch_up(self) -> None:
        for p in self.client.pushes[self.read:]:
            if p.get("push") != "queue":
                continue
            seq, data = p["seq"], p["data"]
            if data.get("full"):
                self.entries, self.seq = Q.apply({}, data), seq
            elif self.seq is None or seq <= self.seq:
                continue
            elif data["from"] > self.seq:
                self.gaps += 1
                self.seq = None
            else:
                self.entries, self.seq = Q.apply(self.entries, data), seq
                self.deltas += 1
        self.read = len(self.client.pushes)

    async def shown(self) -> tuple[list[dict], list[dict]]:
        """(the console's queue as it would show it, the server's `queue` reply), the same instant."""
        server = (await self.client.ok("queue"))["queue"]
        now = time.time() + self.offset
        mine = [Q.shown(e, now, self.policy) for e in Q.order(self.entries.values(), now, self.policy)]
        strip = lambda rows: [{k: v for k, v in r.items() if k != "waited_minutes"} for r in rows]  # noqa: E731
        return strip(mine), strip(server)


async def _random_day(url: str, tokens, rng: random.Random, steps: int) -> list[FeedConsole]:
    kiosk, _ = await Client.open(url, role="kiosk", device="feed", token=tokens.roles["kiosk"], site="honcho")
    admin, _ = await Client.open(url, role="admin", token=tokens.roles["admin"], site="honcho")
    consoles = [await FeedConsole.open(url, tokens, n) for n in CONSOLES]
    for c in consoles:
        await c.client.ok("open")
    issued: list[str] = []
    for i in range(steps):
        op = rng.choice(["issue", "issue", "issue", "call_next", "call", "start", "complete", "complete", "transfer",
                         "recall", "no_show", "requeue", "cancel", "reconnect", "pause"])
        c = rng.choice(consoles)
        if op == "issue":
            r = await kiosk.ok("issue", purposes=[rng.choice(["certificate", "certificate", "death", "move_in"])],
                               answers={}, lang="ja", idempotency_key=f"feed-{i}")
            issued.append(r["ticket"]["id"])
        elif op == "call" and issued:
            await c.client.request("call", ticket=rng.choice(issued))
        elif op == "transfer":
            await c.client.request("transfer", department=rng.choice(["shimin", "hoken_nenkin", "kaigo"]))
        elif op == "cancel" and issued:
            await admin.request("cancel", ticket=rng.choice(issued), reason="test")
        elif op == "reconnect":  # a console that comes back says hello again and starts from its snapshot
            await c.client.close()
            consoles[consoles.index(c)] = await FeedConsole.open(url, tokens, c.counter)
        elif op == "pause":
            await c.client.request("pause")
            await c.client.request("open")
        elif op in ("call_next", "start", "complete", "recall", "no_show", "requeue"):
            await c.client.request(op)
        if rng.random() < 0.3:
            await asyncio.sleep(rng.choice([0.0, 0.05, 0.25]))  # some changes share a flush, some do not
    await asyncio.sleep(3 * pushes.FLUSH_INTERVAL)
    for c in (kiosk, admin):
        await c.close()
    return consoles


async def _hold_the_servers_queue(consoles: list[FeedConsole]) -> None:
    """Each console, caught up with its pushes, shows what the server's `queue` reply holds, without
    a gap; some of them were kept by deltas. Closes them."""
    for c in consoles:
        c.catch_up()
        assert c.gaps == 0
        mine, server = await c.shown()
        assert mine == server, f"counter {c.counter}"
        await c.client.close()
    assert sum(c.deltas for c in consoles) > 0


@pytest.mark.parametrize("seed", [20, 21])
def test_consoles_built_from_deltas_hold_the_servers_queue(live, seed):
    async def scenario():
        consoles = await _random_day(live.url, live.tokens(), random.Random(seed), 120)
        await _hold_the_servers_queue(consoles)
        assert any(c.entries for c in consoles), "the random day left no one waiting: the check would be empty"

    asyncio.run(scenario())


def test_a_console_that_stops_reading_is_closed_and_the_others_keep_their_queue(tmp_path, monkeypatch):
    monkeypatch.setattr(pushes, "MAX_CLIENT_BUFFER", 64 * 1024)
    monkeypatch.setattr(pushes, "DROP_GRACE", 30.0)
    qs = make_server(tmp_path)
    tokens = qs.tokens

    async def body(port):
        url = f"ws://127.0.0.1:{port}/ws"
        healthy = await FeedConsole.open(url, tokens, 2)
        # the stalled console: it reads only its hello reply
        slow, stalled = await stalled_client(qs, port, {"role": "counter", "site": "honcho", "counter": 1,
                                                        "token": tokens.counters["honcho"][1]},
                                             lambda c: c.counter == 1)
        kiosks = [(await Client.open(url, role="kiosk", device=f"k{i}", token=tokens.roles["kiosk"], site="honcho"))[0]
                  for i in range(4)]
        issued = 0
        for n in range(2000):  # queue deltas and help alerts (~0.4 kB each) that it does not read
            if n % 10 == 0:
                await kiosks[0].ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key=f"slow-{n}")
                issued += 1
            await asyncio.gather(*(k.ok("help", reason="x" * 200) for k in kiosks))
            if qs.metrics.slow_dropped:
                break
        assert qs.metrics.slow_dropped == 1, "the stalled console was never dropped"
        # its write buffer stays bounded: the server wrote nothing more to it after the drop
        assert stalled.ws.transport is None or stalled.ws.transport.get_write_buffer_size() \
            <= pushes.MAX_CLIENT_BUFFER + 64 * 1024
        # when it reads again it finds its pushes and then the close frame with the reason
        rcvd = await close_frame(slow)
        assert rcvd is not None and rcvd.code == 1013 and rcvd.reason == pushes.SLOW_CLOSE_REASON, rcvd
        await asyncio.sleep(3 * pushes.FLUSH_INTERVAL)
        healthy.catch_up()
        assert healthy.gaps == 0 and len(healthy.entries) == issued
        mine, server = await healthy.shown()
        assert mine == server
        # it comes back with a hello: a fresh snapshot of the whole queue
        again = await FeedConsole.open(url, tokens, 1)
        assert again.entries == healthy.entries
        for c in [*kiosks, healthy.client, again.client]:
            await c.close()

    asyncio.run(_serve(qs, body))


def test_a_commit_that_fails_sends_the_consoles_nothing(tmp_path):
    """Memory runs ahead of the database only until the commit: a rolled-back issue never reaches
    a console (the feed is built from committed events, hello snapshots undo the batch in progress)."""
    qs = make_server(tmp_path)
    store: FaultyStore = qs.store  # type: ignore[assignment]

    async def body(port):
        url = f"ws://127.0.0.1:{port}/ws"
        c = await FeedConsole.open(url, qs.tokens, 1)
        k, _ = await Client.open(url, role="kiosk", device="k", token=qs.tokens.roles["kiosk"], site="honcho")
        await k.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key="ok-1")
        store.fail_after = 1
        r = await k.request("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key="fails")
        assert r["error"]["code"] == "storage_error"
        store.fail_after = None
        await asyncio.sleep(3 * pushes.FLUSH_INTERVAL)
        c.catch_up()
        assert len(c.entries) == 1 and c.gaps == 0
        mine, server = await c.shown()
        assert mine == server and len(server) == 1
        for x in (c.client, k):
            await x.close()

    asyncio.run(_serve(qs, body))


def test_a_flush_written_one_console_at_a_time_still_builds_every_consoles_queue(tmp_path, monkeypatch):
    """A flush's deltas leave a slice of consoles at a time, the loop turning between slices: with
    one console per slice, requests and later changes interleave with every delta's writes."""
    monkeypatch.setattr(pushes, "FAN_OUT_SLICE", 1)
    qs = make_server(tmp_path)

    async def body(port: int) -> None:
        await _hold_the_servers_queue(await _random_day(f"ws://127.0.0.1:{port}/ws", qs.tokens, random.Random(22), 80))

    asyncio.run(_serve(qs, body))
