#!/usr/bin/env python3
"""Open-loop queue server benchmark (issue 20): latency at a fixed offered rate, push delivery to
boards, a reconnect storm, and the raw SQLite commit beside it. Prints tables and JSON; never
fails on time.

Why open loop: server_bench.py's clients each wait for their reply before sending the next
request, so a slow server slows its own load and the figures hide queueing. Here every request is
scheduled in advance (Poisson arrivals at the offered rate) and its latency is counted from its
*scheduled* time, so a request the generator sent late, or that waited behind another on its
connection, counts as late.

Set-up per scenario: the real server (`run.py server`, a fresh SQLite database and a config with
extra certificate counters 101… written in a temporary directory) pinned to one core with
`taskset -c 0`, this load generator on another core (`os.sched_setaffinity`), when the machine has
two cores or more (otherwise both share the machine, and the output says so). Connected: N
counter consoles (opened, reading every push they get), M boards (display role, reading every
push; every `call` push is checked), K kiosks; with `--sites` several sites (本庁 and the three
総合支所 of config/site.toml: honcho, yawata, matsuyama, hirata), all active, load spread evenly.
Before the measured window each site gets a backlog of waiting tickets (`--backlog`).

Request mix (`--mix`, default issue=0.25,cycle=0.6,queue=0.075,current=0.075): a quarter `issue`
from kiosks; `cycle` is a console's next step of call_next → start → complete (a clerk's console
sends its next step only after the previous reply, so a cycle request waits client-side for a free
console of its site: that wait counts in its latency and in "send lag"); `queue` and `current`
are console reads sent at once. Errors are counted by code (`busy` and any other); a connection
the server closes is counted and reconnected with hello/last_seq, its unanswered requests counted
as lost.

Push check: every call (from call_next replies and from any board) must reach every board of its
site exactly once (missing, duplicated), and the delay from the call's reply to each board's
receipt is reported (p50/p99; negative when the push overtakes the reply).

Reconnect storm: consoles and boards (`--storm-clients`, 4/5 consoles) all drop their connection
within one second and reconnect with hello/last_seq while calls continue; reported: time from
drop until each is resynced (hello reply, and for boards every missed call replayed), p50/p99/max,
and the call delivery check across the storm.

    .venv/bin/python bench/open_loop.py                      # the default matrix (about 10 minutes)
    .venv/bin/python bench/open_loop.py --quick              # a smoke run (under a minute)
    .venv/bin/python bench/open_loop.py --scenario matrix --consoles 200 --boards 50 --rates 100 300
    .venv/bin/python bench/open_loop.py --scenario sites --sites 4 --rates 100
    .venv/bin/python bench/open_loop.py --scenario storm --storm-clients 250 --json out.json
    .venv/bin/python bench/open_loop.py --scenario floor --consoles 200 --boards 50 --rates 100 300
    .venv/bin/python bench/open_loop.py --scenario matrix floor --consoles 200 --boards 50 --rates 100 300 --repeat 5
    .venv/bin/python bench/open_loop.py --markdown              # also print the docs/benchmarks.md tables
    .venv/bin/python bench/open_loop.py --from-json out.json    # the tables of an earlier run, no run

Scenarios: `matrix` (every consoles × boards × rates, one site), `sites` (the largest consoles
and boards over `--sites` sites, every rate), `storm`, and `floor` (not in the default run): the
largest consoles and boards at every rate against bench/floor_server.py instead of the server —
the same library, connections and generator, every request answered at once (or after
`--floor-burn-ms` of CPU each, or `--floor-work-ms` of work that slows down with the core as the
server's does) and every call pushed to every board. It is what the machine gives
any server: the real server's figures are read beside it. `--repeat N` runs the whole plan N times,
round after round, and ends with each kind of run's spread (p99 of every round, median, min–max).

The generator's own limits are printed: achieved send rate, send lag (socket send − schedule: it
includes a console step's wait for its console and a request's wait behind a connection the
server does not read), the generator's
own lag (`generator_lag`: dispatch − schedule, before any socket), its CPU use (near 100% of
its core: the figures are the generator's, not the server's), its CPU per received message
(`generator_us_per_message`) and how often other processes took its core (`generator_preempted`),
and the CPU time the hypervisor took from the VM in the window (`vm_steal_ms`, from /proc/stat).
Before each run, bench/machine_probe.py times a fixed piece of work on the server's core for
`--probe-seconds` (`machine_probe`; column `probe`: µs per piece / share of the core lost).

The generator must be lighter than what it measures. Its clients are bench/ws_client.py (all
sockets in one epoll set read by one loop callback, frames parsed in that read, no task or future
per message) rather than the `websockets` client; a message's fields are read with anchored
regexes (a call push, a reply's id and ticket number) and JSON is decoded only where the bench
needs more; the dispatcher waits on a timerfd in the clients' epoll set (bench/hrtimer.py:
asyncio's timers wake up to 1 ms late); cyclic GC is off in the window. Received times are when the socket was seen
readable. Set-up requests retry `busy` (counted in `setup_busy_retries`); measured ones do not.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import functools
import gc
import itertools
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.floor_server import pieces_for  # noqa: E402
from bench.hrtimer import HRTimer, TimerFD  # noqa: E402
from bench.machine_probe import probe as machine_probe  # noqa: E402
from bench.ws_client import WSClient, poller  # noqa: E402
from bench.ws_client import connect as ws_connect  # noqa: E402
from queue_server.config import load_city  # noqa: E402
from queue_server.tokens import ensure_for_city as ensure_tokens  # noqa: E402
from queue_server.tokens import read as read_tokens  # noqa: E402

SITES = ("honcho", "yawata", "matsuyama", "hirata")  # 本庁 and the three 総合支所 (config/site.toml)
FIRST_EXTRA = 101  # bench counters are numbered from here at every site
MIX = {"issue": 0.25, "cycle": 0.6, "queue": 0.075, "current": 0.075}
NEXT_STEP = {"idle": "call_next", "called": "start", "serving": "complete", "unknown": "current"}
PUSH_HEAD = re.compile(rb'^\{"push":\s*"([A-Za-z_]+)"(?:,"site":"[^"\\]*")?(?:,"seq":(\d+))?')  # seq where the server puts it
SEQ_HEAD = re.compile(rb'"seq":\s*(\d+)')
REPLY_HEAD = re.compile(rb'^\{"re":(\d+),"result":')  # a result (an error is decoded)
TICKET_HEAD = re.compile(rb'^\{"re":\d+,"result":\{"ticket":(?:null|\{"id":"[^"\\]*","number":"([^"\\]*)")')
# a call push as the server encodes it (compact JSON, these keys first); another shape is decoded
CALL_FIELDS = re.compile(rb'^\{"push":"call","site":"[^"\\]*","seq":(\d+),"data":\{"seq":\d+,"number":"([^"\\]*)",'
                         rb'"counter":(\d+),')
perf = time.perf_counter


def pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1e3, 3)


def steal_seconds() -> float:
    """CPU time the hypervisor took from this VM's cores so far (/proc/stat "steal", all cores):
    on a VM, a stalled core makes every request in flight late, whatever the server does."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def summary(xs: list[float]) -> dict[str, float | None]:
    return {"n": len(xs), "p50_ms": ms(pct(xs, 50)), "p99_ms": ms(pct(xs, 99)), "max_ms": ms(max(xs) if xs else None)}


# ---------------------------------------------------------------------------------- set-up

def cores() -> tuple[int | None, int | None]:
    """(server core, generator core), or (None, None) when the machine has fewer than two."""
    have = sorted(os.sched_getaffinity(0))
    return (have[0], have[1]) if len(have) >= 2 else (None, None)


def make_config(tmp: Path, per_site: int, sites: int) -> Path:
    """config/ with `per_site` extra certificate counters (101…) at each of the first `sites` sites."""
    cfg = tmp / "config"
    if cfg.exists():
        shutil.rmtree(cfg)
    shutil.copytree(ROOT / "config", cfg)
    extra = "".join(f'\n[[sites.{s}.counters]]\nnumber = {FIRST_EXTRA + i}\ndepartments = ["shimin"]\nfloor = 1\n'
                    for s in SITES[:sites] for i in range(per_site))
    (cfg / "site.toml").write_text((cfg / "site.toml").read_text(encoding="utf-8") + extra, encoding="utf-8")
    return cfg


class ServerProc:
    """`run.py server` pinned to one core; a thread reads its output so it never blocks on a pipe."""

    def __init__(self, cfg: Path, db: Path, secrets: Path, core: int | None, floor_burn_ms: float | None = None,
                 floor_work_pieces: int = 0):
        cmd = [sys.executable, str(ROOT / "run.py"), "server", "--port", "0", "--db", f"sqlite:///{db}",
               "--secrets", str(secrets), "--config-dir", str(cfg), "--log-level", "WARNING"]
        self.floor = floor_burn_ms is not None
        if floor_burn_ms is not None:  # bench/floor_server.py: the machine's floor (no /metrics, no tokens checked)
            city = load_city(cfg / "site.toml")
            ensure_tokens(secrets, city)
            cmd = [sys.executable, str(ROOT / "bench" / "floor_server.py"), "--port", "0", "--burn-ms", str(floor_burn_ms),
                   "--work-pieces", str(floor_work_pieces)]
        if core is not None:
            cmd = ["taskset", "-c", str(core), *cmd]  # taskset execs: the pid is the server's
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", "MADOGUCHI_VOICE": "off"})
        self.log: list[str] = []
        self.port = 0
        self._ready = threading.Event()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if len(self.log) < 500:
                self.log.append(line)
            m = re.search(r"listening on ws://[\d.]+:(\d+)/ws", line)
            if m and not self.port:
                self.port = int(m.group(1))
                self._ready.set()
        self._ready.set()

    def wait(self, timeout: float = 120.0) -> ServerProc:
        self._ready.wait(timeout)
        if not self.port:
            self.stop()
            raise RuntimeError("server did not start:\n" + "".join(self.log[-40:]))
        return self

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def sqlite_commit(tmp: Path, n: int = 2000) -> dict[str, Any]:
    """Raw SQLite: one-row INSERT + COMMIT, WAL, synchronous as the server sets it (storage.py)."""
    sync = os.environ.get("MADOGUCHI_SQLITE_SYNC", "NORMAL")
    path = tmp / "raw_commit.db"
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        p.unlink(missing_ok=True)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"PRAGMA synchronous={sync}")
    con.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, kind TEXT, payload TEXT)")
    lat = []
    for i in range(n):
        t0 = perf()
        con.execute("BEGIN")
        con.execute("INSERT INTO events VALUES (?, 'called', ?)", (i, '{"number":"42","counter":3}'))
        con.execute("COMMIT")
        lat.append(perf() - t0)
    con.close()
    return {"synchronous": sync, **summary(lat)}


# ---------------------------------------------------------------------------------- clients

class Conn:
    """One websocket client (bench/ws_client.py): every message is handed to the generator in the
    socket read that brought it (no task or future per message, large pushes not decoded), and a
    request is written at once unless the connection is down or its send buffer is full, when it
    waits in `queued` (so one slow socket never delays the schedule)."""

    def __init__(self, gen: Gen, role: str, site: str, idx: int, hello: dict[str, Any], counter: int | None = None):
        self.gen, self.role, self.site, self.idx, self.hello, self.counter = gen, role, site, idx, hello, counter
        self.ws: WSClient | None = None  # the connection whose hello succeeded
        self.alive = False
        self.queued: collections.deque[tuple[int, str]] = collections.deque()  # requests waiting to be written
        self.last_seq = 0
        self.state = "unknown"  # console: idle / called / serving / unknown (ask `current`)
        self.dropping = False  # the bench drops it on purpose (storm): no "closed by server"
        self.replay_left = 0
        self.replay_upto = 0
        self.phase = "live"  # board: "hello" until the hello reply, "replay" while missed calls arrive
        self.truncated = False  # a hello reply said truncated (no replay): missing calls are explained
        # the kind of push the last_seq came from (to explain a missing call; bytes as read, not decoded per push)
        self.seq_from: str | bytes = "hello"
        self.resumed: list[tuple[int, str]] = []  # (last_seq, its push kind) of each reconnecting hello
        self.drop_at: float | None = None
        self._opening: WSClient | None = None  # the connection saying hello
        self._hello: tuple[int, asyncio.Future] | None = None  # its hello's id and the future of the reply
        self._reconnecting: asyncio.Task | None = None

    async def open(self) -> None:
        """Connect and say hello (with last_seq once it has seen anything); returns after the reply."""
        g = self.gen
        ws = self._opening = await ws_connect(g.url, self._on_hello_message, on_lost=self._on_lost,
                                              on_resume=self._flush)
        rid = next(g.ids)
        done = asyncio.get_running_loop().create_future()
        self._hello = (rid, done)
        hello = {"type": "hello", "id": rid, **self.hello}
        if self.last_seq:
            hello["last_seq"] = self.last_seq
            k = self.seq_from
            self.resumed.append((self.last_seq, k if isinstance(k, str) else k.decode()))
        self.phase = "hello"
        ws.send(json.dumps(hello))
        try:
            msg = await asyncio.wait_for(done, 120)
        except BaseException:
            ws.abort()
            raise
        finally:
            self._hello = self._opening = None
        if "error" in msg:
            ws.close()
            raise RuntimeError(f"hello refused for {self.role} {self.site} {self.counter}: {msg['error']}")

    def _on_hello_message(self, raw: bytes, now: float) -> None:
        """Messages until the hello reply (taken here, in the same read as what follows it), then
        everything else; after the reply the connection calls the generator directly."""
        h = self._hello
        if h is not None and (raw.startswith(b'{"re":') or raw.startswith(b'{"error"')):
            msg = json.loads(raw)
            if msg.get("re") == h[0]:
                self._hello = None
                if "error" not in msg:
                    self._hello_ok(msg["result"], now)
                h[1].set_result(msg)
                return
        self.gen.on_raw(self, raw, now)

    def _hello_ok(self, res: dict[str, Any], now: float) -> None:
        g = self.gen
        ws = self._opening
        assert ws is not None
        self.ws = ws
        self.replay_left, self.replay_upto = int(res.get("missed") or 0), int(res.get("seq") or 0)
        if res.get("truncated"):  # the server cannot replay: the board starts over from the snapshot
            g.count("truncated", self.role)
            self.truncated = True
            self.last_seq, self.seq_from = self.replay_upto, "hello"
        elif not self.replay_left and self.replay_upto > self.last_seq:  # as display_board/web/common.js
            self.last_seq, self.seq_from = self.replay_upto, "hello"
        self.phase = "replay" if self.replay_left else "live"
        self.alive = True
        ws.on_message = functools.partial(g.on_raw, self)
        self._flush()
        if self.replay_left == 0:
            self.resynced(now)

    def resynced(self, now: float) -> None:
        if self.drop_at is not None:
            self.gen.resync_times.append(now - self.drop_at)
            self.drop_at = None

    def _on_lost(self, ws: WSClient) -> None:
        g = self.gen
        if ws is self._opening and self._hello is not None and not self._hello[1].done():
            self._hello[1].set_exception(ConnectionError(ws.error or f"closed before the hello reply ({ws.close_code})"))
        if ws.error:  # this client gave up on the connection: a protocol error, or on_raw raised
            g.count("client_errors", ws.error)
        if ws is not self.ws or g.stopping or self.dropping:
            return
        if not ws.error:  # e.g. 1011 "keepalive ping timeout": a connection whose requests queue up is not read
            g.count("closed_by_server", f"{self.role} {ws.close_code} {ws.close_reason}".strip())
        self._reconnecting = asyncio.create_task(self.reconnect())

    def _flush(self) -> None:
        ws = self.ws
        while self.queued and self.alive and ws is not None and not ws.paused:
            self._transmit(*self.queued.popleft())

    def _transmit(self, rid: int, raw: str) -> None:
        g = self.gen
        p = g.pending.get(rid)
        if p is None:  # lost with a connection that closed while it waited here
            return
        now = perf()
        p[3] = now
        if p[2] is not None:
            g.send_lag.append(now - p[2])
            g.sent += 1
        assert self.ws is not None
        self.ws.send(raw)  # a closing connection drops it: it is counted lost when the loss is seen

    def send(self, typ: str, raw: str, rid: int, sched: float | None, fut: asyncio.Future | None = None,
             cycle: bool = False) -> None:
        self.gen.pending[rid] = [self, typ, sched, None, fut, cycle]
        if self.alive and not self.queued and self.ws is not None and not self.ws.paused:
            self._transmit(rid, raw)
        else:
            self.queued.append((rid, raw))

    async def reconnect(self) -> None:
        g = self.gen
        self.alive = False
        g.fail_pending(self)
        if self.role == "counter":
            self.state = "unknown"
            with contextlib.suppress(ValueError):
                g.free[self.site].remove(self)  # it rejoins once resynced
        for attempt in itertools.count():
            if g.stopping:
                return
            try:
                await self.open()
                break
            except Exception as e:
                g.count("reconnect_failures", type(e).__name__)
                await asyncio.sleep(min(2.0, 0.1 * 2 ** attempt))
        g.count("reconnects", self.role)
        if self.role == "counter":
            g.console_free(self)

    async def drop_and_reconnect(self) -> None:
        """A network blip: the socket goes away without a close handshake; hello/last_seq again."""
        self.dropping = True
        self.drop_at = perf()
        old = self.ws
        self.alive = False
        if old is not None:
            old.abort()
            with contextlib.suppress(BaseException):
                await old.closed
        self.dropping = False
        await self.reconnect()

    async def close(self) -> None:
        self.alive = False
        self.queued.clear()
        if self.ws is not None:
            self.ws.abort()
        if self._reconnecting is not None:
            self._reconnecting.cancel()


# ---------------------------------------------------------------------------------- generator

class Gen:
    """The load generator's state: connections, pending requests and everything measured."""

    def __init__(self, url: str, tag: str):
        self.url, self.tag = url, tag
        self.ids = itertools.count(1)
        self.pending: dict[int, list] = {}  # id -> [conn, type, scheduled, sent, future, console cycle?]
        self.stopping = False
        self.consoles: dict[str, list[Conn]] = collections.defaultdict(list)
        self.boards: dict[str, list[Conn]] = collections.defaultdict(list)
        self.kiosks: dict[str, list[Conn]] = collections.defaultdict(list)
        self.free: dict[str, collections.deque[Conn]] = collections.defaultdict(collections.deque)
        self.waiting_cycles: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self.kiosk_rr: dict[str, itertools.cycle] = {}
        self.reset()

    def reset(self) -> None:
        self.lat: dict[str, list[float]] = collections.defaultdict(list)
        self.send_lag: list[float] = []
        self.direct_lag: list[float] = []
        self.offered = self.sent = self.answered = self.lost = self.unsent = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self.calls: dict[tuple, float | None] = {}  # (site, number, counter) -> reply time
        self.board_recv: dict[tuple, dict[int, list]] = collections.defaultdict(dict)  # key -> board -> [n, first]
        self.push_count: collections.Counter[tuple[str, bytes]] = collections.Counter()
        self.push_bytes = 0
        self.received = 0  # messages from the server (replies and pushes)
        self.resync_times: list[float] = []
        self.empty_calls = 0

    def count(self, what: str, key: str) -> None:
        self.counts[what][key] += 1

    # -- incoming
    def on_raw(self, conn: Conn, raw: bytes, now: float) -> None:
        """One message from the server. Decoding JSON costs more than everything else per message
        (15 µs for a 400-byte call push on this machine), so the fields the bench needs are read
        with anchored regexes where the server's compact encoding allows; anything else is decoded."""
        self.received += 1
        m = PUSH_HEAD.match(raw)
        if m is not None:
            return self.on_push(conn, m.group(1), raw, None, now, m.group(2))
        r = REPLY_HEAD.match(raw)
        if r is not None:  # a result whose body the bench needs little of or nothing: not decoded
            rid = int(r.group(1))
            p = self.pending.get(rid)
            if p is not None and p[4] is None:
                typ = p[1]
                if not p[5]:  # an issue or a read
                    del self.pending[rid]
                    return self.reply_came(p, now)
                if typ == "start" or typ == "complete":
                    del self.pending[rid]
                    self.reply_came(p, now)
                    return self.step_done(p[0], typ, None, {}, now)
                t = TICKET_HEAD.match(raw) if typ == "call_next" else None
                if t is not None:
                    del self.pending[rid]
                    self.reply_came(p, now)
                    ticket = None if t.group(1) is None else {"number": t.group(1).decode()}
                    return self.step_done(p[0], typ, None, {"ticket": ticket}, now)
        try:
            msg = json.loads(raw)
        except ValueError:  # the server must never send this: count it, keep reading
            self.count("client_errors", "not JSON from the server")
            return
        if not isinstance(msg, dict):
            self.count("client_errors", "not an object from the server")
            return
        if "push" in msg:
            return self.on_push(conn, msg["push"].encode(), raw, msg, now)
        return self.on_reply(msg, now)

    def on_push(self, conn: Conn, kind: bytes, raw: bytes, msg: dict | None, now: float,
                seq_text: bytes | None = None) -> None:
        self.push_count[conn.role, kind] += 1
        self.push_bytes += len(raw)
        if kind == b"call" and conn.role == "display":
            c = CALL_FIELDS.match(raw) if msg is None else None
            if c is not None and (raw.endswith(b'"recall":false}}') or raw.endswith(b'"recall":true}}')):
                seq, number, counter = int(c.group(1)), c.group(2).decode(), int(c.group(3))
                recall = raw.endswith(b'"recall":true}}')
            else:
                msg = msg or json.loads(raw)
                d = msg.get("data") or {}
                seq = int(msg.get("seq") or d.get("seq") or 0)
                number, counter, recall = str(d.get("number")), d.get("counter"), bool(d.get("recall"))
            if seq > conn.last_seq:
                conn.last_seq, conn.seq_from = seq, "call"
            phase = conn.phase if conn.phase != "replay" or seq <= conn.replay_upto else "live"
            if conn.replay_left and seq <= conn.replay_upto:
                conn.replay_left -= 1
                if conn.replay_left == 0:
                    conn.phase = "live"
                    if conn.replay_upto > conn.last_seq:  # caught up to the hello's seq once the replay is in
                        conn.last_seq, conn.seq_from = conn.replay_upto, "hello"
                    conn.resynced(now)
            if recall:
                return
            got = self.board_recv[(conn.site, number, counter)]
            e = got.get(conn.idx)
            if e is None:
                got[conn.idx] = [1, now, phase, seq]
            else:  # how the copies came (live, during hello, replayed): tells a replay race from a resend
                e[0] += 1
                self.count("duplicate_via", f"{e[2]}+{phase}")
            return
        if seq_text is None:
            s = SEQ_HEAD.search(raw, 0, 200)
            seq_text = s and s.group(1)
        if seq_text and not conn.replay_left and int(seq_text) > conn.last_seq:
            conn.last_seq, conn.seq_from = int(seq_text), kind  # every push's seq counts, as on a real board

    def reply_came(self, p: list, now: float) -> None:
        """The reply to pending request `p` came: a measured one counts its latency."""
        typ, sched, sent = p[1], p[2], p[3]
        if sched is not None:
            self.answered += 1
            self.lat["all"].append(now - sched)
            if sent is not None:  # without the wait for a free console or the generator's lag
                self.lat["from_send"].append(now - sent)
            self.lat["issue" if typ == "issue" else "read" if typ in ("queue", "current") else "counter"].append(now - sched)

    def on_reply(self, msg: dict, now: float) -> None:
        p = self.pending.pop(msg.get("re"), None) if isinstance(msg.get("re"), int) else None
        if p is None:
            self.count("unmatched_replies", "reply")
            return
        conn, typ, sched, sent, fut, cycle = p
        err = msg.get("error")
        self.reply_came(p, now)
        if err and sched is not None:
            self.errors[str(err.get("code"))] += 1
        if fut is not None and not fut.done():
            fut.set_result(msg)
        if cycle:
            self.step_done(conn, typ, err, msg.get("result") or {}, now)

    def step_done(self, conn: Conn, typ: str, err: Any, res: dict, now: float) -> None:
        """A console step's reply: the console's next state, the call it made, and it is free again."""
        if err:
            conn.state = "unknown"
        elif typ == "call_next":
            t = res.get("ticket")
            if t:
                conn.state = "called"
                self.calls.setdefault((conn.site, str(t.get("number")), conn.counter), now)
            else:
                conn.state = "idle"
                self.empty_calls += 1
        elif typ == "start":
            conn.state = "serving"
        elif typ == "complete":
            conn.state = "idle"
        else:
            t = res.get("ticket")
            conn.state = {"called": "called", "serving": "serving"}.get((t or {}).get("state"), "idle" if not t else "unknown")
        self.console_free(conn)

    def fail_pending(self, conn: Conn) -> None:
        for rid in [r for r, p in self.pending.items() if p[0] is conn]:
            p = self.pending.pop(rid)
            if p[2] is not None:
                self.lost += 1
            if p[4] is not None and not p[4].done():
                p[4].set_exception(ConnectionError("connection closed"))

    # -- outgoing
    def request(self, conn: Conn, typ: str, **body: Any) -> asyncio.Future:
        """A set-up request (not measured); the future gets the reply."""
        rid = next(self.ids)
        fut = asyncio.get_running_loop().create_future()
        conn.send(typ, json.dumps({"type": typ, "id": rid, **body}), rid, None, fut)
        return fut

    async def setup(self, conn: Conn, typ: str, **body: Any) -> dict:
        """A set-up request (before the window); a `busy` answer is retried with the same body (the
        same idempotency key) after its retry_after, as kiosks and consoles do, and counted."""
        for _ in range(30):
            r = await self.request(conn, typ, **body)
            err = r.get("error") or {}
            if err.get("code") != "busy":
                return r
            self.count("setup_busy_retries", typ)
            await asyncio.sleep(float(err.get("retry_after") or 0.3) * (1 + random.random()))
        return r

    def console_free(self, conn: Conn) -> None:
        if not conn.alive:
            return
        q = self.waiting_cycles[conn.site]
        if q:
            self.send_cycle(conn, q.popleft())
        else:
            self.free[conn.site].append(conn)

    def send_cycle(self, conn: Conn, sched: float) -> None:
        typ = NEXT_STEP[conn.state]
        rid = next(self.ids)
        conn.send(typ, f'{{"type":"{typ}","id":{rid}}}', rid, sched, cycle=True)

    def dispatch(self, kind: str, site: str, sched: float, n: int) -> None:
        self.offered += 1
        if kind == "issue":
            rid = next(self.ids)
            conn = next(self.kiosk_rr[site])
            conn.send("issue", f'{{"type":"issue","id":{rid},"purposes":["certificate"],"answers":{{}},"lang":"ja",'
                               f'"idempotency_key":"{self.tag}-{n}"}}', rid, sched)
        elif kind == "cycle":
            free = self.free[site]
            while free:
                conn = free.popleft()
                if conn.alive:
                    return self.send_cycle(conn, sched)
            self.waiting_cycles[site].append(sched)
        else:
            live = [c for c in self.consoles[site] if c.alive] if kind in ("queue", "current") else []
            if not live:
                self.unsent += 1
                return
            conn = random.choice(live)
            rid = next(self.ids)
            conn.send(kind, f'{{"type":"{kind}","id":{rid}}}', rid, sched)

    # -- results
    def delivery(self) -> dict[str, Any]:
        """Every call reaches every board of its site exactly once; delay from the call's reply."""
        keys = set(self.calls) | set(self.board_recv)
        missing = dup = missing_truncated = 0
        delays: list[float] = []
        for key in keys:
            boards = self.boards.get(key[0], [])
            got = self.board_recv.get(key, {})
            reply_at = self.calls.get(key)
            for b in boards:
                e = got.get(b.idx)
                if e is None:
                    missing += 1
                    missing_truncated += b.truncated
                    seq = next((x[3] for x in got.values()), None)
                    # resumed past the call (its last_seq came from a push of that kind) or not
                    why = next((f"last_seq from {k}" for ls, k in b.resumed if seq is not None and seq <= ls),
                               "truncated hello" if b.truncated else "other")
                    self.count("missing_why", why)
                    continue
                dup += e[0] - 1
                if reply_at is not None:
                    delays.append(e[1] - reply_at)
        return {"calls": len(keys), "calls_replied": len(self.calls), "boards": sum(len(b) for b in self.boards.values()),
                "missing": missing, "missing_after_truncated_hello": missing_truncated,
                "missing_why": dict(self.counts["missing_why"]), "duplicated": dup,
                "delay": summary(delays)}

    def all_delivered(self) -> bool:
        for key, _ in self.calls.items():
            got = self.board_recv.get(key, {})
            if any(b.idx not in got for b in self.boards.get(key[0], [])):
                return False
        return True


def poisson_schedule(rate: float, seconds: float, sites: list[str], mix: dict[str, float], rng: random.Random
                     ) -> list[tuple[float, str, str]]:
    """(offset, kind, site) for every request, with exponential gaps at `rate` per second."""
    kinds, weights = list(mix), list(mix.values())
    out, t = [], rng.expovariate(rate)
    while t < seconds:
        out.append((t, rng.choices(kinds, weights)[0], rng.choice(sites)))
        t += rng.expovariate(rate)
    return out


async def drive(gen: Gen, schedule: list[tuple[float, str, str]], t0: float) -> None:
    """Send every request at its scheduled time (late ones at once: their latency counts it).

    The waits use a timerfd (bench/hrtimer.py): asyncio's own timers wake up to 1 ms late
    (epoll_wait takes whole milliseconds), which was most of the generator's median lag. The
    timerfd sits in the clients' epoll set (bench/ws_client.py), so a send is made in the same
    callback that reads the sockets: no task switch per request (each wakeup of the loop costs
    this kind of machine more CPU than a dozen messages)."""
    i, n = 0, len(schedule)

    def due(now: float) -> None:
        nonlocal i
        while i < n and t0 + schedule[i][0] <= now:
            at, kind, site = schedule[i]
            gen.direct_lag.append(now - t0 - at)  # the generator's own lateness, before any socket
            gen.dispatch(kind, site, t0 + at, i)
            i += 1

    tfd = TimerFD.make()
    if tfd is None:  # no timerfd (not Linux): asyncio's timers through HRTimer's fallback
        timer = HRTimer()
        try:
            while i < n:
                due(perf())
                if i < n:
                    await timer.sleep_until(t0 + schedule[i][0])
        finally:
            timer.close()
        return
    done = asyncio.get_running_loop().create_future()

    def fired(_: float) -> None:
        tfd.clear()
        try:
            due(perf())
            if i < n:
                if not tfd.arm(t0 + schedule[i][0]):  # refused by the kernel: an asyncio timer then
                    asyncio.get_running_loop().call_later(max(0.0, t0 + schedule[i][0] - perf()), fired, 0.0)
            elif not done.done():
                done.set_result(None)
        except Exception as e:  # never leave the run waiting on a dispatcher that died
            if not done.done():
                done.set_exception(e)

    pl = poller()
    pl.add_fd(tfd.fd, fired)
    try:
        fired(perf())
        await done
    finally:
        pl.remove_fd(tfd.fd)
        tfd.close()


async def connect_all(gen: Gen, tokens: Any, sites: list[str], consoles: int, boards: int, kiosks: int) -> None:
    idx = itertools.count()
    plan: list[Conn] = []
    for i in range(consoles):
        s = sites[i % len(sites)]
        n = FIRST_EXTRA + i // len(sites)
        c = Conn(gen, "counter", s, next(idx), {"role": "counter", "site": s, "counter": n,
                                                "token": tokens.counters[s][n], "staff": "bench"}, counter=n)
        gen.consoles[s].append(c)
        plan.append(c)
    for i in range(boards):
        s = sites[i % len(sites)]
        c = Conn(gen, "display", s, next(idx), {"role": "display", "site": s, "device": f"board-{i}",
                                                "token": tokens.roles["display"]})
        gen.boards[s].append(c)
        plan.append(c)
    for i in range(max(kiosks, len(sites))):
        s = sites[i % len(sites)]
        c = Conn(gen, "kiosk", s, next(idx), {"role": "kiosk", "site": s, "device": f"kiosk-{i}",
                                              "token": tokens.roles["kiosk"]})
        gen.kiosks[s].append(c)
        plan.append(c)
    for k in range(0, len(plan), 50):  # in batches: a lobby does not open 250 sockets in one instant
        await asyncio.gather(*(c.open() for c in plan[k:k + 50]))
    for s in sites:
        gen.kiosk_rr[s] = itertools.cycle(gen.kiosks[s])
    opened = await asyncio.gather(*(gen.setup(c, "open", staff="bench") for s in sites for c in gen.consoles[s]))
    bad = [r for r in opened if "error" in r]
    if bad:
        raise RuntimeError(f"open refused: {bad[0]}")
    for s in sites:
        for c in gen.consoles[s]:
            c.state = "idle"
            gen.free[s].append(c)


async def prefill(gen: Gen, sites: list[str], backlog: int) -> None:
    """Tickets waiting before the measured window (a lobby is never empty at its peak)."""
    for s in sites:
        ks = gen.kiosks[s]
        for k in range(0, backlog, 20):
            rs = await asyncio.gather(*(gen.setup(ks[i % len(ks)], "issue", purposes=["certificate"], answers={},
                                                    lang="ja", idempotency_key=f"{gen.tag}-pre-{s}-{i}")
                                        for i in range(k, min(backlog, k + 20))))
            if any("error" in r for r in rs):
                raise RuntimeError(f"prefill refused: {next(r for r in rs if 'error' in r)}")


async def wait_quiet(gen: Gen, drain: float) -> float:
    """Wait for every reply and every board's copy of every call, at most `drain` seconds."""
    t0 = perf()
    while perf() - t0 < drain:
        if not any(p[2] is not None for p in gen.pending.values()) and not any(gen.waiting_cycles.values()) \
                and gen.all_delivered():
            break
        await asyncio.sleep(0.05)
    t1 = perf()  # requests may still be unanswered: give the calls already replied their pushes
    while perf() - t1 < min(10.0, drain) and not gen.all_delivered():
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # a duplicate or a late push would arrive now
    return perf() - t0


async def waiting_at_end(gen: Gen, sites: list[str]) -> dict[str, int | None]:
    out: dict[str, int | None] = {}
    for s in sites:
        live = [c for c in gen.consoles[s] if c.alive]
        try:
            r = await asyncio.wait_for(gen.request(live[0], "queue"), 60) if live else {}
            out[s] = len((r.get("result") or {}).get("queue") or [])
        except Exception:
            out[s] = None
    return out


async def run_load(url: str, tokens: Any, *, sites: list[str], consoles: int, boards: int, kiosks: int, rate: float,
                   seconds: float, backlog: int, mix: dict[str, float], drain: float, seed: int, tag: str,
                   server: ServerProc, storm: int = 0, storm_at: float = 0.0) -> dict[str, Any]:
    gen = Gen(url, tag)
    await connect_all(gen, tokens, sites, consoles, boards, kiosks)
    await prefill(gen, sites, backlog)
    await asyncio.sleep(0.5)  # let the flusher send the prefilled queues before measuring
    setup_busy = dict(gen.counts["setup_busy_retries"])
    gen.reset()
    rng = random.Random(seed)
    schedule = poisson_schedule(rate, seconds, sites, mix, rng)
    replies = (lambda _url: {}) if server.floor else server_replies  # the floor has no /metrics
    replies0 = await asyncio.to_thread(replies, url)
    # no cyclic garbage collection in the window: a full collection over the connections' and the
    # results' objects stopped the generator for ~14 ms (its garbage is freed by reference counts)
    gc.collect()
    gc.freeze()
    gc.disable()
    cpu0, srv0, t0 = time.process_time(), server.cpu_seconds(), perf() + 0.05
    preempted0 = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
    steal0 = steal_seconds()
    storm_task = None
    if storm:
        victims = [c for s in sites for c in gen.consoles[s]][: storm * 4 // 5]
        victims += [c for s in sites for c in gen.boards[s]][: storm - len(victims)]
        storm_task = asyncio.create_task(_storm(victims, t0 + storm_at, rng))
    await drive(gen, schedule, t0)
    wall = perf() - t0
    achieved = gen.sent / max(1e-9, perf() - t0)
    if storm_task is not None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(storm_task, drain)
    drained = await wait_quiet(gen, drain)
    cpu_used = time.process_time() - cpu0
    preempted = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - preempted0
    stolen = steal_seconds() - steal0
    gc.enable()
    gc.unfreeze()
    cpu_gen = cpu_used / max(1e-9, perf() - t0)
    cpu_srv = (server.cpu_seconds() - srv0) / max(1e-9, perf() - t0)
    server_hists = server_quantiles(replies0, await asyncio.to_thread(replies, url))
    server_reply = server_hists.pop("reply", reply_quantiles({}, {}))
    gen.stopping = True
    unanswered = sum(1 for p in gen.pending.values() if p[2] is not None)
    unsent = gen.unsent + sum(len(q) for q in gen.waiting_cycles.values())
    result = {
        "sites": len(sites), "consoles": consoles, "boards": boards, "kiosks": max(kiosks, len(sites)),
        "offered_per_s": rate, "seconds": seconds, "offered": gen.offered, "sent": gen.sent,
        "achieved_send_per_s": round(achieved, 1), "answered": gen.answered, "unanswered": unanswered,
        "lost_on_close": gen.lost, "never_sent": unsent,
        "latency": summary(gen.lat["all"]), "latency_issue": summary(gen.lat["issue"]),
        "latency_counter": summary(gen.lat["counter"]), "latency_read": summary(gen.lat["read"]),
        "latency_from_send": summary(gen.lat["from_send"]),
        "send_lag": summary(gen.send_lag), "generator_lag": summary(gen.direct_lag), "errors": dict(gen.errors), "empty_calls": gen.empty_calls,
        "push": gen.delivery(), "pushes_received": {f"{r}:{k.decode()}": n for (r, k), n in gen.push_count.items()}, "push_mb": round(gen.push_bytes / 1e6, 2),
        "closed_by_server": dict(gen.counts["closed_by_server"]), "reconnects": dict(gen.counts["reconnects"]),
        "duplicate_via": dict(gen.counts["duplicate_via"]), "truncated_hellos": dict(gen.counts["truncated"]),
        "client_errors": dict(gen.counts["client_errors"]), "setup_busy_retries": setup_busy, "server_cpu": round(cpu_srv, 2),
        "generator_cpu": round(cpu_gen, 2), "messages_received": gen.received,
        # times another process took the generator's core from it (its lag then is the machine's)
        "generator_preempted": preempted,
        "vm_steal_ms": round(stolen * 1000),  # over the window and the drain, all cores (steal_seconds)
        "generator_us_per_message": round(cpu_used / max(1, gen.received) * 1e6, 1), "drain_s": round(drained, 2), "window_s": round(wall, 2),
        "server_reply": server_reply, "server_stages": server_hists,
    }
    if storm:
        result["storm"] = {"clients": storm, "resynced": len(gen.resync_times), **summary(gen.resync_times)}
    result["waiting_at_end"] = await waiting_at_end(gen, sites)
    for cs in (gen.consoles, gen.boards, gen.kiosks):
        for c in itertools.chain.from_iterable(cs.values()):
            await c.close()
    return result


def server_replies(ws_url: str) -> dict[str, dict[float, int]]:
    """The server's own histograms from /metrics: its reply times (madoguchi_reply_seconds) under
    "reply", and each stage of a request through the writer (madoguchi_request_stage_seconds:
    queued, applied, committed, answered, sent) under its name; each bound -> count."""
    import urllib.request

    http = ws_url.replace("ws://", "http://").rsplit("/ws", 1)[0]
    with urllib.request.urlopen(f"{http}/metrics", timeout=30) as r:
        text = r.read().decode()
    out: dict[str, dict[float, int]] = collections.defaultdict(dict)
    for m in re.finditer(r'^madoguchi_(?:reply_seconds|request_stage_seconds)_bucket\{(?:stage="(\w+)",)?le="([^"]+)"\} (\d+)$',
                         text, re.M):
        out[m.group(1) or "reply"][float("inf") if m.group(2) == "+Inf" else float(m.group(2))] = int(m.group(3))
    return dict(out)


def server_quantiles(before: dict[str, dict[float, int]], after: dict[str, dict[float, int]]) -> dict[str, Any]:
    """reply_quantiles of every histogram of server_replies."""
    return {k: reply_quantiles(before.get(k, {}), h) for k, h in after.items()}


def reply_quantiles(before: dict[float, int], after: dict[float, int]) -> dict[str, Any]:
    """p50/p99 of the server's reply times in the window, as the bucket bound they fall under
    (ms; the server's part alone: frame read -> reply handed to the socket)."""
    counts = {b: after.get(b, 0) - before.get(b, 0) for b in sorted(after)}
    n = counts.get(float("inf"), 0)
    out: dict[str, Any] = {"n": n}
    for name, q in (("p50_le_ms", 0.5), ("p99_le_ms", 0.99), ("p999_le_ms", 0.999)):
        bound = next((b for b, c in counts.items() if n and c >= q * n), None)
        out[name] = None if bound is None else (bound * 1000 if bound != float("inf") else float("inf"))
    return out


async def _storm(victims: list[Conn], at: float, rng: random.Random) -> None:
    """Every victim drops its socket at a random instant within one second and reconnects."""
    await asyncio.sleep(max(0.0, at - perf()))
    offsets = sorted(rng.random() for _ in victims)
    start = perf()
    tasks = []
    for c, off in zip(rng.sample(victims, len(victims)), offsets, strict=True):
        await asyncio.sleep(max(0.0, start + off - perf()))
        tasks.append(asyncio.create_task(c.drop_and_reconnect()))
    await asyncio.gather(*tasks)


# ---------------------------------------------------------------------------------- runs

def scenario(tmp: Path, core: int | None, name: str, *, sites: int, consoles: int, boards: int, rate: float,
             args: argparse.Namespace, storm: int = 0, burn_ms: float | None = None, work_ms: float = 0.0,
             work_pieces: int = 0, rnd: int = 1) -> dict[str, Any]:
    site_keys = list(SITES[:sites])
    per_site = -(-consoles // sites)
    cfg = make_config(tmp, per_site, sites)
    # a fresh database for every run, every round too: a server started on an earlier run's
    # database loads its day, and the queue it left (hundreds more waiting) changes every figure
    db = tmp / f"{name}-{sites}-{consoles}-{boards}-{int(rate)}-{burn_ms}-{work_ms}-r{rnd}.db"
    secrets = tmp / f"secrets-{per_site}-{sites}.toml"
    server = ServerProc(cfg, db, secrets, core, floor_burn_ms=burn_ms, floor_work_pieces=work_pieces).wait()
    try:
        commit = sqlite_commit(tmp, args.commits)
        # the server's core as the machine gives it now (bench/machine_probe.py): the same run is
        # twice as slow at p99 in some quarters of an hour as in others
        machine = machine_probe(core, args.probe_seconds) if args.probe_seconds > 0 else None
        tag = f"ol{int(time.time() * 1000) % 10**9}"
        r = asyncio.run(run_load(server.url, read_tokens(secrets), sites=site_keys, consoles=consoles, boards=boards,
                                 kiosks=args.kiosks, rate=rate, seconds=args.seconds, backlog=args.backlog,
                                 mix=args.mix, drain=args.drain, seed=args.seed, tag=tag, server=server,
                                 storm=storm, storm_at=args.seconds * 0.3))
    finally:
        gc.enable()  # also after a run that failed in its window
        gc.unfreeze()
        server.stop()
    # what the server logged as errors (a bench run that errs is a finding, not just a figure)
    r["server_errors"] = [line.rstrip() for line in server.log if " ERROR " in line or "Traceback" in line][:20]
    if os.environ.get("OPEN_LOOP_SERVER_LOG"):  # the server's whole output (first 500 lines), to look into
        Path(os.environ["OPEN_LOOP_SERVER_LOG"]).write_text("".join(server.log), encoding="utf-8")
    r["scenario"] = name
    r["database"] = db.name
    r["sqlite_commit"] = commit
    if machine is not None:
        r["machine_probe"] = machine
    if burn_ms is not None:
        r["burn_ms"] = burn_ms
    if work_ms:
        r["work_ms"], r["work_pieces"] = work_ms, work_pieces
    return r


def parse_mix(text: str) -> dict[str, float]:
    mix = {}
    for part in text.split(","):
        k, _, v = part.partition("=")
        if k.strip() not in MIX:
            raise argparse.ArgumentTypeError(f"--mix: unknown kind {k!r} (kinds: {', '.join(MIX)})")
        mix[k.strip()] = float(v)
    if sum(mix.values()) <= 0:
        raise argparse.ArgumentTypeError("--mix: the weights must add up to more than 0")
    return mix


def fmt(x: float | None, unit: str = "ms") -> str:
    if x is None:
        return "—"
    if unit == "ms" and abs(x) >= 1000:
        return f"{x / 1000:.2f}s"
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def run_name(r: dict[str, Any]) -> str:
    """The run's scenario, a floor run with its CPU or work per request (floor0, floor1.5, floorw1:
    bench/floor_server.py)."""
    if r.get("work_ms"):
        return f"floorw{r['work_ms']:g}"
    return f"floor{r['burn_ms']:g}" if r.get("burn_ms") is not None else r["scenario"]


def print_row(r: dict[str, Any]) -> None:
    lat, p = r["latency"], r["push"]
    errs = ",".join(f"{k}:{v}" for k, v in sorted(r["errors"].items())) or "-"
    closed = sum(r["closed_by_server"].values())
    print(f"{run_name(r):>6} {r['sites']:>5} {r['consoles']:>8} {r['boards']:>6} {r['offered_per_s']:>7.0f} "
          f"{r['achieved_send_per_s']:>8.0f} {fmt(lat['p50_ms']):>8} {fmt(lat['p99_ms']):>8} {fmt(lat['max_ms']):>8} "
          f"{r['answered']:>6}/{r['offered']:<6} {fmt(r['latency_from_send']['p99_ms']):>8} {fmt(r['send_lag']['p99_ms']):>8} "
          f"{p['calls']:>5} {p['missing']:>4} {p['duplicated']:>4} {fmt(p['delay']['p50_ms']):>7} {fmt(p['delay']['p99_ms']):>7} "
          f"{r['server_cpu']:>4.2f} {r['generator_cpu']:>4.2f} {fmt(r['sqlite_commit']['p99_ms'])} {closed:>4} "
          f"{probe_text(r):>12} {errs}")


def probe_text(r: dict[str, Any]) -> str:
    """The machine probe before the run (bench/machine_probe.py): µs per unit / % of the core lost."""
    m = r.get("machine_probe")
    return f"{m['unit_us']:.0f}/{m['lost_pct']:.1f}%" if m else "-"


def spread(runs: list[dict[str, Any]]) -> str:
    """Each kind of run over its rounds (--repeat): p99 of every round, their median, min and max,
    and the medians of p50 and of the server's CPU — the figures docs/benchmarks.md quotes."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        if "failed" not in r:
            groups.setdefault((run_name(r), r["sites"], r["consoles"], r["boards"], r["offered_per_s"]), []).append(r)
    out = ["| run | sites | consoles | boards | offered /s | rounds | p99 each round | p99 median | min–max "
           "| p50 median | server CPU median | core lost before each round |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (name, sites, consoles, boards, rate), rs in groups.items():
        p99 = [r["latency"]["p99_ms"] for r in rs if r["latency"]["p99_ms"] is not None]
        p50 = [r["latency"]["p50_ms"] for r in rs if r["latency"]["p50_ms"] is not None]
        if not p99:
            continue
        out.append(f"| {name} | {sites} | {consoles} | {boards} | {rate:.0f} | {len(rs)} | "
                   f"{', '.join(fmt(x) for x in p99)} | {fmt(statistics.median(p99))} | {fmt(min(p99))}–{fmt(max(p99))} "
                   f"| {fmt(statistics.median(p50))} | {statistics.median(r['server_cpu'] for r in rs):.2f} "
                   f"| {', '.join(probe_text(r).partition('/')[2] or '-' for r in rs)} |")
    return "\n".join(out)


def markdown(results: dict[str, Any]) -> str:
    """The runs as docs/benchmarks.md tables (`--markdown`, or `--from-json FILE --markdown`)."""
    out = ["| run | sites | consoles | boards | offered /s | sent /s | p50 | p99 | max | wire p99 | answered / offered "
           "| generator lag p99 | errors | closed by server | calls | missing | dup | push p50 | push p99 | server CPU | generator CPU "
           "| SQLite commit p50 / p99 | probe µs / core lost |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    storms = []
    for r in results["runs"]:
        if "failed" in r:
            out.append(f"| {r['scenario']} | {r.get('sites')} | {r.get('consoles')} | {r.get('boards')} | {r.get('rate')} "
                       f"| failed: {r['failed']} |" + " |" * 17)
            continue
        lat, p, c = r["latency"], r["push"], r["sqlite_commit"]
        errs = ", ".join(f"{k} {v}" for k, v in sorted(r["errors"].items())) or "0"
        closed = sum(r["closed_by_server"].values())
        out.append(
            f"| {run_name(r)} | {r['sites']} | {r['consoles']} | {r['boards']} | {r['offered_per_s']:.0f} "
            f"| {r['achieved_send_per_s']:.0f} | {fmt(lat['p50_ms'])} | {fmt(lat['p99_ms'])} | {fmt(lat['max_ms'])} "
            f"| {fmt(r.get('latency_from_send', {}).get('p99_ms'))} | {r['answered']} / {r['offered']} "
            f"| {fmt(r.get('generator_lag', {}).get('p99_ms'))} | {errs} | {closed} "
            f"| {p['calls']} | {p['missing']} | {p['duplicated']} | {fmt(p['delay']['p50_ms'])} "
            f"| {fmt(p['delay']['p99_ms'])} | {r['server_cpu']:.2f} | {r['generator_cpu']:.2f} "
            f"| {fmt(c['p50_ms'])} / {fmt(c['p99_ms'])} | {probe_text(r).replace('/', ' / ')} |")
        if "storm" in r:
            s = r["storm"]
            storms.append(f"| {s['clients']} | {r['offered_per_s']:.0f} | {s['resynced']} | {fmt(s['p50_ms'])} "
                          f"| {fmt(s['p99_ms'])} | {fmt(s['max_ms'])} | {p['missing']} | {p['duplicated']} "
                          f"| {', '.join(f'{k} {v}' for k, v in r.get('duplicate_via', {}).items()) or '—'} |")
    if storms:
        out += ["", "| storm clients | offered /s | resynced | p50 | p99 | max | calls missing | duplicated | duplicates via |",
                "|---|---|---|---|---|---|---|---|---|", *storms]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--scenario", nargs="+", choices=("matrix", "sites", "storm", "floor"), default=["matrix", "sites", "storm"])
    ap.add_argument("--consoles", type=int, nargs="+", default=[20, 200])
    ap.add_argument("--boards", type=int, nargs="+", default=[0, 50])
    ap.add_argument("--rates", type=float, nargs="+", default=[20, 100, 300, 1000], help="offered requests per second")
    ap.add_argument("--sites", type=int, default=4, help="sites active in the `sites` scenario (1–4)")
    ap.add_argument("--kiosks", type=int, default=8, help="kiosk connections in all (at least one per site)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured window per run")
    ap.add_argument("--backlog", type=int, default=100, help="tickets waiting per site before the window")
    ap.add_argument("--mix", type=parse_mix, default=dict(MIX), help="e.g. issue=0.25,cycle=0.6,queue=0.075,current=0.075")
    ap.add_argument("--drain", type=float, default=30.0, help="seconds to wait for late replies and pushes")
    ap.add_argument("--storm-clients", type=int, default=250, help="consoles (4/5) and boards (1/5) that reconnect")
    ap.add_argument("--storm-rate", type=float, default=100.0)
    ap.add_argument("--commits", type=int, default=2000, help="raw SQLite commits measured per run")
    ap.add_argument("--probe-seconds", type=float, default=2.0,
                    help="seconds of bench/machine_probe.py on the server's core before each run (0: none)")
    ap.add_argument("--floor-burn-ms", type=float, nargs="+", default=[0.0, 1.5, 3.0],
                    help="CPU per request of the floor server in the `floor` scenario (bench/floor_server.py)")
    ap.add_argument("--floor-work-ms", type=float, nargs="+", default=[],
                    help="also floor runs doing this much work per request, as timed once before the first run: "
                         "work that slows down with the core, as the server's does (bench/floor_server.py)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run the whole plan this many times, round after round, and print each run's spread")
    ap.add_argument("--seed", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="a smoke run: tiny connections, rates and windows")
    ap.add_argument("--json", default=None)
    ap.add_argument("--markdown", action="store_true", help="also print the runs as Markdown tables")
    ap.add_argument("--from-json", default=None, help="print the Markdown tables of an earlier --json FILE; no run")
    args = ap.parse_args(argv)
    if args.from_json:
        print(markdown(json.loads(Path(args.from_json).read_text())))
        return 0
    if args.quick:
        args.consoles, args.boards, args.rates = [4], [2], [30]
        args.seconds, args.backlog, args.drain, args.commits, args.kiosks = 2.0, 10, 20.0, 200, 2
        args.storm_clients, args.storm_rate, args.sites = 10, 30.0, 4
        args.probe_seconds = min(args.probe_seconds, 0.2)
    if not 1 <= args.sites <= len(SITES):
        ap.error(f"--sites must be 1–{len(SITES)}")
    server_core, gen_core = cores()
    if gen_core is not None:
        os.sched_setaffinity(0, {gen_core})  # before any thread starts: they inherit it
        placement = f"server on core {server_core} (taskset), load generator on core {gen_core}"
    else:
        placement = "ONE core only: server and load generator share it (figures are not comparable)"
    print(f"open-loop bench: {placement}; {os.cpu_count()} cores; loadavg {os.getloadavg()[0]:.2f}", flush=True)
    results: dict[str, Any] = {
        "machine": f"{platform.node()} {platform.machine()} {platform.python_version()}", "cores": os.cpu_count(),
        "placement": placement, "loadavg_start": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "mix": args.mix, "seconds": args.seconds, "backlog": args.backlog, "runs": [],
    }
    header = (f"{'run':>6} {'sites':>5} {'consoles':>8} {'boards':>6} {'offered':>7} {'achieved':>8} {'p50':>8} {'p99':>8} "
              f"{'max':>8} {'answered/offered':>13} {'wire p99':>8} {'lag p99':>8} {'calls':>5} {'miss':>4} {'dup':>4} {'push50':>7} "
              f"{'push99':>7} {'srv':>4} {'gen':>4} commit99 {'cls':>4} {'probe':>12} errors")
    print(header, flush=True)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        plan: list[tuple[str, dict[str, Any]]] = []
        if "matrix" in args.scenario:
            plan += [("matrix", {"sites": 1, "consoles": c, "boards": b, "rate": r})
                     for c in args.consoles for b in args.boards for r in args.rates]
        if "sites" in args.scenario:
            plan += [("sites", {"sites": args.sites, "consoles": max(args.consoles), "boards": max(args.boards), "rate": r})
                     for r in args.rates]
        if "floor" in args.scenario:  # the machine's own figures, beside the server's (bench/floor_server.py)
            plan += [("floor", {"sites": 1, "consoles": max(args.consoles), "boards": max(args.boards), "rate": r,
                                "burn_ms": b}) for b in args.floor_burn_ms for r in args.rates]
            # the pieces timed once, here, so that every round does the same work however fast the
            # core is by then (timed in each floor, a slow start gave a lighter floor)
            plan += [("floor", {"sites": 1, "consoles": max(args.consoles), "boards": max(args.boards), "rate": r,
                                "burn_ms": 0.0, "work_ms": w, "work_pieces": pieces_for(w)})
                     for w in args.floor_work_ms for r in args.rates]
        if "storm" in args.scenario:
            n = args.storm_clients
            plan.append(("storm", {"sites": 1, "consoles": n * 4 // 5, "boards": n - n * 4 // 5,
                                   "rate": args.storm_rate, "storm": n}))
        # --repeat: the whole plan again, round after round, so that a slow stretch of the machine
        # falls on every kind of run alike rather than on one run's repeats
        for rnd, (name, kw) in ((rnd, item) for rnd in range(1, args.repeat + 1) for item in plan):
            try:
                r = scenario(tmp, server_core, name, args=args, rnd=rnd, **kw)
            except Exception as e:  # one failed run is reported, the others still run
                r = {"scenario": name, **kw, "failed": f"{type(e).__name__}: {e}", "round": rnd}
                print(f"{name}: FAILED {r['failed']}", flush=True)
                results["runs"].append(r)
                continue
            r["round"] = rnd
            results["runs"].append(r)
            print_row(r)
            if r.get("server_stages"):  # the server's own split of a request through the writer (/metrics)
                print(f"{'':>6} server stages p50/p99 (ms, bucket bounds): " + ", ".join(
                    f"{k} {fmt(v['p50_le_ms'])}/{fmt(v['p99_le_ms'])}" for k, v in r["server_stages"].items()), flush=True)
            if r["closed_by_server"] or r["lost_on_close"] or r["unanswered"] or r["never_sent"]:
                print(f"{'':>6} closed by server: {r['closed_by_server'] or '-'}; lost with them {r['lost_on_close']}, "
                      f"unanswered {r['unanswered']}, never sent {r['never_sent']} (no free console)", flush=True)
            if "storm" in r:
                s = r["storm"]
                print(f"{'':>6} storm: {s['resynced']}/{s['clients']} resynced after the drop in p50 {fmt(s['p50_ms'])}, "
                      f"p99 {fmt(s['p99_ms'])}, max {fmt(s['max_ms'])} (ms unless s); duplicates via "
                      f"{r['duplicate_via'] or '-'}; truncated hellos {r['truncated_hellos'] or '-'}, calls missing "
                      f"on those boards {r['push']['missing_after_truncated_hello']}", flush=True)
            sys.stdout.flush()
    results["loadavg_end"] = os.getloadavg()
    print("(latency in ms from each request's scheduled time; achieved = sends/s the generator made; wire = reply − "
          "actual send; lag = send − schedule (a console's step waits for its previous reply); push = board receipt − call reply; srv/gen = CPU cores used; commit99 = raw SQLite WAL "
          "commit p99 ms; cls = connections the server closed)")
    done = [r for r in results["runs"] if "failed" not in r]
    if done:
        worst = max(done, key=lambda r: r["generator_lag"]["p99_ms"] or 0)
        print(f"generator's own lag (dispatch − schedule, before any socket): p99 at most "
              f"{fmt(worst['generator_lag']['p99_ms'])} (ms unless s; {worst['consoles']} consoles, "
              f"{worst['boards']} boards, {worst['offered_per_s']:.0f} req/s; preempted "
              f"{worst.get('generator_preempted', '?')} times by other processes, CPU per received message "
              f"{worst.get('generator_us_per_message', '?')} µs)")
        stolen = [f"{r['offered_per_s']:.0f} req/s {r['vm_steal_ms']} ms" for r in done if r.get("vm_steal_ms")]
        if stolen:
            print("CPU time the hypervisor took from this VM during the windows (steal; every request in flight "
                  "waits through it): " + ", ".join(stolen))
    for r in results["runs"]:
        if "failed" not in r and r["generator_cpu"] >= 0.9:
            print(f"note: the generator used {r['generator_cpu']:.0%} of its core at {r['offered_per_s']:.0f} req/s "
                  f"({r['consoles']} consoles, {r['boards']} boards): there the generator, not only the server, limits")
    if args.repeat > 1:
        print(spread(results["runs"]))
    if args.markdown:
        print(markdown(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False))
    return 1 if any("failed" in r for r in results["runs"]) else 0


if __name__ == "__main__":
    sys.exit(main())
