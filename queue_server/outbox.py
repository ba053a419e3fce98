"""A connection's replies in request order, each written the moment it is ready.

A request waiting for the writer leaves its reply's future in the connection's outbox; the
replies after it wait behind it, while the connection's loop reads on (session.py). The replies at
the head of the outbox that are ready are written at once by whoever made them ready: the writer
right after its commit (writer.py), or the future's done callback for a reply finished elsewhere
(a card prefill read in a thread).

Why not a sender task per connection, as before: a reply then reached its socket through the
future's callback, a shield and the task's own step, three turns of the event loop, and in each
turn a flush or a board round could go first. Between "answered" and "sent" that was 0.2 ms at
the median and 4 ms at p99 at 100 req/s (bench/open_loop.py), and a tenth of the server's CPU per
reply. Written here, a reply leaves before the pushes of its own batch are even built.

A reply is written to the socket's buffer without waiting for it to drain. A client that sends
requests and stops reading its replies is dropped to a resync at MAX_CLIENT_BUFFER, like any
client that stops reading its pushes (pushes.write_frame).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from . import pushes
from .board_out import text_frame
from .jobs import Client, Job

if TYPE_CHECKING:
    from .server import QueueServer

log = logging.getLogger("madoguchi.server")


def queue_reply(server: QueueServer, client: Client, item: str | asyncio.Future, job: Job | None = None) -> None:
    """Put a reply (its text, or the future of it) behind the connection's earlier replies."""
    client.unsent += 1
    client.outbox.append((client.received, item, job))
    if isinstance(item, asyncio.Future) and not item.done():
        item.add_done_callback(lambda _: pump(server, client))
    else:
        pump(server, client)


def pump(server: QueueServer, client: Client) -> None:
    """Write the replies at the head of the outbox that are ready, in request order."""
    box = client.outbox
    while box:
        received, item, job = box[0]
        msg: str | None = item if isinstance(item, str) else None
        if isinstance(item, asyncio.Future):
            if not item.done():
                return  # the replies behind it wait for it
            if not item.cancelled():
                try:
                    msg = item.result()
                except Exception:  # never a stuck outbox: the connection's later replies would never leave
                    log.exception("a reply could not be built")
        box.popleft()
        try:
            if msg is not None and client.ws is not None:
                pushes.write_frame(server, client, text_frame(msg))
                timed(client, received, job)
        finally:
            client.unsent -= 1
            client.sent.set()


def timed(client: Client, received: float, job: Job | None = None) -> None:
    """Count the reply's server time in /metrics; a request the writer applied, its stages too."""
    sent = time.perf_counter()
    if client.replies is not None:
        client.replies.observe(sent - received)
    stages = job.stage_seconds(sent) if job is not None and client.stages is not None else None
    if stages is not None:
        for h, seconds in zip(client.stages.values(), stages, strict=True):
            h.observe(seconds)
