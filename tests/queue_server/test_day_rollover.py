"""At local midnight (Asia/Tokyo) yesterday's waiting tickets close, card data goes, numbers restart."""

import asyncio
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from queue_server.cli import load_catalogue_if_present
from queue_server.config import DEFAULT_CONFIG_DIR, load_city
from queue_server.server import QueueServer, run_server
from queue_server.storage import Store
from queue_server.tokens import ensure_for_city
from tests.support.live_server import Client

JST = ZoneInfo("Asia/Tokyo")


def test_midnight_closes_yesterday_and_restarts_numbering(tmp_path: Path):
    city = load_city()
    store = Store(f"sqlite:///{tmp_path / 'd.db'}")
    tokens, _ = ensure_for_city(tmp_path / "s.toml", city)
    # 23:50 JST on 31 March is 14:50 UTC: the UTC date would be right here, so check just past midnight JST
    clock = [datetime(2026, 3, 31, 23, 50, tzinfo=JST).timestamp()]
    qs = QueueServer(city, store, tokens, load_catalogue_if_present(DEFAULT_CONFIG_DIR, city), clock=lambda: clock[0])

    async def scenario():
        stop = asyncio.get_running_loop().create_future()
        port: list[int] = []
        task = asyncio.create_task(run_server(qs, "127.0.0.1", 0, port.append, stop))
        while not port:
            await asyncio.sleep(0.02)
        url = f"ws://127.0.0.1:{port[0]}/ws"
        k, _ = await Client.open(url, role="kiosk", device="k", token=tokens.roles["kiosk"], site="honcho")
        first = await k.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key="a",
                           prefill={"name": "黒桐　幹也"})
        await k.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key="b")
        assert first["ticket"]["day"] == "2026-03-31"
        clock[0] = datetime(2026, 4, 1, 0, 5, tzinfo=JST).timestamp()  # 15:05 UTC on 31 March
        for _ in range(100):  # the close commits first, then the card data is erased: wait for both
            await asyncio.sleep(0.1)
            if (qs.hubs["honcho"].day == "2026-04-01" and not qs.hubs["honcho"].lobby.open_tickets()
                    and await asyncio.to_thread(store.prefill, first["ticket"]["id"]) is None):
                break
        assert not qs.hubs["honcho"].lobby.open_tickets()
        assert store.prefill(first["ticket"]["id"]) is None
        fresh = await k.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key="c")
        assert fresh["ticket"]["day"] == "2026-04-01" and fresh["ticket"]["number"] == "1"
        await k.close()
        stop.set_result(None)
        await task

    asyncio.run(scenario())
    tickets = store.load_tickets("honcho", "2026-03-31")
    assert {t.closed.value for t in tickets} == {"cancelled"}
