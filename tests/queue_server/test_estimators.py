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
    # QL (3 ahead + 1) / 0.5 per minute = 8, planned work 30, HOL 20 minutes: 0.9 x mean 58/3
    assert E.shipped_wait(3, 0, 0.5, 30.0, 20 * M) == pytest.approx(E.SHIPPED_SCALE * 58 / 3)
    # before 3 calls the planned work stands in for QL; a ticket that waited 5 of the head's 20 has 15 left
    assert E.shipped_wait(3, 0, None, 9.0, 20 * M, waited=5 * M) == pytest.approx(E.SHIPPED_SCALE * 33 / 3)
    # nobody ahead to time: HOL is left out of the mean, not counted as 0
    assert E.shipped_wait(0, 0, 0.5, 4.0, None) == pytest.approx(E.SHIPPED_SCALE * (2 + 4) / 2)


def test_ql_hol_wait_is_the_previous_mean_of_ql_and_hol():
    assert E.ql_hol_wait(0, 1, None, 12.0, None) == 0.0
    assert E.ql_hol_wait(3, 0, 0.5, 99.0, 20 * M) == pytest.approx(14.0)
    assert E.ql_hol_wait(3, 0, None, 9.0, 20 * M, waited=5 * M) == pytest.approx(12.0)


def test_one_at_a_time():
    # both queues would call now: the second waits for the first service (10 planned minutes)
    assert E.one_at_a_time([0.0, 0.0], [10.0, 5.0]) == [0.0, 10.0]
    # the sooner queue goes first whatever the order given; a later queue already long enough keeps its figure
    assert E.one_at_a_time([30.0, 4.0], [5.0, 10.0]) == [30.0, 4.0]
    assert E.one_at_a_time([8.0, 4.0, 9.0], [5.0, 10.0, 3.0]) == [14.0, 4.0, 19.0]
    # unknown stays unknown and takes no turn; one queue is unchanged
    assert E.one_at_a_time([None, 2.0], [5.0, 5.0]) == [None, 2.0]
    assert E.one_at_a_time([7.5], [20.0]) == [7.5]


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


def test_the_hub_takes_a_tickets_simultaneous_queues_one_at_a_time():
    from queue_server.config import load_city
    from queue_server.hub import make_hub

    city = load_city()
    site = city.sites["honcho"]
    counters = [Counter("honcho", n, frozenset({d}), state=CounterState.OPEN) for n, d in ((1, "shimin"), (5, "hoken_nenkin"))]
    hub = make_hub(city, site, counters, "2026-04-01")
    # shimin (10 planned minutes) and hoken_nenkin (8) both open to this ticket at once
    route = (RouteStep("shimin", (), (), 10), RouteStep("hoken_nenkin", (), (), 8))
    hub.lobby.issue(ticket(1, route, now=0.0))
    waits = hub.waits(1.0, fresh=True)
    got = sorted((waits["shimin"].positions["t1"], waits["hoken_nenkin"].positions["t1"]))
    # an idle counter could take each at once, but the citizen is at one of them first
    assert got[0] == 0.0 and got[1] in (8.0, 10.0)
    # a ticket in one queue is not delayed
    hub.lobby.issue(ticket(2, now=2.0))
    assert hub.waits(3.0, fresh=True)["shimin"].positions["t2"] is not None
