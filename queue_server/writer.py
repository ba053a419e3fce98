"""The single writer: applies requests to memory one by one, group-commits them, rolls back.

Every state-changing request of every site goes through one task (so two counters calling at
the same instant never take the same ticket). A batch of queued requests is applied to the
in-memory lobbies request by request, written in one transaction, and only then answered and
pushed. Two promises hold whatever raises where:

- **A request is all-or-nothing on its own.** Each request runs against a checkpoint of its
  site (the lobby's journal of moves, the sequence and ticket numbers, help alerts,
  reservations); if it raises — a refusal or a bug — it alone is rolled back and answered, and
  the rest of the batch goes on. If the commit fails because of one request's rows (a constraint,
  a value the database refuses), the batch is rolled back and its requests are committed again
  one by one, so only the culprit fails.
- **Memory is never ahead of the database.** A failed commit rolls back memory, the idempotency
  cache, numbering and sequence numbers to the state before the batch (a refused issue uses no
  number). A constraint failure means the database holds rows this server does not know (another
  writer): the sites are read again from the database before anything else is written.

Storage failures are classified (storage.error_cause), counted by cause in /metrics, named in
the log, and make /healthz unhealthy while they last; kiosks and consoles are told by a
``storage`` push, and a probe write finds out when storage works again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import outbox, pushes
from . import protocol as P
from .core.errors import RequestError
from .jobs import Job, Outcome, actor
from .storage import SYSTEMIC_CAUSES, Batch, JSONText, error_cause

if TYPE_CHECKING:
    from .hub import SiteHub
    from .server import QueueServer

log = logging.getLogger("madoguchi.writer")
MAX_BATCH = 256
PROBE_INTERVAL = 2.0  # seconds between probe writes while storage is failing
BEHIND_SECONDS = 5.0  # a request waiting longer than this for the writer: /healthz says behind
BEHIND_DEPTH = 2000  # or this many requests queued
# A commit on the event loop (Store.writes_inline) that takes longer than this — a disk that
# stalls, a page cache under pressure — freezes every connection while it lasts: the commits of
# the next INLINE_BACKOFF seconds go to a worker thread instead
INLINE_SLOW = 0.05  # seconds
INLINE_BACKOFF = 60.0  # seconds

#: What staff read when a change could not be saved, by cause (the console shows its own
#: translated banner from the ``storage`` push; this is the reply's plain message).
CAUSE_TEXT = {
    "disk_full": "the server's disk is full",
    "locked": "the database is locked by another process",
    "constraint": "the database refused the rows (another server may be writing to it)",
    "connection": "the database cannot be reached",
    "leadership": "this server no longer holds the lock on the database",
    "other": "the database refused the write",
}


def _answer(fut: asyncio.Future, msg: str) -> None:
    """Answer a request's future, unless it is done already: a connection that closed cancels the
    futures of its unanswered requests, and one of them must not stop the batch's other answers
    or its pushes (a reconnect storm lost calls to the boards that way)."""
    if not fut.done():
        fut.set_result(msg)


@dataclass
class StorageHealth:
    """Whether writes succeed now; what failed last, and since when."""

    ok: bool = True
    cause: str | None = None
    message: str = ""
    since: float | None = None  # when the current failure began (epoch seconds)
    failures: int = 0  # consecutive failed commits
    last_error_at: float | None = None
    errors: dict[str, int] = field(default_factory=dict)  # cause -> count, for /metrics

    def view(self) -> dict[str, Any]:
        return {"ok": self.ok, "cause": self.cause, "message": self.message, "since": self.since,
                "failures": self.failures}


@dataclass
class _Checkpoint:
    """The state of one site that a request may change besides the lobby's journal."""

    journal: int
    seq: int
    numbers: dict
    help_alerts: list
    reservations: dict
    reserved_tickets: dict


@dataclass
class _Applied:
    job: Job
    out: Outcome
    events: list[dict]


class Writer:
    """The writer task of a QueueServer (see the module docstring)."""

    def __init__(self, server: QueueServer):
        self.server = server
        self.storage = StorageHealth()
        self.busy_since: float | None = None  # monotonic time the current batch began
        self.batch_queued_at: float | None = None  # when the oldest request of that batch was queued
        # set while no request waits for the writer and no batch is in hand: the pushes' fan-out
        # (pushes.give_way) waits for it, so requests go first
        self.quiet = asyncio.Event()
        self.inline_after = 0.0  # monotonic time before which commits stay off the loop (INLINE_SLOW)

    # ------------------------------------------------------------------ tasks
    async def run(self) -> None:
        queue = self.server.queue
        while True:
            if queue.empty():
                self.quiet.set()
            jobs = [await queue.get()]
            self.quiet.clear()
            while len(jobs) < MAX_BATCH and not queue.empty():
                jobs.append(queue.get_nowait())
            self.busy_since = time.monotonic()
            self.batch_queued_at = jobs[0].queued_at  # FIFO: the first is the oldest
            try:
                await self.run_batch(jobs)
            except Exception:  # a bug outside any one request: never let it stop the server
                log.exception("batch failed")
                for j in jobs:
                    _answer(j.fut, P.error(j.req.id, "internal", P.ERROR_CODES["internal"]))
            finally:
                self.busy_since = self.batch_queued_at = None

    async def watch(self) -> None:
        """While storage is failing, probe it so that health and kiosks recover without a citizen."""
        while True:
            await asyncio.sleep(PROBE_INTERVAL)
            if self.storage.ok:
                continue
            try:
                await asyncio.to_thread(self.server.store.probe)
            except Exception as e:  # still failing: keep the first failure's time
                log.debug("storage probe failed: %s", e)
                continue
            self._recovered()

    def behind(self) -> dict[str, Any]:
        """Queue depth and the age of the oldest waiting request (or of the batch being written)."""
        queue = self.server.queue
        now = time.monotonic()
        waiting = list(getattr(queue, "_queue", ()))  # FIFO: the first is the oldest
        oldest = now - waiting[0].queued_at if waiting else 0.0
        if self.busy_since is not None:
            oldest = max(oldest, now - self.busy_since)
        return {"ok": oldest < BEHIND_SECONDS and len(waiting) < BEHIND_DEPTH, "queued": len(waiting),
                "oldest_seconds": round(oldest, 3)}

    def oldest_wait(self, now: float) -> float:
        """Seconds the oldest unanswered request has waited: queued, or in the batch being
        written (O(1): asked for every request by the admission rule, core/admission.py)."""
        waiting = getattr(self.server.queue, "_queue", None)
        since = [t for t in (waiting[0].queued_at if waiting else None, self.batch_queued_at) if t is not None]
        return max(0.0, now - min(since)) if since else 0.0

    # ------------------------------------------------------------------ reads at once
    def idle(self) -> bool:
        """No batch is applied and uncommitted: memory is exactly what the database holds (the
        writer is between batches, or sending a committed batch's pushes)."""
        return all(hub.lobby.journal is None for hub in self.server.hubs.values())

    def read(self, job: Job) -> str:
        """Answer a read (session.DIRECT_READS) at once, as the writer would in a batch of its own:
        call only when :meth:`idle` and with every earlier request of its connection answered.
        Such a read has nothing to commit, and in a batch it waited for the batch's writes and
        their commit (a `queue` read of 300 entries also held their commit back by a millisecond)."""
        s = self.server
        hub = s.hubs[job.client.site]
        mark = _checkpoint(hub)
        out = None
        try:
            out = s._execute(hub, job, s.clock())
            if out.change is not None or out.batch is not None or out.pushes:  # (a bug: a read that writes)
                raise RuntimeError(f"{job.req.type} changed memory outside the writer's batch")
        except Exception as e:
            self._undo(hub, mark, out)
            return self._refusal(job, e)
        return P.reply(job.req.id, out.result)

    # ------------------------------------------------------------------ one batch
    async def run_batch(self, jobs: list[Job], isolate: bool = True) -> None:
        s = self.server
        batch_at = time.perf_counter()
        now = s.clock()
        for hub in s.hubs.values():
            hub.lobby.journal = []
        start = {key: _checkpoint(hub) for key, hub in s.hubs.items()}
        batch = Batch()
        applied: list[_Applied] = []
        followers: list[Job] = []  # same idempotency key as a request of this batch
        fresh: set[str] = set()
        for job in jobs:
            if job.fut.done():
                continue
            if job.idem and job.idem in s.idem:
                if job.idem in fresh:
                    followers.append(job)  # answered after the commit, like the first
                else:
                    _answer(job.fut, P.reply_encoded(job.req.id, s.idem[job.idem]))
                continue
            hub = s.hubs[job.client.site]
            mark = _checkpoint(hub)
            out = None
            try:
                out = s._execute(hub, job, now)
                # (a result that cannot be sent is refused here, before anything is written)
                encoded = P.encode_result(out.result) if job.idem else None
                events = _events(hub, job, out, now)
                part = _rows(out, events)
            except Exception as e:
                self._undo(hub, mark, out)
                _answer(job.fut, self._refusal(job, e))
                continue
            _merge(batch, part)
            if job.idem:
                s.idem[job.idem] = encoded  # as text: one object for the garbage collector
                fresh.add(job.idem)
                site, key = job.idem.split(":", 1)
                # the row takes the text just encoded (a 16-KB issue reply is not encoded twice)
                batch.requests.append({"site": site, "key": key, "reply": JSONText(encoded), "at": now})
            applied.append(_Applied(job, out, events))
        _inserts_not_updates(batch)
        applied_at = time.perf_counter()
        if batch:
            try:
                await self._commit(batch)
            except Exception as e:
                await self._commit_failed(e, start, applied, followers, fresh, isolate)
                return
            s.metrics.commit_seconds += time.perf_counter() - applied_at
            s.metrics.batches += 1
            s.metrics.batched_jobs += len(applied)
            if not self.storage.ok or self.storage.failures:
                self._recovered()
        committed_at = time.perf_counter()
        for hub in s.hubs.values():
            hub.lobby.journal = None  # committed: nothing to roll back any more
        for a in applied:  # the consoles' feed and the estimator's history hear them first
            hub = s.hubs[a.job.client.site]
            s.dirty.add(hub.key)
            try:
                for ev in a.events:
                    pushes.note_event(s, hub, ev)
            except Exception:  # committed: its requests are answered whatever this raises
                log.exception("noting a committed %s failed (the request is answered)", a.job.req.type)
        # committed: every request is answered, whatever a push below may raise
        for a in applied:
            _answer(a.job.fut, P.reply_encoded(a.job.req.id, s.idem[a.job.idem]) if a.job.idem
                    else P.reply(a.job.req.id, a.out.result))
        for job in followers:
            _answer(job.fut, P.reply_encoded(job.req.id, s.idem[job.idem]))
        answered_at = time.perf_counter()
        answered = [*(a.job for a in applied), *followers]
        for job in answered:  # their stages (metrics.STAGES)
            job.batch_at, job.applied_at, job.committed_at, job.answered_at = batch_at, applied_at, committed_at, answered_at
        # the replies leave now, before the batch's pushes are built and sent (a call goes to 50
        # boards): the requester waits for its reply, a board's call may come a moment later
        for client in {id(job.client): job.client for job in answered}.values():
            outbox.pump(s, client)
        if answered:
            await asyncio.sleep(0)  # the frames read meanwhile are seen before the pushes' work
        for a in applied:
            hub = s.hubs[a.job.client.site]
            try:
                for ev in a.events:
                    s._push_event(hub, ev, now)
                for audience, kind, data in a.out.pushes:
                    pushes.push(s, hub, audience, kind, data)
            except Exception:
                log.exception("push after a committed %s failed (the request was answered)", a.job.req.type)
        for hub in s.hubs.values():
            hub.pushed_seq = hub.seq  # every committed event up to here has been pushed

    async def _commit(self, batch: Batch) -> None:
        """Write a batch: on the loop where that costs less than handing it to a thread
        (Store.writes_inline), else — or when another connection holds the lock, or while the
        disk is slow (INLINE_SLOW) — in a worker thread, waiting for the lock as long as storage
        allows. A write that raises has written nothing."""
        store = self.server.store
        if store.writes_inline() and time.monotonic() >= self.inline_after:
            t0 = time.perf_counter()
            try:
                store.write(batch, wait=False)
                return
            except Exception as e:
                if error_cause(e) != "locked":
                    raise
                # another process writes (a CLI, a second tool): wait for its lock off the loop
            finally:
                spent = time.perf_counter() - t0
                if spent > INLINE_SLOW:
                    self.inline_after = time.monotonic() + INLINE_BACKOFF
                    self.server.metrics.slow_inline_commits += 1
                    log.warning("a commit on the event loop took %.0f ms: commits go to a worker thread for %.0f s",
                                spent * 1000, INLINE_BACKOFF)
        await asyncio.to_thread(store.write, batch)

    def _refusal(self, job: Job, e: Exception) -> str:

        metrics = self.server.metrics
        if isinstance(e, RequestError):  # a refusal of any layer (core/errors.py): answered as it is
            metrics.errors[e.code] = metrics.errors.get(e.code, 0) + 1
            return P.error_reply(job.req.id, e)
        log.exception("%s request failed; it alone is undone, the rest of its batch goes on", job.req.type)
        metrics.errors["internal"] = metrics.errors.get("internal", 0) + 1
        return P.error(job.req.id, "internal", P.ERROR_CODES["internal"])

    def _undo(self, hub: SiteHub, mark: _Checkpoint, out: Outcome | None) -> None:
        if out is not None and out.undo is not None:
            out.undo()
        _restore(hub, mark)

    async def _commit_failed(self, e: Exception, start: dict[str, _Checkpoint], applied: list[_Applied],
                             followers: list[Job], fresh: set[str], isolate: bool) -> None:
        s = self.server
        cause = error_cause(e)
        detail = str(getattr(e, "orig", None) or e).splitlines()[0][:300]
        for a in reversed(applied):
            if a.out.undo is not None:
                a.out.undo()
        for key, cp in start.items():
            _restore(s.hubs[key], cp)
            s.hubs[key].lobby.journal = None
        for k in fresh:
            s.idem.pop(k, None)
        st = self.storage
        st.errors[cause] = st.errors.get(cause, 0) + 1
        st.failures += 1
        st.last_error_at = s.clock()
        log.error("commit of %d request(s) failed (%s): %s; memory rolled back", len(applied), cause, detail)
        sites = sorted({a.job.client.site for a in applied})
        if cause == "constraint":
            # the database may hold rows this server does not know (another writer, a restore):
            # then read it again, or every later write would conflict the same way
            await s.reread(await self._stale(sites))
        jobs = [a.job for a in applied] + followers
        if isolate and cause not in SYSTEMIC_CAUSES:
            # maybe one request's rows: commit them one by one (after the re-read, for a
            # constraint), so only the culprit fails
            for job in jobs:
                await self.run_batch([job], isolate=False)
            return
        if cause in SYSTEMIC_CAUSES or st.failures >= 3:
            self._failing(cause, detail)
        msg = f"{P.ERROR_CODES['storage_error']} ({CAUSE_TEXT[cause]}): call IT"
        for job in jobs:
            s.metrics.errors["storage_error"] = s.metrics.errors.get("storage_error", 0) + 1
            _answer(job.fut, P.error(job.req.id, "storage_error", msg))

    async def _stale(self, sites: list[str]) -> list[str]:
        """The sites whose event log has moved on without this server (every write logs events)."""
        s = self.server
        stale = []
        for key in sites:
            try:
                last = await asyncio.to_thread(s.store.last_seq, key)
            except Exception:  # cannot tell: read it again to be safe
                last = None
            if last != s.hubs[key].seq:
                stale.append(key)
        return stale

    def _failing(self, cause: str, detail: str) -> None:
        st = self.storage
        changed = not st.ok or st.cause != cause
        if st.ok:
            st.since = self.server.clock()
        st.ok, st.cause, st.message = False, cause, detail
        if changed:
            log.error("STORAGE FAILING (%s): tickets cannot be saved until this is fixed", cause)
            pushes.push_storage(self.server)

    def _recovered(self) -> None:
        st = self.storage
        was_failing = not st.ok
        st.ok, st.cause, st.message, st.since, st.failures = True, None, "", None, 0
        if was_failing:
            log.warning("storage works again: tickets are saved")
            pushes.push_storage(self.server)


# ---------------------------------------------------------------------------- helpers


def _checkpoint(hub: SiteHub) -> _Checkpoint:
    journal = hub.lobby.journal
    return _Checkpoint(
        journal=len(journal) if journal is not None else 0,
        seq=hub.seq,
        numbers=dict(hub.numbers),
        help_alerts=list(hub.help_alerts),
        reservations=dict(hub.reservations),
        reserved_tickets={k: r.get("ticket") for k, r in hub.reservations.items()},
    )


def _restore(hub: SiteHub, cp: _Checkpoint) -> None:
    """Put a site back as it was at the checkpoint (the copies stay untouched for a later restore)."""
    for token in hub.lobby.rollback(cp.journal):
        hub.by_token.pop(token, None)
    hub.seq = cp.seq
    hub.numbers = dict(cp.numbers)
    hub.help_alerts[:] = cp.help_alerts
    hub.reservations = dict(cp.reservations)
    for k, ticket in cp.reserved_tickets.items():
        hub.reservations[k]["ticket"] = ticket
    hub.waits_cache = None


def _events(hub: SiteHub, job: Job, out: Outcome, now: float) -> list[dict]:

    events = []
    if out.change is not None:
        for ev in out.change.events:
            hub.seq += 1
            events.append({"site": hub.key, "seq": hub.seq, "at": now, "kind": ev.kind, "ticket": ev.ticket,
                           "step": ev.step, "counter": ev.counter, "actor": actor(job.client),
                           "payload": dict(ev.payload)})
    return events


def _rows(out: Outcome, events: list[dict]) -> Batch:
    """One request's rows."""
    part = Batch(events=list(events))
    if out.change is not None:
        for tid, new in out.change.tickets.items():
            if new is not None:
                old = out.change.undo.tickets.get(tid) if out.change.undo else None
                part.tickets[tid] = (old, new)
        part.counters.extend(out.change.counters.values())
    if out.batch is not None:
        part.new_tickets.extend(out.batch.new_tickets)
        part.numbers.update(out.batch.numbers)
        part.events.extend(out.batch.events)
        part.reservations.extend(out.batch.reservations)
    return part


def _merge(batch: Batch, part: Batch) -> None:
    batch.events.extend(part.events)
    for tid, (old, new) in part.tickets.items():
        prev = batch.tickets.get(tid)
        batch.tickets[tid] = (prev[0] if prev else old, new)
    batch.counters.extend(part.counters)
    batch.new_tickets.extend(part.new_tickets)
    batch.numbers.update(part.numbers)
    batch.reservations.extend(part.reservations)


def _inserts_not_updates(batch: Batch) -> None:
    """Tickets issued in this batch are inserted with their latest value, not updated."""
    at = {t.id: i for i, (t, _) in enumerate(batch.new_tickets)}  # one pass: was quadratic per batch
    for tid in [tid for tid in batch.tickets if tid in at]:
        _, new = batch.tickets.pop(tid)
        i = at[tid]
        batch.new_tickets[i] = (new, batch.new_tickets[i][1])

