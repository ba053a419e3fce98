"""The counter consoles' queue feed: one stream per set of departments, fed by committed changes.

What each console is sent (docs/protocol.md, "Queue feed"): on hello its queue as entries
(queue_server/core/queue_feed.py) with the ``seq`` they hold at; then, per flush, one delta per
department set, encoded once and sent to every console of that set, holding the entries of the
tickets that committed changes touched since the last flush. The work per change is independent
of the queue length; a whole queue is built only for a hello, a resync or a new department set.

Only *committed* state is ever sent: the writer changes memory before its commit and rolls it
back when the commit fails, so the feed records tickets from committed events
(:meth:`Feeds.record`, called after the commit) and builds snapshots from memory with the
writer's journal of not-yet-committed moves undone (:meth:`SiteFeed.committed`).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .core import queue_feed as Q
from .core.model import Ticket

if TYPE_CHECKING:
    from .hub import SiteHub
    from .jobs import Client


@dataclass
class Stream:
    """The consoles of one department set: the view they all hold after the last delta."""

    departments: frozenset[str]
    seq: int  # the site seq the view holds at (the ``seq`` of the last delta or snapshot)
    entries: dict[str, Q.Entry]


@dataclass
class SiteFeed:
    hub: SiteHub
    seq: int  # the last committed seq (events recorded)
    touched: dict[str, Ticket | None] = field(default_factory=dict)  # since the last flush, committed
    touched_departments: dict[str, set[str]] = field(default_factory=dict)  # every version's departments
    streams: dict[frozenset[str], Stream] = field(default_factory=dict)
    members: dict[Client, frozenset[str]] = field(default_factory=dict)  # console -> the stream it follows
    resync: set[Client] = field(default_factory=set)  # consoles that get a full snapshot at the next flush

    def committed(self, tid: str) -> Ticket | None:
        """The ticket as committed: memory, unless the writer's batch in progress changed it
        (then the value before its first move, from the lobby's journal of inverses)."""
        journal = self.hub.lobby.journal
        if journal:
            for inverse in journal:
                if tid in inverse.tickets:
                    return inverse.tickets[tid]
        return self.hub.lobby.tickets.get(tid)

    def snapshot(self, departments: frozenset[str]) -> dict[str, Q.Entry]:
        """The committed queue of a department set as entries (O(queue): hello, resync, new set)."""
        ids = {t.id for t in self.hub.lobby.waiting_for(departments)}
        for inverse in self.hub.lobby.journal or ():
            ids.update(inverse.tickets)
        out = {}
        for tid in ids:
            e = Q.entry(self.committed(tid), departments)
            if e is not None:
                out[tid] = e
        return out


class Feeds:
    """Every site's feed (QueueServer.feeds)."""

    def __init__(self) -> None:
        self.sites: dict[str, SiteFeed] = {}
        self.dropped: weakref.WeakSet[Client] = weakref.WeakSet()  # slow clients being closed (pushes.drop_slow)
        self.closing: set = set()  # their close tasks (kept referenced until done)

    def reset(self, hub: SiteHub) -> None:
        """A site (re)loaded from the database: every console of it gets a full snapshot next."""
        old = self.sites.get(hub.key)
        self.sites[hub.key] = SiteFeed(hub, hub.seq)
        if old is not None:
            self.sites[hub.key].resync |= set(old.members)

    def site(self, hub: SiteHub) -> SiteFeed:
        f = self.sites.get(hub.key)
        if f is None or f.hub is not hub:
            self.reset(hub)
            f = self.sites[hub.key]
        return f

    def record(self, hub: SiteHub, ev: dict[str, Any]) -> None:
        """A committed event (called after the commit): remember the ticket it touched."""
        f = self.site(hub)
        f.seq = max(f.seq, ev["seq"])
        tid = ev.get("ticket")
        if tid:
            t = hub.lobby.tickets.get(tid)
            f.touched[tid] = t
            if t is not None:
                f.touched_departments.setdefault(tid, set()).update(s.department for s in t.steps)

    def join(self, hub: SiteHub, client: Client, departments: frozenset[str]) -> tuple[list[Q.Entry], int]:
        """A console's hello: its queue's committed entries and the seq they hold at; it follows
        the stream of its department set from there."""
        f = self.site(hub)
        f.members[client] = departments
        f.resync.discard(client)
        stream = f.streams.get(departments)
        if stream is not None:
            # the set's view at its seq (at most one flush old): the next delta brings everything
            # touched since, so a reconnect storm builds no entry, and nothing uncommitted is seen
            return list(stream.entries.values()), stream.seq
        entries = f.snapshot(departments)
        if stream is None:
            f.streams[departments] = Stream(departments, f.seq, dict(entries))
        return list(entries.values()), f.seq

    def want_snapshot(self, hub: SiteHub, client: Client) -> None:
        """The console asked for a resync: a full snapshot at the next flush."""
        self.site(hub).resync.add(client)

    def flush(self, hub: SiteHub, consoles: Iterable[tuple[Client, frozenset[str]]]
              ) -> list[tuple[list[Client], int, dict[str, Any]]]:
        """The queue pushes of one flush: (consoles, seq, data) — one delta per department set
        that the touched tickets concern, and a full snapshot per console that needs one.

        ``consoles`` are the site's connected counter consoles with their departments now.
        """
        f = self.site(hub)
        by_set: dict[frozenset[str], list[Client]] = {}
        full: list[Client] = []
        members: dict[Client, frozenset[str]] = {}
        for client, deps in consoles:
            by_set.setdefault(deps, []).append(client)
            members[client] = deps
            if f.members.get(client) != deps or client in f.resync:
                full.append(client)
        f.members = members
        f.resync.clear()
        out: list[tuple[list[Client], int, dict[str, Any]]] = []
        for deps in [d for d in f.streams if d not in by_set]:  # nobody follows it any more
            del f.streams[deps]
        for deps, clients in by_set.items():
            stream = f.streams.get(deps)
            if stream is None:  # a set no hello opened (a site re-read): everyone gets a snapshot
                f.streams[deps] = Stream(deps, f.seq, f.snapshot(deps))
                continue
            delta = _delta(f, stream)
            if delta is not None:
                delta_clients = [c for c in clients if c not in full]
                if delta_clients:
                    out.append((delta_clients, stream.seq, delta))
        for client in full:
            stream = f.streams[members[client]]
            out.append(([client], stream.seq, {"full": True, "entries": list(stream.entries.values())}))
        f.touched.clear()
        f.touched_departments.clear()
        return out


def _delta(f: SiteFeed, stream: Stream) -> dict[str, Any] | None:
    """The stream's delta for the tickets touched since the last flush, or None if it concerns
    none of them; the stream's view moves to the feed's committed seq.

    A touched ticket of the set is sent even when its entry is as the stream had it: a console
    that said hello between two flushes may hold an intermediate version."""
    deps = stream.departments
    entries: list[Q.Entry] = []
    removed: list[str] = []
    for tid, t in f.touched.items():
        # a ticket concerns the set if any version of it since the last flush had a step there
        # (a transfer moves a step to another department), or the view has it
        if tid not in stream.entries and not (f.touched_departments.get(tid, set()) & deps) \
                and not Q.touches(t, deps):
            continue
        e = Q.entry(t, deps)
        if e is None:
            stream.entries.pop(tid, None)
            removed.append(tid)
        else:
            stream.entries[tid] = e
            entries.append(e)
    if not entries and not removed:
        # nothing of this set changed: its view holds at the new seq too, but the stream keeps
        # its seq so that a console's next ``from`` is never ahead of the view it holds
        return None
    start, stream.seq = stream.seq, f.seq
    return {"from": start, "entries": entries, "removed": removed}
