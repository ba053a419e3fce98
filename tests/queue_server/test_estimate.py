import pytest

from queue_server.core.dispatch import DispatchPolicy
from queue_server.core.estimate import department_wait, ticket_position, visit_minutes
from queue_server.core.model import Counter, CounterState, RouteStep
from queue_server.core.transitions import call, start

from .core_helpers import ticket

P = DispatchPolicy()


def c(n, *deps, state=CounterState.OPEN):
    return Counter("honcho", n, frozenset(deps), state=state)


def test_idle_counter_means_no_wait_for_the_first_in_line():
    w = department_wait("shimin", [ticket(1, now=0)], [c(1, "shimin")], 10, P)
    assert w.waiting == 1 and w.positions["t1"] == 0.0
    assert w.wait_minutes == pytest.approx(5.0)  # the newcomer waits for t1's 5 planned minutes


def test_waits_add_the_planned_minutes_ahead_and_the_residual_work():
    serving = start(call(ticket(9, (RouteStep("shimin", (), (), 12),), now=0), 0, 1, 0), 0, 1, 60)  # 1 min spent
    waiting = [ticket(1, (RouteStep("shimin", (), (), 10),), now=1), ticket(2, now=2)]
    w = department_wait("shimin", [serving, *waiting], [c(1, "shimin"), c(2, "shimin", "kosodate")], 120, P)
    # c_d = 1 + 1/2; counter 2 is idle so t1 goes at once; t2 waits for 11 min residual + 10 planned
    assert w.counters == pytest.approx(1.5)
    assert w.positions["t1"] == 0.0
    assert w.positions["t2"] == pytest.approx((11 + 10) / 1.5)


def test_no_open_counter_gives_an_unknown_wait():
    w = department_wait("kaigo", [ticket(1)], [c(1, "kaigo", state=CounterState.PAUSED)], 0, P)
    assert w.wait_minutes is None
    assert visit_minutes([("kaigo", 5)], {"kaigo": w}) is None


def test_position_counts_tickets_ahead_in_the_shortest_queue():
    ts = [ticket(1, now=0), ticket(2, now=1), ticket(3, now=2)]
    assert ticket_position(ts[2], ts, 5, P) == 2


def test_all_department_waits_agrees_with_one_department_at_a_time():
    from queue_server.core.estimate import all_department_waits

    route = (RouteStep("shimin", (), (), 7), RouteStep("kosodate", (), (0,), 4))
    ts = [ticket(i, route if i % 2 else (RouteStep("kosodate", (), (), 3),), now=i) for i in range(1, 12)]
    ts[0] = start(call(ts[0], 0, 1, 20), 0, 1, 30)
    counters = [c(1, "shimin"), c(2, "shimin", "kosodate"), c(3, "kosodate")]
    together = all_department_waits(["shimin", "kosodate"], ts, counters, 100, P)
    for d in ("shimin", "kosodate"):
        assert together[d] == department_wait(d, ts, counters, 100, P)


def test_ranks_from_the_waits_match_ticket_position():
    from queue_server.core.estimate import all_department_waits, ticket_rank

    ts = [ticket(i, now=i) for i in range(1, 6)]
    waits = all_department_waits(["shimin"], ts, [c(1, "shimin")], 10, P)
    assert [ticket_rank(t, waits) for t in ts] == [ticket_position(t, ts, 10, P) for t in ts] == [0, 1, 2, 3, 4]
