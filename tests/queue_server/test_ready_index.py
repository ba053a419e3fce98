"""The ready index (core/ready_index.py): a call chosen from its few candidates is the call the
full scan of the counter's queue chooses, over random days with bookings, assistance, ties,
several departments per counter, tickets at other counters, and rolled-back moves."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from queue_server.core.dispatch import choose_next
from queue_server.core.lobby import Lobby
from queue_server.core.model import RouteStep, StepState
from queue_server.core.ready_index import ReadyIndex
from queue_server.core.transitions import TransitionError, new_ticket

from .core_helpers import lobby

DEPTS = ("shimin", "hoken_nenkin", "kosodate")
COUNTERS = ((1, ("shimin",)), (2, ("shimin", "hoken_nenkin")), (3, ("hoken_nenkin", "kosodate")),
            (4, ("kosodate", "shimin", "hoken_nenkin")))
AGING = 300.0
GRACE = 300.0  # the core's default reservation_grace

# a department twice: two steps there; a step with no prerequisite is ready while the ticket is at
# another counter for its first step
route_st = st.lists(st.tuples(st.sampled_from(DEPTS), st.booleans()), min_size=1, max_size=3).map(
    lambda ds: tuple(RouteStep(d, (f"p_{d}_{i}",), (0,) if i and after else (), 5) for i, (d, after) in enumerate(ds))
)
counter_st = st.sampled_from([n for n, _ in COUNTERS])
op_st = st.one_of(
    # number from a small range and two prefixes: tickets tied on (issue time, number) happen
    st.tuples(st.just("issue"), route_st, st.booleans(), st.one_of(st.none(), st.integers(-900, 900)),
              st.integers(1, 4), st.sampled_from(["", "A"])),
    st.tuples(st.just("call_next"), counter_st),
    st.tuples(st.just("call_ticket"), counter_st, st.integers(0, 50)),
    st.tuples(st.just("start"), counter_st),
    st.tuples(st.just("complete"), counter_st),
    st.tuples(st.just("recall"), counter_st),
    st.tuples(st.just("no_show"), counter_st),
    st.tuples(st.just("requeue"), counter_st),
    st.tuples(st.just("transfer"), counter_st, st.sampled_from(DEPTS)),
    st.tuples(st.just("cancel"), st.integers(0, 50)),
    st.tuples(st.just("wait"), st.sampled_from([0, 0, 1, 60, 299, 300, 301, 900])),
    st.tuples(st.just("mark")),
    st.tuples(st.just("rollback")),
)


def _full_scan(lb: Lobby, counter: int, now: float):
    deps = lb.counters[counter].departments
    return choose_next(lb.waiting_for(deps), deps, now, lb.policy)


def _from_index(lb: Lobby, counter: int, now: float):
    deps = lb.counters[counter].departments
    return choose_next(lb._ready.candidates(deps, lb.tickets), deps, now, lb.policy)


def _ids(chosen):
    return None if chosen is None else (chosen[0].id, chosen[1].index)


def _rebuilt(lb: Lobby) -> ReadyIndex:
    fresh = ReadyIndex()
    for t in lb.tickets.values():
        fresh.add(t)
    return fresh


def _apply(lb: Lobby, op: tuple, now: float, seq: list[int]) -> None:
    kind = op[0]
    ids = sorted(lb.tickets)
    if kind == "issue":
        _, route, assistance, booked, number, prefix = op
        seq[0] += 1
        # ids not in issue order: among tied tickets, the order they came in decides, not the id
        lb.issue(new_ticket(ticket_id=f"t{seq[0] * 7919 % 1000:03d}", site="honcho", day="2026-04-01", prefix=prefix,
                            number=number, purposes=("certificate",), lang="ja", route=route, now=now,
                            public_token=f"tok{seq[0]}", assistance=assistance,
                            reserved_for=None if booked is None else now + booked))
    elif kind == "call_next":
        lb.call_next(op[1], now)
    elif kind == "call_ticket" and ids:
        lb.call_ticket(op[1], ids[op[2] % len(ids)], now)
    elif kind == "transfer":
        lb.transfer(op[1], op[2], now)
    elif kind == "cancel" and ids:
        lb.cancel(ids[op[1] % len(ids)], now)
    elif kind in ("start", "complete", "recall", "no_show", "requeue"):
        getattr(lb, kind)(op[1], now)


@settings(max_examples=500, deadline=None)
@given(st.lists(op_st, min_size=1, max_size=80))
def test_the_call_from_the_candidates_is_the_call_of_the_full_scan(ops):
    lb = lobby(*COUNTERS, aging=AGING)
    lb.journal = []
    mark = 0
    now, seq = 1000.0, [0]
    for op in ops:
        if op[0] == "wait":
            now += op[1]
            continue
        if op[0] == "mark":
            mark = len(lb.journal)
            continue
        if op[0] == "rollback":  # the writer undoing a failed request or batch
            lb.rollback(min(mark, len(lb.journal)))
            mark = len(lb.journal)
        else:
            with contextlib.suppress(TransitionError):  # refused moves change nothing
                _apply(lb, op, now, seq)
        for n, _ in COUNTERS:
            for at in (now, now + GRACE, now + AGING + 1):  # bookings falling due, tickets escalating
                assert _ids(_from_index(lb, n, at)) == _ids(_full_scan(lb, n, at))
        fresh = _rebuilt(lb)  # incremental upkeep equals an index built from scratch
        for d in DEPTS:
            assert set(lb._ready.waiting_for([d])) == set(fresh.waiting_for([d]))
        assert {k: v for k, v in lb._ready._by_time.items() if v} == {k: v for k, v in fresh._by_time.items() if v}
        assert {k: v for k, v in lb._ready._booked.items() if v} == {k: v for k, v in fresh._booked.items() if v}


def test_a_call_looks_at_a_few_tickets_not_the_whole_queue():
    lb = lobby((1, ("shimin",)), (2, ("shimin",)))
    seq = [0]
    for i in range(500):
        _apply(lb, ("issue", (RouteStep("shimin", ("juminhyo",), (), 5),), i % 50 == 0, None, i + 1, ""), float(i),
               seq)
    got, _ = lb.call_next(1, 1000.0)
    cands = lb._ready.candidates(lb.counters[2].departments, lb.tickets)
    # the oldest free walk-in and the oldest free assistance ticket; the first is at counter 1 now
    assert [t.number for t in cands] == [2, 51]
    assert got is not None and got.number == 1
    assert lb.waiting_count("shimin") == 499
    assert all(s.state is StepState.READY for s in cands[0].steps)


def test_the_oldest_ticket_of_a_queue_is_passed_over_while_it_is_at_another_counter():
    """A ticket with two steps ready at once is called for the first: the second department calls
    the next one behind it, not nobody (the index skips tickets at a counter)."""
    lb = lobby((1, ("shimin",)), (3, ("kosodate",)))
    seq = [0]
    both = (RouteStep("shimin", ("juminhyo",), (), 5), RouteStep("kosodate", ("jido_teate",), (), 5))
    _apply(lb, ("issue", both, False, None, 1, ""), 0.0, seq)
    _apply(lb, ("issue", both[1:], False, None, 2, ""), 1.0, seq)
    first, _ = lb.call_next(1, 2.0)
    assert first is not None and first.number == 1
    got, _ = lb.call_next(3, 3.0)
    assert got is not None and got.number == 2


def test_a_ticket_loaded_again_leaves_no_entry_of_its_older_version():
    lb = lobby((1, ("shimin",)), (3, ("kosodate",)))
    seq = [0]
    both = (RouteStep("shimin", ("juminhyo",), (), 5), RouteStep("kosodate", ("jido_teate",), (), 5))
    _apply(lb, ("issue", both, False, None, 1, ""), 0.0, seq)
    older = next(iter(lb.tickets.values()))
    _apply(lb, ("issue", both[1:], False, None, 2, ""), 1.0, seq)
    lb.call_next(3, 2.0)  # ticket 1 is called at kosodate; its shimin step still waits
    newer = lb.tickets[older.id]
    lb.load([older, newer])  # the same ticket twice, the later version last
    assert {k: v for k, v in _rebuilt(lb)._by_time.items() if v} == {k: v for k, v in lb._ready._by_time.items() if v}
    assert _ids(_from_index(lb, 1, 4.0)) == _ids(_full_scan(lb, 1, 4.0))
