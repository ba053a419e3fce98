"""The `queue` reply as plain dicts (docs/protocol.md, counter `queue`): what
queue_server/queue_reply.py encodes from cached fragments, built the direct way. Its test holds
the encoded text to this, byte for byte, and the console feed's test holds the console's own
ordering and marks (queue_server/core/queue_feed.py) to it."""

from __future__ import annotations

from typing import Any

from queue_server.core.dispatch import priority, queue_for
from queue_server.core.lobby import Lobby
from queue_server.core.model import Counter, Priority


def queue_view(lobby: Lobby, c: Counter, now: float) -> list[dict[str, Any]]:
    """A counter's queue in call order, with priority marks and waits (no personal data)."""
    policy = lobby.policy
    out = []
    for t, s in queue_for(lobby.waiting_for(c.departments), c.departments, now, policy):
        waited = now - (s.ready_since or t.issued_at)
        p = priority(t, now, policy)
        out.append({
            "ticket": t.id,
            "number": t.label,
            "department": s.department,
            "step": s.index,
            "procedures": list(s.procedures),
            "waited_minutes": round(waited / 60, 1),
            "priority": None if p is Priority.NORMAL else p.name.lower(),
            "escalated": waited >= policy.aging_bound,
        })
    return out
