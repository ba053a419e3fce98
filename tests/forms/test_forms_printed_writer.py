"""``forms_printed`` goes through the writer: its counts-only event is committed before the console
hears "printed", and a commit that fails leaves the visit's memory as it was (nothing runs ahead of
the database). An in-process server on a real SQLite file whose write is made to fail."""

from __future__ import annotations

import asyncio
import json
import sqlite3

from queue_server.server import QueueServer
from tests.kiosk.test_flow import DEATH_1
from tests.queue_server.writer_support import (
    FaultyStore,
    assert_same_as_database,
    counter,
    job,
    kiosk,
    make_server,
    run,
)


def _events(db) -> list[dict]:
    con = sqlite3.connect(db)
    rows = con.execute("SELECT ticket, counter, actor, payload FROM events WHERE kind = 'forms_printed' ORDER BY seq").fetchall()
    con.close()
    return [{"ticket": t, "counter": c, "actor": a, **json.loads(p)} for t, c, a, p in rows]


def test_a_failed_commit_leaves_the_print_unrecorded_in_memory_and_in_the_log(tmp_path):
    qs: QueueServer = make_server(tmp_path, cls=QueueServer)
    store: FaultyStore = qs.store  # type: ignore[assignment]
    db = tmp_path / "w.db"

    async def scenario():
        (issued,) = await run(qs, [job(kiosk(), "issue", purposes=["death"], answers=DEATH_1, lang="ja",
                                       idempotency_key="w-1", prefill={"name": "黒桐　幹也", "address": "酒田市"})])
        tid = issued["result"]["ticket"]["id"]
        for r in await run(qs, [job(counter(1), "open"), job(counter(1), "call", ticket=tid), job(counter(1), "start")]):
            assert "result" in r, r
        (ok,) = await run(qs, [job(counter(1), "forms_printed", forms=["juumin_idou"])])
        assert [f["id"] for f in ok["result"]["forms"]] == ["juumin_idou", "inkan_haishi"]
        visit = qs.forms_desk.visits[tid]
        audit = list(visit.audit)
        assert visit.printed == {"juumin_idou"}

        store.fail_after = 1  # the disk is full at the event's INSERT
        (failed,) = await run(qs, [job(counter(1), "forms_printed", forms=["inkan_haishi"])])
        assert failed["error"]["code"] == "storage_error", failed
        assert visit.printed == {"juumin_idou"} and set(visit.fields) == {"juumin_idou"} and visit.audit == audit
        assert_same_as_database(qs)

        (again,) = await run(qs, [job(counter(1), "forms_printed", forms=["inkan_haishi"])])
        assert "result" in again and visit.printed == {"juumin_idou", "inkan_haishi"}
        (refused,) = await run(qs, [job(counter(5), "forms_printed", forms=["sousaihi"])])
        assert refused["error"]["code"] == "no_current_ticket"  # counter 5 does not have the ticket
        return tid

    tid = asyncio.run(scenario())
    events = _events(db)
    assert [list(e["forms"]) for e in events] == [["juumin_idou"], ["inkan_haishi"]]
    assert all(e["ticket"] == tid and e["counter"] == 1 and e["actor"] == "counter:1" for e in events)  # no staff name
    assert events[0]["department"] == "shimin" and events[0]["needed"] >= 5
    assert events[0]["forms"]["juumin_idou"]["card"] == 2  # informant's name and address from the card
    assert "黒桐" not in json.dumps(events, ensure_ascii=False)
    qs.store.engine.dispose()
