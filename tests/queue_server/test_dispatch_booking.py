"""The priority rule for bookings (docs/planning.md), property-tested on a small lobby.

One department, c counters that call whenever they are free, an overload of walk-ins who all
wait past the aging bound, and booked citizens checked in on time (at most ``capacity`` ≤ c per
slot, by slot start + late). Claims checked at every call and for every booked ticket:

- while a due booked ticket waits, no walk-in is called (escalated or not);
- a booked ticket is called at most ⌈(B+1)/c⌉ · S_max after T = max(slot start, check-in), B the
  due booked tickets ahead of it at T and S_max the longest service.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from queue_server.core.dispatch import DispatchPolicy, choose_next

from .core_helpers import ticket

MIN = 60.0
POLICY = DispatchPolicy(aging_bound=20 * MIN, reservation_grace=5 * MIN)
SLOT = 30  # minutes
LATE = 15  # minutes


@st.composite
def lobbies(draw):
    c = draw(st.integers(1, 3))
    s_max = draw(st.integers(3, 15))
    services = draw(st.lists(st.integers(1, s_max), min_size=300, max_size=300))
    n_walk = draw(st.integers(10, 60))
    walk = sorted(draw(st.lists(st.integers(0, 120), min_size=n_walk, max_size=n_walk)))
    bookings = []
    for slot in range(1, 5):  # slots at 30, 60, 90, 120 minutes
        for _ in range(draw(st.integers(0, c))):
            checkin = slot * SLOT + draw(st.integers(-20, LATE))  # early or on time, never late
            bookings.append((slot * SLOT, max(0, checkin)))
    return c, s_max, services, walk, bookings


def simulate(c, services, walk, bookings):
    tickets = [ticket(i + 1, now=at * MIN) for i, at in enumerate(walk)]
    booked = [ticket(1000 + i, now=ci * MIN, reserved_for=slot * MIN) for i, (slot, ci) in enumerate(bookings)]
    pending = sorted(tickets + booked, key=lambda t: t.issued_at)
    waiting: list = []
    free_at = [0] * c
    called: dict[str, float] = {}
    ahead_at_t: dict[str, int] = {}
    svc = iter(services)
    for minute in range(0, 600):
        now = minute * MIN
        while pending and pending[0].issued_at <= now:
            waiting.append(pending.pop(0))
        for b in booked:  # B: due booked tickets ahead of b at T
            t_b = max(b.reserved_for, b.issued_at)
            if now == t_b and b.id not in called:
                ahead_at_t[b.id] = sum(1 for o in waiting if o.reserved_for is not None and o is not b
                                       and (o.reserved_for, o.issued_at, o.number) < (b.reserved_for, b.issued_at, b.number))
        for k in range(c):
            if free_at[k] > minute or not waiting:
                continue
            got = choose_next(waiting, {"shimin"}, now, POLICY)
            assert got is not None
            chosen = got[0]
            due = [t for t in waiting if t.reserved_for is not None and now >= t.reserved_for - POLICY.reservation_grace]
            if due:
                assert chosen.reserved_for is not None, "a walk-in was called while a due booking waited"
            waiting.remove(chosen)
            called[chosen.id] = now
            free_at[k] = minute + next(svc, 5)
        if not waiting and not pending:
            break
    return booked, called, ahead_at_t


@settings(max_examples=60, deadline=None)
@given(lobbies())
def test_booked_on_time_is_called_within_the_bound_while_walk_ins_wait(lobby):
    c, s_max, services, walk, bookings = lobby
    booked, called, ahead = simulate(c, services, walk, bookings)
    for b in booked:
        t_b = max(b.reserved_for, b.issued_at)
        bound = math.ceil((ahead.get(b.id, 0) + 1) / c) * s_max * MIN
        assert called[b.id] - t_b <= bound, (b.number, called[b.id] / MIN, t_b / MIN, bound / MIN)


def test_the_bound_is_tight_enough_to_matter():
    """With escalation first (the old rule) the same overload made a booked citizen wait for every
    escalated walk-in; with the rule the booking is called at the first free counter."""
    walk = list(range(0, 30))  # thirty walk-ins in the first half hour, one counter
    booked, called, _ = simulate(1, [10] * 300, walk, [(30, 25)])
    assert called[booked[0].id] - 30 * MIN <= 10 * MIN
