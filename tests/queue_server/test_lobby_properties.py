"""Property tests of the lobby: random interleavings of kiosk and counter moves."""

from collections import Counter as Tally

from hypothesis import given, settings
from hypothesis import strategies as st

from queue_server.core.dispatch import priority, ready_steps
from queue_server.core.model import ACTIVE_STEP_STATES, RouteStep, StepState
from queue_server.core.transitions import TransitionError

from .core_helpers import lobby, ticket

DEPTS = ("shimin", "hoken_nenkin", "kosodate")
COUNTERS = ((1, ("shimin",)), (2, ("shimin", "hoken_nenkin")), (3, ("hoken_nenkin", "kosodate")))
AGING = 300.0

route_st = st.lists(st.sampled_from(DEPTS), min_size=1, max_size=3, unique=True).map(
    lambda ds: tuple(RouteStep(d, (f"p_{d}",), (0,) if i and ds[0] == "shimin" else (), 5) for i, d in enumerate(ds))
)
op_st = st.one_of(
    st.tuples(st.just("issue"), route_st, st.booleans()),
    st.tuples(st.just("call"), st.sampled_from([1, 2, 3])),
    st.tuples(st.just("start"), st.sampled_from([1, 2, 3])),
    st.tuples(st.just("complete"), st.sampled_from([1, 2, 3])),
    st.tuples(st.just("recall"), st.sampled_from([1, 2, 3])),
    st.tuples(st.just("no_show"), st.sampled_from([1, 2, 3])),
    st.tuples(st.just("transfer"), st.sampled_from([1, 2, 3]), st.sampled_from(DEPTS)),
    st.tuples(st.just("wait"), st.integers(1, 400)),
)


def _check_call_order(lb, chosen, counter, now):
    """The chosen ticket obeys FIFO within its class and the aging bound, checked independently."""
    deps = lb.counters[counter].departments
    cands = []
    for t in lb.open_tickets():
        for s in ready_steps(t, deps):
            cands.append((t, s, now - s.ready_since))
    t0, s0 = chosen
    w0 = now - s0.ready_since
    starving = [c for c in cands if c[2] >= AGING]
    if starving:
        # someone waited past the bound: the call goes to the longest-waiting of them
        assert w0 >= max(c[2] for c in starving)
        return
    cls0 = priority(t0, now, lb.policy)
    for t, _s, w in cands:
        assert priority(t, now, lb.policy) <= cls0, "a higher class was passed over"
        if priority(t, now, lb.policy) == cls0:
            assert w <= w0, "FIFO within a class broken"


@settings(max_examples=150, deadline=None)
@given(st.lists(op_st, min_size=1, max_size=60))
def test_random_moves_keep_the_lobby_invariants(ops):
    lb = lobby(*COUNTERS, aging=AGING, max_recalls=1)
    now = 0.0
    completed = Tally()
    n = 0
    for op in ops:
        now += 1
        try:
            if op[0] == "issue":
                n += 1
                lb.issue(ticket(n, op[1], now=now, assistance=op[2]))
            elif op[0] == "call":
                before = [t for t in lb.open_tickets()]
                got, _ = lb.call_next(op[1], now)
                if got is not None:
                    old = next(t for t in before if t.id == got.id)
                    step = got.active_step
                    lb_view = lobby(*COUNTERS, aging=AGING)
                    lb_view.load(before)
                    _check_call_order(lb_view, (old, old.steps[step.index]), op[1], now)
            elif op[0] == "complete":
                t, ch = lb.complete(op[1], now)
                completed[(t.id, ch.events[0].step)] += 1
            elif op[0] == "transfer":
                lb.transfer(op[1], op[2], now)
            elif op[0] == "wait":
                now += op[1]
            else:
                getattr(lb, op[0])(op[1], now)
        except TransitionError:
            pass  # illegal moves are refused; the invariants must still hold
        # invariant: a ticket is never active at two counters, a counter never has two tickets
        at_counter = Tally()
        for t in lb.tickets.values():
            active = [s for s in t.steps if s.state in ACTIVE_STEP_STATES]
            assert len(active) <= 1
            for s in active:
                at_counter[s.counter] += 1
                assert lb.ticket_at(s.counter).id == t.id
        assert all(v == 1 for v in at_counter.values())
        # invariant: the per-department index holds exactly the open tickets with a ready step there
        for d in DEPTS:
            expected = {t.id for t in lb.open_tickets() if any(s.state is StepState.READY and s.department == d
                                                                 for s in t.steps)}
            assert {t.id for t in lb.waiting_for([d])} == expected
    # invariant: no step is completed twice
    assert all(v == 1 for v in completed.values())
    for t in lb.tickets.values():
        assert sum(1 for s in t.steps if s.state is StepState.DONE) == sum(
            v for (tid, _), v in completed.items() if tid == t.id
        )


def test_undo_restores_the_lobby_exactly():
    lb = lobby(*COUNTERS)
    lb.issue(ticket(1, now=0))
    before = dict(lb.tickets)
    got, change = lb.call_next(1, 5)
    assert got is not None and lb.ticket_at(1) is not None
    lb.apply(change.undo)
    assert lb.tickets == before and lb.ticket_at(1) is None
