"""The `queue` reply as JSON text, built from fragments cached with each (immutable) step version.

A counter's `queue` read (docs/protocol.md) lists every ticket its departments could call, in call
order. Building that list as dicts and encoding it with json cost 2–3 ms per 600 entries on the
event loop, on top of the ordering itself, for every read. Most of an entry never changes while
the step waits: ticket, number, department, step, procedures. That part is encoded once per step
version (a Step is frozen: a change is a new object) and kept; a read adds only what moves with the
clock: minutes waited, priority, escalated. The text equals the reply built as dicts and encoded
(tests/queue_server/queue_reference.py), to the byte (tests/queue_server/test_queue_reply.py).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from . import protocol as P
from .core.dispatch import priority, queue_for
from .core.model import Counter, Priority, Step

if TYPE_CHECKING:
    from .hub import SiteHub

_PRIORITY_JSON = {p: ("null" if p is Priority.NORMAL else P.dumps(p.name.lower())) for p in Priority}


class QueueReplies:
    """One site's cache of entry fragments: (ticket id, step index) -> (the step, its fragment)."""

    def __init__(self) -> None:
        self.fragments: dict[tuple[str, int], tuple[Step, str]] = {}

    def encode(self, hub: SiteHub, c: Counter, now: float) -> P.Encoded:
        """``{"queue": [...]}`` for counter ``c`` at ``now``: its queue in call order (docs/protocol.md)."""
        lobby = hub.lobby
        policy = lobby.policy
        aging = policy.aging_bound
        fragments = self.fragments
        if len(fragments) > 2 * len(lobby.tickets) + 256:  # steps of closed tickets: start afresh
            fragments.clear()
        parts = []
        for t, s in queue_for(lobby.waiting_for(c.departments), c.departments, now, policy):
            key = (t.id, s.index)
            cached = fragments.get(key)
            if cached is None or cached[0] is not s:
                head = P.dumps({"ticket": t.id, "number": t.label, "department": s.department, "step": s.index,
                                "procedures": list(s.procedures)})
                cached = fragments[key] = (s, head[:-1])
            waited = now - (s.ready_since or t.issued_at)
            minutes = round(waited / 60, 1)
            if not math.isfinite(minutes):  # as json.dumps(allow_nan=False) would refuse it
                raise ValueError(f"waited_minutes of ticket {t.id} is {minutes}")
            parts.append(f'{cached[1]},"waited_minutes":{float.__repr__(minutes)},'
                         f'"priority":{_PRIORITY_JSON[priority(t, now, policy)]},'
                         f'"escalated":{"true" if waited >= aging else "false"}}}')
        return P.Encoded('{"queue":[' + ",".join(parts) + "]}")
