"""What passes between a connection, the writer and the request handlers: the client a request
came from, the job the writer applies, its outcome, and the error reply a handler raises."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection

from . import protocol as P
from .core.errors import RequestError
from .core.lobby import Change
from .storage import Batch


class Reply(RequestError):
    """Raised inside an operation to answer with a protocol error (nothing is written)."""


@dataclass(eq=False)  # identity: each connection is its own client
class Client:
    ws: ServerConnection
    role: str = ""
    site: str = ""
    device: str = ""
    counter: int | None = None
    ticket: str | None = None  # public role: ticket id
    staff: str = ""
    # replies in request order while some wait for the writer (outbox.py): (received, str or
    # Future[str], Job or None)
    outbox: deque = field(default_factory=deque, repr=False)
    unsent: int = 0  # replies queued in the outbox and not yet sent
    sent: asyncio.Event = field(default_factory=asyncio.Event, repr=False)  # set after each outbox send
    received: float = 0.0  # perf_counter when the frame being handled arrived (reply time, /metrics)
    replies: Any = field(default=None, repr=False)  # metrics.Histogram of reply times (session.py)
    stages: Any = field(default=None, repr=False)  # metrics.Metrics.stage_seconds (session.py)


@dataclass
class Outcome:
    result: Any
    change: Change | None = None
    batch: Batch | None = None  # extra rows (new ticket with prefill, numbers)
    pushes: list[tuple[str, str, Any]] = field(default_factory=list)  # (audience, kind, data) after commit
    undo: Callable[[], None] | None = None


@dataclass
class Job:
    client: Client
    req: P.Request
    fut: asyncio.Future
    idem: str | None
    queued_at: float = field(default_factory=time.monotonic)  # for /healthz: is the writer behind?
    # perf_counter stamps of its way through the writer (metrics.STAGES): its frame read, its batch
    # started, applied, committed, its reply made (0.0: not reached; writer.py, session.py)
    received: float = 0.0
    batch_at: float = 0.0
    applied_at: float = 0.0
    committed_at: float = 0.0
    answered_at: float = 0.0

    def stage_seconds(self, sent: float) -> tuple[float, ...] | None:
        """Seconds in each of metrics.STAGES, given when its reply was handed to the socket; None
        for a request the writer refused or answered with an earlier reply (an idempotent retry).
        A read has nothing to commit: its ``committed`` stage is the moment after ``applied``."""
        if not self.answered_at or not self.received:
            return None
        return (self.batch_at - self.received, self.applied_at - self.batch_at, self.committed_at - self.applied_at,
                self.answered_at - self.committed_at, sent - self.answered_at)


def actor(c: Client) -> str:
    """The event log's actor of a request: role and device, a counter by number."""
    if c.role == "counter":
        return f"counter:{c.counter}"  # staff names stay out of the event log's actor field
    return f"{c.role}:{c.device}" if c.device else c.role
