"""Storage against real databases: SQLite always, PostgreSQL started by the fixture."""

import asyncio
from dataclasses import replace

import pytest
from sqlalchemy.exc import IntegrityError

from queue_server.config import load_city
from queue_server.core.model import RouteStep
from queue_server.core.transitions import call, complete, start
from queue_server.storage import Batch, Store
from tests.support.live_server import LiveServer

from .core_helpers import DEATH_ROUTE, ticket
from .test_server_integration import counter, issue, kiosk


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'x.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres")
    s = Store(url)
    s.migrate()
    s.sync_config(load_city().sites.values())
    return s


def test_ticket_and_steps_round_trip_through_the_database(store):
    t = ticket(7, DEATH_ROUTE, now=100.0)
    store.write(Batch(new_tickets=[(t, {"name": "x"})], numbers={("honcho", t.day, ""): 7}))
    t2 = complete(start(call(t, 0, 1, 110), 0, 1, 120), 0, 1, 130)
    store.write(Batch(tickets={t.id: (t, t2)}))
    (loaded,) = store.load_tickets("honcho", t.day)
    assert loaded == t2
    assert store.last_number("honcho", t.day, "") == 7
    assert store.prefill(t.id) == {"name": "x"}


def test_prefill_is_erased_when_the_visit_closes(store):
    t = ticket(1, (RouteStep("shimin", (), (), 5),))
    store.write(Batch(new_tickets=[(t, {"name": "黒桐　幹也"})]))
    done = complete(start(call(t, 0, 1, 1), 0, 1, 2), 0, 1, 3)
    store.write(Batch(tickets={t.id: (t, done)}))
    assert store.prefill(t.id) is None


def test_end_of_day_erases_prefill_of_earlier_days(store):
    t = ticket(1)
    store.write(Batch(new_tickets=[(t, {"name": "x"})]))
    assert store.erase_prefill_before("honcho", "2026-04-02") == 1
    assert store.prefill(t.id) is None


def test_a_number_cannot_be_stored_twice_for_a_site_day_and_prefix(store):
    store.write(Batch(new_tickets=[(ticket(1), None)]))
    dup = replace(ticket(1), id="other", public_token="o")
    with pytest.raises(IntegrityError):
        store.write(Batch(new_tickets=[(dup, None)]))


def test_event_log_keeps_order_and_payload(store):
    evs = [{"site": "honcho", "seq": i, "at": float(i), "kind": "called", "ticket": None, "step": None,
            "counter": 1, "actor": "counter:1", "payload": {"number": str(i), "department": "shimin"}} for i in (1, 2, 3)]
    store.write(Batch(events=evs))
    got = store.events_since("honcho", 1)
    assert [e["seq"] for e in got] == [2, 3] and got[0]["payload"]["number"] == "2"
    assert store.last_seq("honcho") == 3


def test_server_flow_on_postgresql(fresh_postgres, tmp_path):
    live = LiveServer(db_url=fresh_postgres, secrets=tmp_path / "s.toml").start()
    try:
        async def scenario():
            k = await kiosk(live)
            c1, c2 = await counter(live, 1), await counter(live, 2)
            for i in range(4):
                await issue(k, f"pg-{i}", purposes=("certificate",))
            a, b = await asyncio.gather(c1.ok("call_next"), c2.ok("call_next"))
            assert a["ticket"]["id"] != b["ticket"]["id"]
            await c1.ok("start")
            await c1.ok("complete")

        asyncio.run(scenario())
        live.kill()
        live.start()

        async def after():
            k = await kiosk(live)
            r = await issue(k, "pg-after", purposes=("certificate",))
            assert r["ticket"]["number"] == "5"

        asyncio.run(after())
    finally:
        live.kill()


def test_a_new_ticket_is_stored_with_all_its_steps(store):
    t = ticket(3, DEATH_ROUTE, now=5.0)
    store.write(Batch(new_tickets=[(t, None)]))
    (loaded,) = store.load_tickets("honcho", t.day)
    assert loaded == t and len(loaded.steps) == 3

