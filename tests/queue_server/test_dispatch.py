from queue_server.core.dispatch import DispatchPolicy, choose_next, queue_for
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
