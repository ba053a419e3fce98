"""The connection shell: one websocket connection's life — hello and its token check, then a loop
that parses each frame, answers reads that need no writer at once, and queues every other request
for the writer (or sheds it, core/admission.py). Boards that were away get the calls they missed.

Replies leave in request order, but the loop does not wait for the writer before it reads the
next frame: a request waiting for the writer puts its reply's future in the connection's outbox,
and the replies after it queue behind it (outbox.py). So every request of a pipelining client
is seen — admitted or shed — when it arrives, instead of waiting unseen in the socket for the
reply before it; at most WINDOW replies wait per connection, then the loop reads no further
(TCP backpressure).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from . import consultation_api, counter_handlers, forms_api, outbox, planner_api, pushes, reprint
from . import protocol as P
from .core import admission
from .core.errors import RequestError
from .hub import SiteHub
from .idempotency import idem_scope
from .jobs import Client, Job, Reply

if TYPE_CHECKING:
    from .server import QueueServer

log = logging.getLogger("madoguchi.server")
REPLAY_PAGE = 500  # call events read per query when a board resyncs
MAX_REPLAY = 5000  # more missed calls than this: snapshot plus ``truncated`` instead of a replay
WINDOW = 32  # replies of one connection waiting to be sent, at most, before its next frame is read
# Reads answered at once when no batch is in flight and the connection has no reply outstanding
# (writer.Writer.read); otherwise through the writer like any request, in order.
DIRECT_READS = frozenset({"queue", "current", "status"})


async def handler(server: QueueServer, ws: ServerConnection) -> None:
    """Serve one connection until it closes."""
    client = Client(ws, replies=server.metrics.reply_seconds, stages=server.metrics.stage_seconds)
    server.clients.add(client)
    try:
        async for raw in ws:
            while client.unsent >= WINDOW:  # a client far ahead of its replies: read no further
                client.sent.clear()
                await client.sent.wait()
            client.received = time.perf_counter()
            try:
                await on_message(server, client, raw)
            except ConnectionClosed:
                raise
            except Exception:
                # a bug met by one request answers that request `internal` and is logged with its
                # cause (never the message: it may hold personal data); the connection stays open
                # instead of closing with 1011 and no word in the log
                log.exception("%s request failed", client.role or "pre-hello")
                rid = None
                with contextlib.suppress(Exception):
                    rid = P.parse(raw).id
                await send_error(server, client, rid, "internal", P.ERROR_CODES["internal"])
    except ConnectionClosed:
        pass
    finally:
        server.clients.discard(client)
        reprint.kiosk_came_or_left(server, client)  # (a kiosk left: the consoles' choice of kiosk without it)


async def on_message(server: QueueServer, client: Client, raw: str | bytes) -> None:
    if client.role == "staff" or (not client.role and consultation_api.is_staff_hello(raw)):
        return await consultation_api.attach(server).on_message(client, raw)  # people, not devices: own module
    try:
        req = P.parse(raw)
    except P.ProtocolError as e:
        return await send_error(server, client, e.re, e.code, e.message, e.field)
    server.metrics.requests[req.type] = server.metrics.requests.get(req.type, 0) + 1
    try:
        if req.type == "hello":
            return await hello(server, client, req)
        if not client.role:
            raise Reply("hello_first", "send hello with your role and token first")
        if req.type not in P.ALLOWED[client.role]:
            raise Reply("not_allowed", f"role {client.role!r} may not send {req.type!r}", "type")
        if req.type == "ping":
            return await send(server, client, P.reply(req.id, {"pong": server.clock()}))
        if req.type in ("plan", "resync") or req.type in forms_api.TYPES or client.role == "planner":
            await _settled(client)  # served from memory: after this connection's earlier changes
        if req.type == "resync":  # the queue snapshot comes as a push, in order with the deltas
            return await send(server, client, P.reply(req.id, pushes.resync(server, client)))
        if client.role == "planner":  # the public planning page: rate-limited, no token
            if req.type in planner_api.READS:
                return await send(server, client, await planner_api.read(server, client, req))
            planner_api.admit(client, "write")
        if req.type == "plan":
            return await send(server, client, P.reply(req.id, planner_api.kiosk_plan(server, client, req.body)))
        if req.type in forms_api.TYPES:  # memory only, never through the writer (forms_api.py)
            return await send(server, client, P.reply(req.id, await forms_api.serve(server, client, req)))
    except RequestError as e:  # a refusal of any layer (core/errors.py), e.g. the booking rules'
        return await send_error(server, client, req.id, e.code, e.message, e.field)
    idem = req.body.get("idempotency_key")
    key = f"{client.site}:{idem_scope(client.role, client.device, client.counter, idem)}" if idem else None
    if key is None or key not in server.idem:  # a known key is never shed: its retry gets the first reply
        now = time.monotonic()
        waited = max(server.writer.oldest_wait(now), server.loop_lag)
        retry = admission.shed(req.type, server.queue.qsize(), waited, server.admission)
        if retry is not None:
            return await send_busy(server, client, req, retry)
    job = Job(client, req, asyncio.get_running_loop().create_future(), key, received=client.received)
    if req.type in DIRECT_READS and key is None and not client.unsent and server.writer.idle():
        job.fut.set_result(server.writer.read(job))  # memory is what the database holds: no wait
        if req.type != "current":
            return await send(server, client, job.fut.result())
    else:
        server.queue.put_nowait(job)
    reply: asyncio.Future = job.fut
    if req.type == "current":  # the card prefill, read after the writer, in a thread
        reply = asyncio.ensure_future(_with_prefill(server, client, req.id, job.fut))
    outbox.queue_reply(server, client, reply, job)  # sent when the writer answers; the loop reads on meanwhile


async def _with_prefill(server: QueueServer, client: Client, rid: Any, fut: asyncio.Future) -> str:
    msg = await fut
    try:
        return await counter_handlers.with_prefill(server, client, msg)
    except Exception as e:  # the database cannot be read: say so, never "no card" by mistake
        log.error("reading the card prefill failed: %s", type(e).__name__)
        server.metrics.errors["storage_error"] = server.metrics.errors.get("storage_error", 0) + 1
        return P.error(rid, "storage_error", "the card data of the ticket could not be read from the database")


async def _settled(client: Client) -> None:
    """Wait until every earlier request of the connection has been answered."""
    while client.unsent:
        client.sent.clear()
        await client.sent.wait()


async def send(server: QueueServer, client: Client, msg: str) -> None:
    """Send a reply now, or after the replies still waiting before it (request order)."""
    if client.unsent:
        return outbox.queue_reply(server, client, msg)
    with contextlib.suppress(ConnectionClosed):
        await client.ws.send(msg)  # (a hello's snapshot can be large: this one waits for the socket to drain)
    outbox.timed(client, client.received)


async def send_error(server: QueueServer, client: Client, re: Any, code: str, message: str,
                     fld: str | None = None) -> None:
    server.metrics.errors[code] = server.metrics.errors.get(code, 0) + 1
    await send(server, client, P.error(re, code, message, fld))


async def send_busy(server: QueueServer, client: Client, req: P.Request, retry_after: float) -> None:
    """Shed a request (core/admission.py): answered at once, nothing applied, nothing written."""
    m = server.metrics
    m.busy[req.type] = m.busy.get(req.type, 0) + 1
    m.errors["busy"] = m.errors.get("busy", 0) + 1
    await send(server, client, P.error(req.id, "busy", f"the server is behind: {req.type} was not applied; send it again "
                               f"in {retry_after:g} s (with the same idempotency_key)", retry_after=retry_after))


async def hello(server: QueueServer, client: Client, req: P.Request) -> None:
    """Check the role's token, bind the connection to its site (and counter or ticket), and reply
    with a snapshot; a board's ``last_seq`` brings the calls it missed after the reply."""
    b = req.body
    if client.role:
        raise Reply("already_hello", "this connection already said hello")
    role = b["role"]
    if role not in P.ROLES:
        raise Reply("bad_field", f"role must be one of {', '.join(P.ROLES)}", "role")
    site = b.get("site") or next(iter(server.hubs))
    hub = server.hubs.get(site)
    if hub is None:
        raise Reply("unknown_site", f"no site {site!r}; sites: {', '.join(server.hubs)}", "site")
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
        if not server.tokens.check(role, b.get("token"), site, number):
            raise Reply("bad_token", "wrong token for this counter", "token")
        client.counter = number
        client.staff = (b.get("staff") or "")[:100]
    elif not server.tokens.check(role, b.get("token")):
        raise Reply("bad_token", f"wrong token for role {role}", "token")
    # A reconnect storm (every console and board at once, after a network blip) must not stop
    # the writer: one snapshot is built at a time, each after the writer had a turn, so commits
    # go on between them instead of waiting for 250 snapshots in one go.
    async with server.snapshots:
        await asyncio.sleep(0)
        hub = server.hubs[site]  # (a re-read or the day's end may have replaced it meanwhile)
        if client.ticket is not None and client.ticket not in hub.lobby.tickets:
            raise Reply("unknown_ticket", "no ticket with that status token today", "ticket")
        now = server.clock()
        client.role, client.site, client.device = role, site, (b.get("device") or "")[:64]
        server.clients.placed(client)
        # seq: the last event pushed (a batch being committed is pushed live after its commit)
        result: dict[str, Any] = {"role": role, "site": site, "seq": hub.pushed_seq, "server_time": now,
                                  "storage": server.storage_view()}
        last = b.get("last_seq")
        missed, truncated = await _missed(server, hub, client, last, now) if last is not None else ([], False)
        result["missed"] = len(missed)
        result["truncated"] = truncated
        result["snapshot"] = snapshot(server, hub, client, now)
        reply = P.reply(req.id, result)
    await send(server, client, reply)  # outside the slot: a slow client's socket holds no other hello up
    reprint.kiosk_came_or_left(server, client)  # (a kiosk came: the consoles' choice of kiosk with it)
    for msg in missed:
        await send(server, client, msg)


async def _missed(server: QueueServer, hub: SiteHub, client: Client, last: int, now: float
                  ) -> tuple[list[str], bool]:
    """Every call push of today after ``last``, rebuilt from the committed event log (paged),
    so a board that was away — for any time, or across a server restart — misses no call.

    ``truncated`` is True, with no replay, when that cannot be done honestly: the client's
    ``last_seq`` is ahead of this server (another database), the log lacks events in between,
    or more than MAX_REPLAY calls were missed. The client then rebuilds from the snapshot.
    """
    if client.role not in ("display", "admin") or last == hub.pushed_seq:
        return [], False
    if last > hub.pushed_seq:
        return [], True
    day_start = datetime.fromisoformat(hub.day).replace(tzinfo=server.tz).timestamp()
    # pushes after this come live to the client (its role is set already); not hub.seq: the
    # events of a batch being committed now are pushed after the commit — replayed too, a
    # call would reach the board twice (seen in a reconnect storm, test_shedding.py)
    upto = hub.pushed_seq

    def read() -> tuple[list[dict], bool]:
        if server.store.count_events(hub.key, last, upto) != upto - last:
            return [], True
        events: list[dict] = []
        after = last
        while True:
            page = server.store.calls_since(hub.key, after, day_start, REPLAY_PAGE)
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
                          pushes.with_audio(server, hub.call_view(ev), now - ev["at"] < 60))) is not None
    ], truncated


def snapshot(server: QueueServer, hub: SiteHub, client: Client, now: float) -> dict[str, Any]:
    """What a client sees on hello: its role's view of the site."""
    if client.role == "planner":
        return planner_api.snapshot(server, hub)
    if client.role == "public":
        return {"status": hub.public_view(hub.lobby.tickets[client.ticket], now)}
    if client.role == "counter":
        c = hub.lobby.counters[client.counter]
        cur = hub.lobby.ticket_at(c.number)
        entries, seq = server.feeds.join(hub, client, c.departments)  # then deltas from seq (feed.py)
        return {
            "counter": hub.counter_view(c),
            "queue": {"full": True, "seq": seq, "entries": entries},
            "current": hub.ticket_view(cur) if cur else None,
            "help": hub.help_alerts[-20:],
            "not_printed": reprint.not_printed_view(hub),  # tickets whose print failed
            "kiosks": reprint.connected_kiosks(server, hub),  # where a reprint can go, with their printers
            "departments": {d: dict(n) for d, n in hub.config.department_names.items()},
            "board": hub.board_view(now),
            # what the console needs to enable exactly the buttons the server accepts
            "policy": {"max_recalls": hub.lobby.max_recalls, "aging_bound": hub.lobby.policy.aging_bound,
                       "reservation_grace": hub.lobby.policy.reservation_grace},
        }
    return {"board": hub.board_view(now)}
