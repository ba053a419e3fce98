"""The websocket protocol, sans I/O: parse and check requests, build replies and pushes.

Every request is a JSON object with ``type`` and a client-chosen ``id``; every reply carries
``re: <id>`` and either ``result`` or ``error: {code, message, field}``. docs/protocol.md documents
each message with an example; tests/queue_server/test_protocol_doc.py checks the two agree.

Every field of every message is declared in ``FIELDS`` with a rule from schema.py (type, range,
length, characters); ``parse`` refuses anything else before it reaches the lobby. A new message
type is one entry in ``FIELDS`` plus its role in ``ALLOWED`` (see schema.py's docstring), and
its rules appear in docs/protocol.md's Limits table (``python -m queue_server.protocol``).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from .core.errors import RequestError
from .core.i18n import LANGUAGES
from .schema import (
    Array,
    Bool,
    Date,
    Either,
    Field,
    Int,
    Invalid,
    Map,
    NotFinite,
    Num,
    Obj,
    OneOf,
    Raw,
    Text,
    check_message,
)

log = logging.getLogger("madoguchi.protocol")

MAX_MESSAGE_BYTES = 64 * 1024  # UTF-8 bytes; a larger request gets a "too_large" error, not a disconnect
MAX_FRAME_BYTES = 2 * MAX_MESSAGE_BYTES  # a frame larger than this closes the connection (1009)
MAX_DEPTH = 16  # JSON nesting: brackets and braces; a real request needs at most 3
MAX_INT_DIGITS = 20  # an integer literal longer than this is refused while parsing (10**400 never becomes an int)
SAFE_INT = 2**53 - 1  # the largest integer every client (JavaScript) reads exactly

ROLES = ("kiosk", "counter", "display", "public", "admin", "planner")

# Shared specs: the limits docs/protocol.md states in its "Limits" section.
ID_TEXT = Text(64, 1)
REQUEST_ID = Either((Int(-SAFE_INT, SAFE_INT), ID_TEXT))
KEY = Text(56, 1, r"[A-Za-z0-9._:-]+", hint="A–Z a–z 0–9 . _ : -")  # stored scoped in 100 chars
# a device's name is the city's choice (本庁1F-発券機 is fine) but never holds ":", which
# separates role, device and key in a scoped idempotency key
DEVICE = Text(32, 0, r"[^:]*", hint="text without `:`")
SITE = Text(32, 1)  # any other site name answers unknown_site, which clients treat as final
DEPARTMENT = Text(32, 1, r"[A-Za-z0-9_-]+", hint="A–Z a–z 0–9 _ -")
TICKET_ID = Text(36, 1, r"[A-Za-z0-9-]+", hint="A–Z a–z 0–9 -")
CODE = Text(64, 1, r"[A-Za-z0-9._-]+", hint="A–Z a–z 0–9 . _ -")
PURPOSES = Array(Text(64, 1), 16)  # catalogue ids or their Japanese names
ANSWERS = Map(Text(64, 1, r"[A-Za-z0-9._-]+", hint="A–Z a–z 0–9 . _ -"), Text(64), 64)
LANG = OneOf(LANGUAGES)
STAFF = Text(100)
HHMM = Text(5, 5, r"([01][0-9]|2[0-3]):[0-5][0-9]", hint="a time HH:MM")
BOOKING_CODE = Text(16, 1, r"[A-Za-z0-9 ]+", hint="A–Z a–z 0–9 and space")
PREFILL = Obj({
    "name": Text(200),
    "address": Text(200),
    "birth_date": Text(10, 1, r"[0-9-]+", hint="0–9 -"),
    "sex": Text(8, 1, r"[0-9A-Za-z]+", hint="A–Z a–z 0–9"),
})

_F = Field
FIELDS: dict[str, dict[str, Field]] = {
    "hello": {
        "role": _F(OneOf(ROLES), True),
        "device": _F(DEVICE),
        "token": _F(Raw(256)),  # any wrong token (even non-ASCII) answers bad_token
        "site": _F(SITE),
        "counter": _F(Int(0, 9999)),
        "ticket": _F(Text(128)),  # public role: the ticket's unguessable public token
        "last_seq": _F(Int(0, SAFE_INT)),
        "staff": _F(STAFF),
    },
    "ping": {},
    # kiosk
    "plan": {
        "purposes": _F(PURPOSES),  # required unless reservation_code (kiosk) names a booking
        "answers": _F(ANSWERS),
        "lang": _F(LANG),
        "reservation_code": _F(Text(16, 1, r"[A-Za-z0-9 ]+", hint="A–Z a–z 0–9 and space")),
    },
    "issue": {
        "purposes": _F(PURPOSES),  # required unless reservation_code names a booking with its purposes
        "answers": _F(ANSWERS),
        "lang": _F(LANG),
        "idempotency_key": _F(KEY, True),
        "assistance": _F(Bool()),
        "reservation_code": _F(Text(16, 1, r"[A-Za-z0-9 ]+", hint="A–Z a–z 0–9 and space")),
        "prefill": _F(PREFILL),
    },
    "help": {"reason": _F(Text(200))},
    "device_fault": {"device_kind": _F(CODE, True), "code": _F(CODE, True), "detail": _F(Text(500, multiline=True))},
    # a ticket's print failed, or printed after a failure or for a console's reprint job (reprint.py)
    "print_result": {"ticket": _F(TICKET_ID, True), "printed": _F(Bool(), True), "code": _F(CODE), "job": _F(KEY)},
    # counter
    "call_next": {"idempotency_key": _F(KEY)},
    "call": {"ticket": _F(TICKET_ID, True), "idempotency_key": _F(KEY)},
    "recall": {},
    "start": {},
    "complete": {"idempotency_key": _F(KEY)},
    "transfer": {"department": _F(DEPARTMENT, True)},
    "add_procedure": {"department": _F(DEPARTMENT, True), "procedures": _F(Array(CODE, 16, 1), True),
                      "minutes": _F(Num(0, 480, lo_open=True))},
    "no_show": {},
    "requeue": {},
    "open": {"staff": _F(STAFF)},
    "pause": {},
    "close": {},
    "queue": {},
    "current": {},
    "resync": {},  # the console's queue view has a gap: a full `queue` push follows (docs/protocol.md)
    # counter: forms of the visit (queue_server/forms_api.py; values kept in memory only)
    "forms": {},
    "form_values": {"values": _F(Map(Text(64, 1), Text(200), 100), True)},  # forms.MAX_VALUE characters
    "forms_printed": {"forms": _F(Array(Text(64, 1), 32, 1), True)},
    # counter: print a ticket again on a kiosk (same number, route and QR; reprint.py)
    "reprint": {"ticket": _F(TICKET_ID, True), "kiosk": _F(Text(32, 1, r"[^:]*", hint="text without `:`")),
                "idempotency_key": _F(KEY)},
    # public
    "status": {},
    # admin
    "snapshot": {},
    "cancel": {"ticket": _F(TICKET_ID, True), "reason": _F(Text(200))},
    "reserve": {"day": _F(Date(), True), "start": _F(HHMM, True),
                "minutes": _F(Int(5, 480)), "purposes": _F(Array(Text(64, 1), 16, 1), True),
                "idempotency_key": _F(KEY)},
    "reservations": {"day": _F(Date())},
    # planner (the public planning page, no token; docs/planning.md); it also sends "plan"
    "slots": {"purposes": _F(PURPOSES, True), "answers": _F(ANSWERS), "lang": _F(LANG)},
    "forecast": {"purposes": _F(PURPOSES, True), "answers": _F(ANSWERS), "lang": _F(LANG)},
    "book": {"day": _F(Date(), True), "start": _F(HHMM, True), "purposes": _F(PURPOSES, True), "answers": _F(ANSWERS),
             "lang": _F(LANG), "replaces": _F(BOOKING_CODE), "idempotency_key": _F(KEY)},
    "booking": {"code": _F(BOOKING_CODE, True)},
    # consultation bookings (相談の予約; docs/consultation.md): a topic of consultation.toml, in person or online
    "consult_slots": {"topic": _F(CODE, True), "mode": _F(OneOf(("in_person", "online")), True)},
    "consult_book": {"day": _F(Date(), True), "start": _F(HHMM, True), "topic": _F(CODE, True),
                     "mode": _F(OneOf(("in_person", "online")), True), "lang": _F(LANG), "idempotency_key": _F(KEY)},
    "cancel_booking": {"code": _F(BOOKING_CODE, True), "idempotency_key": _F(KEY)},
}

ALLOWED: dict[str, frozenset[str]] = {
    "kiosk": frozenset({"ping", "plan", "issue", "help", "device_fault", "print_result"}),
    "counter": frozenset(
        {"ping", "call_next", "call", "recall", "start", "complete", "transfer", "add_procedure", "no_show",
         "requeue", "open", "pause", "close", "queue", "current", "resync", "forms", "form_values", "forms_printed",
         "reprint"}
    ),
    "display": frozenset({"ping"}),
    "public": frozenset({"ping", "status"}),
    "admin": frozenset({"ping", "snapshot", "cancel", "reserve", "reservations", "cancel_booking"}),
    "planner": frozenset({"ping", "plan", "slots", "forecast", "book", "booking", "cancel_booking", "consult_slots",
                          "consult_book"}),
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
    "ticket_other_site": "the ticket was issued at another office",
    "no_kiosk": "no kiosk of this site is connected",
    "kiosk_offline": "the kiosk asked for is not connected",
    "counter_busy": "the counter still has a ticket",
    "counter_not_open": "the counter is paused or closed",
    "no_current_ticket": "the counter has no ticket called or in service",
    "not_in_queue": "the ticket does not wait for this counter's departments",
    "too_early": "more recalls are needed before no-show",
    "same_department": "the step is already for that department",
    "unknown_department": "no such department at this site",
    "unknown_reservation": "no reservation with that code today",
    "reservation_used": "that reservation has already been checked in",
    "booking_cancelled": "that booking was cancelled",
    "booking_other_day": "that booking is for another day",
    "booking_other_site": "that booking is for another office",
    "booking_expired": "that booking's day has passed",
    "not_bookable": "none of these procedures takes bookings",
    "unknown_topic": "no consultation desk books that topic",
    "slot_full": "no place left in that slot",
    "slot_past": "that slot has begun or is too soon to book",
    "slot_closed": "that day or time is not a bookable slot",
    "rate_limited": "too many requests: wait and try again",
    "busy": "the server is behind: the request was not applied; send it again after retry_after seconds",
    "storage_error": "the change could not be saved; nothing was changed",
    "internal": "unexpected server error; nothing was changed",
}


class ProtocolError(RequestError):
    """A message refused at the edge, before any handler; ``re`` is its id when that much was read."""

    def __init__(self, code: str, message: str, field: str | None = None, re: Any = None):
        super().__init__(code, message, field)
        self.re = re


@dataclass(frozen=True, slots=True)
class Request:
    type: str
    id: Any
    body: dict[str, Any]


def parse(raw: str | bytes, fields: dict[str, dict[str, Field]] | None = None) -> Request:
    """Decode and check one request; raise ProtocolError naming what is wrong and where.

    ``fields`` is the message table (default FIELDS); the staff role (consultation_api.py) has its own.

    Strict JSON (no NaN/Infinity, no number that overflows to infinity, no integer literal of more
    than MAX_INT_DIGITS digits, nesting at most MAX_DEPTH), then every field against FIELDS.
    """
    if isinstance(raw, bytes | bytearray):
        size = len(raw)
        if size <= MAX_MESSAGE_BYTES:
            try:
                raw = bytes(raw).decode("utf-8")
            except UnicodeDecodeError as e:
                raise ProtocolError("bad_json", f"the message is not UTF-8 (byte {e.start})") from None
    else:
        # a character is at most 4 UTF-8 bytes: measure exactly only near the limit
        size = len(raw) if len(raw) * 4 <= MAX_MESSAGE_BYTES else len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError("too_large", f"message of {size} bytes exceeds {MAX_MESSAGE_BYTES} bytes")
    if raw.count("[") + raw.count("{") > MAX_DEPTH and _too_deep(raw):
        raise ProtocolError("bad_json", f"invalid JSON: nested deeper than {MAX_DEPTH} levels")
    try:
        msg = _decoder.decode(raw)
    except (ValueError, RecursionError) as e:
        raise ProtocolError("bad_json", f"invalid JSON: {_ascii(e)}") from None
    if type(msg) is not dict:
        raise ProtocolError("not_an_object", f"expected a JSON object, got {_JSON_KIND.get(type(msg), 'a number')}")
    rid = msg.get("id")
    if rid is None:
        raise ProtocolError("bad_field", "every request needs an 'id' (an integer or a string of 1–64 characters)", "id")
    try:
        REQUEST_ID.check(rid, "id")
    except Invalid:
        raise ProtocolError("bad_field", "id must be an integer with |id| ≤ 2^53−1 or a string of 1–64 characters "
                            "without control characters", "id") from None
    mtype = msg.get("type")
    if type(mtype) is not str:
        raise ProtocolError("missing_field", "every message needs a string 'type'", "type", re=rid)
    table = (FIELDS if fields is None else fields).get(mtype)
    if table is None:
        raise ProtocolError("unknown_type", f"unknown message type {_quote(mtype)}", "type", re=rid)
    try:
        check_message(mtype, table, msg)
    except Invalid as e:
        code = "missing_field" if e.missing else "bad_field"
        top = e.field.split(".")[0].split("[")[0]  # the request's own field: answers.q -> answers
        raise ProtocolError(code, f"{mtype}: {e.field} {e.rule}", top, re=rid) from None
    body = {k: v for k, v in msg.items() if k != "type" and k != "id"}
    return Request(mtype, rid, body)


def _constant(name: str) -> NotFinite:
    return _NON_FINITE  # NaN, Infinity, -Infinity: the schema refuses it, naming the field


def _finite_float(s: str) -> float | NotFinite:
    f = float(s)
    return f if f - f == 0.0 else _NON_FINITE  # inf - inf and nan - nan are nan: 1e999 overflows


def _small_int(s: str) -> int | NotFinite:
    return int(s) if len(s) <= MAX_INT_DIGITS else NotFinite(f"an integer of {len(s)} digits")


_NON_FINITE = NotFinite("NaN, Infinity or a number that overflows")
_decoder = json.JSONDecoder(parse_constant=_constant, parse_float=_finite_float, parse_int=_small_int)


def _too_deep(raw: str) -> bool:
    """Whether brackets outside strings nest deeper than MAX_DEPTH; stops at the first level
    too deep, so 20,000 brackets cost microseconds (run only when there are many brackets)."""
    depth = 0
    for m in _TOKENS.finditer(raw):
        ch = m.group()
        if ch == "[" or ch == "{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif ch == "]" or ch == "}":
            depth -= 1
    return False


_TOKENS = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}]')  # a whole string, or one bracket


_JSON_KIND = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}


def _quote(s: str) -> str:
    return repr(s[:40]) if s.isprintable() and s.isascii() else "(unprintable)"


def _ascii(e: Exception) -> str:
    return str(e).encode("ascii", "backslashreplace").decode("ascii")


def dumps(obj: Any) -> str:
    """JSON text as the server sends it: compact, UTF-8 as is, no NaN or Infinity."""
    # allow_nan=False: a non-finite number is a bug to report, never `Infinity` sent to a board
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


class Encoded(str):
    """A result already encoded as JSON text (queue_reply.py): a reply carries it as it is."""


def reply(re: Any, result: Any) -> str:
    """The reply to request ``re``; if the result cannot be sent as JSON (a non-finite number,
    a lone surrogate), the client gets an ``internal`` error for that request instead."""
    try:
        if isinstance(result, Encoded):
            return _checked(reply_encoded(re, result))
        return _checked(dumps({"re": re, "result": result}))
    except (ValueError, TypeError) as e:
        log.error("reply to %r not encodable: %s", re, _ascii(e))
        return error(re, "internal", ERROR_CODES["internal"])


def encode_result(result: Any) -> str:
    """A result as the JSON text a reply carries (``reply_encoded``); ValueError or TypeError
    when it cannot be sent. The server keeps idempotent replies this way: a text is one object
    to the garbage collector, an issue's reply as dicts and lists about seventy, and a day of
    them made every full collection walk them (a 22 ms pause with 1,000 tickets)."""
    return _checked(result if isinstance(result, Encoded) else dumps(result))


def reply_encoded(re: Any, result_json: str) -> str:
    """The reply to request ``re`` with a result already encoded by ``encode_result``."""
    return f'{{"re":{dumps(re)},"result":{result_json}}}'


def error(re: Any, code: str, message: str, field: str | None = None, **extra: Any) -> str:
    # ASCII escapes: an error message may quote client input, and must always be sendable
    return json.dumps({"re": re, "error": {"code": code, "message": message, "field": field, **extra}},
                      separators=(",", ":"), allow_nan=False)


def error_reply(re: Any, e: RequestError) -> str:
    """The wire's answer to a refused request, whichever layer refused it (core/errors.py)."""
    return error(re, e.code, e.message, e.field, **e.extra)


def push(kind: str, site: str, seq: int, data: Any) -> str | None:
    """A push message, or None (logged) when ``data`` cannot be sent as JSON: a bug must never
    reach boards as a message their parser drops."""
    try:
        return _checked(dumps({"push": kind, "site": site, "seq": seq, "data": data}))
    except (ValueError, TypeError) as e:
        log.error("%s push not encodable: %s", kind, _ascii(e))
        return None


def _checked(text: str) -> str:
    """Refuse text that UTF-8 cannot carry (a lone surrogate): websockets would fail the send
    and close the connection with 1011."""
    if not text.isascii():
        try:
            text.encode("utf-8")  # the fastest full check in CPython (faster than a regex search)
        except UnicodeEncodeError:
            raise ValueError("text holds a lone surrogate") from None
    return text


def limits_table() -> str:
    """The per-field rules of FIELDS as the markdown table in docs/protocol.md ("Limits").

    tests/queue_server/test_protocol_doc.py checks the doc holds exactly this table; print it with
    ``python -m queue_server.protocol`` after changing FIELDS.
    """
    rows = ["| message | field | rule |", "|---|---|---|"]
    for mtype, table in FIELDS.items():
        for name, fld in table.items():
            req = " (required)" if fld.required else ""
            rows.append(f"| `{mtype}` | `{name}`{req} | {fld.spec.describe()} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(limits_table())
