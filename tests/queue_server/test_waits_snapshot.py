"""The flusher's waits from a snapshot (SiteHub.waits_inputs / set_waits, pushes.flusher): the same
figures as computed at once, and a ticket issued while they were computed stays a newcomer."""

from __future__ import annotations

import asyncio

from queue_server.core.shown import shown_waits

from .writer_support import NOW, counter, job, kiosk, make_server, run


def issue(key: str):
    return job(kiosk(), "issue", purposes=["certificate"], answers={}, lang="ja", idempotency_key=key)


def test_waits_from_a_snapshot_equal_the_waits_of_that_moment(tmp_path):
    qs = make_server(tmp_path)
    hub = qs.hubs["honcho"]

    async def scenario():
        await run(qs, [job(counter(1), "open"), *(issue(f"a{i}") for i in range(6))])
        inputs = hub.waits_inputs(NOW)
        out = await asyncio.to_thread(shown_waits, *inputs.args)
        assert repr(out) == repr(hub.waits(NOW, fresh=True))
        # a ticket issued while the snapshot's waits are computed: the lobby moves on
        inputs = hub.waits_inputs(NOW)
        out = await asyncio.to_thread(shown_waits, *inputs.args)
        (r,) = await run(qs, [issue("late")])
        hub.set_waits(inputs, out)
        assert hub.waits(NOW) is out
        late = r["result"]["ticket"]["id"]
        assert all(late not in w.ranks for w in out.values())
        # it is still counted as queued since the estimate: the next newcomer has it ahead
        assert hub.queued_since_cache.get("shimin") == 1
        await run(qs, [issue("later")])
        assert hub.queued_since_cache.get("shimin") == 2

    asyncio.run(scenario())
