"""Idempotency keys are scoped by role and device (pure: no I/O).

A retry with the same key returns the first reply, but only to the same sender: a counter's
``call_next`` carrying a kiosk's key must never get that kiosk's issue reply (with the ticket's
public token). The scope is part of the key stored in the ``requests`` table (``site`` is its own
column), so no schema change was needed:

    kiosk:<device>:<key>     kiosk and admin (and any future role): the device from hello
    counter:<n>:<key>        a counter console: its counter number (one console per counter)

Rows written before scoping hold the bare key. They are kept loadable (a kiosk retrying across
the upgrade still gets its ticket back): an issue reply is scoped to the kiosk that issued the
ticket (the ticket's ``device``); other bare rows are ambiguous and are not served again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_SCOPED = re.compile(r"[a-z]{1,10}:[^:]{0,32}:")  # role:device: (a device never holds ":")


def idem_scope(role: str, device: str, counter: int | None, key: str) -> str:
    """The stored form of a request's key: role, then the device or counter, then the key."""
    if role == "counter":
        return f"counter:{counter}:{key}"
    return f"{role}:{device}:{key}"


def scope_stored_key(stored: str, reply: Any, devices: Mapping[str, str]) -> str | None:
    """The scoped key for a row of the requests table, or None when it cannot be scoped.

    ``devices`` maps the day's ticket ids to the device that issued them.
    """
    if _SCOPED.match(stored):
        return stored
    ticket = reply.get("ticket") if isinstance(reply, dict) else None
    if isinstance(ticket, dict) and "public_token" in ticket and ticket.get("id") in devices:
        return idem_scope("kiosk", devices[ticket["id"]], None, stored)
    return None
