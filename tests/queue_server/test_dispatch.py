from hypothesis import given, settings
from hypothesis import strategies as st

from queue_server.core.dispatch import DispatchPolicy, choose_next, dispatch_key, queue_for, ready_steps
from queue_server.core.model import RouteStep
from queue_server.core.transitions import call

from .core_helpers import ticket

P = DispatchPolicy(aging_bound=600, reservation_grace=60)


def test_longest_ready_wait_first_within_a_class():
    ts = [ticket(2, now=20), ticket(1, now=10), ticket(3, now=30)]
    assert [t.number for t, _ in queue_for(ts, {"shimin"}, 40, P)] == [1, 2, 3]


def test_assistance_before_walk_ins_until_the_aging_bound():
    walk_in = ticket(1, now=0)
    helped = ticket(2, now=100, assistance=True)
    assert choose_next([walk_in, helped], {"shimin"}, 500, P)[0].number == 2
    # at 600 s the walk-in has waited the bound: it goes first
    assert choose_next([walk_in, helped], {"shimin"}, 600, P)[0].number == 1


def test_reservation_counts_only_when_its_slot_is_due():
    walk_in = ticket(1, now=0)
    booked = ticket(2, now=10, reserved_for=1000)
    assert choose_next([walk_in, booked], {"shimin"}, 100, P)[0].number == 1
    assert choose_next([walk_in, booked], {"shimin"}, 900, P)[0].number == 1  # not due before 940
    # due: before the escalated walk-in too (a booking is a promised time, docs/planning.md)
    assert choose_next([walk_in, booked], {"shimin"}, 950, P)[0].number == 2
    fresh = ticket(3, now=900)
    assert choose_next([fresh, booked], {"shimin"}, 950, P)[0].number == 2
    earlier_slot = ticket(4, now=20, reserved_for=990)
    assert [t.number for t, _ in queue_for([walk_in, booked, earlier_slot], {"shimin"}, 995, P)] == [4, 2, 1]


def test_counter_sees_only_its_departments_and_not_tickets_at_another_counter():
    a = ticket(1, (RouteStep("shimin"), RouteStep("kosodate")), now=0)
    b = ticket(2, (RouteStep("kosodate"),), now=5)
    assert choose_next([a, b], {"kosodate"}, 10, P)[0].number == 1
    a_called = call(a, 0, 1, 10)  # at the shimin counter now
    assert choose_next([a_called, b], {"kosodate"}, 11, P)[0].number == 2
    assert choose_next([a_called, b], {"zeimu"}, 11, P) is None


# ---------------------------------------------------------------------------- queue_for, in line, against its definition

DEPARTMENTS = ("shimin", "kosodate", "zeimu")


def _by_definition(tickets, departments, now, policy):
    """The queue as dispatch.py's docstring defines it: each ticket at its smallest dispatch_key
    over its ready steps (the first of equal ones), ordered by that key."""
    entries = []
    for t in tickets:
        steps = ready_steps(t, departments)
        if steps:
            key, step = min(((dispatch_key(t, s, now, policy), s) for s in steps), key=lambda e: e[0])
            entries.append((key, t, step))
    entries.sort(key=lambda e: e[0])
    return [(t, s) for _, t, s in entries]


@st.composite
def waiting_rooms(draw):
    tickets = []
    for number in range(1, draw(st.integers(0, 25)) + 1):
        route = tuple(RouteStep(d) for d in draw(st.lists(st.sampled_from(DEPARTMENTS), min_size=1, max_size=3)))
        t = ticket(number, route, now=100.0 * draw(st.integers(0, 9)), assistance=draw(st.booleans()),
                   reserved_for=draw(st.none() | st.integers(0, 75).map(lambda k: 20.0 * k)))
        if draw(st.integers(0, 4)) == 0:  # at another counter: in no queue
            t = call(t, 0, 99, t.issued_at + 1)
        tickets.append(t)
    deps = frozenset(draw(st.lists(st.sampled_from(DEPARTMENTS), min_size=1, max_size=3)))
    return tickets, deps, 100.0 * draw(st.integers(0, 20))  # on the bounds often (aging 600, grace 60)


@given(waiting_rooms())
@settings(max_examples=300, deadline=None)
def test_queue_for_is_the_queue_by_its_definition(room):
    tickets, deps, now = room
    got = queue_for(tickets, deps, now, P)
    assert [(t.number, s.index) for t, s in got] == \
        [(t.number, s.index) for t, s in _by_definition(tickets, deps, now, P)]
    first = choose_next(tickets, deps, now, P)
    assert (first[0].number, first[1].index) == (got[0][0].number, got[0][1].index) if got else first is None
