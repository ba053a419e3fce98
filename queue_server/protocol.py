"""The websocket protocol, sans I/O: parse and check requests, build replies and pushes.

Every request is a JSON object with ``type`` and a client-chosen ``id``; every reply carries
``re: <id>`` and either ``result`` or ``error: {code, message, field}``. docs/protocol.md documents
each message with an example; tests/queue_server/test_protocol_doc.py checks the two agree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_MESSAGE_BYTES = 64 * 1024  # a request larger than this gets a "too_large" error, not a disconnect

ROLES = ("kiosk", "counter", "display", "public", "admin")

# field name -> (accepted JSON types, required)
_S, _I, _B, _O, _L, _N = (str,), (int,), (bool,), (dict,), (list,), (int, float)
FIELDS: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "hello": {
        "role": (_S, True),
        "device": (_S, False),
        "token": (_S, False),
        "site": (_S, False),
        "counter": (_I, False),
        "ticket": (_S, False),  # public role: the ticket's unguessable public token
        "last_seq": (_I, False),
        "staff": (_S, False),
    },
    "ping": {},
    # kiosk
    "plan": {"purposes": (_L, True), "answers": (_O, False), "lang": (_S, False)},
    "issue": {
        "purposes": (_L, False),  # required unless reservation_code names a booking with its purposes
        "answers": (_O, False),
        "lang": (_S, False),
        "idempotency_key": (_S, True),
        "assistance": (_B, False),
        "reservation_code": (_S, False),
        "prefill": (_O, False),
    },
    "help": {"reason": (_S, False)},
    "device_fault": {"device_kind": (_S, True), "code": (_S, True), "detail": (_S, False)},
    # counter
    "call_next": {"idempotency_key": (_S, False)},
    "call": {"ticket": (_S, True), "idempotency_key": (_S, False)},
    "recall": {},
    "start": {},
    "complete": {"idempotency_key": (_S, False)},
    "transfer": {"department": (_S, True)},
    "add_procedure": {"department": (_S, True), "procedures": (_L, True), "minutes": (_N, False)},
    "no_show": {},
    "requeue": {},
    "open": {"staff": (_S, False)},
    "pause": {},
    "close": {},
    "queue": {},
    "current": {},
    # counter: forms of the visit (queue_server/forms_api.py; values kept in memory only)
    "forms": {},
    "form_values": {"values": (_O, True)},
    "forms_printed": {"forms": (_L, True)},
    # public
    "status": {},
    # admin
    "snapshot": {},
    "cancel": {"ticket": (_S, True), "reason": (_S, False)},
    "reserve": {"day": (_S, True), "start": (_S, True), "minutes": (_I, False), "purposes": (_L, True),
                "idempotency_key": (_S, False)},
    "reservations": {"day": (_S, False)},
}

ALLOWED: dict[str, frozenset[str]] = {
    "kiosk": frozenset({"ping", "plan", "issue", "help", "device_fault"}),
    "counter": frozenset(
        {"ping", "call_next", "call", "recall", "start", "complete", "transfer", "add_procedure", "no_show",
         "requeue", "open", "pause", "close", "queue", "current", "forms", "form_values", "forms_printed"}
    ),
    "display": frozenset({"ping"}),
    "public": frozenset({"ping", "status"}),
    "admin": frozenset({"ping", "snapshot", "cancel", "reserve", "reservations"}),
}

ERROR_CODES = {
    "bad_json": "the message is not valid JSON",
    "not_an_object": "the message must be a JSON object",
    "too_large": "the message is larger than the limit",
    "unknown_type": "no such message type",
    "missing_field": "a required field is missing",
    "bad_field": "a field has the wrong type or value",
    "hello_first": "the first message must be hello",
    "already_hello": "hello was already sent on this connection",
    "bad_token": "the token does not match this role, device or counter",
    "not_allowed": "this role may not send this message",
    "unknown_site": "no such site",
    "unknown_counter": "no such counter at this site",
    "unknown_ticket": "no such ticket",
    "bad_purpose": "unknown purpose or answer",
    "empty_route": "the answers lead to no procedure to queue for",
    "illegal_transition": "the ticket or step is not in a state that allows this",
    "not_your_ticket": "the ticket is at another counter",
    "ticket_busy": "the ticket is at a counter now",
    "ticket_closed": "the visit is over",
    "counter_busy": "the counter still has a ticket",
    "counter_not_open": "the counter is paused or closed",
    "no_current_ticket": "the counter has no ticket called or in service",
    "not_in_queue": "the ticket does not wait for this counter's departments",
    "too_early": "more recalls are needed before no-show",
    "same_department": "the step is already for that department",
    "unknown_department": "no such department at this site",
    "unknown_reservation": "no reservation with that code today",
    "reservation_used": "that reservation has already been checked in",
    "storage_error": "the change could not be saved; nothing was changed",
    "internal": "unexpected server error; nothing was changed",
}


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, field: str | None = None, re: Any = None):
        super().__init__(message)
        self.code, self.message, self.field, self.re = code, message, field, re


@dataclass(frozen=True, slots=True)
class Request:
    type: str
    id: Any
    body: dict[str, Any]


def parse(raw: str | bytes) -> Request:
    """Decode and check one request; raise ProtocolError naming what is wrong and where."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError("too_large", f"message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        msg = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError("bad_json", f"invalid JSON: {e}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("not_an_object", f"expected a JSON object, got {type(msg).__name__}")
    rid = msg.get("id")
    if rid is not None and not isinstance(rid, str | int) or isinstance(rid, bool):
        raise ProtocolError("bad_field", "id must be a string or an integer", "id")
    mtype = msg.get("type")
    if not isinstance(mtype, str):
        raise ProtocolError("missing_field", "every message needs a string 'type'", "type", re=rid)
    spec = FIELDS.get(mtype)
    if spec is None:
        raise ProtocolError("unknown_type", f"unknown message type {mtype!r}", "type", re=rid)
    for name, (types, required) in spec.items():
        if name not in msg or msg[name] is None:
            if required:
                raise ProtocolError("missing_field", f"{mtype}: field {name!r} is required", name, re=rid)
            continue
        v = msg[name]
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            want = " or ".join(_json_name(t) for t in types)
            raise ProtocolError("bad_field", f"{mtype}: field {name!r} must be {want}", name, re=rid)
    body = {k: v for k, v in msg.items() if k not in ("type", "id")}
    return Request(mtype, rid, body)


def _json_name(t: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "a boolean", dict: "an object", list: "an array"}[t]


def reply(re: Any, result: Any) -> str:
    return json.dumps({"re": re, "result": result}, ensure_ascii=False, separators=(",", ":"))


def error(re: Any, code: str, message: str, field: str | None = None) -> str:
    return json.dumps(
        {"re": re, "error": {"code": code, "message": message, "field": field}},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def push(kind: str, site: str, seq: int, data: Any) -> str:
    return json.dumps({"push": kind, "site": site, "seq": seq, "data": data}, ensure_ascii=False, separators=(",", ":"))
