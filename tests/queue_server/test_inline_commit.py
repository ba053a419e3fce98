"""Commits on the event loop (Store.writes_inline, Writer._commit), on real SQLite files: only
where a commit neither syncs nor checkpoints; a lock another connection holds is waited for in a
worker thread while the loop goes on; a slow commit sends the next ones to a thread; and a
connection that waits for no lock never goes back to the pool."""

from __future__ import annotations

import asyncio
import sqlite3
import threading

from queue_server import writer as writer_mod
from queue_server.storage import SQLITE_BUSY_TIMEOUT, Batch, Store

from . import writer_support as W


def _spy_writes(store: Store) -> list[tuple[bool, bool]]:
    """(on the calling thread?, wait) of every write, the real write done (a spy beside it)."""
    seen: list[tuple[bool, bool]] = []
    write, main = store.write, threading.get_ident()

    def spying(batch: Batch, wait: bool = True) -> None:
        seen.append((threading.get_ident() == main, wait))
        write(batch, wait)

    store.write = spying  # type: ignore[method-assign]
    return seen


def _issue(i: int) -> W.Job:
    return W.job(W.kiosk(), "issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key=f"in-{i}")


def test_a_commit_runs_on_the_loop_only_where_it_neither_syncs_nor_checkpoints(tmp_path, monkeypatch):
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    assert not store.writes_inline()  # commits may checkpoint until wal.py takes that over
    assert store.checkpoint_in_background() and store.writes_inline()
    store.restart_wal = True  # the restart waits for readers
    assert not store.writes_inline()
    store.restart_wal = False
    for mode, inline in (("2", False), ("FULL", False), ("extra", False), ("OFF", True), ("normal", True)):
        monkeypatch.setenv("MADOGUCHI_SQLITE_SYNC", mode)
        other = Store(f"sqlite:///{tmp_path / 'b.db'}")  # the mode is read when the store is made
        other.checkpoint_in_background()
        assert other.writes_inline() is inline, mode
        other.engine.dispose()
    assert Store("sqlite://").writes_inline()  # in memory: nothing to sync or checkpoint


def test_the_writer_commits_on_the_loop_and_memory_equals_the_database(tmp_path):
    qs = W.make_server(tmp_path)
    qs.store.checkpoint_in_background()
    seen = _spy_writes(qs.store)

    async def day() -> None:
        replies = await W.run(qs, [_issue(i) for i in range(3)])
        assert all("result" in r for r in replies), replies
        await W.run(qs, [W.job(W.counter(1), "open", staff="x")])
        assert (await W.run(qs, [W.job(W.counter(1), "call_next")]))[0]["result"]["ticket"]["number"] == "1"

    asyncio.run(day())
    assert seen == [(True, False)] * 3
    W.assert_same_as_database(qs)


def test_a_lock_another_connection_holds_is_waited_for_off_the_loop(tmp_path):
    qs = W.make_server(tmp_path)
    store = qs.store
    store.checkpoint_in_background()
    seen = _spy_writes(store)
    other = sqlite3.connect(store.engine.url.database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process writing: it holds the write lock

    async def day() -> dict:
        writing = asyncio.create_task(W.run(qs, [_issue(1)]))
        for _ in range(20):  # the loop goes on while the write waits for the lock
            await asyncio.sleep(0.01)
        assert not writing.done()
        other.execute("ROLLBACK")
        return (await writing)[0]

    reply = asyncio.run(day())
    other.close()
    assert "result" in reply, reply
    assert seen == [(True, False), (False, True)]  # tried on the loop, refused at once, then waited
    assert qs.writer.storage.ok and qs.writer.storage.errors == {}
    W.assert_same_as_database(qs)


def test_a_slow_commit_on_the_loop_sends_the_next_ones_to_a_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(writer_mod, "INLINE_SLOW", 0.0)  # every commit counts as slow
    qs = W.make_server(tmp_path)
    qs.store.checkpoint_in_background()
    seen = _spy_writes(qs.store)

    async def day() -> None:
        await W.run(qs, [_issue(1)])
        await W.run(qs, [_issue(2)])

    asyncio.run(day())
    assert seen == [(True, False), (False, True)]
    assert qs.metrics.slow_inline_commits == 1
    assert "madoguchi_slow_inline_commits_total 1" in qs.metrics.text(qs)
    W.assert_same_as_database(qs)


def test_a_connection_that_waits_for_no_lock_never_goes_back_to_the_pool(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'p.db'}")
    store.migrate()
    store.checkpoint_in_background()
    event = {"site": "honcho", "seq": 1, "at": 1.0, "kind": "note", "ticket": None, "step": None, "counter": None,
             "actor": "t", "payload": {}}
    store.write(Batch(events=[event]), wait=False)
    store.close_writer()  # (what a failed write does)
    with store.engine.connect() as conn:  # the pool's next connection waits for locks as before
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT * 1000
    store.write(Batch(events=[{**event, "seq": 2}]))  # and the writer's own, on a plain write
    conn = store._writer_connection()
    assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT * 1000
    conn.commit()
    with store.engine.connect() as conn:
        assert list(conn.exec_driver_sql("SELECT seq FROM events ORDER BY seq").scalars()) == [1, 2]
