"""The cheap department-waits recomputation (issue 20) gives exactly what the old one gave.

Random lobbies — counters serving 1–3 departments, open, paused or closed; tickets of several
steps in every state, called or served at counters (sometimes two at one counter, or at a counter
the site lacks), priorities, bookings, closed tickets; a history of calls, services and walk-outs,
some outside the windows — and the reference (tests/queue_server/waits_reference.py, the code as
it was) must agree to the last bit: the comparison is on repr(), so 0 vs 0.0, -0.0, float
rounding and the order of the positions all count.
"""

from __future__ import annotations

from collections import deque

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queue_server.config import load_city
from queue_server.core import estimators as E
from queue_server.core.dispatch import DispatchPolicy
from queue_server.core.estimate import all_department_waits
from queue_server.core.model import Counter, CounterState, Step, StepState, Ticket, TicketState
from queue_server.hub import make_hub

from . import waits_reference as R

CITY = load_city()
SITE = CITY.sites["honcho"]
# four of the site's departments and one it lacks (a ticket or counter may name it: it is no queue)
DEPTS = ("shimin", "hoken_nenkin", "zeimu", "nouzei", "elsewhere")
NOW = 100_000.0
STEP_STATES = [StepState.READY] * 4 + [StepState.PENDING, StepState.CALLED, StepState.SERVING, StepState.DONE,
                                       StepState.NO_SHOW, StepState.CANCELLED]
MINUTES = (0.0, 2.5, 5.0, 6.0, 8.0, 12.3, 10)  # an int among them, as in hand-written routes
# mostly in the past, a few seconds in the future; odd fractions make rounding differences show
ago = st.integers(-120, 7200).map(lambda s: NOW - s * 1.37)
maybe_ago = st.none() | ago


@st.composite
def lobbies(draw):
    # few counters for many tickets: queues longer than the idle counters, where every figure counts
    numbers = draw(st.lists(st.integers(1, 14), max_size=draw(st.sampled_from([3, 9])), unique=True))
    counters = [
        Counter("honcho", n, frozenset(draw(st.lists(st.sampled_from(DEPTS), min_size=1, max_size=3, unique=True))),
                state=draw(st.sampled_from([CounterState.OPEN, CounterState.OPEN, CounterState.PAUSED, CounterState.CLOSED])))
        for n in numbers
    ]
    at = st.sampled_from([*numbers, 99]) if numbers else st.just(99)
    tickets = []
    for i in range(draw(st.integers(0, 18))):
        steps = []
        for k in range(draw(st.integers(1, 4))):
            state = draw(st.sampled_from(STEP_STATES))
            active = state in (StepState.CALLED, StepState.SERVING)
            steps.append(Step(
                index=k, department=draw(st.sampled_from(DEPTS)), procedures=(), after=(),
                minutes=draw(st.sampled_from(MINUTES)), state=state, ready_since=draw(maybe_ago),
                counter=draw(st.none() | at) if active else None,
                called_at=draw(ago) if active else None,
                started_at=draw(maybe_ago) if state is StepState.SERVING else None,
            ))
        tickets.append(Ticket(
            id=f"t{i}", site="honcho", day="2026-04-01", prefix="", number=draw(st.integers(1, 6)),  # ties too
            purposes=("certificate",), lang="ja", issued_at=draw(ago), steps=tuple(steps), public_token=f"k{i}",
            closed=draw(st.sampled_from([None] * 6 + [TicketState.DONE, TicketState.CANCELLED])),
            assistance=draw(st.booleans()), reserved_for=draw(st.none() | st.none() | ago),
        ))
    history = E.History()
    history.start = draw(maybe_ago)
    history.calls = deque(E.Call(draw(ago), draw(at), draw(st.sampled_from(DEPTS)), 0.0)
                          for _ in range(draw(st.integers(0, 20))))
    history.services = deque(E.Service(draw(ago), draw(at), draw(st.sampled_from(MINUTES)),
                                       draw(st.sampled_from([0.0, 3.0, 7.5, 20.0])))
                             for _ in range(draw(st.integers(0, 8))))
    history.left = deque((draw(ago), draw(st.sampled_from(DEPTS))) for _ in range(draw(st.integers(0, 5))))
    policy = DispatchPolicy(aging_bound=draw(st.sampled_from([300.0, 1200.0])))
    return counters, tickets, history, policy


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lobbies(), st.integers(0, 600), st.data())
def test_the_waits_are_exactly_what_the_old_recomputation_gave(lobby, later, data):
    counters, tickets, history, policy = lobby
    now = NOW + later
    # the hub: SiteHub.waits(fresh=True), what the flusher recomputes after every change
    hub = make_hub(CITY, SITE, counters, "2026-04-01")
    hub.lobby.policy = policy
    hub.lobby.load(tickets)
    hub.history = history
    assert repr(hub.waits(now, fresh=True)) == repr(R.hub_waits(hub, now))

    # the core functions on their own, with arguments the hub never passes
    waiting = data.draw(st.dictionaries(st.sampled_from(DEPTS), st.integers(0, 3)))
    cap = E.capacity(counters, history, waiting, now)
    assert repr(cap) == repr(R.capacity(counters, history, waiting, now))
    assert repr(E.counter_shares(counters, history.calls, waiting, now)) == \
        repr(R.counter_shares(counters, history.calls, waiting, now))
    assert repr(E.counter_speeds(history.services, now)) == repr(R.counter_speeds(history.services, now))
    for d in DEPTS:
        assert repr(E.departure_rate(history.calls, d, now, history.left, history.start)) == \
            repr(R.departure_rate(history.calls, d, now, history.left, history.start))
    # some departments, twice or not at all; a capacity the caller made up, missing some counters
    # and departments, with a zero
    departments = data.draw(st.lists(st.sampled_from(DEPTS), max_size=5))
    numbers = sorted(c.number for c in counters)
    made_up = data.draw(st.dictionaries(st.sampled_from(numbers) if numbers else st.just(99),
                                        st.dictionaries(st.sampled_from(DEPTS), st.sampled_from([0.0, 0.25, 0.5, 1.0, 1.3]))))
    for capacity in (None, cap, made_up):
        got = all_department_waits(departments, tickets, counters, now, policy, capacity=capacity)
        assert repr(got) == repr(R.all_department_waits(departments, tickets, counters, now, policy, capacity=capacity))
    waits = data.draw(st.lists(st.none() | st.sampled_from([0.0, 0, 1.5, 4.0, 4.0, 30.25]), max_size=4))
    minutes = data.draw(st.lists(st.sampled_from(MINUTES), min_size=len(waits), max_size=len(waits)))
    assert repr(E.one_at_a_time(waits, minutes)) == repr(R.one_at_a_time(waits, minutes))
