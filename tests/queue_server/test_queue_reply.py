"""The `queue` reply built from cached fragments (queue_server/queue_reply.py) is the text that
encoding the reply built as dicts gives (queue_reference.py), to the byte: after random requests through the real writer (steps
called, served, moved to another department, added: each a new step version the cache must not
mistake for the old one), for every counter, now and once waits reach the aging bound."""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from queue_server import protocol as P
from queue_server.core.model import Counter

from . import writer_support as W
from .queue_reference import queue_view

PURPOSES = ["certificate", "certificate", "death", "move_in", "birth"]
OPS = ["issue", "issue", "issue", "call_next", "start", "complete", "complete", "transfer", "requeue", "no_show",
       "add_procedure", "assist", "call"]


def _same(qs, now: float) -> int:
    """Check every counter's reply at ``now``; the entries compared."""
    n = 0
    for hub in qs.hubs.values():
        for c in hub.lobby.counters.values():
            text = hub.queue_replies.encode(hub, c, now)
            assert text == P.dumps({"queue": queue_view(hub.lobby, c, now)}), f"counter {c.number} at {now}"
            n += len(json.loads(text)["queue"])
    return n


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_queue_reply_from_fragments_is_the_encoded_queue_view(tmp_path, seed):
    rng = random.Random(seed)
    clock = [W.NOW]
    qs = W.make_server(tmp_path, clock=clock)
    hub = qs.hubs["honcho"]
    numbers = sorted(hub.lobby.counters)
    departments = sorted({d for c in hub.lobby.counters.values() for d in c.departments})

    async def day() -> None:
        await W.run(qs, [W.job(W.counter(n), "open", staff="t") for n in numbers])
        compared = 0
        for i in range(150):
            op, n = rng.choice(OPS), rng.choice(numbers)
            clock[0] += rng.choice([1.0, 30.0, 400.0])
            if op == "issue":
                job = W.job(W.kiosk(), "issue", purposes=[rng.choice(PURPOSES)], answers={}, lang="ja")
            elif op == "transfer":
                job = W.job(W.counter(n), "transfer", department=rng.choice(departments))
            elif op == "add_procedure":
                job = W.job(W.counter(n), "add_procedure", department=rng.choice(departments), procedures=["x"])
            elif op == "assist":  # staff-assist mode: the assistance class, shown as the entry's priority
                job = W.job(W.kiosk(), "issue", purposes=[rng.choice(PURPOSES)], answers={}, lang="ja", assistance=True)
            elif op == "call":  # a number called out of order
                waiting = [t for t in hub.lobby.tickets.values() if t.closed is None]
                if not waiting:
                    continue
                job = W.job(W.counter(n), "call", ticket=rng.choice(waiting).id)
            else:
                job = W.job(W.counter(n), op)
            await W.run(qs, [job])
            if i % 5 == 0:
                compared += _same(qs, clock[0])
        compared += _same(qs, clock[0] + hub.lobby.policy.aging_bound)  # everyone escalated
        assert compared > 100, "the random day left the queues empty: nothing was compared"
        assert any('"priority":"assistance"' in hub.queue_replies.encode(hub, c, clock[0])
                   for c in hub.lobby.counters.values()), "no assisted ticket waits: that mark went unchecked"

    asyncio.run(day())


def test_a_reply_that_cannot_be_sent_is_refused_not_sent_as_nan(tmp_path):
    qs = W.make_server(tmp_path)
    hub = qs.hubs["honcho"]

    async def issue() -> None:
        await W.run(qs, [W.job(W.kiosk(), "issue", purposes=["certificate"], answers={}, lang="ja")])

    asyncio.run(issue())
    c: Counter = next(c for c in hub.lobby.counters.values() if "shimin" in c.departments)
    with pytest.raises(ValueError, match="waited_minutes"):
        hub.queue_replies.encode(hub, c, float("inf"))
    with pytest.raises(ValueError):  # as the dicts' encoding refuses it
        P.dumps({"queue": queue_view(hub.lobby, c, float("inf"))})
