"""One leader per site database (queue_server/leader.py), with real `run.py server` processes.

A second server refuses to start; a `--standby` server takes over when the leader is SIGKILLed
while a kiosk and a counter keep working (every acknowledged ticket survives, no number repeats);
a leader whose lock goes stops writing and exits non-zero. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from websockets.exceptions import InvalidStatus

from queue_server import leader
from queue_server.config import load_city
from queue_server.storage import Batch, Store
from tests.support.live_server import Client
from tests.support.server_process import Server

from .test_crash import _today

SITES = sorted(load_city().sites)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lobby.db'}"
    return request.getfixturevalue("fresh_postgres")


@pytest.fixture
def servers():
    started: list[Server] = []
    yield started
    for s in started:
        s.kill()


def _tokens(secrets: Path):
    from queue_server.tokens import read

    return read(secrets)


# ---------------------------------------------------------------------------- refusal


def test_a_second_server_on_the_same_database_refuses_to_start_and_names_the_leader(db_url, tmp_path, servers):
    secrets = tmp_path / "secrets.toml"
    first = Server(db_url, secrets)
    servers.append(first)
    first.listening()
    second = Server(db_url, secrets)
    servers.append(second)
    assert second.proc.wait(60) == 2
    out = second.output()
    assert "refused to start" in out and "already serving" in out and "--standby" in out, out
    assert f"pid {first.proc.pid}" in out, out  # the message names the process holding the lock
    status, body = first.health()
    assert status == 200 and body["leader"]["state"] == "leader", body

    async def still_serving():  # the first server was not disturbed: it still commits
        k, hello = await Client.open(first.url, role="kiosk", device="kiosk-1", site="honcho",
                                     token=_tokens(secrets).roles["kiosk"])
        assert "result" in hello, hello
        await k.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key="after-refusal")
        await k.close()

    asyncio.run(still_serving())


# ---------------------------------------------------------------------------- takeover


async def _lobby_across_takeover(urls: list[str], secrets: Path, kill_after: int, then: int,
                                  kill) -> tuple[dict[str, str], list[str], int]:
    """A kiosk issuing and a counter calling in loops, reconnecting to whichever URL answers.

    Each issue keeps its idempotency key until it gets a reply, so a ticket committed just before the
    kill is returned (not issued again) by the new leader. Returns acknowledged tickets (id -> number),
    acknowledged calls, and how many tickets were acknowledged before the kill.
    """
    tokens = _tokens(secrets)
    acked: dict[str, str] = {}
    calls: list[str] = []
    killed = asyncio.Event()
    done = asyncio.Event()
    acked_at_kill = 0

    async def connect(**hello) -> Client:
        deadline = time.monotonic() + 120
        while True:
            for url in urls:
                try:
                    c, r = await Client.open(url, **hello)
                except Exception:
                    continue
                if "result" in r:
                    return c
                await c.close()
            if time.monotonic() > deadline:
                raise TimeoutError("no server accepted the device")
            await asyncio.sleep(0.2)

    async def kiosk(worker: int) -> None:
        c = await connect(role="kiosk", device=f"kiosk-{worker + 1}", site="honcho", token=tokens.roles["kiosk"])
        i = 0
        while not done.is_set():
            i += 1
            key = f"k{worker}-{i}"
            while True:  # same key until answered
                try:
                    r = await c.request("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key=key)
                except Exception:
                    await c.close()
                    c = await connect(role="kiosk", device=f"kiosk-{worker + 1}", site="honcho",
                                      token=tokens.roles["kiosk"])
                    continue
                if "result" in r:
                    t = r["result"]["ticket"]
                    assert acked.setdefault(t["id"], t["number"]) == t["number"]
                    break
                await asyncio.sleep(0.05)  # an error reply (e.g. storage_error while the lock goes): retry
        await c.close()

    async def counter() -> None:
        hello = {"role": "counter", "site": "honcho", "counter": 1, "token": tokens.counters["honcho"][1],
                 "staff": "佐藤"}
        c = await connect(**hello)
        await c.request("open")
        while not done.is_set():
            try:
                r = await c.request("call_next")
                if "result" in r and r["result"]["ticket"]:
                    calls.append(r["result"]["ticket"]["id"])
                await c.request("start")
                await c.request("complete")
            except Exception:
                await c.close()
                c = await connect(**hello)
        await c.close()

    async def conductor() -> None:
        nonlocal acked_at_kill
        while len(acked) < kill_after:
            await asyncio.sleep(0.01)
        acked_at_kill = len(acked)
        await asyncio.to_thread(kill)
        killed.set()
        while len(acked) < acked_at_kill + then:
            await asyncio.sleep(0.05)
        done.set()

    await asyncio.wait_for(asyncio.gather(kiosk(0), kiosk(1), counter(), conductor()), 300)
    return acked, calls, acked_at_kill


def _check_database(db_url: str, acked: dict[str, str], calls: list[str]) -> None:
    store = Store(db_url)
    stored = {t.id: t for t in store.load_tickets("honcho", _today(store))}
    lost = set(acked) - set(stored)
    assert not lost, f"{len(lost)} acknowledged tickets lost"
    assert set(stored) == set(acked), "a retried request created a second ticket"
    assert all(stored[i].label == n for i, n in acked.items())
    numbers = [t.number for t in stored.values()]
    assert len(numbers) == len(set(numbers)), "a number was given twice"
    for tid in calls:
        assert stored[tid].steps[0].counter == 1 and stored[tid].steps[0].called_at is not None, "a call was lost"
    store.engine.dispose()


@pytest.mark.slow
def test_standby_takes_over_after_sigkill_while_a_kiosk_and_a_counter_work(db_url, tmp_path, servers):
    """SQLite: both on one port (the standby binds after the takeover, as on one host).
    PostgreSQL: the standby has its own port (as on a second host) and answers /healthz 503 standby."""
    secrets = tmp_path / "secrets.toml"
    same_host = db_url.startswith("sqlite")
    port = _free_port()
    lead = Server(db_url, secrets, port=port)
    servers.append(lead)
    lead.listening()
    standby = Server(db_url, secrets, port=port if same_host else _free_port(), standby=True)
    servers.append(standby)
    standby.wait_for(r"standby: another server leads")
    if same_host:
        assert "in use" in standby.output()  # documented: no health on the leader's own port
    else:
        status, body = standby.health()
        assert status == 503 and body["leader"]["state"] == "standby", body
        with pytest.raises(InvalidStatus) as refused:  # a standby takes no websocket work
            asyncio.run(Client.open(standby.url, role="kiosk", device="kiosk-1", site="honcho",
                                    token=_tokens(secrets).roles["kiosk"]))
        assert refused.value.response.status_code == 503
    killed_at: list[float] = []

    def kill() -> None:
        killed_at.append(time.monotonic())
        assert lead.kill() == -signal.SIGKILL

    acked, calls, before = asyncio.run(
        _lobby_across_takeover([lead.url, standby.url], secrets, kill_after=40, then=20, kill=kill))
    standby.listening()
    print(f"\ntakeover on {db_url.split(':')[0]}: {len(acked)} tickets acknowledged ({before} before the kill), "
          f"{len(calls)} calls; the standby printed its ready line {time.monotonic() - killed_at[0]:.1f} s after the kill")
    status, body = standby.health()
    assert status == 200 and body["leader"]["state"] == "leader", body
    _check_database(db_url, acked, calls)


# ---------------------------------------------------------------------------- lost leadership


@pytest.mark.postgres
@pytest.mark.slow
def test_a_leader_whose_lock_connection_dies_stops_writing_and_exits(fresh_postgres, tmp_path, servers):
    """The stray-second-server case of issue 12 item 5: the leader's lock session is killed (as by a
    network cut or an administrator), a standby takes over, and the old leader must not commit again."""
    secrets = tmp_path / "secrets.toml"
    lead = Server(fresh_postgres, secrets)
    servers.append(lead)
    lead.listening()
    standby = Server(fresh_postgres, secrets, standby=True)
    servers.append(standby)
    standby.wait_for(r"standby: another server leads")
    engine = Store(fresh_postgres).engine

    def terminate_lock_session() -> None:
        with engine.connect() as c:
            n = c.scalar(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE application_name LIKE :name"), {"name": f"madoguchi leader%pid {lead.proc.pid} %"})
            assert n == 1, "the leader's lock session was not found"

    tokens = _tokens(secrets)

    async def scenario() -> tuple[dict[str, str], list[str]]:
        k, _ = await Client.open(lead.url, role="kiosk", device="kiosk-1", site="honcho", token=tokens.roles["kiosk"])
        acked = {}
        for i in range(5):
            t = (await k.ok("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key=f"a{i}"))["ticket"]
            acked[t["id"]] = t["number"]
        await asyncio.to_thread(terminate_lock_session)
        await asyncio.to_thread(standby.listening)
        # the old leader is still running for up to a second: whatever it answers, nothing it acknowledges
        # from now on may be lost or collide with the new leader's numbers
        for i in range(20):
            try:
                r = await k.request("issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key=f"b{i}")
            except Exception:
                break
            if "result" in r:
                acked[r["result"]["ticket"]["id"]] = r["result"]["ticket"]["number"]
        k2, _ = await Client.open(standby.url, role="kiosk", device="kiosk-1", site="honcho",
                                  token=tokens.roles["kiosk"])
        for i in range(5):
            t = (await k2.ok("issue", purposes=["certificate"], answers={}, lang="ja",
                             idempotency_key=f"c{i}"))["ticket"]
            acked[t["id"]] = t["number"]
        return acked, []

    acked, calls = asyncio.run(scenario())
    assert lead.proc.wait(60) == 3, lead.output()
    assert "leadership lost" in lead.output()
    _check_database(fresh_postgres, acked, calls)
    engine.dispose()


def test_a_leader_whose_lock_file_is_removed_exits(tmp_path, servers):
    db = tmp_path / "lobby.db"
    lead = Server(f"sqlite:///{db}", tmp_path / "secrets.toml")
    servers.append(lead)
    lead.listening()
    Path(f"{db}.leader").unlink()
    assert lead.proc.wait(60) == 3, lead.output()
    assert "was removed or replaced" in lead.output()


# ---------------------------------------------------------------------------- the lock itself


def test_sqlite_lock_is_exclusive_until_released(tmp_path):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    (tmp_path / "alias").symlink_to(tmp_path)
    a, b = leader.Claim(url, SITES), leader.Claim(url, SITES)
    first = a.try_acquire()
    assert isinstance(first, leader.FileLease)
    assert b.try_acquire() is None
    assert leader.Claim(f"sqlite:///{tmp_path / 'alias' / 'x.db'}", SITES).try_acquire() is None, \
        "another path to the same file must meet the same lock"
    assert f"pid {os.getpid()}" in b.refusal()
    first.release()
    second = b.try_acquire()
    assert second is not None
    second.check()
    second.release()


@pytest.mark.postgres
def test_postgres_fence_refuses_a_commit_once_the_lock_session_is_gone(fresh_postgres):
    store = Store(fresh_postgres)
    store.migrate()
    a, b = leader.Claim(fresh_postgres, SITES), leader.Claim(fresh_postgres, ["honcho"])
    lease = a.try_acquire()
    assert isinstance(lease, leader.PgLease)
    assert b.try_acquire() is None, "an overlapping site set must not get the lock"
    assert "madoguchi leader" in b.refusal()
    store.fence = lease.fence
    ev = {"site": "honcho", "seq": 1, "at": 1.0, "kind": "noted", "ticket": None, "step": None, "counter": None,
          "actor": "test", "payload": {}}
    store.write(Batch(events=[ev]))
    with store.engine.connect() as c:
        c.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": lease.pid})
    new = None
    for _ in range(100):
        new = b.try_acquire()
        if new:
            break
        time.sleep(0.1)
    assert new is not None, "the lock was not released when its session died"
    with pytest.raises(leader.LeadershipLost):
        store.write(Batch(events=[{**ev, "seq": 2}]))
    with pytest.raises(leader.LeadershipLost):
        lease.check()
    assert store.last_seq("honcho") == 1
    assert leader.health(lease)["state"] == "lost"
    for x in (lease, new):
        x.release()
    a.close()
    b.close()
    store.engine.dispose()


@pytest.mark.postgres
def test_postgres_fence_checks_the_lock_only_after_passing_the_write_gate(fresh_postgres):
    """A commit that waits at the gate while a new leader takes over must then fail its check:
    the check may not be evaluated before the gate (else it would pass on stale facts and commit)."""
    store = Store(fresh_postgres)
    store.migrate()
    claim = leader.Claim(fresh_postgres, SITES)
    lease = claim.try_acquire()
    store.fence = lease.fence
    gatekeeper = store.engine.connect()  # plays the new leader holding the gate
    gatekeeper.execute(text("SELECT pg_advisory_lock(:ns, :k)"), {"ns": leader.GATE_NS, "k": leader.site_key("honcho")})
    ev = {"site": "honcho", "seq": 1, "at": 1.0, "kind": "noted", "ticket": None, "step": None, "counter": None,
          "actor": "test", "payload": {}}
    outcome: list[BaseException | None] = []

    def write() -> None:
        try:
            store.write(Batch(events=[ev]))
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)

    writer = threading.Thread(target=write)
    writer.start()
    with store.engine.connect() as c:
        for _ in range(600):  # until the write waits at the gate
            if c.scalar(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")):
                break
            time.sleep(0.05)
        else:
            pytest.fail("the write never reached the gate")
        c.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": lease.pid})
        for _ in range(600):  # until the old lock session is gone (and its lock with it)
            if not c.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": lease.pid}):
                break
            time.sleep(0.05)
    gatekeeper.execute(text("SELECT pg_advisory_unlock(:ns, :k)"), {"ns": leader.GATE_NS, "k": leader.site_key("honcho")})
    writer.join(60)
    assert outcome and isinstance(outcome[0], leader.LeadershipLost), outcome
    assert store.last_seq("honcho") == 0, "a write committed after its leader lost the lock"
    gatekeeper.close()
    lease.release()
    claim.close()
    store.engine.dispose()


def test_healthz_and_websocket_follow_the_leader_state(tmp_path):
    """/healthz is 200 only for a serving leader; standby, loading and lost answer 503 and refuse /ws."""
    from websockets.datastructures import Headers
    from websockets.http11 import Request

    from queue_server.cli import load_catalogue_if_present
    from queue_server.config import DEFAULT_CONFIG_DIR
    from queue_server.server import QueueServer
    from queue_server.tokens import ensure_for_city

    city = load_city()
    tokens, _ = ensure_for_city(tmp_path / "s.toml", city)
    qs = QueueServer(city, Store(f"sqlite:///{tmp_path / 'h.db'}"), tokens, load_catalogue_if_present(DEFAULT_CONFIG_DIR, city))

    def get(path: str) -> tuple[int, bytes]:
        r = qs.process_request(None, Request(path, Headers()))  # type: ignore[arg-type]
        return (0, b"") if r is None else (r.status_code, r.body)

    assert get("/healthz")[0] == 503 and json.loads(get("/healthz")[1])["leader"]["state"] == "standby"
    assert get("/ws")[0] == 503
    qs.lease = leader.Claim(f"sqlite:///{tmp_path / 'h.db'}", SITES).try_acquire()
    assert json.loads(get("/healthz")[1])["leader"]["state"] == "loading" and get("/ws")[0] == 503
    qs._tasks = [object()]  # type: ignore[list-item]  # what start() leaves: the writer is running
    assert get("/healthz")[0] == 200 and get("/ws")[0] == 0  # 0: the websocket handshake goes on
    Path(f"{tmp_path / 'h.db'}.leader").unlink()
    with pytest.raises(leader.LeadershipLost):
        qs.lease.check()
    status, body = get("/healthz")
    assert status == 503 and json.loads(body)["leader"]["state"] == "lost"
    assert "removed" in json.loads(body)["leader"]["reason"]
    assert get("/ws")[0] == 503 and get("/board/")[0] == 503
    qs.lease.release()


# ---------------------------------------------------------------------------- the watch


class _CountingLease(leader.NoLease):
    """A lease whose check counts, and fails or hangs when told to."""

    def __init__(self) -> None:
        self.checks = 0
        self.threads: set[threading.Thread] = set()  # that ran a check
        self.fail = False
        self.hang = threading.Event()

    def check(self) -> None:
        self.checks += 1
        self.threads.add(threading.current_thread())
        if self.hang.is_set():
            time.sleep(5)
        if self.fail:
            raise leader.LeadershipLost("lock file gone")


def _checkers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "leader-check"]


def test_the_watch_checks_in_one_thread_and_raises_when_the_lock_goes():
    lease = _CountingLease()
    before = set(_checkers())  # (a hung check of another test may linger: daemons are never waited for)

    async def run() -> None:
        task = asyncio.create_task(leader.watch(lease, interval=0.02, timeout=2))
        await asyncio.sleep(0.3)
        assert lease.checks >= 5 and len(lease.threads) == 1  # one thread for all the checks
        assert lease.threads <= set(_checkers()) - before
        lease.fail = True
        with pytest.raises(leader.LeadershipLost, match="lock file gone"):
            await asyncio.wait_for(task, 2)

    asyncio.run(run())
    for t in set(_checkers()) - before:
        t.join(2)
    assert not set(_checkers()) - before, "the check thread outlived its watch"


def test_a_check_that_hangs_loses_the_lead_after_the_timeout():
    lease = _CountingLease()
    lease.hang.set()

    async def run() -> None:
        with pytest.raises(leader.LeadershipLost, match="did not answer within 0.2 s"):
            await asyncio.wait_for(leader.watch(lease, interval=0.01, timeout=0.2), 3)

    asyncio.run(run())
    assert lease.lost and "did not answer" in lease.lost
