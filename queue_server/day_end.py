"""The end of the day, at local midnight: yesterday's waiting tickets are cancelled (through the
writer, like any request) and their card data and booking answers erased. Run by the flusher."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from . import planner_api
from . import protocol as P
from .jobs import Client, Job

if TYPE_CHECKING:
    from .server import QueueServer

log = logging.getLogger("madoguchi.server")
ROLL_RETRY = 30  # seconds before a failed end of day is tried again


async def roll_day(server: QueueServer) -> None:
    """At local midnight: close yesterday's waiting tickets and erase their card data.

    If the database refuses (disk full …), the day is not rolled and is tried again after
    ROLL_RETRY seconds: never a flusher that dies, never yesterday's tickets left open.
    """
    now = server.clock()
    today = server.local_day(now)
    if now < server.roll_retry_at:
        return
    for key in list(server.hubs):
        hub = server.hubs[key]
        if hub.day >= today:
            continue
        before, hub.day = hub.day, today
        system = Client(ws=None, role="admin", site=hub.key, device="end-of-day")  # type: ignore[arg-type]
        job = Job(system, P.Request("end_of_day", None, {}), asyncio.get_running_loop().create_future(), None)
        await server.queue.put(job)
        reply = json.loads(await job.fut)
        try:
            if "error" in reply:
                raise RuntimeError(reply["error"]["message"])
            await asyncio.to_thread(server.store.erase_prefill_before, hub.key, today)
            await asyncio.to_thread(planner_api.erase_answers_before, server.store.engine, hub.key, today)
        except Exception as e:  # the writer's reply names the cause; erase's error is the driver's
            server.hubs[key].day = before
            server.roll_retry_at = now + ROLL_RETRY
            log.error("end of day for %s failed: %s; tried again in %s s", key, e, ROLL_RETRY)
            continue
        planner_api.forget_answers_before(server.hubs[key], today)
        server.hubs[key].help_alerts.clear()
        server.hubs[key].absent.clear()
