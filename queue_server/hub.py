"""Per-site state the server keeps in memory: the lobby, numbering, sequence, recent calls.

Derived views for each kind of client (board, counter console, public page) are built here from
the lobby, with nothing personal outside the counter's own view.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .config import CityConfig, SiteConfig
from .core import estimators as E
from .core.dispatch import DispatchPolicy
from .core.estimate import DepartmentWait, ticket_rank, ticket_wait
from .core.i18n import pick
from .core.lobby import Lobby
from .core.model import Counter, CounterState, StepState, Ticket
from .core.shown import shown_waits
from .queue_reply import QueueReplies

RECENT_CALLS = 20
ABSENT_SHOWN = 8  # numbers called but absent that boards list (short: the counter knows the rest)
WAITS_MAX_AGE = 0.5  # seconds


@dataclass(frozen=True)
class WaitsInputs:
    """A snapshot to compute the waits from (SiteHub.waits_inputs)."""

    now: float
    args: tuple  # shown_waits' arguments
    queued_since: dict[str, int]  # SiteHub.queued_since_cache when it was taken


@dataclass
class SiteHub:
    config: SiteConfig
    lobby: Lobby
    day: str
    seq: int = 0
    # the last seq whose pushes have gone out: a resyncing board is replayed up to here, and hears
    # the events after it live (they may be in memory and still being committed: not yet pushed)
    pushed_seq: int = 0
    numbers: dict[tuple[str, str], int] = field(default_factory=dict)  # (day, prefix) -> last given
    recent_calls: deque = field(default_factory=lambda: deque(maxlen=RECENT_CALLS))
    help_alerts: list[dict] = field(default_factory=list)
    absent: deque = field(default_factory=lambda: deque(maxlen=ABSENT_SHOWN))  # latest no-shows, newest first
    by_token: dict[str, str] = field(default_factory=dict)  # public token -> ticket id
    waits_cache: tuple[float, dict[str, DepartmentWait]] | None = None
    reservations: dict[tuple[str, str], dict] = field(default_factory=dict)  # (day, code) -> row
    # recent calls, services and walk-outs (departure rates, shared counters' shares, speeds)
    history: E.History = field(default_factory=E.History)
    queued_since_cache: dict[str, int] = field(default_factory=dict)  # department -> tickets queued since waits_cache
    # ticket id -> its last print failure, until a print succeeds (queue_server/reprint.py; from the event log)
    not_printed: dict[str, dict] = field(default_factory=dict)
    # kiosk device -> its printer's last failure ({"code", "at"}), until that kiosk prints again:
    # a reprint goes to a kiosk whose printer works (reprint.py; from the event log)
    printers_down: dict[str, dict] = field(default_factory=dict)
    queue_replies: QueueReplies = field(default_factory=QueueReplies)  # `queue` reads' cached fragments
    places: dict[str, tuple[list[int], int]] = field(default_factory=dict, repr=False)  # department_place's

    @property
    def key(self) -> str:
        return self.config.key

    def index_tokens(self) -> None:
        self.by_token = {t.public_token: t.id for t in self.lobby.tickets.values()}

    def next_number(self, day: str, prefix: str) -> int:
        n = self.numbers.get((day, prefix), 0) + 1
        self.numbers[(day, prefix)] = n
        return n

    def department_place(self, department: str) -> dict[str, Any]:
        """Where a department is served, from the site's configuration: its counters' numbers and
        the lowest floor among them (1 when it has none). Kept per hub (the configuration of a
        hub never changes): every ticket issued prints it, and with 212 counters reading the whole
        list cost 37 µs per department, kept 2 µs."""
        place = self.places.get(department)
        if place is None:
            mine = [x for x in self.config.counters if department in x.departments]
            place = self.places[department] = ([x.number for x in mine], min((x.floor for x in mine), default=1))
        return {"counters": list(place[0]), "floor": place[1]}

    def department_name(self, key: str, lang: str) -> str:
        names = self.config.department_names.get(key)
        return pick(names, lang) if names else key

    def waits(self, now: float, fresh: bool = False) -> dict[str, DepartmentWait]:
        """Department waits, recomputed at most every WAITS_MAX_AGE seconds.

        Every issue reply and every public page needs them; an estimate half a second old is as
        good as a fresh one, and recomputing per request was the server's hottest loop.
        The figures are :func:`queue_server.core.estimators.shipped_wait`, the estimator the comparison
        in docs/prediction.md chose.
        """
        if not fresh and self.waits_cache and 0 <= now - self.waits_cache[0] < WAITS_MAX_AGE:
            return self.waits_cache[1]
        inputs = self.waits_inputs(now)
        out = shown_waits(*inputs.args)
        self.set_waits(inputs, out)
        return out

    def waits_inputs(self, now: float) -> WaitsInputs:
        """Everything the waits are computed from, as it is now: immutable tickets and counters in
        new lists, the history already reduced to capacity and departure rates. The flusher
        computes :func:`queue_server.core.shown.shown_waits` from these in a worker thread (it is
        O(queue entries): 4 ms with 1,000, 18 ms with 3,500), while the loop goes on."""
        lobby, h, departments = self.lobby, self.history, self.config.departments
        counters = list(lobby.counters.values())
        waiting = {d: lobby.waiting_count(d) for d in departments}
        args = (list(departments), list(lobby.tickets.values()), counters, lobby.busy_counters(),
                E.capacity(counters, h, waiting, now), E.history_departure_rates(h, departments, now),
                now, lobby.policy)
        return WaitsInputs(now, args, dict(self.queued_since_cache))

    def set_waits(self, inputs: WaitsInputs, out: dict[str, DepartmentWait]) -> None:
        """Cache waits computed from ``inputs``. Tickets issued since those were taken are not
        in them: they stay counted as newcomers (``predictions_for``)."""
        self.waits_cache = (inputs.now, out)
        self.queued_since_cache = {d: n - inputs.queued_since.get(d, 0) for d, n in self.queued_since_cache.items()
                                   if n > inputs.queued_since.get(d, 0)}

    def _head_waited(self, department: str, w: DepartmentWait, now: float) -> float | None:
        head = next((tid for tid, r in w.ranks.items() if r == 0), None)
        t = self.lobby.tickets.get(head) if head else None
        if t is None:
            return None
        since = [s.ready_since for s in t.steps if s.department == department and s.ready_since is not None
                 and s.state is StepState.READY]
        return now - since[0] if since else None

    def observe(self, ev: Mapping[str, Any]) -> None:
        """Feed a committed event to the estimator's history (calls, services)."""
        kind, tid, i = ev["kind"], ev.get("ticket"), ev.get("step")
        t = self.lobby.tickets.get(tid) if tid else None
        if kind == "cancelled" and t is not None:  # walked out: a departure from its queues (QL)
            for s in t.steps:
                if s.state is StepState.CANCELLED and s.ready_since is not None and s.called_at is None:
                    self.history.add_left(ev["at"], s.department)
            return
        if t is None or i is None or i >= len(t.steps):
            return
        s = t.steps[i]
        if kind == "called":
            ready = s.ready_since if s.ready_since is not None else t.issued_at
            self.history.add_call(E.Call(ev["at"], ev["counter"], s.department, max(0.0, ev["at"] - ready)))
        elif kind == "completed" and s.started_at is not None:
            self.history.add_service(E.Service(ev["at"], ev["counter"], s.minutes, (ev["at"] - s.started_at) / 60.0))

    def predictions_for(self, t: Ticket, now: float) -> dict[str, dict[str, Any]]:
        """Estimates for the ticket's steps that are waiting now, by department, as logged in its
        ``issued``/``completed`` event: the minutes shown and the tickets ahead (KPI: forecast
        accuracy, queue_server/kpi_forecast.py).

        Uses the cached waits (recomputing on every issue was the server's hottest loop): a ticket
        not in them yet is a newcomer, shown the newcomer's figure the board shows."""
        shown = self.waits(now)
        out: dict[str, dict[str, Any]] = {}
        for s in t.steps:
            if s.state is not StepState.READY or s.department not in shown or s.department in out:
                continue  # (two ready steps in one department: the first is logged)
            w = shown[s.department]
            if t.id in w.ranks:
                minutes, ahead = w.positions.get(t.id), w.ranks[t.id]
            else:  # queued since the cache: behind the queue it holds and the others queued since
                minutes, ahead = w.wait_minutes, w.waiting + self.queued_since_cache.get(s.department, 0)
                self.queued_since_cache[s.department] = self.queued_since_cache.get(s.department, 0) + 1
            out[s.department] = {"step": s.index, "wait_minutes": None if minutes is None else round(minutes, 1),
                                 "ahead": ahead}
        return out

    # ------------------------------------------------------------------ views
    def counter_view(self, c: Counter) -> dict[str, Any]:
        cfg = self.config.counter(c.number)
        return {
            "number": c.number,
            "departments": sorted(c.departments),
            "floor": cfg.floor if cfg else c.floor,
            "state": c.state.value,
        }

    def call_view(self, ev: Mapping[str, Any]) -> dict[str, Any]:
        """A call as boards show it, built from the event alone (so it can be replayed from the log)."""
        counter = ev["counter"]
        department = ev["payload"].get("department", "")
        cfg = self.config.counter(counter)
        return {
            "seq": ev["seq"],
            "number": ev["payload"].get("number", ""),
            "counter": counter,
            "floor": cfg.floor if cfg else 1,
            "department": department,
            "department_name": dict(self.config.department_names.get(department, {})),
            "at": ev["at"],
            "recall": ev["kind"] == "recalled",
        }

    def board_view(self, now: float) -> dict[str, Any]:
        """What a lobby board shows: calls now and recently, and waits per department."""
        waits = self.waits(now)
        called = []
        for t in self.lobby.open_tickets():
            s = t.active_step
            if s is not None and s.state is StepState.CALLED:
                called.append({"number": t.label, "counter": s.counter, "department": s.department, "at": s.called_at})
        called.sort(key=lambda c: c["at"] or 0)
        serving = []
        for t in self.lobby.open_tickets():
            s = t.active_step
            if s is not None and s.state is StepState.SERVING:
                serving.append({"number": t.label, "counter": s.counter, "department": s.department, "at": s.started_at})
        serving.sort(key=lambda c: c["counter"] or 0)
        return {
            "site": self.key,
            "site_name": dict(self.config.name),
            "seq": self.seq,
            "called": called,
            "serving": serving,
            "absent": [dict(a) for a in self.absent],
            # per department: how long the head of the queue has waited (the admin's live view)
            "queues": [{"department": d, "waiting": w.waiting,
                        "oldest_minutes": None if (h := self._head_waited(d, w, now)) is None else round(h / 60, 1)}
                       for d, w in waits.items()],
            "recent_calls": list(self.recent_calls),
            "waits": self.waits_view(waits),
            "counters": [self.counter_view(c) for c in sorted(self.lobby.counters.values(), key=lambda c: c.number)],
        }

    def waits_view(self, waits: Mapping[str, DepartmentWait]) -> list[dict[str, Any]]:
        return [
            {
                "department": d,
                "name": dict(self.config.department_names.get(d, {})),
                "waiting": w.waiting,
                "wait_minutes": None if w.wait_minutes is None else round(w.wait_minutes, 1),
                "open_counters": round(w.counters, 2),
                **E.wait_fields(w.wait_minutes, w.waiting, w.counters),
            }
            for d, w in waits.items()
        ]

    def ticket_view(self, t: Ticket) -> dict[str, Any]:
        """The staff view of a ticket (plan and state; prefill is added by the server separately)."""
        return {
            "id": t.id,
            "number": t.label,
            "purposes": list(t.purposes),
            "lang": t.lang,
            "state": t.state.value,
            "issued_at": t.issued_at,
            "assistance": t.assistance,
            "reserved_for": t.reserved_for,
            "transfers": t.transfers,
            "rework": t.rework_count,
            "not_printed": t.id in self.not_printed,  # its ticket did not come out of the kiosk
            "steps": [
                {
                    "index": s.index,
                    "department": s.department,
                    "department_name": self.department_name(s.department, "ja"),
                    "procedures": list(s.procedures),
                    "state": s.state.value,
                    "counter": s.counter,
                    "minutes": s.minutes,
                    "recalls": s.recalls,
                    "rework": s.rework,
                    "called_at": s.called_at,
                    "started_at": s.started_at,
                }
                for s in t.steps
            ],
        }

    def public_view(self, t: Ticket, now: float) -> dict[str, Any]:
        """The phone status page: number, position, wait, called state. Nothing personal."""
        s = t.active_step
        called = None
        if s is not None:
            cfg = self.config.counter(s.counter or 0)
            called = {"counter": s.counter, "floor": cfg.floor if cfg else 1, "state": s.state.value}
        waiting = t.closed is None and s is None
        waits = self.waits(now)
        if waiting and not any(t.id in w.ranks for w in waits.values()):
            waits = self.waits(now, fresh=True)  # issued since the cached estimate
        wait = ticket_wait(t, waits) if waiting else None
        # where to wait: the departments this ticket queues for now, their counters and floor
        # (only open counters once any is open: a closed counter is no place to stand)
        go = []
        if waiting:
            for st in t.steps:
                if st.state is not StepState.READY:
                    continue
                cfgs = [x for x in self.config.counters if st.department in x.departments]
                live = [x for x in cfgs if self.lobby.counters.get(x.number) is not None
                        and self.lobby.counters[x.number].state is CounterState.OPEN]
                use = live or cfgs
                go.append({"department": st.department, "name": dict(self.config.department_names.get(st.department, {})),
                           "counters": sorted(x.number for x in use), "floor": min((x.floor for x in use), default=1),
                           "open": bool(live)})
        return {
            "number": t.label,
            "site": self.key,
            "site_name": dict(self.config.name),
            "state": t.state.value,
            "position": ticket_rank(t, waits) if waiting else None,
            "wait_minutes": None if wait is None else round(wait, 1),
            **(E.wait_fields(wait, ticket_rank(t, waits) or 0, 1.0) if waiting else {}),
            "called": called,
            "go": go,
            "steps": [
                {"department": x.department, "name": dict(self.config.department_names.get(x.department, {})), "state": x.state.value}
                for x in t.steps
            ],
            "lang": t.lang,
        }


def make_hub(city: CityConfig, site: SiteConfig, counters: list[Counter], day: str) -> SiteHub:
    policy = DispatchPolicy(aging_bound=city.policy.aging_bound_minutes * 60)
    return SiteHub(config=site, lobby=Lobby(site.key, counters, policy, city.policy.max_recalls), day=day)
