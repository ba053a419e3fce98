"""Admission: whether a request may wait for the writer, or is answered ``busy`` at once (pure).

Every state-changing request waits its turn in the one writer's queue. When more arrives than
the writer can commit, that queue grows without bound and every reply comes seconds late — the
open-loop bench of issue 20 saw a p99 of 27.8 s at 300 req/s with 200 consoles. A reply that
says "busy, try again in 0.5 s" at once is better for everyone than one that arrives in 30 s:
the kiosk and console retry with the same idempotency key, and the requests that were admitted
are answered within the bound.

The rule: a request is shed when the writer's queue holds ``max_queue`` requests, or the oldest
unanswered one (queued, or in the batch being written) has waited ``max_wait`` seconds, or the
event loop itself runs that late (pushes after many commits can stall it: a frame then waits
unseen in its socket before it is even read, which the writer's queue cannot show). Reads
that go through the writer (``queue``, ``current``, ``status``, ``snapshot``, ``reservations``)
are shed earlier, at ``read_share`` of both bounds, so that under overload the writes that move
the lobby go first; a console's queue also comes by push, and a phone's status too.

A request whose idempotency key the server already holds a reply for is never shed (the caller
checks that): it was committed, and its retry must get the original result, not ``busy``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Requests that only read through the writer: shed first under overload.
READS = frozenset({"queue", "current", "status", "snapshot", "reservations"})
MIN_RETRY = 0.2  # seconds: the smallest retry-after hint (a retry sooner only meets the same queue)
MAX_RETRY = 5.0  # seconds: the largest (a kiosk citizen should not wait longer between attempts)


@dataclass(frozen=True, slots=True)
class Bounds:
    """How much waiting for the writer is admitted (``run.py server --shed-queue/--shed-wait``)."""

    max_queue: int = 1000  # requests waiting for the writer
    max_wait: float = 0.25  # seconds the oldest unanswered request has waited (or the loop runs late)
    read_share: float = 0.5  # reads are shed at this share of both bounds

    def __post_init__(self) -> None:
        if self.max_queue < 0 or not self.max_wait >= 0 or not 0 < self.read_share <= 1:
            raise ValueError(f"bad admission bounds: {self}")


def recent_lag(previous: float, late: float) -> float:
    """The event loop's lag a frame arriving now meets, from the monitor's latest lateness
    (seconds a 50 ms tick woke late) and the previous estimate, halved per tick: a stall counts
    until the frames that arrived during it have been judged, then fades within a few ticks."""
    return max(late, previous * 0.5, 0.0)


def shed(kind: str, queued: int, oldest: float, bounds: Bounds) -> float | None:
    """None to admit a request of type ``kind``; else the retry-after hint (seconds) of a busy reply.

    ``queued`` is how many requests wait for the writer now, ``oldest`` how long (seconds) the
    oldest unanswered one has waited. The hint is the time the queue needs to drain as far as
    the oldest request's wait tells it, at least ``MIN_RETRY`` and at most ``MAX_RETRY``; clients
    add jitter and back off further on repeated busy answers.
    """
    share = bounds.read_share if kind in READS else 1.0
    if queued < bounds.max_queue * share and oldest < bounds.max_wait * share:
        return None
    hint = min(MAX_RETRY, max(MIN_RETRY, oldest, bounds.max_wait if math.isfinite(bounds.max_wait) else 0.0))
    return math.ceil(hint * 10) / 10
