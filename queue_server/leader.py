"""One leader per site database: the lock a server holds for as long as it serves its sites.

Two servers writing one database silently disable each other (issue 12, item 5): each keeps the
lobby in memory, so the second to commit conflicts forever. A server therefore takes a lock before
it loads anything, and keeps it for its lifetime:

- SQLite: an exclusive ``flock`` on ``<database>.leader`` beside the database file. The kernel drops
  it when the process dies, SIGKILL included; the file also names the holder (pid, host, time).
- PostgreSQL: one session-level advisory lock per site served, held on a dedicated connection. The
  server dies → its connection closes → PostgreSQL releases the locks.

Lost leadership is detected two ways. A watchdog calls ``Lease.check()`` every second (the lock
connection died, the lock file was removed or replaced) and the server exits. And every write
transaction first calls ``Lease.fence(conn)``, which fails the commit unless the lock is still ours
*inside that transaction*: so a server whose lock connection died cannot commit even in the second
before its watchdog notices. On PostgreSQL the fence also takes a shared "write gate" lock per site
that a new leader passes through exclusively before it loads, so every commit of the old leader that
passed its fence has finished before the new leader reads the database.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Advisory-lock namespaces (the first int4 of the two-key form); the second key is the site's.
LEADER_NS = zlib.crc32(b"madoguchi.leader") & 0x7FFFFFFF
GATE_NS = zlib.crc32(b"madoguchi.write-gate") & 0x7FFFFFFF
POLL_SECONDS = 0.25  # how often a standby tries the lock (SQLite: one syscall; PostgreSQL: one query)


class NotLeader(Exception):
    """Another server holds the lock; the message names it and what to do."""


class LeadershipLost(Exception):
    """This server held the lock and no longer does: it must stop writing and exit."""


def site_key(site: str) -> int:
    """The advisory-lock key of a site: a stable non-negative int4 (crc32 of its key)."""
    return zlib.crc32(site.encode()) & 0x7FFFFFFF


def holder_label() -> str:
    return f"madoguchi pid {os.getpid()} on {socket.gethostname()}"


# ---------------------------------------------------------------------------- SQLite


def lock_path(db_path: Path) -> Path:
    """``<database>.leader`` beside the real file, whatever relative path or symlink names it."""
    real = Path(os.path.realpath(db_path))
    return real.with_name(real.name + ".leader")


class FileLease:
    """An exclusive flock on ``<db>.leader``; released by the kernel when the process ends."""

    kind = "sqlite lock file"

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd
        st = os.fstat(fd)
        self._inode = (st.st_dev, st.st_ino)
        self.lost: str | None = None

    @classmethod
    def try_acquire(cls, db_path: Path) -> FileLease | None:
        import fcntl

        path = lock_path(db_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        lease = cls(path, fd)
        if lease._replaced():  # removed between open and flock by an old leader's clean-up: retry later
            lease.release()
            return None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{holder_label()} since {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n".encode(), 0)
        return lease

    @staticmethod
    def describe_holder(db_path: Path) -> str:
        path = lock_path(db_path)
        try:
            who = path.read_text(encoding="utf-8", errors="replace").strip() or "another process"
        except OSError:
            who = "another process"
        return f"lock file {path} is held by {who}"

    def _replaced(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return True
        return (st.st_dev, st.st_ino) != self._inode

    def check(self) -> None:
        """Raise LeadershipLost when the lock file was removed or replaced (a new server could lock it)."""
        if self.lost is None and self._replaced():
            self.lost = f"lock file {self.path} was removed or replaced"
        if self.lost:
            raise LeadershipLost(self.lost)

    def fence(self, conn: Any) -> None:
        self.check()

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)  # closing the only descriptor drops the flock; the file stays (no race)


# ---------------------------------------------------------------------------- PostgreSQL


class PgLease:
    """Session advisory locks (one per site) on a dedicated autocommit connection."""

    kind = "postgresql advisory lock"

    def __init__(self, engine: Any, conn: Any, keys: list[int], pid: int):
        self.engine, self.conn, self.keys, self.pid = engine, conn, keys, pid
        self.lost: str | None = None

    @staticmethod
    def lock_engine(url: str) -> Any:
        """An engine for lock connections: no pool, TCP keepalives so a dead network is noticed."""
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        # Both ends watch the connection: the client's keepalives, and the server's (per-session
        # settings) so that PostgreSQL drops a vanished leader's session, and with it the lock, within
        # ~15 s instead of the kernel's two hours (PostgreSQL 12 or newer). The session is never idle
        # for long (the watchdog queries every second), so an idle_session_timeout does not end it.
        server_side = "-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3 -c tcp_user_timeout=15000"
        args = {"application_name": "madoguchi leader lock", "keepalives": 1, "keepalives_idle": 5,
                "keepalives_interval": 2, "keepalives_count": 3, "connect_timeout": 10, "options": server_side}
        return create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=args)

    @classmethod
    def try_acquire(cls, engine: Any, conn: Any, sites: Iterable[str]) -> PgLease | None:
        """All the sites' locks on ``conn`` or none (so servers with overlapping sites never deadlock).

        On None the connection stays open for the next try (a standby polls without reconnecting).
        """
        from sqlalchemy import text

        keys = sorted({site_key(s) for s in sites})
        got = []
        for k in keys:
            if not conn.scalar(text("SELECT pg_try_advisory_lock(:ns, :k)"), {"ns": LEADER_NS, "k": k}):
                for g in got:
                    conn.execute(text("SELECT pg_advisory_unlock(:ns, :k)"), {"ns": LEADER_NS, "k": g})
                return None
            got.append(k)
        # the write gate: wait until every commit of a previous leader that passed its fence is done
        for k in keys:
            conn.execute(text("SELECT pg_advisory_lock(:ns, :k)"), {"ns": GATE_NS, "k": k})
            conn.execute(text("SELECT pg_advisory_unlock(:ns, :k)"), {"ns": GATE_NS, "k": k})
        return cls(engine, conn, keys, conn.scalar(text("SELECT pg_backend_pid()")))

    @staticmethod
    def describe_holder(engine: Any, sites: Iterable[str]) -> str:
        from sqlalchemy import text

        keys = sorted({site_key(s) for s in sites})
        with contextlib.suppress(Exception), engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT DISTINCT a.application_name, host(a.client_addr), a.backend_start FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.classid = CAST(:ns AS oid) AND l.objid = ANY(CAST(:keys AS oid[])) AND l.objsubid = 2 "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
                {"ns": LEADER_NS, "keys": keys}).all()
            if rows:
                return "the advisory lock is held by " + "; ".join(
                    f"{name or 'a session'} (from {addr or 'local socket'}, connected {start:%Y-%m-%d %H:%M:%S})"
                    for name, addr, start in rows)
        return "the advisory lock is held by another session"

    def check(self) -> None:
        """Raise LeadershipLost unless our lock connection is alive and still holds every site's lock."""
        from sqlalchemy import text

        if self.lost is None:
            try:
                held = self.conn.scalar(text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid() "
                    "AND classid = CAST(:ns AS oid) AND objid = ANY(CAST(:keys AS oid[])) AND objsubid = 2"),
                    {"ns": LEADER_NS, "keys": self.keys})
            except Exception as e:
                self.lost = f"the lock connection failed ({type(e).__name__}: {str(e).strip()[:200]})"
            else:
                if held != len(self.keys):
                    self.lost = f"the advisory lock was released ({held} of {len(self.keys)} site locks held)"
        if self.lost:
            raise LeadershipLost(self.lost)

    def fence(self, conn: Any) -> None:
        """Inside a write transaction: pass the write gate, then prove the lock session still holds the lock.

        One statement (one round trip per commit, ~0.5 ms; bench/leader_bench.py). The order matters
        and is forced: the gate is an aggregate the LATERAL subquery refers to (OFFSET 0 keeps the
        planner from flattening it), so pg_locks is read only after every gate lock is taken.
        """
        if self.lost:
            raise LeadershipLost(self.lost)
        held = conn.exec_driver_sql(self._fence_sql).scalar()
        if held != len(self.keys):
            self.lost = "the advisory lock is no longer held by this server's lock connection"
            raise LeadershipLost(self.lost)

    @property
    def _fence_sql(self) -> str:
        # only integers computed here go into the text: nothing from outside
        keys = "ARRAY[" + ",".join(str(int(k)) for k in self.keys) + "]"
        return (
            f"SELECT count(*) FROM (SELECT count(*) AS n FROM (SELECT pg_advisory_xact_lock_shared({GATE_NS}, k) "
            f"FROM unnest({keys}::int4[]) AS k) gate) g CROSS JOIN LATERAL (SELECT 1 FROM pg_locks "
            f"WHERE g.n = {len(self.keys)} AND locktype = 'advisory' AND granted AND pid = {int(self.pid)} "
            f"AND classid = {LEADER_NS}::oid AND objid = ANY({keys}::oid[]) AND objsubid = 2 OFFSET 0) held"
        )

    def release(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()  # the session ends, PostgreSQL drops its advisory locks


class NoLease:
    """An in-memory SQLite database: no other process can open it, so nothing to lock."""

    kind = "none (in-memory database)"
    lost: str | None = None

    def check(self) -> None:
        pass

    def fence(self, conn: Any) -> None:
        pass

    def release(self) -> None:
        pass


Lease = FileLease | PgLease | NoLease


# ---------------------------------------------------------------------------- acquiring


class Claim:
    """How one server tries to become the leader of a database's sites (blocking calls: use a thread)."""

    def __init__(self, url: str, sites: Iterable[str]):
        from sqlalchemy.engine import make_url

        self.url, self.sites = url, sorted(sites)
        u = make_url(url)
        self.dialect = u.get_backend_name()
        self.db_path = Path(u.database) if self.dialect == "sqlite" and u.database not in (None, "", ":memory:") else None
        self._engine = PgLease.lock_engine(url) if self.dialect == "postgresql" else None
        self._conn: Any = None  # PostgreSQL: the session that tries, and becomes the lease's on success

    def try_acquire(self) -> Lease | None:
        """The lease, or None while another server holds the lock. Raises when the database is unreachable."""
        if self.dialect == "postgresql":
            return self._try_pg()
        if self.db_path is None:
            return NoLease()
        return FileLease.try_acquire(self.db_path)

    def _try_pg(self) -> PgLease | None:
        from sqlalchemy import text

        try:
            if self._conn is None:
                self._conn = self._engine.connect()
                self._conn.execute(text("SELECT set_config('application_name', :n, false)"),
                                   {"n": f"madoguchi leader {holder_label()}"[:63]})
            lease = PgLease.try_acquire(self._engine, self._conn, self.sites)
        except Exception:
            self._drop_conn()
            raise
        if lease is not None:
            self._conn = None  # the lease owns it now
        return lease

    def _drop_conn(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def refusal(self) -> str:
        """The message a second server prints when it refuses to start."""
        if self.dialect == "postgresql":
            who = PgLease.describe_holder(self._engine, self.sites)
        else:
            who = FileLease.describe_holder(self.db_path) if self.db_path else "another server"
        return (f"another madoguchi server is already serving sites {', '.join(self.sites)} on this database: "
                f"{who}. Stop it first, or start this one with --standby to wait and take over when it stops.")

    def close(self) -> None:
        self._drop_conn()
        if self._engine is not None:
            self._engine.dispose()


async def acquire(claim: Claim, wait: bool, stop: Any) -> Lease | None:
    """The lease. Held by another server: NotLeader, or with ``wait`` (a standby) try every
    POLL_SECONDS until the lock is ours; None when the future ``stop`` resolves first."""
    import asyncio
    import logging

    log = logging.getLogger("madoguchi.server")
    lease = await asyncio.to_thread(claim.try_acquire)
    if lease is not None:
        return lease
    if not wait:
        raise NotLeader(await asyncio.to_thread(claim.refusal))
    log.warning("standby: another server leads sites %s; taking over when its lock is released", ", ".join(claim.sites))
    while lease is None:
        await asyncio.wait({stop}, timeout=POLL_SECONDS)
        if stop.done():
            return None
        try:
            lease = await asyncio.to_thread(claim.try_acquire)
        except Exception as e:  # the database restarting: a standby keeps waiting
            log.warning("standby: cannot try the lock (%s: %s); retrying", type(e).__name__, e)
            await asyncio.wait({stop}, timeout=2.0)
    log.warning("standby: took over as leader (%s); loading state from the database", lease.kind)
    return lease


async def watch(lease: Lease, interval: float = 1.0, timeout: float = 10.0) -> None:
    """Return never; raise LeadershipLost when the lock goes or its check hangs for ``timeout`` seconds.

    The check runs in a daemon thread, not the loop's executor: a check stuck on a dead network must
    not keep the process from exiting. One thread for the whole watch, not one per check: starting
    a thread blocks the event loop until the new thread runs, and on a server pinned to one busy
    core that was up to 8 ms of every request's time once a second (traced under bench/open_loop.py).
    """
    import asyncio
    import queue
    import threading

    loop = asyncio.get_running_loop()
    checks: queue.SimpleQueue[asyncio.Future | None] = queue.SimpleQueue()

    def checker() -> None:
        while (fut := checks.get()) is not None:
            err: BaseException | None = None
            try:
                lease.check()
            except BaseException as e:  # handed to the loop and raised there
                err = e

            def settle(fut: asyncio.Future = fut, err: BaseException | None = err) -> None:
                if fut.done():
                    return
                if err is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(err)

            try:
                loop.call_soon_threadsafe(settle)
            except RuntimeError:  # the loop closed meanwhile
                return

    threading.Thread(target=checker, name="leader-check", daemon=True).start()
    try:
        while True:
            await asyncio.sleep(interval)
            fut: asyncio.Future = loop.create_future()
            checks.put(fut)
            try:
                await asyncio.wait_for(fut, timeout)
            except TimeoutError:
                lease.lost = f"the lock check did not answer within {timeout:g} s"
                raise LeadershipLost(lease.lost) from None
    finally:
        checks.put(None)  # the thread ends after its check in hand (a hung one: a daemon, never waited for)


@contextlib.contextmanager
def offline(url: str) -> Any:
    """Maintenance on a database no server leads (the `alembic` command): raise NotLeader while one
    does. SQLite: the lock file is held meanwhile, so no server starts half-way through."""
    from sqlalchemy import text

    claim = Claim(url, [])
    try:
        if claim.dialect == "postgresql":
            with claim._engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT DISTINCT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = CAST(:ns AS oid) AND l.objsubid = 2 "
                    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
                    {"ns": LEADER_NS}).scalars().all()
            if rows:
                raise NotLeader(f"a madoguchi server is running on this database ({'; '.join(rows)}): stop it first")
            yield
            return
        lease = claim.try_acquire()
        if lease is None:
            raise NotLeader(f"a madoguchi server is running on this database: "
                            f"{FileLease.describe_holder(claim.db_path)}; stop it first")
        try:
            yield
        finally:
            lease.release()
    finally:
        claim.close()


def health(lease: Lease | None, serving: bool = True) -> dict[str, Any]:
    """The "leader" check of /healthz: ok only while this server holds the lock and serves."""
    if lease is None:
        return {"ok": False, "state": "standby"}
    if lease.lost:
        return {"ok": False, "state": "lost", "lock": lease.kind, "reason": lease.lost}
    if not serving:
        return {"ok": False, "state": "loading", "lock": lease.kind}
    return {"ok": True, "state": "leader", "lock": lease.kind}
