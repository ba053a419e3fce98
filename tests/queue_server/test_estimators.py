"""Pure estimator functions (queue_server/core/estimators.py) and the wording every client shares."""

from __future__ import annotations

import pytest

from queue_server.core import estimators as E
from queue_server.core.dispatch import DispatchPolicy
from queue_server.core.estimate import all_department_waits
from queue_server.core.model import Counter, CounterState, RouteStep

from .core_helpers import ticket

M = 60.0


def _c(n, *depts, open_=True):
    return Counter("honcho", n, frozenset(depts), state=CounterState.OPEN if open_ else CounterState.CLOSED)


def test_a_shared_counter_gives_all_its_time_to_the_only_busy_queue():
    c = _c(4, "shimin", "hoken_nenkin")
    shares = E.counter_shares([c], [], {"shimin": 3, "hoken_nenkin": 0}, 0.0)
    assert shares[4]["shimin"] == 1.0
    # a newcomer to hoken_nenkin shares the counter with the busy shimin queue
    assert shares[4]["hoken_nenkin"] == pytest.approx(0.5)


def test_shares_follow_recent_calls_not_one_over_n():
    c = _c(4, "shimin", "hoken_nenkin")
    calls = [E.Call(t * M, 4, "shimin", 0.0) for t in range(9)] + [E.Call(10 * M, 4, "hoken_nenkin", 0.0)]
    shares = E.counter_shares([c], calls, {"shimin": 5, "hoken_nenkin": 5}, 20 * M)
    assert shares[4]["shimin"] == pytest.approx(10 / 12)
    assert shares[4]["hoken_nenkin"] == pytest.approx(2 / 12)
    # calls older than the window no longer count
    late = E.counter_shares([c], calls, {"shimin": 5, "hoken_nenkin": 5}, 20 * M + E.SHARE_WINDOW)
    assert late[4]["shimin"] == pytest.approx(0.5)


def test_closed_counters_give_nothing_and_speed_scales_capacity():
    h = E.History()
    for i in range(10):
        h.add_service(E.Service(i * 10 * M, 2, planned=10.0, actual=20.0))  # a newcomer at half speed
    cap = E.capacity([_c(1, "shimin", open_=False), _c(2, "shimin")], h, {"shimin": 4}, 100 * M)
    assert 1 not in cap
    assert 0.5 <= cap[2]["shimin"] < 0.65  # 10 services at 0.5 pulled towards 1 by the prior


def test_capacity_changes_the_formula_for_a_shared_counter():
    policy = DispatchPolicy()
    tickets = [ticket(i, (RouteStep("shimin", ("juminhyo",), (), 10),), now=float(i)) for i in range(3)]
    counters = [_c(4, "shimin", "hoken_nenkin")]
    base = all_department_waits(["shimin"], tickets, counters, 100.0, policy)["shimin"]
    cap = E.capacity(counters, E.History(), {"shimin": 3, "hoken_nenkin": 0}, 100.0)
    better = all_department_waits(["shimin"], tickets, counters, 100.0, policy, capacity=cap)["shimin"]
    assert base.wait_minutes == pytest.approx(60.0)  # 30 planned minutes / half a counter
    assert better.wait_minutes == pytest.approx(30.0)  # the other queue is empty: the whole counter


def test_departure_rate_counts_walkouts_and_needs_three_calls():
    calls = [E.Call(t * M, 1, "shimin", 0.0) for t in (1, 2)]
    assert E.departure_rate(calls, "shimin", 10 * M) is None
    calls.append(E.Call(3 * M, 1, "shimin", 0.0))
    assert E.departure_rate(calls, "shimin", 10 * M) == pytest.approx(3 / (E.RATE_WINDOW / M))
    left = [(4 * M, "shimin"), (5 * M, "zeimu")]
    assert E.departure_rate(calls, "shimin", 10 * M, left) == pytest.approx(4 / (E.RATE_WINDOW / M))


def test_shipped_wait():
    # an idle counter takes it at once; no counter: unknown
    assert E.shipped_wait(0, 1, None, 12.0, None) == 0.0
    assert E.shipped_wait(3, 0, 0.5, None, 600) is None
    # QL (3 ahead + 1) / 0.5 per minute = 8, HOL 20 minutes: mean 14
    assert E.shipped_wait(3, 0, 0.5, 99.0, 20 * M) == pytest.approx(14.0)
    # before 3 calls the planned work stands in for QL; a ticket that waited 5 of the head's 20 has 15 left
    assert E.shipped_wait(3, 0, None, 9.0, 20 * M, waited=5 * M) == pytest.approx(12.0)


@pytest.mark.parametrize(
    ("minutes", "waiting", "kind", "low", "high"),
    [
        (None, 0, "closed", None, None),
        (1.5, 2, "soon", None, None),
        (8.0, 2, "minutes", None, None),
        (24.0, 5, "range", 15, 40),
        (35.0, 0, "few_counters", 25, 55),
    ],
)
def test_wording(minutes, waiting, kind, low, high):
    f = E.wait_fields(minutes, waiting, 1.0)
    assert (f["wait_kind"], f["wait_low"], f["wait_high"]) == (kind, low, high)
