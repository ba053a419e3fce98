"""An in-process QueueServer on a real SQLite file whose writes can be made to fail, and the
comparison of its memory with what a fresh server loads from the same database."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError

from queue_server import protocol as P
from queue_server.cli import load_catalogue_if_present
from queue_server.config import DEFAULT_CONFIG_DIR, load_city
from queue_server.idempotency import idem_scope
from queue_server.jobs import Client, Job
from queue_server.server import QueueServer
from queue_server.storage import Store
from queue_server.tokens import ensure_for_city

CITY = load_city()
CATALOGUE = load_catalogue_if_present(DEFAULT_CONFIG_DIR, CITY)
NOW = 1775000000.0  # 2026-04-01 08:33 JST


class FaultyStore(Store):
    """The real SQLite store, with failures injected the way the database would raise them.

    ``fail_after`` makes the write's Nth SQL statement raise SQLite's own "database or disk is
    full" inside the transaction (the statements before it ran and are rolled back by the real
    transaction); ``poison`` makes a write raise when it carries an event whose payload has
    ``reason == poison`` (one request's rows the database refuses).
    """

    def __init__(self, url: str):
        super().__init__(url)
        self.fail_after: int | None = None
        self.fail_message = "database or disk is full"
        self.poison: str | None = None
        self.poison_error: type[Exception] = IntegrityError
        self._count = 0
        event.listen(self.engine, "before_cursor_execute", self._before)

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.fail_after is None or not statement.lstrip().upper().startswith(("INSERT", "UPDATE")):
            return
        self._count += 1
        if self._count >= self.fail_after:
            self.fail_after, self._count = None, 0
            raise OperationalError(statement, None, sqlite3.OperationalError(self.fail_message))

    def write(self, batch, wait: bool = True) -> None:
        if self.poison is not None and any(e["payload"].get("reason") == self.poison for e in batch.events):
            if self.poison_error is IntegrityError:
                raise IntegrityError("INSERT INTO events", None,
                                     sqlite3.IntegrityError("CHECK constraint failed: poisoned"))
            raise self.poison_error("poisoned row")
        super().write(batch, wait)


class Boom(QueueServer):
    """A server whose requests can raise an unexpected exception before or after they changed memory."""

    def _execute(self, hub, job, now):
        when = job.req.body.get("_boom")
        if when == "before":
            raise RuntimeError("injected before")
        out = super()._execute(hub, job, now)
        if when == "after":
            raise RuntimeError("injected after the request changed memory")
        return out


def make_server(tmp_path: Path, cls: type[QueueServer] = Boom, store: Store | None = None,
                clock: list[float] | None = None) -> QueueServer:
    clock = clock or [NOW]
    tokens, _ = ensure_for_city(tmp_path / "s.toml", CITY)
    store = store or FaultyStore(f"sqlite:///{tmp_path / 'w.db'}")
    qs = cls(CITY, store, tokens, CATALOGUE, clock=lambda: clock[0])
    qs.load()
    return qs


def kiosk(device: str = "k1", site: str = "honcho") -> Client:
    return Client(ws=None, role="kiosk", site=site, device=device)  # type: ignore[arg-type]


def counter(n: int, site: str = "honcho") -> Client:
    return Client(ws=None, role="counter", site=site, device=f"c{n}", counter=n, staff="佐藤")  # type: ignore[arg-type]


def admin(site: str = "honcho") -> Client:
    return Client(ws=None, role="admin", site=site, device="admin")  # type: ignore[arg-type]


_ids = iter(range(1, 10**9))


def job(client: Client, type_: str, **body: Any) -> Job:
    idem = body.get("idempotency_key")
    return Job(client, P.Request(type_, next(_ids), body), asyncio.get_running_loop().create_future(),
               f"{client.site}:{idem_scope(client.role, client.device, client.counter, idem)}" if idem else None)


async def run(qs: QueueServer, jobs: list[Job]) -> list[dict]:
    """One batch through the writer; the decoded replies in order."""
    await qs.writer.run_batch(jobs)
    return [json.loads(j.fut.result()) for j in jobs]


def _plain(x: Any) -> Any:
    return json.loads(json.dumps(x, sort_keys=True, default=str))


def state(qs: QueueServer) -> dict[str, Any]:
    """Everything of a server that must equal what the database holds."""
    out = {}
    for key, hub in qs.hubs.items():
        prefix = f"{key}:"
        out[key] = {
            "tickets": dict(hub.lobby.tickets),
            "counters": {n: (c.state, c.staff) for n, c in hub.lobby.counters.items()},
            "seq": hub.seq,
            "numbers": {k: v for k, v in hub.numbers.items() if v},
            "by_token": dict(hub.by_token),
            "reservations": _plain({f"{d}/{c}": r for (d, c), r in hub.reservations.items()}),
            "idem": _plain({k: v for k, v in qs.idem.items() if k.startswith(prefix)}),
        }
    return out


def fresh_state(qs: QueueServer) -> dict[str, Any]:
    """The state a server started now on the same database would have."""
    other = type(qs)(qs.city, Store(qs.store.url), qs.tokens, qs.catalogue, clock=qs.clock)
    for key in qs.city.sites:
        hub, idem = other._read_site(key, qs.clock())
        other._install_site(hub, idem)
    other.store.engine.dispose()
    return state(other)


def assert_same_as_database(qs: QueueServer) -> None:
    mine, stored = state(qs), fresh_state(qs)
    for key in mine:
        for part in mine[key]:
            assert mine[key][part] == stored[key][part], f"{key}.{part}: memory differs from the database"


class HeldStore(Store):
    """The real SQLite store; while ``hold()`` is in force, a write waits for ``release()``."""

    def __init__(self, url: str):
        super().__init__(url)
        self.open = threading.Event()
        self.open.set()
        self.entered = threading.Event()

    def hold(self) -> None:
        self.entered.clear()
        self.open.clear()

    def release(self) -> None:
        self.open.set()

    def writes_inline(self) -> bool:
        # a held commit is one that takes long: the writer waits for it in a worker thread (a
        # commit held on the event loop would hold the whole server, not only the writer)
        return self.open.is_set() and super().writes_inline()

    def write(self, batch, wait: bool = True) -> None:
        if not self.open.is_set():
            self.entered.set()
            assert self.open.wait(60), "the test never released the writer"
        super().write(batch, wait)


class InProcess:
    """A QueueServer (with a FaultyStore) served from a thread, shaped like LiveServer for the helpers."""

    def __init__(self, qs):
        import threading
        import time

        from queue_server.server import run_server

        self.qs = qs
        self.loop = asyncio.new_event_loop()
        self.stop_fut = self.loop.create_future()
        port: list[int] = []
        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(
            run_server(qs, "127.0.0.1", 0, port.append, self.stop_fut)), daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not port and time.monotonic() < deadline:
            time.sleep(0.01)
        self.port = port[0]

    url = property(lambda self: f"ws://127.0.0.1:{self.port}/ws")
    http = property(lambda self: f"http://127.0.0.1:{self.port}")

    def tokens(self):
        return self.qs.tokens

    def stop(self):
        self.loop.call_soon_threadsafe(self.stop_fut.set_result, None)
        self.thread.join(10)


async def stalled_client(qs: QueueServer, port: int, hello: dict[str, Any], mine: Any) -> tuple[Any, Client]:
    """A client that says hello and then reads nothing more (the slow-client drop,
    pushes.drop_slow): a small receive buffer on its side and a slow link's send buffer on the
    server's (loopback's is megabytes, autotuned). Returns its socket and the server's Client
    for it (the first of ``qs.clients`` for which ``mine`` is true)."""
    import socket

    from websockets.asyncio.client import connect

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    ws = await connect(f"ws://127.0.0.1:{port}/ws", sock=sock, max_queue=1, compression=None)
    await ws.send(json.dumps({"type": "hello", "id": 1, **hello}))
    assert "result" in json.loads(await ws.recv())
    stalled = next(c for c in qs.clients if mine(c))
    stalled.ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    return ws, stalled


async def close_frame(ws: Any) -> Any:
    """Read everything the client had left unread, up to the close frame the server sent (None:
    the connection ended without one)."""
    from websockets.exceptions import ConnectionClosed

    try:
        while True:
            await ws.recv()
    except ConnectionClosed as e:
        return e.rcvd
