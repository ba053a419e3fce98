"""Pushes: who hears what. Committed events go at once to the boards, consoles, phones and admin
pages that want them; derived views (waits, queues, public statuses) go from the flusher at most
every FLUSH_INTERVAL, and only when they changed. Counter consoles get their queue as deltas
(feed.py). A client whose socket does not keep up is dropped to a resync instead of having
pushes pile up in its write buffer without bound. Fan-outs go a slice of sockets at a time, each
slice after the writer's requests (give_way)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from websockets.protocol import State

from . import day_end, reprint
from . import protocol as P
from .board_out import BOARD_PUSH_INTERVAL, text_frame
from .core.shown import shown_waits
from .hub import SiteHub
from .jobs import Client

if TYPE_CHECKING:
    from .server import QueueServer

log = logging.getLogger("madoguchi.server")
FLUSH_INTERVAL = 0.2  # seconds between derived-view pushes (waits, queues, public status)
# A client with more than this many bytes not yet written to its socket is closed (1013) and
# resyncs when it reconnects: several full queue snapshots, far more than a healthy client ever
# has pending, so only a client that stopped reading (or a link that died unnoticed) reaches it.
MAX_CLIENT_BUFFER = 1024 * 1024
DROP_GRACE = 5.0  # seconds a dropped client has to read up to the close frame before the socket is cut
SLOW_CLOSE_REASON = "too slow: reconnect and resync"
# Sockets written between two turns of the event loop in a fan-out (a flush's deltas, the boards'
# round): a socket write costs this VM 20–80 µs, and 200 in one go held every request behind them
FAN_OUT_SLICE = 25
# The longest a round of fan-out (a board round, a site's flush) gives way to the writer's
# requests in all (give_way): under a load that keeps the writer busy, pushes are this much late
MAX_GIVE_WAY = 0.02


def audience_of(server: QueueServer, site: str, audience: str) -> list[Client]:
    """The clients of a site in an audience ("boards", "counters", "ticket:<id>", "kiosk:<device>"
    or a role), from the clients' index (clients.py)."""
    clients = server.clients
    if audience == "boards":
        # consoles show their own queue, not the lobby's calls: sending every call to every
        # console was most of the server's socket writes with 200 consoles open
        return clients.of(site, "display", "admin")
    if audience == "counters":
        return clients.of(site, "counter", "admin")
    if audience.startswith("ticket:"):
        return [c for c in clients.watching(audience[7:]) if c.site == site and c.role == "public"]
    if audience.startswith("kiosk:"):  # one kiosk by its device name (a reprint job)
        return [c for c in clients.of(site, "kiosk") if c.device == audience[6:]]
    return clients.of(site, audience)


def push(server: QueueServer, hub: SiteHub, audience: str, kind: str, data: Any, seq: int | None = None) -> None:
    """Send one push to every client of the site in ``audience``."""
    # by default the last seq already pushed, never hub.seq: while a batch is being committed that
    # is ahead, and a board that took it from (say) a waits push, then lost its connection before
    # the batch's call arrived, would resume past the call and never be replayed it
    clients = audience_of(server, hub.key, audience)
    if not clients:  # no one to hear it (e.g. no admin page open): not even encoded
        return
    msg = P.push(kind, hub.key, hub.pushed_seq if seq is None else seq, data)
    if msg is None:  # not encodable (logged): better no push than one a board's parser drops
        return
    boards = [c for c in clients if c.role == "display"]
    if boards:  # coalesced, every kind of push: a board hears them in seq order (board_out.py)
        server.board_out.queue(boards, msg)
        clients = [c for c in clients if c.role != "display"]
    if clients:
        t0 = time.perf_counter()
        sent = send_frame(server, clients, text_frame(msg))
        server.metrics.last_broadcast = (sent, time.perf_counter() - t0)


def note_event(server: QueueServer, hub: SiteHub, ev: dict) -> None:
    """What one committed event changes besides pushes, at once after the commit (before its
    pushes, which wait for the batch's replies): the consoles' queue feed (deltas are built from
    these records at the next flush), the estimator's history, and the forms' values to check."""
    server.feeds.record(hub, ev)
    hub.observe(ev)
    if ev.get("ticket"):
        server.forms_desk.touched(ev["ticket"])  # closed now? its form values go at the next flush


def push_event(server: QueueServer, hub: SiteHub, ev: dict, now: float) -> None:
    """The pushes of one committed event (noted already: :func:`note_event`): calls to boards and
    the ticket's phone, call ends, and every event to admin pages."""
    kind = ev["kind"]
    if kind in ("called", "recalled"):
        view = with_audio(server, hub.call_view(ev))
        if kind == "called":
            hub.recent_calls.appendleft(view)
        push(server, hub, "boards", "call", view, seq=ev["seq"])
        t = hub.lobby.tickets[ev["ticket"]]
        if server.clients.watching(t.id):  # build the view only for a watching phone
            push(server, hub, f"ticket:{t.id}", "status", hub.public_view(t, now), seq=ev["seq"])
    elif kind in ("requeued", "no_show", "started", "completed", "transferred"):
        # the number is no longer called at that counter: boards take it off "now calling"
        # (started: it moves to "being served"; no_show: to the short absent list)
        t = hub.lobby.tickets[ev["ticket"]]
        end = {"seq": ev["seq"], "number": t.label, "counter": ev["counter"], "reason": kind, "at": ev["at"]}
        if kind == "no_show":
            hub.absent.appendleft(end)
        push(server, hub, "boards", "call_end", end, seq=ev["seq"])
    push(server, hub, "admin", "event", ev, seq=ev["seq"])


async def board_sender(server: QueueServer) -> None:
    """Write the boards' queued pushes every BOARD_PUSH_INTERVAL (board_out.py)."""
    while True:
        await asyncio.sleep(BOARD_PUSH_INTERVAL)
        await flush_boards(server)


async def give_way(server: QueueServer, since: float) -> None:
    """Let requests go before the next slice of a round of fan-out that began at ``since``
    (loop time): one turn of the loop (frames read meanwhile are seen), then wait while the writer
    has requests to apply, commit and answer — until MAX_GIVE_WAY after ``since`` at most, for the
    whole round. A request's reply then waits for at most one slice of pushes, not for a flush to
    200 consoles and a round to 50 boards that came between its stages; and under a load that
    never lets the writer rest, a round is MAX_GIVE_WAY late, not that much per slice."""
    await asyncio.sleep(0)
    quiet = server.writer.quiet
    if not quiet.is_set() and asyncio.get_running_loop().time() < since + MAX_GIVE_WAY:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(since + MAX_GIVE_WAY):
                await quiet.wait()


async def flush_boards(server: QueueServer) -> None:
    """Each board's queued frames in one socket write (``send_frame``), a slice of boards at a
    time (a board's later frames wait for the next round: each board hears them in order), each
    slice after the writer's requests (give_way)."""
    since = asyncio.get_running_loop().time()
    await give_way(server, since)
    for n, (client, frames) in enumerate(server.board_out.take().items(), 1):
        if client in server.clients:  # (not one that left meanwhile)
            send_frame(server, [client], b"".join(frames), len(frames))
        if n % FAN_OUT_SLICE == 0:
            await give_way(server, since)


def push_storage(server: QueueServer) -> None:
    """Tell kiosks, consoles and admin pages that tickets cannot be saved (or can again)."""
    data = server.storage_view()
    for hub in server.hubs.values():
        for audience in ("kiosk", "counters"):
            push(server, hub, audience, "storage", data)


def with_audio(server: QueueServer, view: dict[str, Any], fresh: bool = True) -> dict[str, Any]:
    """Add the URL of the call's voice announcement; synthesis runs in another process, so
    the push is never delayed (the board retries the URL until the file is ready)."""
    if server.announcer is not None and fresh:
        view["audio"] = server.announcer.request(view["number"], view["counter"], bool(view.get("recall")))
        view["audio_short"] = server.announcer.short_url(view["number"], view["counter"])
    return view


async def flusher(server: QueueServer) -> None:
    """Push derived views (waits, queues, public statuses) at most every FLUSH_INTERVAL."""
    last: dict[tuple[int, str], str] = {}
    while True:
        await asyncio.sleep(FLUSH_INTERVAL)
        await day_end.roll_day(server)
        server.forms_desk.prune({k: h.lobby for k, h in server.hubs.items()}, {k: h.day for k, h in server.hubs.items()},
                                time.monotonic())
        if not server.dirty:
            continue
        sites, server.dirty = server.dirty, set()
        spent = 0.0
        for key in sites:
            since = asyncio.get_running_loop().time()  # the site's round of fan-out (give_way)
            await give_way(server, since)
            # each site's own instant: a site's events committed while an earlier site's waits were
            # computed (the await below) are later than a shared `now`, and its history's windows
            # then scan instead of counting (core/history_windows.py)
            now = server.clock()
            t0 = time.perf_counter()
            hub = server.hubs[key]
            # fresh after every change: the replies and snapshots of the next half second (phones,
            # the admin page's refresh) read this cache, and no later push would mend a stale one.
            # Computed in a worker thread from a snapshot (it grows with the queues: 4 ms with
            # 1,000 queue entries): the loop, given the GIL every SWITCH_INTERVAL, answers meanwhile
            inputs = hub.waits_inputs(now)
            spent += time.perf_counter() - t0
            out = await asyncio.to_thread(shown_waits, *inputs.args)
            t0 = time.perf_counter()
            if server.hubs.get(key) is not hub:
                continue  # re-read meanwhile: its own flush follows (reread marks it dirty)
            hub.set_waits(inputs, out)
            waits_data = hub.waits_view(out)
            _push_if_changed(server, last, hub, "display", "waits", waits_data)
            spent += time.perf_counter() - t0
            # a request that arrived meanwhile goes first: the flush of a busy site is several ms
            # (200 consoles), and in one piece it was the largest wait a request could meet
            await give_way(server, since)
            t0 = time.perf_counter()
            hub = server.hubs[key]  # (a re-read may have replaced it meanwhile)
            consoles = [(client, hub.lobby.counters[client.counter].departments)
                        for client in server.clients.of(key, "counter") if client.counter in hub.lobby.counters]
            if key in server.kiosks_changed:  # a kiosk came or left (reprint.kiosk_came_or_left)
                server.kiosks_changed.discard(key)
                push(server, hub, "counter", "kiosks", reprint.connected_kiosks(server, hub))
            for client in server.clients.of(key, "public"):
                if client.ticket in hub.lobby.tickets:
                    data = hub.public_view(hub.lobby.tickets[client.ticket], now)
                    _send_if_changed(server, last, client, "status", json.dumps(data, sort_keys=True, ensure_ascii=False),
                                     P.push("status", hub.key, hub.pushed_seq, data))
            spent += time.perf_counter() - t0
            spent += await flush_queues(server, hub, consoles, since)
        server.metrics.flushes += 1
        server.metrics.flush_seconds += spent


async def flush_queues(server: QueueServer, hub: SiteHub, consoles: list[tuple[Client, frozenset[str]]],
                       since: float) -> float:
    """The consoles' queue pushes of one flush (feed.py): one delta per department set, encoded
    once and sent to all its consoles, and a full snapshot to each console that asked for one;
    written a slice of consoles at a time, in the round of fan-out begun at ``since`` (give_way).
    Returns the seconds spent (not the turns given away)."""
    t0 = time.perf_counter()
    spent = 0.0
    for clients, seq, data in server.feeds.flush(hub, consoles):
        msg = P.push("queue", hub.key, seq, data)
        if msg is None:
            continue
        frame = text_frame(msg)
        for i in range(0, len(clients), FAN_OUT_SLICE):
            send_frame(server, clients[i:i + FAN_OUT_SLICE], frame)
            if i + FAN_OUT_SLICE < len(clients):
                spent += time.perf_counter() - t0
                await give_way(server, since)
                t0 = time.perf_counter()
    return spent + time.perf_counter() - t0


def resync(server: QueueServer, client: Client) -> dict[str, Any]:
    """A console asked for its queue again (it saw a gap): a full snapshot push at the next flush."""
    hub = server.hubs[client.site]
    server.feeds.want_snapshot(hub, client)
    server.dirty.add(hub.key)
    return {"pending": True}


def send_frame(server: QueueServer, clients: list[Client], frame: bytes, messages: int = 1) -> int:
    """Write one frame (or several, joined) to each of these clients' sockets; the number of
    clients written to. The frame is built once for all of them (board_out.text_frame: the
    server's frames are the same bytes for every client), where websockets' broadcast framed it
    again per connection — with 200 consoles a flush's deltas were the loop's most frequent
    block. A client whose write buffer is over MAX_CLIENT_BUFFER is dropped (closed with
    SLOW_CLOSE_REASON) and gets nothing more; one whose connection is closing gets nothing."""
    sent = 0
    for c in clients:
        sent += write_frame(server, c, frame)
    server.metrics.pushes += sent * messages
    return sent


def write_frame(server: QueueServer, client: Client, frame: bytes) -> bool:
    """Write a frame to one client's socket; False if it is closing, dropped, or over
    MAX_CLIENT_BUFFER (then dropped now)."""
    ws = client.ws
    transport = ws.transport
    if transport is None or transport.is_closing() or ws.protocol.state is not State.OPEN or client in server.feeds.dropped:
        return False
    if transport.get_write_buffer_size() > MAX_CLIENT_BUFFER:
        drop_slow(server, client)
        return False
    transport.write(frame)
    return True


def drop_slow(server: QueueServer, client: Client) -> None:
    """Close a client that stopped reading: 1013 (try again later) with a reason it can read if
    it catches up; the socket is cut after DROP_GRACE if it does not. It resyncs on reconnect
    (hello: a snapshot, and a board's missed calls)."""
    if client in server.feeds.dropped:
        return
    server.feeds.dropped.add(client)
    server.metrics.slow_dropped += 1
    log.warning("dropping a slow %s client: %d bytes not written", client.role,
                client.ws.transport.get_write_buffer_size())

    async def close() -> None:
        try:
            async with asyncio.timeout(DROP_GRACE):
                await client.ws.close(1013, SLOW_CLOSE_REASON)
        except TimeoutError:
            client.ws.transport.abort()
        except Exception:  # closing a broken socket: nothing left to do
            with contextlib.suppress(Exception):
                client.ws.transport.abort()

    task = asyncio.get_running_loop().create_task(close())
    server.feeds.closing.add(task)
    task.add_done_callback(server.feeds.closing.discard)


def _send_if_changed(server: QueueServer, last: dict, client: Client, kind: str, body: str, msg: str | None) -> None:
    k = (id(client), kind)
    if msg is not None and last.get(k) != body:
        last[k] = body
        send_frame(server, [client], text_frame(msg))


def _push_if_changed(server: QueueServer, last: dict, hub: SiteHub, audience: str, kind: str, data: Any) -> None:
    body = json.dumps(data, sort_keys=True, ensure_ascii=False)
    k = (0, f"{hub.key}:{audience}:{kind}")
    if last.get(k) != body:
        last[k] = body
        push(server, hub, audience, kind, data)
