"""The websocket queue server: one authority for kiosks, counters, boards and phones.

Shape: connections parse requests (protocol.py) and hand every state-changing or state-reading
request to one writer task. The writer applies a batch of requests to the in-memory lobbies
(pure core), writes the whole batch in one transaction in a worker thread (group commit), and
only then replies and pushes (writer.py: each request is all-or-nothing on its own, and a failed
commit rolls memory back). So "call next" from two counters at the same instant can never take the
same ticket, and nothing is acknowledged that a crash could lose.

This module holds QueueServer — the state (sites, clients, the writer's queue) and the wiring —
and run_server. The parts, one idea each:

- session.py: a connection's life (hello and auth, the per-connection loop, missed calls)
- handlers.py routes a request to kiosk_handlers, counter_handlers, admin_handlers, planner_api
- plan_preview.py: the read-only plan with its waits
- writer.py: the single writer, group commit and rollback
- pushes.py: who hears what, and the flusher; day_end.py: the end of the day
- http_routes.py (http_files.py): static pages, /healthz, /metrics, the KPI API, list.json
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request as HttpRequest
from websockets.http11 import Response

from . import forms_api, handlers, http_routes, leader, planner_api, pushes, reprint, session, wal
from . import protocol as P
from .board_out import BoardOut
from .clients import Clients
from .config import CityConfig
from .core import admission
from .feed import Feeds
from .hub import SiteHub, make_hub
from .idempotency import scope_stored_key
from .jobs import Job, Outcome
from .metrics import Metrics
from .storage import Store
from .tokens import Tokens
from .writer import MAX_BATCH, Writer  # noqa: F401  (MAX_BATCH: re-exported for benches)

if TYPE_CHECKING:
    from .loaders import ConsultationConfig

log = logging.getLogger("madoguchi.server")
LAG_TICK = 0.05  # seconds between two measures of the event loop's lag


class QueueServer:
    """The server's state — sites, connected clients, the writer's queue, metrics — and the
    wiring of its parts (see the module docstring)."""

    def __init__(self, city: CityConfig, store: Store, tokens: Tokens, catalogue: Any = None,
                 clock: Callable[[], float] = time.time, consultation: ConsultationConfig | None = None):
        self.city = city
        self.store = store
        self.tokens = tokens
        self.catalogue = catalogue
        # config/consultation.toml, read once by cli._setup (None: consultations off), for the staff
        # role (consultation_api.py) and consultation booking (planner_api.py) alike
        self.consultation = consultation
        self.clock = clock
        self.tz = ZoneInfo(city.timezone)
        self.hubs: dict[str, SiteHub] = {}
        self.clients = Clients()
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.idem: dict[str, str] = {}  # scoped idempotency key -> the reply's result as JSON text
        self.metrics = Metrics()
        self.dirty: set[str] = set()
        self.kiosks_changed: set[str] = set()  # sites whose consoles get the kiosks list at the next flush
        self.feeds = Feeds()  # the consoles' queue deltas (feed.py)
        self.board_out = BoardOut()  # the boards' pushes, coalesced (board_out.py)
        self._tasks: list[asyncio.Task] = []
        self.writer = Writer(self)
        self.admission = admission.Bounds()  # when a request is answered busy instead of queued
        self.snapshots = asyncio.Semaphore(1)  # hello snapshots built one at a time (session.hello)
        self.loop_lag = 0.0  # seconds the event loop runs late now (watch_lag; admission)
        self.roll_retry_at = 0.0  # day_end.py: no end of day before this time (after a failure)
        self.catalogue_cache: bytes | None = None  # http_routes.catalogue_json
        # /healthz: named checks, each () -> (ok, details). Storage and the writer are here;
        # another part (e.g. leadership of the site database) adds its own by name.
        self.health_checks: dict[str, Callable[[], tuple[bool, dict[str, Any]]]] = {
            "storage": lambda: (self.writer.storage.ok, self.writer.storage.view()),
            "writer": lambda: (lambda b: (b["ok"], b))(self.writer.behind()),
        }
        self.announcer: Any = None  # display_board.announcer.Announcer, started in start()
        self.lease: leader.Lease | None = None  # the lock on the sites' database, set by run_server
        self.forms_desk = forms_api.FormsDesk.load()  # typed form values: memory only, per open ticket

    # ------------------------------------------------------------------ start-up
    def local_day(self, now: float) -> str:
        """The site's local date: Asia/Tokyo, never UTC (a 08:30 JST ticket is 23:30 UTC the day before)."""
        return datetime.fromtimestamp(now, self.tz).date().isoformat()

    def load(self) -> None:
        """Create/upgrade the schema and rebuild every site's state from the database."""
        self.store.migrate()
        self.store.sync_config(self.city.sites.values())
        now = self.clock()
        for key in self.city.sites:
            hub, idem = self._read_site(key, now)
            self.store.erase_prefill_before(key, hub.day)
            planner_api.erase_answers_before(self.store.engine, key, hub.day)  # bookings' answers too
            self._install_site(hub, idem)
        log.info("loaded %d sites", len(self.hubs))

    def _read_site(self, key: str, now: float) -> tuple[SiteHub, dict[str, Any]]:
        """One site's state as the database has it (database reads only: runs in a thread)."""
        site = self.city.sites[key]
        day = self.local_day(now)
        counters = self.store.load_counters(key)
        hub = make_hub(self.city, site, counters, day)
        hub.lobby.load(self.store.load_tickets(key, day))
        hub.index_tokens()
        hub.seq = hub.pushed_seq = self.store.last_seq(key)
        for prefix, last in self.store.last_numbers(key, day).items():
            hub.numbers[(day, prefix)] = last
        # replies to idempotent requests of the last day: a kiosk retrying after a restart gets
        # its ticket back without a database read on the hot path
        # (keys stored before scoping by role and device are re-scoped: idempotency.py)
        devices = {t.id: t.device for t in hub.lobby.tickets.values()}
        idem = {}
        for k, reply in self.store.recent_requests(key, now - 86400).items():
            scoped = scope_stored_key(k, reply, devices)
            if scoped is None:
                continue
            try:
                idem[f"{key}:{scoped}"] = P.encode_result(reply)  # kept as text (protocol.encode_result)
            except (ValueError, TypeError) as e:  # stored by an older version: a retry is answered anew
                log.warning("site %s: stored reply of %s not sendable, dropped: %s", key, scoped, e)
        for r in self.store.load_reservations(key, day):
            hub.reservations[(r["day"], r["code"])] = r
        for ev in reversed(self.store.recent_calls(key, day)):
            hub.recent_calls.appendleft(hub.call_view(ev))
        for ev in self.store.ticket_events(key, day, reprint.PRINT_EVENTS):
            reprint.replay(hub, ev)  # tickets that did not print stay flagged across a restart
        return hub, idem

    def _install_site(self, hub: SiteHub, idem: dict[str, Any]) -> None:
        old = self.hubs.get(hub.key)
        if old is not None:
            # not stored: kept across a re-read (alerts, the board's absent list, the estimator's history)
            hub.help_alerts, hub.absent, hub.history = old.help_alerts, old.absent, old.history
            prefix = f"{hub.key}:"
            for k in [k for k in self.idem if k.startswith(prefix)]:
                del self.idem[k]
        self.idem.update(idem)
        self.hubs[hub.key] = hub
        self.feeds.reset(hub)  # consoles of a re-read site get a full snapshot at the next flush

    async def reread(self, sites: list[str]) -> None:
        """Replace these sites' memory with what the database holds (after a constraint failure:
        another writer added rows this server did not know; writing on would fail forever)."""
        now = self.clock()
        for key in sites:
            try:
                hub, idem = await asyncio.to_thread(self._read_site, key, now)
            except Exception as e:  # the database is unreadable too: keep the rolled-back memory
                log.error("re-reading site %s after a failed commit failed: %s", key, e)
                continue
            self._install_site(hub, idem)
            self.dirty.add(key)
            log.warning("site %s re-read from the database after a failed commit (seq %d)", key, hub.seq)

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self.writer.run()), asyncio.create_task(self.writer.watch()),
                       asyncio.create_task(pushes.flusher(self)), asyncio.create_task(pushes.board_sender(self)),
                       asyncio.create_task(self.watch_lag()), asyncio.create_task(wal.checkpointer(self))]
        if self.announcer is None:
            self.announcer = _start_announcer()

    async def stop(self) -> None:
        if self.announcer is not None:
            await asyncio.to_thread(self.announcer.stop)  # waits for its worker: none left defunct
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


    async def watch_lag(self) -> None:
        """Measure how late the event loop runs (a tick every LAG_TICK): the admission rule sheds
        while it runs later than its wait bound (core/admission.py)."""
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(LAG_TICK)
            self.loop_lag = admission.recent_lag(self.loop_lag, loop.time() - t - LAG_TICK)

    @property
    def serving(self) -> bool:
        """Whether the writer and flusher run (after start(), until stop())."""
        return bool(self._tasks)

    # ------------------------------------------------------------------ the parts' entry points
    async def handler(self, ws: ServerConnection) -> None:
        """The websocket handler: one connection's life (session.py)."""
        await session.handler(self, ws)

    def process_request(self, connection: ServerConnection, request: HttpRequest) -> Response | None:
        """The HTTP routes (http_routes.py); None lets the websocket handshake go on."""
        return http_routes.process_request(self, connection, request)

    # the writer's two seams (tests put a failing request or push here: writer_support.Boom)
    def _execute(self, hub: SiteHub, job: Job, now: float) -> Outcome:
        """Apply one request to the site's memory (handlers.py routes it by type)."""
        return handlers.execute(self, hub, job, now)

    def _push_event(self, hub: SiteHub, ev: dict, now: float) -> None:
        """Push one committed event to those who want it (pushes.py)."""
        pushes.push_event(self, hub, ev, now)

    def health(self) -> dict[str, Any]:
        """/healthz: every named check with its details; ``ok`` only when all of them are."""
        checks: dict[str, Any] = {}
        for name, check in list(self.health_checks.items()):
            try:
                ok, details = check()
            except Exception as e:  # a broken check is a failing check, not a crashed endpoint
                ok, details = False, {"error": f"{type(e).__name__}: {e}"}
            checks[name] = {**details, "ok": bool(ok)}
        return {"ok": all(c["ok"] for c in checks.values()), "checks": checks,
                "sites": {k: {"seq": h.seq} for k, h in self.hubs.items()}}

    def storage_view(self) -> dict[str, Any]:
        """What kiosks and consoles are told: can tickets be saved now? (no driver detail)"""
        st = self.writer.storage
        return {"ok": st.ok, "cause": st.cause, "since": st.since}


def _start_announcer() -> Any:
    """The boards' voice announcer, or None when speech is unavailable (boards then chime only)."""
    try:
        from display_board.announcer import Announcer

        announcer = Announcer()
        announcer.start()
        return announcer
    except Exception as e:  # a missing voice package must never stop the queue server
        log.warning("voice announcements off: %s", e)
        return None



async def run_server(qs: QueueServer, host: str, port: int, ready: Callable[[int], None] | None = None,
                     stop: asyncio.Future | None = None, *, standby: bool = False) -> None:
    """Serve until ``stop`` resolves (or forever), as the one leader of qs's sites (leader.py).

    When another server holds the lock: raise NotLeader, or with ``standby`` wait for the lock,
    answering 503 "standby" meanwhile if the port is free (on the leader's own host it is not: the
    standby binds after the takeover). Raises LeadershipLost when the lock goes.
    """
    stop = stop if stop is not None else asyncio.get_running_loop().create_future()
    claim = leader.Claim(qs.store.url, qs.city.sites)
    server = None
    try:
        if standby:  # listen at once (503 until leading) when the port is free: /healthz says "standby"
            server = await _listen(qs, host, port, standby=True)
        qs.lease = await leader.acquire(claim, wait=standby, stop=stop)
        if qs.lease is None:  # stopped while waiting
            return
        qs.store.fence = qs.lease.fence
        await asyncio.to_thread(qs.load)
        await qs.start()
        server = server or await _listen(qs, host, port, standby=False)
        if ready:
            ready(server.sockets[0].getsockname()[1] if server.sockets else port)
        watchdog = asyncio.create_task(leader.watch(qs.lease))
        await asyncio.wait({stop, watchdog}, return_when=asyncio.FIRST_COMPLETED)
        if watchdog.done():
            watchdog.result()  # raises LeadershipLost
        watchdog.cancel()
    finally:
        if server is not None:
            server.close()
            await server.wait_closed()
        await qs.stop()
        if qs.lease is not None:
            qs.lease.release()
        claim.close()


async def _listen(qs: QueueServer, host: str, port: int, standby: bool) -> Any:
    """Bind the websocket/HTTP listener. A standby whose port is taken (the leader on this host)
    returns None; after a takeover the old leader's port may take a moment to free: retry."""
    for attempt in range(60):
        try:
            return await serve(qs.handler, host, port, process_request=qs.process_request, compression=None,
                               max_size=P.MAX_FRAME_BYTES, ping_interval=20, ping_timeout=20)
        except OSError as e:
            if standby:
                log.warning("standby: port %s is in use (%s); /healthz is served after the takeover", port, e.strerror)
                return None
            if attempt == 59:
                raise
            await asyncio.sleep(0.5)
    return None
