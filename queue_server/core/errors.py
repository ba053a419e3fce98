"""A refused request: the one shape every layer's refusal shares, and the wire's ``error`` object.

A refusal is raised where the rule that refuses lives — the protocol's edge (ProtocolError), a
ticket's legal moves (core.transitions.TransitionError), the booking rules (core.booking.BookingError),
a handler (jobs.Reply), the staff role (consultation_api.Refusal) — and answered in one place:
``protocol.error_reply`` turns any of them into ``{"re": …, "error": {code, message, field}}``
(docs/protocol.md). So a refusal crosses layers as it is, never re-wrapped into another class.
"""

from __future__ import annotations

from typing import Any


class RequestError(Exception):
    """A request refused.

    ``code`` is a stable protocol error code (docs/protocol.md), ``message`` says why in plain
    words (never echoing personal data), ``field`` names the culprit field (or None); ``extra``
    holds further keys of the error object (e.g. ``retry_after``).
    """

    def __init__(self, code: str, message: str, field: str | None = None, **extra: Any):
        super().__init__(message)
        self.code, self.message, self.field, self.extra = code, message, field, extra
