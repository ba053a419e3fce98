"""The windows' counts and sums (queue_server/core/history_windows.py) give capacity and the
departure rates exactly the figures of the scans: random days of calls, services and walk-outs fed
to a History one by one, queried as time goes on, and compared to the reference composition
(tests/queue_server/waits_reference.py) by repr, to the last bit and in the same order."""

from __future__ import annotations

from collections import deque

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queue_server.core import estimators as E
from queue_server.core.model import Counter, CounterState

from . import waits_reference as R

DEPTS = ("shimin", "zeimu", "kaigo")
COUNTERS = [
    Counter("honcho", 1, frozenset({"shimin"}), state=CounterState.OPEN),
    Counter("honcho", 2, frozenset({"shimin", "zeimu"}), state=CounterState.OPEN),
    Counter("honcho", 3, frozenset({"zeimu", "kaigo"}), state=CounterState.OPEN),
    Counter("honcho", 4, frozenset({"shimin", "zeimu", "kaigo"}), state=CounterState.OPEN),
    Counter("honcho", 5, frozenset({"kaigo"}), state=CounterState.CLOSED),
]
# steps of up to 40 minutes: a day of them crosses every window (45, 60 and 90 minutes) many times
step = st.floats(0, 40 * 60, allow_nan=False)
minutes = st.sampled_from([0.0, 2.5, 5.0, 7.5, 10.0 / 3, 20.0, 0.1])
actual = st.sampled_from([0.0, -1.0, 1.7, 4.25, 10.0 / 7, 33.3, float("nan")])
op = st.one_of(
    st.tuples(st.just("call"), step, st.integers(1, 5), st.sampled_from(DEPTS)),
    st.tuples(st.just("service"), step, st.integers(1, 5), minutes, actual),
    st.tuples(st.just("left"), step, st.sampled_from(DEPTS)),
    st.tuples(st.just("query"), step, st.dictionaries(st.sampled_from(DEPTS), st.integers(0, 3))),
)


def _check(h: E.History, now: float, waiting: dict[str, int]) -> None:
    w = h.windows
    if w.usable(now, h.calls, h.services, h.left):  # the sums themselves, before the prior absorbs a last bit
        # (by counter: the dicts' order is not the scan's, and nothing reads it)
        assert [repr(sorted(x.items())) for x in w.service_sums(now)] == \
            [repr(sorted(x.items())) for x in E.service_sums(h.services, now)]
        assert (w.share_counts(now), w.called()) == E.call_counts(h.calls, now)
    assert repr(E.capacity(COUNTERS, h, waiting, now)) == repr(R.capacity(COUNTERS, h, waiting, now))
    rates = E.history_departure_rates(h, DEPTS, now)
    assert rates == {d: R.departure_rate(h.calls, d, now, h.left, h.start) for d in DEPTS}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, max_size=120), st.booleans())
def test_windows_give_the_scans_figures(ops, backwards):
    h = E.History()
    t = 9 * 3600.0
    used = 0
    for i, o in enumerate(ops):
        # now and then an entry stamped earlier than the one before (a clock set back), if drawn
        t += -o[1] / 4 if backwards and i % 17 == 16 else o[1]
        kind = o[0]
        if kind == "call":
            h.add_call(E.Call(t, o[2], o[3], 0.0))
        elif kind == "service":
            h.add_service(E.Service(t, o[2], o[3], o[4]))
        elif kind == "left":
            h.add_left(t, o[2])
        else:
            used += h.windows.usable(t, h.calls, h.services, h.left)
            _check(h, t, o[2])
            _check(h, t, o[2])  # the same instant twice: nothing dropped twice
    if not backwards and any(o[0] == "query" for o in ops):
        assert used, "the windows were never used"


def test_the_windows_are_used_and_drop_what_leaves_them():
    h = E.History()
    h.add_call(E.Call(0.0, 2, "shimin", 0.0))
    h.add_service(E.Service(0.0, 2, 10.0, 20.0))
    h.add_call(E.Call(30 * 60.0, 2, "zeimu", 0.0))
    h.add_service(E.Service(30 * 60.0, 2, 10.0, 5.0))
    w = h.windows
    assert w.usable(60 * 60.0, h.calls, h.services, h.left)
    assert w.share_counts(60 * 60.0) == {(2, "shimin"): 1, (2, "zeimu"): 1}  # 0 <= at: still inside
    assert w.share_counts(60 * 60.0 + 1) == {(2, "zeimu"): 1}
    assert w.called() == {2}
    assert w.service_sums(90 * 60.0 + 1) == ({2: 10.0}, {2: 5.0})  # the slow one has left the window
    assert w.rate_counts(90 * 60.0 + 1) == ({"shimin": 0, "zeimu": 0}, {})


def test_entries_put_behind_the_windows_back_make_capacity_scan():
    h = E.History()
    h.add_call(E.Call(0.0, 1, "shimin", 0.0))
    h.calls = deque([E.Call(0.0, 1, "zeimu", 0.0)])  # as tests/queue_server/test_waits_reference.py does
    assert not h.windows.usable(10.0, h.calls, h.services, h.left)
    _check(h, 10.0, {"zeimu": 1})
    h.calls.append(E.Call(5.0, 2, "shimin", 0.0))
    assert not h.windows.usable(10.0, h.calls, h.services, h.left)


def test_a_query_earlier_than_the_last_one_scans():
    h = E.History()
    h.add_call(E.Call(0.0, 1, "shimin", 0.0))
    h.add_call(E.Call(100.0, 1, "shimin", 0.0))
    _check(h, 61 * 60.0, {})  # drops the first call
    assert not h.windows.usable(59 * 60.0, h.calls, h.services, h.left)
    _check(h, 59 * 60.0, {})  # the scan still counts it


def test_a_counters_minutes_are_added_in_the_order_they_came():
    """0.1 + 0.2 + 0.3 is 0.6000000000000001, 0.3 + 0.2 + 0.1 is 0.6: the scan's order counts."""
    h = E.History()
    for i, m in enumerate((0.1, 0.2, 0.3)):
        h.add_service(E.Service(60.0 * i, 7, m, m))
    assert h.windows.service_sums(200.0) == E.service_sums(h.services, 200.0) == \
        ({7: 0.1 + 0.2 + 0.3}, {7: 0.1 + 0.2 + 0.3})
    h.add_service(E.Service(90 * 60.0 + 1, 7, 0.4, 0.4))  # the first leaves the window, the last joins
    now = 90 * 60.0 + 1
    assert h.windows.service_sums(now) == E.service_sums(h.services, now) == ({7: 0.2 + 0.3 + 0.4}, {7: 0.2 + 0.3 + 0.4})


def test_windows_nobody_queries_keep_only_their_spans():
    """A simulation scoring other estimators feeds the History and never asks capacity: the
    windows must not grow with the run."""
    h = E.History()
    for i in range(6000):  # one call and one service a minute... for 100 hours
        at = 60.0 * i
        h.add_call(E.Call(at, 1, "shimin", 0.0))
        h.add_service(E.Service(at, 1, 5.0, 6.0))
    # share 60 + rate 45 calls, 90 services (each window keeps now - span <= at): 61 + 46 + 91
    assert h.windows.size() == 61 + 46 + 91
    _check(h, 60.0 * 5999, {"shimin": 1})  # and what they kept is still right
    only_calls, only_services, only_left = E.History(), E.History(), E.History()
    for i in range(6000):
        only_calls.add_call(E.Call(60.0 * i, 1, "shimin", 0.0))
        only_services.add_service(E.Service(60.0 * i, 1, 5.0, 6.0))
        only_left.add_left(60.0 * i, "shimin")
    assert (only_calls.windows.size(), only_services.windows.size(), only_left.windows.size()) == (61 + 46, 91, 46)


def test_times_running_backwards_empty_the_windows_for_good():
    h = E.History()
    h.add_call(E.Call(100.0, 1, "shimin", 0.0))
    h.add_call(E.Call(50.0, 1, "shimin", 0.0))
    h.add_call(E.Call(200.0, 1, "shimin", 0.0))
    assert h.windows.size() == 0
    assert not h.windows.usable(300.0, h.calls, h.services, h.left)
    _check(h, 300.0, {})
