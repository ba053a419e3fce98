"""The writer's promises (issue 12): one request's failure is its own; memory never runs ahead
of the database; a failed commit burns no number; a conflicting writer is re-read, not fatal."""

import asyncio
import logging

import pytest
from sqlalchemy.exc import IntegrityError

from queue_server.storage import Store, error_cause

from .writer_support import (
    NOW,
    FaultyStore,
    admin,
    assert_same_as_database,
    counter,
    job,
    kiosk,
    make_server,
    run,
)


def issue(key, **kw):
    return job(kiosk(), "issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key=key, **kw)


def test_one_bad_request_does_not_poison_its_batch(tmp_path, caplog):
    """Seen 1: an add_procedure with a 400-digit ``minutes`` raised inside the group commit, and the
    well-formed issues of the same batch were answered `internal` yet kept in memory."""
    qs = make_server(tmp_path)

    async def scenario():
        await run(qs, [job(counter(1), "open")])
        jobs = [issue("a"), issue("b"),
                job(counter(1), "add_procedure", department="shimin", procedures=["juminhyo"], minutes=10**400),
                issue("c"), issue("d")]
        replies = await run(qs, jobs)
        assert replies[2]["error"]["code"] == "internal"
        numbers = [r["result"]["ticket"]["number"] for i, r in enumerate(replies) if i != 2]
        assert numbers == ["1", "2", "3", "4"]
        assert_same_as_database(qs)
        # a retry of an acknowledged issue returns the stored ticket, and the department still works
        again = await run(qs, [issue("a"), job(counter(1), "call_next")])
        assert again[0]["result"]["ticket"]["number"] == "1"
        assert again[1]["result"]["ticket"]["number"] == "1"
        assert_same_as_database(qs)

    with caplog.at_level(logging.ERROR):
        asyncio.run(scenario())
    assert "add_procedure request failed" in caplog.text


def test_a_request_that_raises_after_changing_memory_is_undone_alone(tmp_path):
    qs = make_server(tmp_path)

    async def scenario():
        replies = await run(qs, [issue("a"), issue("b", _boom="after"), issue("c"),
                                 job(kiosk(), "help", reason="x", _boom="after")])
        assert [("result" in r) for r in replies] == [True, False, True, False]
        assert replies[1]["error"]["code"] == "internal"
        assert [r["result"]["ticket"]["number"] for r in (replies[0], replies[2])] == ["1", "2"]
        assert qs.hubs["honcho"].help_alerts == []
        assert_same_as_database(qs)

    asyncio.run(scenario())


def test_failed_commits_burn_no_number_and_roll_everything_back(tmp_path):
    """Seen 6: 200 refused issues on a full disk moved the next number from 21 to 221."""
    qs = make_server(tmp_path)
    store: FaultyStore = qs.store  # type: ignore[assignment]

    async def scenario():
        for i in range(20):
            await run(qs, [issue(f"ok{i}")])
        seq = qs.hubs["honcho"].seq
        for i in range(200):
            store.fail_after = 1 + i % 4  # fail at different statements of the transaction
            (r,) = await run(qs, [issue(f"full{i}")])
            assert r["error"]["code"] == "storage_error"
            assert "disk is full" in r["error"]["message"]
        assert qs.hubs["honcho"].seq == seq
        assert not any(k.startswith("honcho:full") for k in qs.idem)
        assert qs.writer.storage.errors == {"disk_full": 200}
        assert not qs.writer.storage.ok and qs.health()["checks"]["storage"]["ok"] is False
        assert_same_as_database(qs)
        (r,) = await run(qs, [issue("after")])
        assert r["result"]["ticket"]["number"] == "21"
        assert qs.writer.storage.ok and qs.health()["checks"]["storage"]["ok"] is True
        assert_same_as_database(qs)

    asyncio.run(scenario())


def test_one_request_whose_rows_the_database_refuses_fails_alone(tmp_path, caplog):
    qs = make_server(tmp_path)
    store: FaultyStore = qs.store  # type: ignore[assignment]

    async def scenario():
        for error in (IntegrityError, ValueError):
            store.poison, store.poison_error = "poison", error
            replies = await run(qs, [issue(f"a{error.__name__}"), job(kiosk(), "help", reason="poison"),
                                     issue(f"b{error.__name__}")])
            assert "result" in replies[0] and "result" in replies[2], replies
            assert replies[1]["error"]["code"] == "storage_error"
            assert_same_as_database(qs)
        assert qs.writer.storage.ok  # one request's rows: storage itself is fine

    with caplog.at_level(logging.WARNING):
        asyncio.run(scenario())
    assert "re-read" not in caplog.text  # nobody else wrote: no reason to read the site again


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_a_server_whose_commit_conflicts_re_reads_the_database_and_writes_on(tmp_path, request, db, caplog):
    """Seen 5: the server that commits second failed every write from then on, because after a
    failed commit it never re-read the database (SQLite and PostgreSQL)."""
    url = request.getfixturevalue("fresh_postgres") if db == "postgres" else f"sqlite:///{tmp_path / 'w.db'}"
    a = make_server(tmp_path, store=FaultyStore(url))
    b = make_server(tmp_path, store=FaultyStore(url))

    async def scenario():
        (ra,) = await run(a, [issue("from-a")])
        assert ra["result"]["ticket"]["number"] == "1"
        # b's memory does not know a's ticket: its rows conflict (seq, number); it re-reads and retries
        (rb,) = await run(b, [issue("from-b")])
        assert rb["result"]["ticket"]["number"] == "2", rb
        (rb2,) = await run(b, [job(counter(1), "open")])
        assert "result" in rb2
        assert b.writer.storage.errors.get("constraint") == 1
        assert_same_as_database(b)

    with caplog.at_level(logging.WARNING):
        asyncio.run(scenario())
    assert "site honcho re-read from the database" in caplog.text


def test_a_retry_in_the_same_batch_is_answered_only_after_the_commit(tmp_path):
    qs = make_server(tmp_path)
    store: FaultyStore = qs.store  # type: ignore[assignment]

    async def scenario():
        store.fail_after = 1
        replies = await run(qs, [issue("same"), issue("same")])
        assert [r["error"]["code"] for r in replies] == ["storage_error", "storage_error"]
        replies = await run(qs, [issue("same"), issue("same")])
        assert replies[0]["result"] == replies[1]["result"]
        assert_same_as_database(qs)

    asyncio.run(scenario())


def test_real_disk_full_is_reported_by_cause(tmp_path, caplog):
    """SQLite's max_page_count gives the real SQLITE_FULL ("database or disk is full")."""
    from sqlalchemy import event

    store = Store(f"sqlite:///{tmp_path / 'small.db'}")
    limit: list[int | None] = [None]

    @event.listens_for(store.engine, "connect")
    def _limit(dbapi_conn, _rec):
        if limit[0]:
            dbapi_conn.execute(f"PRAGMA max_page_count={limit[0]}")

    qs = make_server(tmp_path, store=store)

    async def scenario():
        for i in range(20):
            await run(qs, [issue(f"ok{i}")])
        with qs.store.engine.connect() as conn:
            limit[0] = conn.exec_driver_sql("PRAGMA page_count").scalar()
        qs.store.engine.dispose()
        refused = 0
        for i in range(200):
            (r,) = await run(qs, [issue(f"full{i}")])
            refused += "error" in r
        assert refused > 150, f"only {refused} refused: the page limit did not bite"
        assert qs.writer.storage.errors.get("disk_full") == refused
        assert qs.writer.storage.cause == "disk_full" and not qs.health()["checks"]["storage"]["ok"]
        assert_same_as_database(qs)
        numbers = sorted(t.number for t in qs.hubs["honcho"].lobby.tickets.values())
        assert numbers == list(range(1, len(numbers) + 1)), "a refused issue burned a number"
        limit[0] = None
        qs.store.engine.dispose()
        (r,) = await run(qs, [issue("after")])
        assert int(r["result"]["ticket"]["number"]) == len(numbers) + 1

    with caplog.at_level(logging.ERROR):
        asyncio.run(scenario())
    assert "failed (disk_full): database or disk is full" in caplog.text


def test_storage_errors_are_classified_by_cause():
    import sqlite3

    from sqlalchemy.exc import OperationalError

    def op(msg):
        return OperationalError("x", None, sqlite3.OperationalError(msg))

    assert error_cause(op("database or disk is full")) == "disk_full"
    assert error_cause(op("database is locked")) == "locked"
    assert error_cause(IntegrityError("x", None, sqlite3.IntegrityError("UNIQUE constraint failed: events.site"))) == "constraint"
    assert error_cause(op("unable to open database file")) == "connection"
    assert error_cause(ValueError("x")) == "other"

    class LeadershipLost(Exception):  # as queue_server/leader.py raises from its fence
        pass

    assert error_cause(LeadershipLost("lock file removed")) == "leadership"

    class PgError(Exception):
        sqlstate = "53100"

    assert error_cause(OperationalError("x", None, PgError("could not write"))) == "disk_full"


def test_admin_cancel_and_end_of_day_are_rolled_back_on_a_failed_commit(tmp_path):
    qs = make_server(tmp_path)
    store: FaultyStore = qs.store  # type: ignore[assignment]

    async def scenario():
        (r,) = await run(qs, [issue("x")])
        tid = r["result"]["ticket"]["id"]
        store.fail_after = 2
        (c,) = await run(qs, [job(admin(), "cancel", ticket=tid)])
        assert c["error"]["code"] == "storage_error"
        assert qs.hubs["honcho"].lobby.tickets[tid].closed is None
        assert_same_as_database(qs)

    asyncio.run(scenario())
    assert NOW > 0


def test_end_of_day_refused_by_the_database_is_tried_again_and_the_server_keeps_flushing(tmp_path, monkeypatch):
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from queue_server import day_end as S
    from queue_server.server import run_server

    monkeypatch.setattr(S, "ROLL_RETRY", 0.3)
    jst = ZoneInfo("Asia/Tokyo")
    clock = [datetime(2026, 3, 31, 23, 50, tzinfo=jst).timestamp()]
    qs = make_server(tmp_path, clock=clock)
    store: FaultyStore = qs.store  # type: ignore[assignment]

    async def scenario():
        (r,) = await run(qs, [issue("late", prefill={"name": "黒桐　幹也"})])
        stop = asyncio.get_running_loop().create_future()
        port: list[int] = []
        task = asyncio.create_task(run_server(qs, "127.0.0.1", 0, port.append, stop))
        while not port:
            await asyncio.sleep(0.02)
        store.fail_after = 1  # the end-of-day commit meets a full disk
        clock[0] = datetime(2026, 4, 1, 0, 5, tzinfo=jst).timestamp()
        for _ in range(100):
            await asyncio.sleep(0.05)
            clock[0] += 0.05
            if not qs.hubs["honcho"].lobby.open_tickets() and store.prefill(r["result"]["ticket"]["id"]) is None:
                break
        assert qs.writer.storage.errors.get("disk_full") == 1  # it failed once…
        assert not qs.hubs["honcho"].lobby.open_tickets()  # …and was done on the next try
        assert qs.hubs["honcho"].day == "2026-04-01"
        assert store.prefill(r["result"]["ticket"]["id"]) is None
        assert all(not t.done() for t in qs._tasks)  # the flusher lives on
        (stored,) = store.load_tickets("honcho", "2026-03-31")
        assert stored.closed is not None and stored.closed.value == "cancelled"
        stop.set_result(None)
        await task

    asyncio.run(scenario())


def test_a_push_that_raises_after_the_commit_does_not_turn_committed_requests_into_errors(tmp_path):
    from .writer_support import Boom

    class BadPush(Boom):
        def _push_event(self, hub, ev, now):
            raise RuntimeError("push failed")

    qs = make_server(tmp_path, cls=BadPush)

    async def scenario():
        replies = await run(qs, [issue("a"), issue("b"), job(counter(1), "open")])
        assert all("result" in r for r in replies), replies
        assert_same_as_database(qs)

    asyncio.run(scenario())


def test_a_feed_or_history_that_raises_after_the_commit_does_not_turn_committed_requests_into_errors(
        tmp_path, monkeypatch):
    from queue_server import pushes

    def broken(*_a):
        raise RuntimeError("the feed failed")

    monkeypatch.setattr(pushes, "note_event", broken)
    qs = make_server(tmp_path)

    async def scenario():
        replies = await run(qs, [issue("a"), issue("b"), job(counter(1), "open")])
        assert all("result" in r for r in replies), replies
        assert_same_as_database(qs)

    asyncio.run(scenario())


def test_an_idempotent_reply_that_cannot_be_sent_is_refused_before_anything_is_written(tmp_path):
    """Idempotent replies are kept as JSON text (protocol.encode_result): one that cannot be
    encoded (here a NaN) is found before the commit, so the request is undone, not committed
    with a reply no retry could ever get."""
    from dataclasses import replace

    from .writer_support import Boom

    class NaNReply(Boom):
        def _execute(self, hub, job, now):
            out = super()._execute(hub, job, now)
            return replace(out, result={**out.result, "wait_minutes": float("nan")}) if job.req.body.get("_nan") else out

    qs = make_server(tmp_path, cls=NaNReply)

    async def scenario():
        bad, good = await run(qs, [issue("nan", _nan=True), issue("ok")])
        assert bad["error"]["code"] == "internal" and "result" in good
        assert "honcho:kiosk:k1:nan" not in qs.idem and isinstance(qs.idem["honcho:kiosk:k1:ok"], str)
        assert len(qs.hubs["honcho"].lobby.tickets) == 1
        (again,) = await run(qs, [issue("ok")])
        assert again == good | {"re": again["re"]}  # the retry gets the first reply
        assert_same_as_database(qs)

    asyncio.run(scenario())
