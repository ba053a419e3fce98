"""The counts and sums the waits take from a site's recent calls and services, kept as they come.

:func:`queue_server.core.estimators.capacity` and the departure rates read the calls of the last
hour and the services of the last ninety minutes. Scanning them at every recomputation (five times
a second while the lobby changes) grew with the lobby's own traffic: 1.9 ms on the event loop with
1,000 calls and services, 6 ms with 5,000, 18 ms with 20,000 (bench/waits_bench.py --history).
Here each window keeps its entries in arrival order, and the counts of those inside it; a query at
``now`` first drops the entries the window has left behind, so its cost follows what changed.

The figures are those of the scans, exactly: call counts are whole numbers, and a counter's
planned and actual minutes are summed again from its own services in the window, in the order
they came, when one joins or leaves, so every float is added as the scan adds it.
tests/queue_server/test_history_windows.py compares them over random days.

The windows hold only while time goes forward: entries arrive in time order, no entry is later
than the query, no query earlier than the one before. Otherwise :meth:`HistoryWindows.usable` says
so and the caller scans (a clock set back, a test replaying times); it never guesses. Pure: no
I/O, no clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .estimators import Call, Service


class HistoryWindows:
    """The windows of one :class:`queue_server.core.estimators.History` (spans in seconds)."""

    def __init__(self, share: float, speed: float, rate: float) -> None:
        self.share_span, self.speed_span, self.rate_span = share, speed, rate
        self._share: deque[tuple[float, int, str]] = deque()  # calls (at, counter, department)
        self._share_counts: dict[tuple[int, str], int] = {}
        self._called: dict[int, int] = {}  # counter -> its calls in the share window
        self._rate: deque[tuple[float, str]] = deque()  # calls (at, department)
        self._rate_counts: dict[str, int] = {}
        self._left: deque[tuple[float, str]] = deque()  # walk-outs (at, department)
        self._left_counts: dict[str, int] = {}
        self._speed: deque[Service] = deque()  # services with an actual time
        self._by_counter: dict[int, deque[Service]] = {}  # the same, per counter, in arrival order
        self._planned: dict[int, float] = {}  # counter -> planned minutes of its services in the window
        self._actual: dict[int, float] = {}  # counter -> their actual minutes
        self._stale: set[int] = set()  # counters whose sums must be added up again
        self._latest = float("-inf")  # the latest entry's time
        self._queried = float("-inf")  # the latest query's time
        self._ordered = True  # every entry came no earlier than the one before
        # the last entries given: the History's deques must end with these (see usable)
        self._last: tuple[object, object, object] = (None, None, None)

    # ------------------------------------------------------------------ entries
    def _arrive(self, at: float) -> bool:
        """Note an entry's time; False once times have run backwards (then nothing is kept)."""
        if not self._ordered:
            return False
        if at < self._latest:
            self._ordered = False  # for good: the caller scans from now on, and nothing here is read
            for kept in (self._share, self._rate, self._left, self._speed, self._share_counts, self._called,
                         self._rate_counts, self._left_counts, self._by_counter, self._planned, self._actual, self._stale):
                kept.clear()
            return False
        self._latest = at
        return True

    def add_call(self, call: Call) -> None:
        if not self._arrive(call.at):
            return
        self._last = (call, self._last[1], self._last[2])
        self._share.append((call.at, call.counter, call.department))
        key = (call.counter, call.department)
        self._share_counts[key] = self._share_counts.get(key, 0) + 1
        self._called[call.counter] = self._called.get(call.counter, 0) + 1
        self._rate.append((call.at, call.department))
        self._rate_counts[call.department] = self._rate_counts.get(call.department, 0) + 1
        self._drop(call.at)

    def add_left(self, entry: tuple[float, str]) -> None:
        at, department = entry
        if not self._arrive(at):
            return
        self._last = (self._last[0], self._last[1], entry)
        self._left.append(entry)
        self._left_counts[department] = self._left_counts.get(department, 0) + 1
        self._drop(at)

    def add_service(self, service: Service) -> None:
        if not self._arrive(service.at):
            return
        self._last = (self._last[0], service, self._last[2])
        if not service.actual > 0:  # (the speeds count only services with an actual time)
            return
        self._speed.append(service)
        self._by_counter.setdefault(service.counter, deque()).append(service)
        self._stale.add(service.counter)
        self._drop(service.at)

    def size(self) -> int:
        """Entries kept in all windows (each window holds at most its span's worth)."""
        return len(self._share) + len(self._rate) + len(self._left) + len(self._speed)

    # ------------------------------------------------------------------ queries
    def usable(self, now: float, calls: Sequence[Call], services: Sequence[Service],
               left: Sequence[tuple[float, str]]) -> bool:
        """Whether the windows give the scans' figures of these deques at ``now`` (see the module's
        note). They must have been fed every entry: each deque ends with the last one given, or
        is empty (the History prunes what every window has left). An entry appended, or a deque
        replaced, behind the windows' back makes the caller scan."""
        last_call, last_service, last_left = self._last
        return (self._ordered and self._latest <= now and self._queried <= now
                and (calls[-1] is last_call if calls else True)
                and (services[-1] is last_service if services else True)
                and (left[-1] is last_left if left else True))

    def _advance(self, now: float) -> None:
        """Drop what the windows have left behind at ``now`` (a scan keeps ``now - span <= at``)."""
        self._queried = now
        self._drop(now)

    def _drop(self, now: float) -> None:
        """Drop the entries older than each window at ``now``. Also run as entries come (at the
        newest one's time, which any usable query is at or after), so windows nobody queries (a
        simulation scoring other estimators) stay as short as their spans."""
        lo = now - self.share_span
        share, counts, called = self._share, self._share_counts, self._called
        while share and share[0][0] < lo:
            _, counter, department = share.popleft()
            key = (counter, department)
            if counts[key] == 1:
                del counts[key]
            else:
                counts[key] -= 1
            if called[counter] == 1:
                del called[counter]
            else:
                called[counter] -= 1
        lo = now - self.rate_span
        for entries, tally in ((self._rate, self._rate_counts), (self._left, self._left_counts)):
            while entries and entries[0][0] < lo:
                department = entries.popleft()[1]
                tally[department] -= 1
        lo = now - self.speed_span
        speed = self._speed
        while speed and speed[0].at < lo:
            gone = speed.popleft()
            mine = self._by_counter[gone.counter]
            mine.popleft()  # (the counter's oldest: both deques keep arrival order)
            if not mine:
                del self._by_counter[gone.counter]
            self._stale.add(gone.counter)

    def share_counts(self, now: float) -> dict[tuple[int, str], int]:
        """:func:`queue_server.core.estimators.call_counts`'s counts at ``now`` (a copy)."""
        self._advance(now)
        return dict(self._share_counts)

    def called(self) -> set[int]:
        """The counters with a call in the share window, as of the last query."""
        return set(self._called)

    def rate_counts(self, now: float) -> tuple[dict[str, int], dict[str, int]]:
        """Calls and walk-outs per department in the rate window at ``now``."""
        self._advance(now)
        return dict(self._rate_counts), dict(self._left_counts)

    def service_sums(self, now: float) -> tuple[dict[int, float], dict[int, float]]:
        """:func:`queue_server.core.estimators.service_sums` at ``now``."""
        self._advance(now)
        for counter in self._stale:
            mine = self._by_counter.get(counter)
            if not mine:
                self._planned.pop(counter, None)
                self._actual.pop(counter, None)
                continue
            planned = actual = 0.0  # added in the scan's order: 0.0 + the first + the next ...
            for s in mine:
                planned += s.planned
                actual += s.actual
            self._planned[counter], self._actual[counter] = planned, actual
        self._stale.clear()
        return dict(self._planned), dict(self._actual)
