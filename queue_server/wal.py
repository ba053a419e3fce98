"""SQLite WAL checkpoints off the commit path.

SQLite copies the write-ahead log back into the database file (a checkpoint) inside the commit that
takes the log past 1,000 pages, and syncs the database file. A counter's step writes ~10 pages, so
at 100 requests a second that was a commit every second or so holding every request queued behind
it. Measured in-process on this machine kind (2,880 real commits of counter steps and issues):
commit p99 3.7–5.8 ms with those checkpoints, 1.3–2.1 ms without.

The server's writer connection therefore never checkpoints (``PRAGMA wal_autocheckpoint=0``), and
this task checkpoints every CHECKPOINT_INTERVAL in a worker thread on its own connection, PASSIVE:
it neither waits for the writer nor holds it up. SQLite starts the log again from its beginning at
the first write after a checkpoint that copied all of it; a pass that commits landed in is followed
by up to CATCH_UP more (each copies only what came meanwhile). If the log still grows past
RESTART_FRAMES (a writer that never pauses), the writer's next write restarts it itself, after its
commit: the old cost, once, instead of a log without bound. That restart waits at most
storage.WAL_RESTART_WAIT_MS for readers to leave the log (a long report must not hold the writer
for the whole busy timeout); if they have not, the next long log asks again.

Durability is unchanged: a commit is in the WAL (synced as ``synchronous`` says) when it returns,
copied or not, and SQLite replays the WAL when the database is opened again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .server import QueueServer

log = logging.getLogger("madoguchi.server")
CHECKPOINT_INTERVAL = 1.0  # seconds
CATCH_UP = 3  # extra passes when commits landed during one
RESTART_FRAMES = 4_000  # ~16 MB of log (4 KiB pages): then the writer restarts it (Store.restart_wal)


async def checkpointer(server: QueueServer) -> None:
    """Checkpoint the server's SQLite WAL every CHECKPOINT_INTERVAL; returns at once where there is
    no WAL (PostgreSQL, in-memory SQLite). A failed checkpoint is logged once per failing streak
    and tried again: the commits go on into the WAL meanwhile."""
    store = server.store
    if not store.checkpoint_in_background():
        return
    failing = False
    while True:
        await asyncio.sleep(CHECKPOINT_INTERVAL)
        try:
            for _ in range(1 + CATCH_UP):
                busy, frames, copied = await asyncio.to_thread(store.checkpoint)
                server.metrics.wal_checkpoints += 1
                if busy or copied >= frames:
                    break
        except Exception as e:
            if not failing:
                log.warning("WAL checkpoint failed (commits go on into the log): %s", e)
            failing = True
            server.metrics.wal_checkpoint_failures += 1
            continue
        if failing:
            log.warning("WAL checkpoints work again")
        failing = False
        server.metrics.wal_frames = max(0, frames)
        if frames > RESTART_FRAMES:
            store.restart_wal = True
            server.metrics.wal_restarts += 1
