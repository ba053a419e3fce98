"""The websocket queue server: one authority for kiosks, counters, boards and phones.

Shape: connections parse requests (protocol.py) and hand every state-changing or state-reading
request to one writer task. The writer applies a batch of requests to the in-memory lobbies
(pure core), writes the whole batch in one transaction in a worker thread (group commit), and
only then replies and pushes (writer.py: each request is all-or-nothing on its own, and a failed
commit rolls memory back). So "call next" from two counters at the same instant can never take the
same ticket, and nothing is acknowledged that a crash could lose.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import mimetypes
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HttpRequest
from websockets.http11 import Response

from . import consultation_api, forms_api, kpi_forms, leader, planner_api
from . import protocol as P
from .config import CityConfig
from .estimators import wait_fields
from .hub import SiteHub, make_hub
from .idempotency import idem_scope, scope_stored_key
from .lobby import Change
from .model import CounterState
from .storage import STORAGE_CAUSES, Batch, Store
from .tokens import Tokens
from .transitions import new_ticket
from .writer import MAX_BATCH, Writer  # noqa: F401  (MAX_BATCH: re-exported for benches)

log = logging.getLogger("madoguchi.server")
ROOT = Path(__file__).resolve().parent.parent
WEB_ROOTS = {
    "/board/": ROOT / "display_board" / "web",
    "/counter/": ROOT / "counter" / "web",
    "/status/": ROOT / "display_board" / "status_web",
    "/admin/": ROOT / "counter" / "admin_web",
    "/plan/": ROOT / "display_board" / "plan_web",  # the public planning page (docs/planning.md)
    "/forms/": ROOT / "counter" / "forms_web",
    "/consult/": ROOT / "counter" / "consult_web",
}
REPLAY_PAGE = 500  # call events read per query when a board resyncs
MAX_REPLAY = 5000  # more missed calls than this: snapshot plus ``truncated`` instead of a replay
ROLL_RETRY = 30  # seconds before a failed end of day is tried again
FLUSH_INTERVAL = 0.2  # seconds between derived-view pushes (waits, queues, public status)


class Reply(Exception):
    """Raised inside an operation to answer with a protocol error (nothing is written)."""

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


@dataclass(eq=False)  # identity: each connection is its own client
class Client:
    ws: ServerConnection
    role: str = ""
    site: str = ""
    device: str = ""
    counter: int | None = None
    ticket: str | None = None  # public role: ticket id
    staff: str = ""


@dataclass
class Outcome:
    result: Any
    change: Change | None = None
    batch: Batch | None = None  # extra rows (new ticket with prefill, numbers)
    pushes: list[tuple[str, str, Any]] = field(default_factory=list)  # (audience, kind, data) after commit
    undo: Callable[[], None] | None = None


@dataclass
class Job:
    client: Client
    req: P.Request
    fut: asyncio.Future
    idem: str | None
    queued_at: float = field(default_factory=time.monotonic)  # for /healthz: is the writer behind?


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.batches = 0
        self.batched_jobs = 0
        self.commit_seconds = 0.0
        self.pushes = 0
        self.last_broadcast = (0, 0.0)  # (subscribers, seconds) of the latest fan-out

    def text(self, server: QueueServer) -> str:
        lines = [
            "# HELP madoguchi_requests_total Requests handled, by type.",
            "# TYPE madoguchi_requests_total counter",
        ]
        lines += [f'madoguchi_requests_total{{type="{k}"}} {v}' for k, v in sorted(self.requests.items())]
        lines += ["# HELP madoguchi_errors_total Error replies, by code.", "# TYPE madoguchi_errors_total counter"]
        lines += [f'madoguchi_errors_total{{code="{k}"}} {v}' for k, v in sorted(self.errors.items())]
        lines += ["# HELP madoguchi_storage_errors_total Failed commits, by cause.",
                  "# TYPE madoguchi_storage_errors_total counter"]
        errors = server.writer.storage.errors
        lines += [f'madoguchi_storage_errors_total{{cause="{k}"}} {errors.get(k, 0)}' for k in STORAGE_CAUSES]
        behind = server.writer.behind()
        lines += [
            "# HELP madoguchi_storage_ok 1 while writes succeed, 0 while tickets cannot be saved.",
            "# TYPE madoguchi_storage_ok gauge",
            f"madoguchi_storage_ok {int(server.writer.storage.ok)}",
            "# HELP madoguchi_writer_queue Requests waiting for the writer.",
            "# TYPE madoguchi_writer_queue gauge",
            f"madoguchi_writer_queue {behind['queued']}",
            "# HELP madoguchi_writer_oldest_seconds Age of the oldest request waiting for the writer.",
            "# TYPE madoguchi_writer_oldest_seconds gauge",
            f"madoguchi_writer_oldest_seconds {behind['oldest_seconds']}",
        ]
        lines += [
            "# TYPE madoguchi_commits_total counter",
            f"madoguchi_commits_total {self.batches}",
            "# TYPE madoguchi_committed_requests_total counter",
            f"madoguchi_committed_requests_total {self.batched_jobs}",
            "# TYPE madoguchi_commit_seconds_total counter",
            f"madoguchi_commit_seconds_total {self.commit_seconds:.6f}",
            "# TYPE madoguchi_pushes_total counter",
            f"madoguchi_pushes_total {self.pushes}",
            "# HELP madoguchi_last_broadcast_seconds Server time to hand the latest push to all its subscribers.",
            "# TYPE madoguchi_last_broadcast_seconds gauge",
            f'madoguchi_last_broadcast_seconds{{subscribers="{self.last_broadcast[0]}"}} {self.last_broadcast[1]:.6f}',
            "# HELP madoguchi_connections Open websocket connections, by role.",
            "# TYPE madoguchi_connections gauge",
        ]
        roles: dict[str, int] = {}
        for c in server.clients:
            roles[c.role or "none"] = roles.get(c.role or "none", 0) + 1
        lines += [f'madoguchi_connections{{role="{r}"}} {n}' for r, n in sorted(roles.items())]
        lines += kpi_forms.metrics_lines(server.forms_desk)  # 書かない窓口 counts (docs/forms.md)
        lines += ["# HELP madoguchi_waiting Tickets waiting, by site.", "# TYPE madoguchi_waiting gauge"]
        for key, hub in server.hubs.items():
            waiting = sum(1 for t in hub.lobby.open_tickets() if t.active_step is None)
            lines.append(f'madoguchi_waiting{{site="{key}"}} {waiting}')
        return "\n".join(lines) + "\n"


class QueueServer:
    def __init__(self, city: CityConfig, store: Store, tokens: Tokens, catalogue: Any = None,
                 clock: Callable[[], float] = time.time):
        self.city = city
        self.store = store
        self.tokens = tokens
        self.catalogue = catalogue
        self.clock = clock
        self.tz = ZoneInfo(city.timezone)
        self.hubs: dict[str, SiteHub] = {}
        self.clients: set[Client] = set()
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.idem: dict[tuple[str, str], Any] = {}
        self.metrics = Metrics()
        self.dirty: set[str] = set()
        self._tasks: list[asyncio.Task] = []
        self.writer = Writer(self)
        self._roll_retry_at = 0.0
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
        hub.seq = self.store.last_seq(key)
        for prefix, last in self.store.last_numbers(key, day).items():
            hub.numbers[(day, prefix)] = last
        # replies to idempotent requests of the last day: a kiosk retrying after a restart gets
        # its ticket back without a database read on the hot path
        # (keys stored before scoping by role and device are re-scoped: idempotency.py)
        devices = {t.id: t.device for t in hub.lobby.tickets.values()}
        idem = {}
        for k, reply in self.store.recent_requests(key, now - 86400).items():
            scoped = scope_stored_key(k, reply, devices)
            if scoped is not None:
                idem[f"{key}:{scoped}"] = reply
        for r in self.store.load_reservations(key, day):
            hub.reservations[(r["day"], r["code"])] = r
        for ev in reversed(self.store.recent_calls(key, day)):
            hub.recent_calls.appendleft(hub.call_view(ev))
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
                       asyncio.create_task(self._flusher())]
        if self.announcer is None:
            self.announcer = _start_announcer()

    async def stop(self) -> None:
        if self.announcer is not None:
            self.announcer.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    # ------------------------------------------------------------------ connections
    async def handler(self, ws: ServerConnection) -> None:
        client = Client(ws)
        self.clients.add(client)
        try:
            async for raw in ws:
                await self._on_message(client, raw)
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(client)

    async def _on_message(self, client: Client, raw: str | bytes) -> None:
        if client.role == "staff" or (not client.role and consultation_api.is_staff_hello(raw)):
            return await consultation_api.attach(self).on_message(client, raw)  # people, not devices: own module
        try:
            req = P.parse(raw)
        except P.ProtocolError as e:
            return await self._send_error(client, e.re, e.code, e.message, e.field)
        self.metrics.requests[req.type] = self.metrics.requests.get(req.type, 0) + 1
        try:
            if req.type == "hello":
                return await self._hello(client, req)
            if not client.role:
                raise Reply("hello_first", "send hello with your role and token first")
            if req.type not in P.ALLOWED[client.role]:
                raise Reply("not_allowed", f"role {client.role!r} may not send {req.type!r}", "type")
            if req.type == "ping":
                return await self._send(client, P.reply(req.id, {"pong": self.clock()}))
            if client.role == "planner":  # the public planning page: rate-limited, no token
                if req.type in planner_api.READS:
                    return await self._send(client, await planner_api.read(self, client, req))
                planner_api.admit(client, "write")
            if req.type == "plan":
                return await self._send(client, P.reply(req.id, planner_api.kiosk_plan(self, client, req.body)))
            if req.type in forms_api.TYPES:  # memory only, never through the writer (forms_api.py)
                return await self._send(client, P.reply(req.id, forms_api.serve(self, client, req)))
        except Reply as e:
            return await self._send_error(client, req.id, e.code, e.message, e.field)
        idem = req.body.get("idempotency_key")
        job = Job(client, req, asyncio.get_running_loop().create_future(),
                  f"{client.site}:{idem_scope(client.role, client.device, client.counter, idem)}" if idem else None)
        await self.queue.put(job)
        msg = await job.fut
        await self._send(client, msg)

    async def _send(self, client: Client, msg: str) -> None:
        with contextlib.suppress(ConnectionClosed):
            await client.ws.send(msg)

    async def _send_error(self, client: Client, re: Any, code: str, message: str, fld: str | None = None) -> None:
        self.metrics.errors[code] = self.metrics.errors.get(code, 0) + 1
        await self._send(client, P.error(re, code, message, fld))

    async def _hello(self, client: Client, req: P.Request) -> None:
        b = req.body
        if client.role:
            raise Reply("already_hello", "this connection already said hello")
        role = b["role"]
        if role not in P.ROLES:
            raise Reply("bad_field", f"role must be one of {', '.join(P.ROLES)}", "role")
        site = b.get("site") or next(iter(self.hubs))
        hub = self.hubs.get(site)
        if hub is None:
            raise Reply("unknown_site", f"no site {site!r}; sites: {', '.join(self.hubs)}", "site")
        now = self.clock()
        if role == "public":
            tid = hub.by_token.get(b.get("ticket") or "")
            if tid is None:
                raise Reply("unknown_ticket", "no ticket with that status token today", "ticket")
            client.ticket = tid
        elif role == "planner":
            pass  # anyone may plan and book: no token, rate limits instead (planner_api)
        elif role == "counter":
            number = b.get("counter")
            if number is None or number not in hub.lobby.counters:
                raise Reply("unknown_counter", f"site {site} has no counter {number!r}", "counter")
            if not self.tokens.check(role, b.get("token"), site, number):
                raise Reply("bad_token", "wrong token for this counter", "token")
            client.counter = number
            client.staff = (b.get("staff") or "")[:100]
        elif not self.tokens.check(role, b.get("token")):
            raise Reply("bad_token", f"wrong token for role {role}", "token")
        client.role, client.site, client.device = role, site, (b.get("device") or "")[:64]
        result: dict[str, Any] = {"role": role, "site": site, "seq": hub.seq, "server_time": now,
                                  "storage": self.storage_view()}
        last = b.get("last_seq")
        missed, truncated = await self._missed(hub, client, last, now) if last is not None else ([], False)
        result["missed"] = len(missed)
        result["truncated"] = truncated
        result["snapshot"] = self._snapshot(hub, client, now)
        await self._send(client, P.reply(req.id, result))
        for msg in missed:
            await self._send(client, msg)

    async def _missed(self, hub: SiteHub, client: Client, last: int, now: float) -> tuple[list[str], bool]:
        """Every call push of today after ``last``, rebuilt from the committed event log (paged),
        so a board that was away — for any time, or across a server restart — misses no call.

        ``truncated`` is True, with no replay, when that cannot be done honestly: the client's
        ``last_seq`` is ahead of this server (another database), the log lacks events in between,
        or more than MAX_REPLAY calls were missed. The client then rebuilds from the snapshot.
        """
        if client.role not in ("display", "admin") or last == hub.seq:
            return [], False
        if last > hub.seq:
            return [], True
        day_start = datetime.fromisoformat(hub.day).replace(tzinfo=self.tz).timestamp()
        upto = hub.seq  # pushes after this come live to the client (its role is set already)

        def read() -> tuple[list[dict], bool]:
            if self.store.count_events(hub.key, last, upto) != upto - last:
                return [], True
            events: list[dict] = []
            after = last
            while True:
                page = self.store.calls_since(hub.key, after, day_start, REPLAY_PAGE)
                events += [ev for ev in page if ev["seq"] <= upto]
                if len(events) > MAX_REPLAY:
                    return [], True
                if len(page) < REPLAY_PAGE or page[-1]["seq"] >= upto:
                    return events, False
                after = page[-1]["seq"]

        events, truncated = await asyncio.to_thread(read)
        return [
            # only a call of the last minute is still worth announcing (and synthesising)
            msg
            for ev in events
            if (msg := P.push("call", hub.key, ev["seq"],
                              self._with_audio(hub.call_view(ev), now - ev["at"] < 60))) is not None
        ], truncated

    def _catalogue_json(self) -> bytes:
        if getattr(self, "_catalogue_cache", None) is None:
            self._catalogue_cache = _catalogue_names(self.catalogue)  # built once: the catalogue is fixed
        return self._catalogue_cache

    def _with_audio(self, view: dict[str, Any], fresh: bool = True) -> dict[str, Any]:
        """Add the URL of the call's voice announcement; synthesis runs in another process, so
        the push is never delayed (the board retries the URL until the file is ready)."""
        if self.announcer is not None and fresh:
            view["audio"] = self.announcer.request(view["number"], view["counter"], bool(view.get("recall")))
            view["audio_short"] = self.announcer.short_url(view["number"], view["counter"])
        return view

    def _snapshot(self, hub: SiteHub, client: Client, now: float) -> dict[str, Any]:
        if client.role == "planner":
            return planner_api.snapshot(self, hub)
        if client.role == "public":
            return {"status": hub.public_view(hub.lobby.tickets[client.ticket], now)}
        if client.role == "counter":
            c = hub.lobby.counters[client.counter]
            cur = hub.lobby.ticket_at(c.number)
            return {
                "counter": hub.counter_view(c),
                "queue": hub.queue_view(c, now),
                "current": hub.ticket_view(cur) if cur else None,
                "help": hub.help_alerts[-20:],
                "departments": {d: dict(n) for d, n in hub.config.department_names.items()},
                "board": hub.board_view(now),
                # what the console needs to enable exactly the buttons the server accepts
                "policy": {"max_recalls": hub.lobby.max_recalls},
            }
        return {"board": hub.board_view(now)}

    # ------------------------------------------------------------------ plan preview (read-only)
    def _plan(self, client: Client, b: dict[str, Any]) -> dict[str, Any]:
        hub = self.hubs[client.site]
        plan = self._make_plan(b)
        from .journey import plan_to_dict

        now = self.clock()
        waits = hub.waits(now)
        route = plan.route
        first = self._first_wait(route, waits)
        return {
            "plan": plan_to_dict(plan),
            "wait_minutes": _round(first),
            **wait_fields(first, min((waits[r.department].waiting for r in route if r.department in waits), default=0), 1.0),
            "visit_minutes": _round(_visit(route, waits)),
            "waits": hub.waits_view(waits),
        }

    def _make_plan(self, b: dict[str, Any]) -> Any:
        if self.catalogue is None:
            raise Reply("bad_purpose", "no procedure catalogue is loaded on this server", "purposes")
        from .journey import PlanError, plan_visit, resolve_purpose

        answers = b.get("answers") or {}
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in answers.items()):
            raise Reply("bad_field", "answers must map question ids to strings", "answers")
        if not b.get("purposes"):
            raise Reply("missing_field", "name at least one purpose (or a reservation_code)", "purposes")
        if not all(isinstance(p, str) for p in b["purposes"]):
            raise Reply("bad_field", "purposes must be a non-empty array of strings", "purposes")
        lang = b.get("lang") or "ja"
        try:
            purposes = [resolve_purpose(self.catalogue, p) for p in b["purposes"]]
            return plan_visit(self.catalogue, purposes, answers, lang)
        except (PlanError, KeyError, ValueError) as e:
            fld = getattr(e, "field", None) or "purposes"
            raise Reply("bad_purpose", str(e), fld) from None

    @staticmethod
    def _first_wait(route: Any, waits: Any) -> float | None:
        firsts = [r for r in route if not r.after]
        known = [waits[r.department].wait_minutes for r in firsts if r.department in waits]
        known = [k for k in known if k is not None]
        return min(known) if known else None

    # ------------------------------------------------------------------ operations
    def _execute(self, hub: SiteHub, job: Job, now: float) -> Outcome:
        c, b, t = job.client, job.req.body, job.req.type
        lobby = hub.lobby
        if t == "issue":
            return self._issue(hub, c, b, now)
        if t in planner_api.WRITES:
            return planner_api.execute(self, hub, c, t, b, now)
        if t == "end_of_day":  # internal, never from a client (not in protocol.FIELDS)
            tickets, events, old = {}, [], {}
            for ticket in list(lobby.open_tickets()):
                if ticket.day < hub.day and ticket.active_step is None:
                    ch = lobby.cancel(ticket.id, now, "end_of_day")
                    tickets.update(ch.tickets)
                    events.extend(ch.events)
                    old.update(ch.undo.tickets if ch.undo else {})
            return Outcome({"cancelled": len(tickets)}, Change(tickets=tickets, events=tuple(events),
                                                               undo=Change(tickets=old)))
        if t == "help":
            alert = {"device": c.device, "reason": (b.get("reason") or "")[:200], "at": now, "kind": "help"}
            hub.help_alerts.append(alert)
            del hub.help_alerts[:-100]
            return Outcome({"ok": True}, self._log_only(hub, "help_requested", alert), pushes=[("counters", "help", alert)])
        if t == "device_fault":
            alert = {"device": c.device, "device_kind": b["device_kind"], "code": b["code"],
                     "detail": (b.get("detail") or "")[:200], "at": now, "kind": "fault"}
            hub.help_alerts.append(alert)
            del hub.help_alerts[:-100]
            return Outcome({"ok": True}, self._log_only(hub, "device_fault", alert), pushes=[("counters", "help", alert)])
        if t == "status":
            return Outcome(hub.public_view(lobby.tickets[c.ticket], now))
        if t == "reserve":
            return self._reserve(hub, b, now)
        if t == "reservations":  # with states, procedure lists and capacity (planner_api)
            return Outcome(planner_api.reservations_view(self, hub, b.get("day") or self.local_day(now), now))
        if t == "snapshot":
            return Outcome({"board": hub.board_view(now), "tickets": [hub.ticket_view(x) for x in lobby.tickets.values()]})
        if t == "cancel":
            ch = lobby.cancel(b["ticket"], now, b.get("reason") or "")
            return Outcome({"ticket": hub.ticket_view(lobby.tickets[b["ticket"]])}, ch)
        # counter role from here on
        n = c.counter
        assert n is not None
        if t == "call_next":
            got, ch = lobby.call_next(n, now)
            if got is None:
                return Outcome({"ticket": None})
            return Outcome({"ticket": hub.ticket_view(got)}, ch)
        if t == "call":
            got, ch = lobby.call_ticket(n, b["ticket"], now)
            return Outcome({"ticket": hub.ticket_view(got)}, ch)
        if t in ("recall", "start", "no_show", "requeue"):
            ch = getattr(lobby, t)(n, now)
            tid = next(iter(ch.tickets))
            if t == "requeue":  # back in its queue: log the wait it is shown now (forecast KPI)
                ch = _with_payload(ch, {"waits": hub.predictions_for(lobby.tickets[tid], now)})
            return Outcome({"ticket": hub.ticket_view(lobby.tickets[tid])}, ch)
        if t == "complete":
            got, ch = lobby.complete(n, now)
            if got.closed is None:  # the steps it releases queue now: log what they are shown
                ch = _with_payload(ch, {"waits": hub.predictions_for(got, now)})
            nxt = [{"department": s.department, "name": dict(hub.config.department_names.get(s.department, {}))}
                   for s in got.steps if s.state.value in ("ready", "pending")]
            return Outcome({"ticket": hub.ticket_view(got), "next": nxt}, ch)
        if t == "transfer":
            self._check_department(hub, b["department"])
            ch = lobby.transfer(n, b["department"], now)
            ch = _with_payload(ch, {"waits": hub.predictions_for(lobby.tickets[next(iter(ch.tickets))], now)})
            return Outcome({"ticket": hub.ticket_view(lobby.tickets[next(iter(ch.tickets))])}, ch)
        if t == "add_procedure":
            self._check_department(hub, b["department"])
            procs = [p for p in b["procedures"] if isinstance(p, str) and p]
            if len(procs) != len(b["procedures"]):
                raise Reply("bad_field", "procedures must be non-empty strings", "procedures")
            minutes = float(b.get("minutes") or self.city.policy.default_service_minutes)
            ch = lobby.add_procedure(n, b["department"], procs, minutes, now)
            return Outcome({"ticket": hub.ticket_view(lobby.tickets[next(iter(ch.tickets))])}, ch)
        if t in ("open", "pause", "close"):
            state = {"open": CounterState.OPEN, "pause": CounterState.PAUSED, "close": CounterState.CLOSED}[t]
            staff = (b.get("staff") or c.staff or "")[:100] if t == "open" else None
            ch = lobby.set_counter(n, state, staff)
            return Outcome({"counter": hub.counter_view(lobby.counters[n])}, ch)
        if t == "queue":
            return Outcome({"queue": hub.queue_view(lobby.counters[n], now)})
        if t == "current":
            cur = lobby.ticket_at(n)
            view = hub.ticket_view(cur) if cur else None
            if cur is not None:
                # card prefill is shown only here, to the counter serving the ticket
                view["prefill"] = self.store.prefill(cur.id)
            return Outcome({"ticket": view})
        raise Reply("unknown_type", f"no handler for {t!r}", "type")

    def _check_department(self, hub: SiteHub, d: str) -> None:
        if d not in hub.config.departments:
            raise Reply("unknown_department", f"site {hub.key} has no department {d!r}", "department")

    def _log_only(self, hub: SiteHub, kind: str, payload: dict) -> Change:
        from .lobby import Event

        return Change(events=(Event(kind, payload=payload),))

    def _reserve(self, hub: SiteHub, b: dict[str, Any], now: float) -> Outcome:
        """Book a slot (来庁予約); the citizen checks in at the kiosk with the code."""
        import re as _re

        if not _re.fullmatch(r"\d{4}-\d{2}-\d{2}", b["day"]):
            raise Reply("bad_field", "day must be YYYY-MM-DD", "day")
        if not _re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", b["start"]):
            raise Reply("bad_field", "start must be HH:MM", "start")
        self._make_plan({"purposes": b["purposes"], "answers": {}})  # purposes must exist
        start = datetime.fromisoformat(f"{b['day']}T{b['start']}").replace(tzinfo=self.tz).timestamp()
        minutes = b.get("minutes") or 60
        if not 5 <= minutes <= 480:
            raise Reply("bad_field", "minutes must be between 5 and 480", "minutes")
        while True:
            code = f"{secrets.randbelow(10**6):06d}"
            if (b["day"], code) not in hub.reservations:
                break
        row = {"id": str(uuid.uuid4()), "site": hub.key, "day": b["day"], "slot_start": start,
               "slot_end": start + minutes * 60, "purposes": list(b["purposes"]), "code": code, "ticket": None,
               # the columns a booking from the planning page fills (storage.load_reservations)
               "answers": {}, "lang": None, "department": None, "created_at": now, "cancelled_at": None}
        hub.reservations[(b["day"], code)] = row

        def undo() -> None:
            hub.reservations.pop((b["day"], code), None)

        ev = Change(events=(_event("reserved", {"day": b["day"], "start": b["start"], "minutes": minutes,
                                                "purposes": list(b["purposes"])}),))
        return Outcome({"reservation": row}, ev, Batch(reservations=[row]), undo=undo)

    def _issue(self, hub: SiteHub, c: Client, b: dict[str, Any], now: float) -> Outcome:
        reservation = None
        code = b.get("reservation_code")
        reserved_for = None
        if code is not None:
            # cancelled, other day, other site, used: planner_api names each (late: no priority)
            reservation, reserved_for = planner_api.check_in(self, hub, code, now)
            if not b.get("purposes"):  # the answers given at home are not asked again
                b = {**b, "purposes": reservation["purposes"], "answers": reservation.get("answers") or {}}
        plan = self._make_plan(b)
        route = plan.route
        if not route:
            raise Reply("empty_route", "nothing to queue for: every procedure is online, external or elsewhere", "purposes")
        lang = b.get("lang") or "ja"
        kinds = {"certificate": "certificate", "consultation": "consultation"}
        kind = kinds.get(plan.purposes[0], "life_event") if plan.purposes else "life_event"
        if reservation is not None:
            kind = "reservation"
        prefix = self.city.numbering.get(kind, "")
        day = self.local_day(now)
        number = hub.next_number(day, prefix)
        prefill = b.get("prefill")
        if prefill is not None:
            prefill = {k: str(v)[:200] for k, v in prefill.items() if k in ("name", "address", "birth_date", "sex")}
        ticket = new_ticket(
            ticket_id=str(uuid.uuid4()),
            site=hub.key,
            day=day,
            prefix=prefix,
            number=number,
            purposes=plan.purposes,
            lang=lang,
            route=route,
            now=now,
            public_token=secrets.token_urlsafe(16),
            assistance=bool(b.get("assistance")) and c.role in ("kiosk", "admin"),
            reserved_for=reserved_for,
            device=c.device,
        )
        procedures = [p for st in plan.steps for p in st.procedures]
        facts = {
            "prefilled": prefill is not None,
            # every procedure of the visit could have been done online or at a convenience store
            "online_capable": bool(procedures) and all(p.alternative is not None for p in procedures),
            "to_confirm": sum(1 for p in procedures if p.to_confirm),
            "device": c.device,
        }
        ch = hub.lobby.issue(ticket, facts)
        hub.by_token[ticket.public_token] = ticket.id
        self.forms_desk.on_issue(ticket.id, day, b.get("answers") or {})
        from .journey import plan_to_dict

        # what this ticket is shown, logged in its `issued` event (KPI: forecast accuracy)
        shown = hub.predictions_for(ticket, now)
        waits = hub.waits(now)
        firsts = [shown[r.department]["wait_minutes"] for r in route if not r.after and r.department in shown]
        firsts = [f for f in firsts if f is not None]
        wait = min(firsts) if firsts else self._first_wait(route, waits)
        visit = _visit(route, waits)
        ch = _with_payload(ch, {"wait_minutes": _round(wait), "visit_minutes": _round(visit), "waits": shown})
        result = {
            "ticket": {
                "id": ticket.id,
                "number": ticket.label,
                "day": day,
                "issued_at": now,
                "public_token": ticket.public_token,
                "status_url": f"{self.city.public_base_url.rstrip('/')}/status/?t={ticket.public_token}&site={hub.key}",
                "site": hub.key,
                "site_name": dict(hub.config.name),
            },
            "route": [
                {
                    "department": r.department,
                    "name": dict(hub.config.department_names.get(r.department, {})),
                    "counters": [x.number for x in hub.config.counters if r.department in x.departments],
                    "floor": min((x.floor for x in hub.config.counters if r.department in x.departments), default=1),
                }
                for r in route
            ],
            "plan": plan_to_dict(plan),
            "wait_minutes": _round(wait),
            "visit_minutes": _round(visit),
            **wait_fields(wait, min((shown[d]["ahead"] or 0 for d in shown), default=0), 1.0),
            "prefilled": prefill is not None,
        }

        extra = Batch(new_tickets=[(ticket, prefill)], numbers={(hub.key, day, prefix): number})
        if reservation is not None:
            reservation["ticket"] = ticket.id
            extra.reservations.append(dict(reservation))

        def undo() -> None:
            hub.by_token.pop(ticket.public_token, None)
            if reservation is not None:
                reservation["ticket"] = None
        return Outcome(result, ch, extra, undo=undo)

    # ------------------------------------------------------------------ pushes
    def _wants(self, client: Client, audience: str) -> bool:
        if audience == "boards":
            # consoles show their own queue, not the lobby's calls: sending every call to every
            # console was most of the server's socket writes with 200 consoles open
            return client.role in ("display", "admin")
        if audience == "counters":
            return client.role in ("counter", "admin")
        if audience.startswith("ticket:"):
            return client.role == "public" and client.ticket == audience[7:]
        return client.role == audience

    def _push(self, hub: SiteHub, audience: str, kind: str, data: Any, seq: int | None = None) -> None:
        msg = P.push(kind, hub.key, hub.seq if seq is None else seq, data)
        if msg is None:  # not encodable (logged): better no push than one a board's parser drops
            return
        targets = [c.ws for c in self.clients if c.site == hub.key and c.role and self._wants(c, audience)]
        if targets:
            self.metrics.pushes += len(targets)
            t0 = time.perf_counter()
            broadcast(targets, msg)
            self.metrics.last_broadcast = (len(targets), time.perf_counter() - t0)

    def _push_event(self, hub: SiteHub, ev: dict, now: float) -> None:
        kind = ev["kind"]
        hub.observe(ev)
        if kind in ("called", "recalled"):
            view = self._with_audio(hub.call_view(ev))
            if kind == "called":
                hub.recent_calls.appendleft(view)
            self._push(hub, "boards", "call", view, seq=ev["seq"])
            t = hub.lobby.tickets[ev["ticket"]]
            if any(c.ticket == t.id for c in self.clients):  # build the view only for a watching phone
                self._push(hub, f"ticket:{t.id}", "status", hub.public_view(t, now), seq=ev["seq"])
        elif kind in ("requeued", "no_show", "started", "completed", "transferred"):
            # the number is no longer called at that counter: boards take it off "now calling"
            # (started: it moves to "being served"; no_show: to the short absent list)
            t = hub.lobby.tickets[ev["ticket"]]
            end = {"seq": ev["seq"], "number": t.label, "counter": ev["counter"], "reason": kind, "at": ev["at"]}
            if kind == "no_show":
                hub.absent.appendleft(end)
            self._push(hub, "boards", "call_end", end, seq=ev["seq"])
        self._push(hub, "admin", "event", ev, seq=ev["seq"])

    async def _roll_day(self) -> None:
        """At local midnight: close yesterday's waiting tickets and erase their card data.

        If the database refuses (disk full …), the day is not rolled and is tried again after
        ROLL_RETRY seconds: never a flusher that dies, never yesterday's tickets left open.
        """
        now = self.clock()
        today = self.local_day(now)
        if now < self._roll_retry_at:
            return
        for key in list(self.hubs):
            hub = self.hubs[key]
            if hub.day >= today:
                continue
            before, hub.day = hub.day, today
            system = Client(ws=None, role="admin", site=hub.key, device="end-of-day")  # type: ignore[arg-type]
            job = Job(system, P.Request("end_of_day", None, {}), asyncio.get_running_loop().create_future(), None)
            await self.queue.put(job)
            reply = json.loads(await job.fut)
            try:
                if "error" in reply:
                    raise RuntimeError(reply["error"]["message"])
                await asyncio.to_thread(self.store.erase_prefill_before, hub.key, today)
                await asyncio.to_thread(planner_api.erase_answers_before, self.store.engine, hub.key, today)
            except Exception as e:  # the writer's reply names the cause; erase's error is the driver's
                self.hubs[key].day = before
                self._roll_retry_at = now + ROLL_RETRY
                log.error("end of day for %s failed: %s; tried again in %s s", key, e, ROLL_RETRY)
                continue
            planner_api.forget_answers_before(self.hubs[key], today)
            self.hubs[key].help_alerts.clear()
            self.hubs[key].absent.clear()

    async def _flusher(self) -> None:
        """Push derived views (waits, queues, public statuses) at most every FLUSH_INTERVAL."""
        last: dict[tuple[int, str], str] = {}
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            await self._roll_day()
            self.forms_desk.prune({k: h.lobby for k, h in self.hubs.items()}, {k: h.day for k, h in self.hubs.items()})
            if not self.dirty:
                continue
            sites, self.dirty = self.dirty, set()
            now = self.clock()
            for key in sites:
                hub = self.hubs[key]
                waits_data = hub.waits_view(hub.waits(now, fresh=True))
                self._push_if_changed(last, hub, "display", "waits", waits_data)
                # Consoles with the same departments share one queue: build and encode it once
                # (encoding a long queue per console was most of the server's time with 200 consoles).
                queues: dict[frozenset[str], tuple[str, str]] = {}
                for client in [c for c in self.clients if c.site == key]:
                    if client.role == "counter":
                        counter = hub.lobby.counters[client.counter]
                        if counter.departments not in queues:
                            data = {"queue": hub.queue_view(counter, now), "waits": waits_data}
                            queues[counter.departments] = (json.dumps(data, sort_keys=True, ensure_ascii=False),
                                                           P.push("queue", hub.key, hub.seq, data))
                        body, msg = queues[counter.departments]
                        self._send_if_changed(last, client, "queue", body, msg)
                    elif client.role == "public" and client.ticket in hub.lobby.tickets:
                        data = hub.public_view(hub.lobby.tickets[client.ticket], now)
                        self._send_if_changed(last, client, "status", json.dumps(data, sort_keys=True, ensure_ascii=False),
                                              P.push("status", hub.key, hub.seq, data))

    def _send_if_changed(self, last: dict, client: Client, kind: str, body: str, msg: str | None) -> None:
        k = (id(client), kind)
        if msg is not None and last.get(k) != body:
            last[k] = body
            self.metrics.pushes += 1
            broadcast([client.ws], msg)

    def _push_if_changed(self, last: dict, hub: SiteHub, audience: str, kind: str, data: Any) -> None:
        body = json.dumps(data, sort_keys=True, ensure_ascii=False)
        k = (0, f"{hub.key}:{audience}:{kind}")
        if last.get(k) != body:
            last[k] = body
            self._push(hub, audience, kind, data)

    # ------------------------------------------------------------------ HTTP
    def process_request(self, connection: ServerConnection, request: HttpRequest) -> Response | None:
        path = request.path.split("?", 1)[0]
        lead = leader.health(self.lease, serving=bool(self._tasks))
        if not lead["ok"] and path != "/healthz":  # a standby, a loading or a lost leader serves nothing
            return _response(HTTPStatus.SERVICE_UNAVAILABLE, f"{lead['state']}: not the leader".encode(), "text/plain")
        if path == "/ws":
            return None
        if path == "/healthz":
            body = self.health()
            body["leader"] = lead
            body["ok"] = body["ok"] and lead["ok"]
            status = HTTPStatus.OK if body["ok"] else HTTPStatus.SERVICE_UNAVAILABLE
            return _response(status, json.dumps(body).encode(), "application/json")
        if path == "/metrics":
            return _response(HTTPStatus.OK, self.metrics.text(self).encode(), "text/plain; version=0.0.4")
        if path == "/catalogue.json":
            return _response(HTTPStatus.OK, self._catalogue_json(), "application/json; charset=utf-8")
        if path.startswith("/plan/"):  # the planning page: gzip, one language at a time, the QR
            return planner_api.static(request, path)
        if path == "/status/list.json":  # the personal list of a ticket (queue_server/visit_list.py)
            return _list_json(self, request)
        if path == "/admin/api/kpi":
            return self._kpi_api(request)  # a coroutine: websockets awaits it, the loop keeps serving
        if path == "/":
            links = "".join(f'<li><a href="{p}">{p}</a></li>' for p in WEB_ROOTS)
            return _response(HTTPStatus.OK, f"<!doctype html><meta charset=utf-8><title>madoguchi</title><ul>{links}</ul>".encode(), "text/html; charset=utf-8")
        for prefix, root in WEB_ROOTS.items():
            if path == prefix.rstrip("/"):
                return _redirect(prefix)
            if path.startswith(prefix):
                return _static(root, path[len(prefix):] or "index.html")
        if path.startswith("/audio/"):
            return _static(ROOT / "var" / "audio", path[len("/audio/"):])
        return _response(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

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

    def _push_storage(self) -> None:
        """Tell kiosks, consoles and admin pages that tickets cannot be saved (or can again)."""
        data = self.storage_view()
        for hub in self.hubs.values():
            for audience in ("kiosk", "counters"):
                self._push(hub, audience, "storage", data)

    async def _kpi_api(self, request: HttpRequest) -> Response:
        """The admin page's KPI report (docs/kpi.md): JSON, one CSV table, or the workbook.

        The admin token comes in ``Authorization: Bearer …`` (or ``?token=`` for a plain link);
        the queries run in a worker thread on a read connection, never on the event loop.
        """
        from urllib.parse import parse_qs, urlsplit

        from .kpi_report import api_reply

        query = {k: v[-1] for k, v in parse_qs(urlsplit(request.path).query).items()}
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else query.pop("token", None)
        if not self.tokens.check("admin", token):
            return _response(HTTPStatus.UNAUTHORIZED, b'{"error": "admin token required"}', "application/json")
        status, body, ctype, name = await asyncio.to_thread(api_reply, query, self.store.engine, self.city, self.clock())
        extra = {"Content-Disposition": f'attachment; filename="{name}"'} if name else None
        return _response(HTTPStatus(status), body, ctype, extra)


def _list_json(server: Any, request: HttpRequest) -> Response:
    from urllib.parse import parse_qs, urlsplit

    from .visit_list import http_reply

    status, body = http_reply(server, {k: v[-1] for k, v in parse_qs(urlsplit(request.path).query).items()})
    return _response(HTTPStatus(status), body, "application/json; charset=utf-8")


def _catalogue_names(catalogue: Any) -> bytes:
    """Procedure and document names for the counter console (ticket views carry only ids).
    Public catalogue text: nothing personal."""
    body: dict[str, Any] = {"procedures": {}, "documents": {}}
    if catalogue is not None:
        body["procedures"] = {
            k: {"name": dict(p.name), "department": p.department, "documents": list(p.documents), "minutes": p.minutes}
            for k, p in catalogue.procedures.items()
        }
        body["documents"] = {k: dict(d.name) for k, d in catalogue.documents.items()}
    return json.dumps(body, ensure_ascii=False).encode()


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


def _event(kind: str, payload: dict) -> Any:
    from .lobby import Event

    return Event(kind, payload=payload)


def _actor(c: Client) -> str:
    if c.role == "counter":
        return f"counter:{c.counter}"  # staff names stay out of the event log's actor field
    return f"{c.role}:{c.device}" if c.device else c.role


def _with_payload(ch: Any, extra: dict) -> Any:
    """The change with ``extra`` added to its (single) event's payload."""
    from dataclasses import replace

    return replace(ch, events=tuple(replace(e, payload={**e.payload, **extra}) for e in ch.events))


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def _visit(route: Any, waits: Any) -> float | None:
    from .estimate import visit_minutes

    return visit_minutes([(r.department, r.minutes) for r in route], waits)


def _response(status: HTTPStatus, body: bytes, ctype: str, extra: dict[str, str] | None = None) -> Response:
    headers = Headers({"Content-Type": ctype, "Content-Length": str(len(body)), "Cache-Control": "no-cache"})
    for k, v in (extra or {}).items():
        headers[k] = v
    return Response(status.value, status.phrase, headers, body)


def _redirect(location: str) -> Response:
    return _response(HTTPStatus.FOUND, b"", "text/plain", {"Location": location})


def _static(root: Path, rel: str) -> Response:
    root = root.resolve()
    target = (root / rel).resolve()
    if target.is_dir():
        target = target / "index.html"
    if not target.is_relative_to(root) or not target.is_file():
        return _response(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
    ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    if ctype.startswith("text/") or ctype in ("application/javascript", "application/json"):
        ctype += "; charset=utf-8"
    return _response(HTTPStatus.OK, target.read_bytes(), ctype)


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
