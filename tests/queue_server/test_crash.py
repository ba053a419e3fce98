"""SIGKILL the server in the middle of a stream of operations; every acknowledged one survives."""

import asyncio
import signal

from queue_server.storage import Store

from .test_server_integration import counter, kiosk


def test_sigkill_mid_stream_loses_no_acknowledged_operation_and_repeats_no_number(live):
    acked_tickets: dict[str, str] = {}  # id -> number
    acked_calls: list[tuple[str, int]] = []  # (ticket id, counter)

    async def stream():
        k = await kiosk(live)
        c1 = await counter(live, 1)

        async def issuer(worker: int):
            i = 0
            while True:
                i += 1
                try:
                    r = await k.request("issue", purposes=["certificate"], answers={}, lang="ja",
                                        idempotency_key=f"w{worker}-{i}")
                except (ConnectionError, TimeoutError, Exception):
                    return
                if "result" in r:
                    acked_tickets[r["result"]["ticket"]["id"]] = r["result"]["ticket"]["number"]

        async def caller():
            while True:
                try:
                    r = await c1.request("call_next")
                    if "result" in r and r["result"]["ticket"]:
                        acked_calls.append((r["result"]["ticket"]["id"], 1))
                        await c1.request("start")
                        await c1.request("complete")
                except (ConnectionError, TimeoutError, Exception):
                    return

        async def killer():
            while len(acked_tickets) < 60:
                await asyncio.sleep(0.005)
            live.kill(signal.SIGKILL)

        await asyncio.gather(*(issuer(w) for w in range(4)), caller(), killer())

    asyncio.run(stream())
    assert len(acked_tickets) >= 60

    store = Store(live.db_url)
    stored = {t.id: t for t in store.load_tickets("honcho", _today(store))}
    missing = set(acked_tickets) - set(stored)
    assert not missing, f"{len(missing)} acknowledged tickets lost"
    assert all(stored[i].label == n for i, n in acked_tickets.items())
    numbers = [t.number for t in stored.values()]
    assert len(numbers) == len(set(numbers)), "a number was given twice"
    for tid, c in acked_calls:
        step = stored[tid].steps[0]
        assert step.counter == c and step.called_at is not None, "an acknowledged call was lost"

    live.start()

    async def after():
        k = await kiosk(live)
        r = await k.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key="after-restart")
        assert int(r["ticket"]["number"]) > max(numbers)

    asyncio.run(after())


def _today(store: Store) -> str:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from queue_server.storage import TicketRow

    with Session(store.engine) as s:
        return s.scalar(select(TicketRow.day).limit(1))
