"""The card prefill is read from the database off the event loop: while a counter's ``current`` or
``forms`` waits for its prefill read, the server goes on answering everyone else (the read used to
run inside the writer's batch, stopping every kiosk, counter and board until it returned); and a
ticket that leaves the counter during the read takes its card data with it."""

from __future__ import annotations

import asyncio
import threading

from queue_server.server import QueueServer
from queue_server.storage import Store
from tests.queue_server.writer_support import InProcess, make_server
from tests.support.live_server import Client

PREFILL = {"name": "黒桐\u3000幹也", "birth_date": "1980-02-17"}


class GatedStore(Store):
    """The real SQLite store whose prefill read, when gated, waits for the test to let it go."""

    def __init__(self, url: str):
        super().__init__(url)
        self.gated = False
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.returned = False

    def prefill(self, ticket_id: str) -> dict | None:
        if self.gated:
            self.entered.set()
            self.gate.wait(30)  # the test opens it; the bound only keeps a broken run from hanging
            self.returned = True
        return super().prefill(ticket_id)

    def hold(self) -> None:
        self.gated, self.returned = True, False
        self.entered.clear()
        self.gate.clear()


def test_a_slow_prefill_read_stops_no_one_else(tmp_path):
    store = GatedStore(f"sqlite:///{tmp_path / 'p.db'}")
    qs = make_server(tmp_path, cls=QueueServer, store=store)
    srv = InProcess(qs)

    async def while_held(pending: asyncio.Task, kiosk: Client) -> None:
        """With the prefill read held: a kiosk is still answered (and issues a ticket) before it returns."""
        assert await asyncio.to_thread(store.entered.wait, 30), "the prefill was never read"
        assert "pong" in await kiosk.ok("ping")
        issued = await kiosk.ok("issue", purposes=["certificate"], answers={}, lang="ja",
                                idempotency_key=f"meanwhile-{pending.get_name()}")
        assert issued["ticket"]["number"]
        assert not store.returned and not pending.done()  # all of that while the read was held
        store.gate.set()

    async def go() -> None:
        tokens = qs.tokens
        kiosk, _ = await Client.open(srv.url, role="kiosk", device="k1", token=tokens.roles["kiosk"], site="honcho")
        counter, _ = await Client.open(srv.url, role="counter", site="honcho", counter=1,
                                       token=tokens.counters["honcho"][1], staff="佐藤")
        try:
            tid = (await kiosk.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key="card",
                                  prefill=PREFILL))["ticket"]["id"]
            await counter.ok("open")
            await counter.ok("call", ticket=tid)
            await counter.ok("start")

            store.hold()
            current = asyncio.create_task(counter.ok("current"), name="current")
            await while_held(current, kiosk)
            assert (await current)["ticket"]["prefill"] == PREFILL  # the card data still reaches the counter

            store.hold()
            forms = asyncio.create_task(counter.ok("forms"), name="forms")
            await while_held(forms, kiosk)
            assert (await forms)["ticket"]["id"] == tid

            # the ticket leaves the counter while its prefill is read: the late answer carries no card data
            store.hold()
            late = asyncio.create_task(counter.ok("current"), name="late")
            assert await asyncio.to_thread(store.entered.wait, 30)
            # the same counter's console on a second connection (a connection's messages run in turn)
            console, _ = await Client.open(srv.url, role="counter", site="honcho", counter=1,
                                           token=tokens.counters["honcho"][1], staff="佐藤")
            await console.ok("complete")  # on to its next department: no longer at this counter
            await console.close()
            store.gate.set()
            assert (await late)["ticket"]["prefill"] is None
            store.gated = False
            assert (await counter.ok("current"))["ticket"] is None
        finally:
            store.gate.set()
            await kiosk.close()
            await counter.close()

    try:
        asyncio.run(go())
    finally:
        srv.stop()
