"""The consoles' queue feed (queue_server/feed.py, core/queue_feed.py): a console's view built from
its hello snapshot plus the deltas equals a fresh snapshot after any interleaving of moves,
batches that commit or roll back, consoles that come and go, and flushes — and the order the
console derives from its entries is the server's dispatch order."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import example, given, settings
from hypothesis import strategies as st

from queue_server.core import queue_feed as Q
from queue_server.core.model import RouteStep
from queue_server.core.transitions import TransitionError
from queue_server.feed import Feeds

from .core_helpers import lobby, ticket
from .queue_reference import queue_view

DEPTS = ("shimin", "hoken_nenkin", "kosodate")
COUNTERS = ((1, ("shimin",)), (2, ("shimin", "hoken_nenkin")), (3, ("hoken_nenkin", "kosodate")), (4, ("kosodate",)),
            (5, ("shimin",)))
AGING = 300.0


@dataclass
class Hub:
    """What the feed reads of a SiteHub: its key, lobby and seq."""

    key: str
    lobby: object
    seq: int = 0


class Console:
    """A console as counter/web/console.js keeps its queue (onQueue)."""

    def __init__(self, counter: int):
        self.counter = counter
        self.entries: dict[str, dict] = {}
        self.seq: int | None = None
        self.gaps = 0

    def hello(self, entries: list[dict], seq: int) -> None:
        self.on_queue(seq, {"full": True, "entries": entries})

    def on_queue(self, seq: int, data: dict) -> None:
        if data.get("full"):
            self.entries, self.seq = Q.apply({}, data), seq
        elif self.seq is None or seq <= self.seq:
            return
        elif data["from"] > self.seq:
            self.gaps += 1
            self.seq = None
        else:
            self.entries, self.seq = Q.apply(self.entries, data), seq


route_st = st.lists(st.sampled_from(DEPTS), min_size=1, max_size=3, unique=True).map(
    lambda ds: tuple(RouteStep(d, (f"p_{d}",), (0,) if i and ds[0] == "shimin" else (), 5) for i, d in enumerate(ds)))
counter_st = st.sampled_from([n for n, _ in COUNTERS])
move_st = st.one_of(
    st.tuples(st.just("issue"), route_st, st.booleans(), st.sampled_from([None, -200.0, 600.0])),
    st.tuples(st.just("call"), counter_st),
    st.tuples(st.just("call_ticket"), counter_st, st.integers(1, 30)),
    st.tuples(st.just("start"), counter_st),
    st.tuples(st.just("complete"), counter_st),
    st.tuples(st.just("recall"), counter_st),
    st.tuples(st.just("no_show"), counter_st),
    st.tuples(st.just("requeue"), counter_st),
    st.tuples(st.just("transfer"), counter_st, st.sampled_from(DEPTS)),
    st.tuples(st.just("add_procedure"), counter_st, st.sampled_from(DEPTS)),
    st.tuples(st.just("cancel"), st.integers(1, 30)),
)
op_st = st.one_of(
    # a writer batch: its moves, whether its commit succeeds, and a hello while it is written
    st.tuples(st.just("batch"), st.lists(move_st, min_size=1, max_size=4), st.booleans(),
              st.one_of(st.none(), counter_st)),
    st.tuples(st.just("flush")),
    st.tuples(st.just("hello"), counter_st),
    st.tuples(st.just("leave"), st.integers(0, 10)),
    st.tuples(st.just("wait"), st.integers(1, 400)),
)


def _move(lb, op, now: float, issued: list[str]) -> None:
    kind = op[0]
    if kind == "issue":
        n = len(issued) + 1
        issued.append(f"t{n}")
        lb.issue(ticket(n, op[1], now=now, assistance=op[2], reserved_for=None if op[3] is None else now + op[3]))
    elif kind == "call":
        lb.call_next(op[1], now)
    elif kind == "call_ticket":
        if op[2] <= len(issued):
            lb.call_ticket(op[1], issued[op[2] - 1], now)
    elif kind in ("start", "recall", "no_show", "requeue"):
        getattr(lb, kind)(op[1], now)
    elif kind == "complete":
        lb.complete(op[1], now)
    elif kind == "transfer":
        lb.transfer(op[1], op[2], now)
    elif kind == "add_procedure":
        lb.add_procedure(op[1], op[2], [f"extra_{op[2]}"], 3.0, now)
    elif kind == "cancel" and op[1] <= len(issued):
        lb.cancel(issued[op[1] - 1], now)


def _fresh(hub: Hub, counter: int) -> dict[str, dict]:
    deps = hub.lobby.counters[counter].departments
    return {t.id: Q.entry(t, deps) for t in hub.lobby.waiting_for(deps) if Q.entry(t, deps) is not None}


SHIMIN = (RouteStep("shimin", ("p_shimin",), (), 5),)


@settings(max_examples=200, deadline=None)
@given(st.lists(op_st, min_size=1, max_size=40))
# a console that said hello between two flushes holds a version the stream never had: a called
# ticket that is requeued unchanged must still reach it …
@example([("hello", 1), ("batch", [("issue", SHIMIN, False, None)], True, None), ("flush",),
          ("batch", [("call", 1)], True, None), ("hello", 5), ("batch", [("requeue", 1)], True, None)])
# … and a ticket it holds that moves to another department (transfer) must leave it
@example([("hello", 1), ("batch", [("issue", SHIMIN, False, None)], True, None), ("hello", 5),
          ("batch", [("call", 1), ("transfer", 1, "kosodate")], True, None)])
def test_snapshot_plus_deltas_equals_a_fresh_snapshot(ops):
    lb = lobby(*COUNTERS, aging=AGING, max_recalls=1)
    hub = Hub("honcho", lb)
    feeds = Feeds()
    consoles: list[Console] = []
    issued: list[str] = []
    now = 1000.0

    def hello(counter: int) -> None:
        c = Console(counter)
        c.hello(*feeds.join(hub, c, lb.counters[counter].departments))  # type: ignore[arg-type]
        consoles.append(c)

    def flush() -> None:
        for clients, seq, data in feeds.flush(hub, [(c, lb.counters[c.counter].departments) for c in consoles]):
            for c in clients:
                c.on_queue(seq, data)

    for op in ops:
        now += 1
        if op[0] == "batch":
            # as writer.run_batch: moves on a journal, a refused one undone alone; the commit
            # logs the events (seq) and records them, or fails and rolls the batch back
            lb.journal = []
            events = []
            for i, move in enumerate(op[1]):
                mark = len(lb.journal)
                try:
                    before = len(lb.journal)
                    _move(lb, move, now, issued)
                    events += [(tid) for ch in lb.journal[before:] for tid in ch.tickets]
                except TransitionError:
                    lb.rollback(mark)
                if op[3] is not None and i == 0:
                    hello(op[3])  # a console says hello while the batch is being written
            if op[2]:
                lb.journal = None
                for tid in events:
                    hub.seq += 1
                    feeds.record(hub, {"seq": hub.seq, "ticket": tid})  # type: ignore[arg-type]
            else:
                lb.rollback(0)
                lb.journal = None
                del issued[len([t for t in issued if t in lb.tickets]):]
        elif op[0] == "flush":
            flush()
        elif op[0] == "hello":
            hello(op[1])
        elif op[0] == "leave" and consoles:
            consoles.pop(op[1] % len(consoles))
        elif op[0] == "wait":
            now += op[1]
    flush()
    for c in consoles:
        assert c.gaps == 0, "a lossless feed never shows a gap"
        assert c.entries == _fresh(hub, c.counter), f"counter {c.counter}'s view differs from a fresh snapshot"
        # the order and marks the console derives are the server's `queue` reply
        server = queue_view(lb, lb.counters[c.counter], now)
        assert [Q.shown(e, now, lb.policy) for e in Q.order(c.entries.values(), now, lb.policy)] == server


def test_a_console_that_missed_a_delta_sees_the_gap_and_a_resync_brings_it_back():
    lb = lobby(*COUNTERS, aging=AGING)
    hub = Hub("honcho", lb)
    feeds = Feeds()
    a, b = Console(1), Console(5)  # the same departments: one stream, one message
    for c in (a, b):
        c.hello(*feeds.join(hub, c, lb.counters[c.counter].departments))  # type: ignore[arg-type]
    consoles = [(a, lb.counters[1].departments), (b, lb.counters[5].departments)]

    def issue(n: int) -> None:
        lb.issue(ticket(n, now=float(n)))
        hub.seq += 1
        feeds.record(hub, {"seq": hub.seq, "ticket": f"t{n}"})  # type: ignore[arg-type]

    issue(1)
    out = feeds.flush(hub, consoles)
    assert len(out) == 1 and set(out[0][0]) == {a, b}, "consoles of one department set share one message"
    b.on_queue(out[0][1], out[0][2])  # a misses it
    issue(2)
    (clients, seq, data), = feeds.flush(hub, consoles)
    for c in clients:
        c.on_queue(seq, data)
    assert a.gaps == 1 and a.seq is None and b.gaps == 0
    feeds.want_snapshot(hub, a)  # type: ignore[arg-type]
    out = feeds.flush(hub, consoles)
    assert [(clients, d.get("full")) for clients, _, d in out] == [([a], True)]
    a.on_queue(out[0][1], out[0][2])
    assert a.entries == b.entries == _fresh(hub, 1) and set(a.entries) == {"t1", "t2"}


def test_a_change_of_another_department_sends_nothing():
    lb = lobby(*COUNTERS, aging=AGING)
    hub = Hub("honcho", lb)
    feeds = Feeds()
    a = Console(4)  # kosodate only
    a.hello(*feeds.join(hub, a, lb.counters[4].departments))  # type: ignore[arg-type]
    lb.issue(ticket(1, now=1.0))  # a shimin certificate
    hub.seq += 1
    feeds.record(hub, {"seq": 1, "ticket": "t1"})  # type: ignore[arg-type]
    assert feeds.flush(hub, [(a, lb.counters[4].departments)]) == []
