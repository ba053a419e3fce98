"""SQLite WAL checkpoints off the commit path (queue_server/wal.py, Store.checkpoint*), on real
SQLite files: the writer's commits never checkpoint, the checkpointer copies the log and SQLite
then starts it again, a writer that never lets it catch up restarts it itself, a failing
checkpoint is counted and retried, and what was committed but never checkpointed is what a fresh
server loads."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request

from sqlalchemy.exc import OperationalError

from queue_server import wal
from queue_server.storage import Store
from tests.support.live_server import Client

from . import writer_support as W
from .test_health import _serve


async def _steps(qs, n: int, start: int = 0) -> None:
    """n issues, each its own commit (~10 pages of log each)."""
    for i in range(start, start + n):
        await W.run(qs, [W.job(W.kiosk(), "issue", purposes=["certificate"], answers={}, lang="ja",
                               idempotency_key=f"wal-{i}")])


def test_the_writers_commits_leave_the_log_to_the_checkpointer_and_it_restarts(tmp_path):
    qs = W.make_server(tmp_path)
    store = qs.store
    assert store.checkpoint_in_background()

    async def day() -> None:
        await _steps(qs, 30)
        conn = store._writer_connection()
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        conn.commit()
        busy, frames, copied = store.checkpoint()
        assert busy == 0 and frames > 30 and copied == frames  # 30 commits' pages, none copied before
        await _steps(qs, 1, start=30)
        _, after, _ = store.checkpoint()
        assert 0 < after < frames, "the log did not start again after a complete checkpoint"

    asyncio.run(day())


def test_a_writer_that_never_lets_the_checkpoints_catch_up_restarts_the_log_itself(tmp_path):
    qs = W.make_server(tmp_path)
    store = qs.store
    store.checkpoint_in_background()

    async def day() -> None:
        await _steps(qs, 40)  # no checkpoint: the log only grows
        store.restart_wal = True  # what wal.checkpointer sets past RESTART_FRAMES
        await _steps(qs, 1, start=40)
        assert store.restart_wal is False
        await _steps(qs, 1, start=41)
        _, frames, _ = store.checkpoint()
        assert frames < 40, f"{frames} frames: the writer did not restart the log"

    asyncio.run(day())


def test_what_was_committed_but_never_checkpointed_is_what_a_fresh_server_loads(tmp_path):
    qs = W.make_server(tmp_path)
    qs.store.checkpoint_in_background()

    async def day() -> None:
        await _steps(qs, 12)
        for n in (1, 2):
            await W.run(qs, [W.job(W.counter(n), "open", staff="t")])
            await W.run(qs, [W.job(W.counter(n), "call_next")])

    asyncio.run(day())
    before = W.state(qs)
    fresh = W.make_server(tmp_path, store=Store(qs.store.url))  # the same file: its WAL is replayed
    assert W.state(fresh) == before


def test_no_wal_no_checkpointer(tmp_path):
    assert Store("sqlite://").checkpoint_in_background() is False  # in-memory: no log file


def _get(port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read().decode()


def test_the_checkpointer_runs_counts_failures_goes_on_and_asks_for_a_restart(tmp_path, monkeypatch):
    monkeypatch.setattr(wal, "CHECKPOINT_INTERVAL", 0.05)
    qs = W.make_server(tmp_path)
    store = qs.store
    real = store.checkpoint

    async def body(port: int) -> None:
        url = f"ws://127.0.0.1:{port}/ws"
        k, _ = await Client.open(url, role="kiosk", device="k1", token=qs.tokens.roles["kiosk"], site="honcho")
        for i in range(5):
            await k.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key=f"m{i}")
        await asyncio.sleep(0.3)
        seen = qs.metrics.wal_checkpoints
        assert seen > 0
        shown = re.search(r"^madoguchi_wal_checkpoints_total (\d+)$", await asyncio.to_thread(_get, port), re.M)
        assert shown and int(shown.group(1)) >= seen  # (it runs on meanwhile)

        def failing() -> tuple[int, int, int]:
            raise OperationalError("PRAGMA wal_checkpoint(PASSIVE)", None, Exception("disk I/O error"))

        store.checkpoint = failing  # type: ignore[method-assign]
        await asyncio.sleep(0.3)
        assert qs.metrics.wal_checkpoint_failures > 0
        r = await k.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key="during")
        assert r["ticket"]["number"]  # commits go on into the log meanwhile
        monkeypatch.setattr(wal, "RESTART_FRAMES", 1)
        store.checkpoint = real  # type: ignore[method-assign]
        done = qs.metrics.wal_checkpoints
        await asyncio.sleep(0.3)
        assert qs.metrics.wal_checkpoints > done, "the checkpointer stopped after a failure"
        assert qs.metrics.wal_restarts > 0
        await k.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key="after")
        text = await asyncio.to_thread(_get, port)
        assert "madoguchi_wal_checkpoint_failures_total" in text and "madoguchi_wal_restarts_total" in text
        health = json.loads(await asyncio.to_thread(_get, port, "/healthz"))
        assert health["checks"]["storage"]["ok"] is True
        await k.close()

    asyncio.run(_serve(qs, body))


def test_the_writers_restart_does_not_wait_for_a_long_read_and_keeps_its_busy_timeout(tmp_path):
    """RESTART waits for readers to leave the log: a report reading meanwhile must not hold the
    writer for the whole busy timeout; the write commits, the log is restarted a later time."""
    import sqlite3
    import threading

    from queue_server.storage import SQLITE_BUSY_TIMEOUT

    qs = W.make_server(tmp_path)
    store = qs.store
    store.checkpoint_in_background()

    asyncio.run(_steps(qs, 20, start=0))
    reader = sqlite3.connect(store.engine.url.database)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM events").fetchone()  # a read transaction on the log as it is
    asyncio.run(_steps(qs, 5, start=20))  # the log grows past what the reader holds
    store.restart_wal = True
    done = threading.Event()
    threading.Thread(target=lambda: (asyncio.run(_steps(qs, 1, start=25)), done.set()), daemon=True).start()
    assert done.wait(SQLITE_BUSY_TIMEOUT / 3), "the write waited for the reader's transaction"
    assert reader.in_transaction  # (it still held the log while the write went through)
    reader.rollback()
    reader.close()
    conn = store._writer_connection()
    assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT * 1000
    conn.commit()
    store.restart_wal = True
    asyncio.run(_steps(qs, 1, start=26))
    asyncio.run(_steps(qs, 1, start=27))
    _, frames, _ = store.checkpoint()
    assert frames < 40, "the writer did not restart the log once the reader was gone"
