"""Seeded generator of hostile websocket messages for the fuzz test and bench (issue 12).

Every message type of protocol.FIELDS starts from a valid template and is mutated: fields set to
wrong types, huge or non-finite numbers (written as raw JSON literals: 1e999, NaN, 10**400),
invalid Unicode (lone surrogates as JSON escapes "\\ud800"), control characters, unknown fields,
missing fields, wrong ids; or replaced by raw garbage (truncated JSON, non-objects, invalid UTF-8
in binary frames), 20,000-bracket nesting and frames over the size limit.
"""

from __future__ import annotations

import json
import random
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from queue_server import protocol as P

_RAW = "@@RAW{}@@"
_SURROGATE = re.compile("[\\ud800-\\udfff]")
RAW_LITERALS = ["1e999", "-1e999", "NaN", "Infinity", "-Infinity", str(10**400), "-" + str(10**30), "1e-400",
                "-0", "0.0000001", "4.8e2", str(2**64), "1E+2"]

NASTY: list[Any] = [
    None, True, False, 0, -1, 1, 7, 480, 481, 1.5, -0.0, 2**53, 2**63, -(2**63), 10**19,
    "", " ", "x" * 300, "あ" * 201, "\ud800", "\udfff", "a\ud83db", "\ud83d\ude00", "a\x00b", "\x1b[31m", "\x7f", "\x85",
    "\u202e", "\ufeff", "😀", "酒田", "ja", "en", "death", "certificate", "shimin", "kiosk", "counter", "admin",
    "2026-02-30", "2026-13-01", "25:00", "10:00", "../../etc/passwd", "' OR 1=1 --", "<script>", "%s%n",
    [], {}, [1, [2, [3]]], {"a": {"b": {}}}, ["death", None], ["\ud800"], {"q": 1}, {"\ud800": "yes"},
    {"name": "黒桐\x00"}, [""] * 20,
] + [_RAW.format(i) for i in range(len(RAW_LITERALS))]

EXTRA_FIELDS = ["zz", "__proto__", "constructor", "type ", "ID", "\ud800", "é", "a" * 100]


def future_day(days: int = 30) -> str:
    """A booking day ahead of the server's local date (Asia/Tokyo)."""
    return (datetime.now(ZoneInfo("Asia/Tokyo")).date() + timedelta(days=days)).isoformat()


def hellos(tokens: Any, site: str = "honcho", ticket: str = "") -> list[dict[str, Any]]:
    """A valid hello for every role (counter 3 and 6 are left to the fuzz)."""
    return [
        {"role": "kiosk", "device": "fz", "token": tokens.roles["kiosk"], "site": site},
        {"role": "counter", "site": site, "counter": 3, "token": tokens.counters[site][3], "staff": "fz"},
        {"role": "counter", "site": site, "counter": 6, "token": tokens.counters[site][6], "last_seq": 0},
        {"role": "display", "site": site, "device": "fz-board", "token": tokens.roles["display"], "last_seq": 1},
        {"role": "admin", "site": site, "token": tokens.roles["admin"]},
        {"role": "public", "site": site, "ticket": ticket or "x"},
    ]


def templates(tokens: Any, site: str = "honcho") -> dict[str, dict[str, Any]]:
    """A valid body for every message type (hello: as a kiosk; see ``hellos`` for the others)."""
    return {
        "hello": {"role": "kiosk", "device": "fz", "token": tokens.roles["kiosk"], "site": site},
        "ping": {},
        "plan": {"purposes": ["certificate"], "answers": {}, "lang": "ja"},
        "issue": {"purposes": ["certificate"], "answers": {}, "lang": "ja", "idempotency_key": "fz"},
        "help": {"reason": "staff_help"},
        "device_fault": {"device_kind": "printer", "code": "paper_out", "detail": "fuzz"},
        "call_next": {"idempotency_key": "fz"},
        "call": {"ticket": "00000000-0000-0000-0000-000000000000"},
        "recall": {}, "start": {}, "complete": {}, "no_show": {}, "requeue": {}, "pause": {}, "close": {},
        "queue": {}, "current": {}, "status": {}, "snapshot": {},
        "open": {"staff": "fuzz"},
        "transfer": {"department": "hoken_nenkin"},
        "add_procedure": {"department": "shimin", "procedures": ["extra"], "minutes": 5},
        "cancel": {"ticket": "00000000-0000-0000-0000-000000000000", "reason": "fuzz"},
        "reserve": {"day": future_day(), "start": "10:00", "minutes": 60, "purposes": ["death"]},
        "reservations": {"day": future_day()},
    }


class Fuzzer:
    """``next()`` returns (frame, id or None): frame is str (text) or bytes (binary)."""

    def __init__(self, seed: int, tokens: Any, *, deep_every: int = 400, big_every: int = 2000, ticket: str = "",
                 wrong_token_hellos: bool = False):
        self.rng = random.Random(seed)
        self.templates = templates(tokens)
        # a connection fuzzing before hello keeps wrong tokens, so most of it stays unauthenticated
        self.hellos = [{**h, "token": "nope"} if wrong_token_hellos and "token" in h else h
                       for h in hellos(tokens, ticket=ticket)]
        self.types = sorted(self.templates)
        self.all_fields = sorted({f for t in P.FIELDS.values() for f in t})
        self.deep_every, self.big_every = deep_every, big_every
        self.n = 0
        self.kinds: dict[str, int] = {}

    def _count(self, kind: str) -> None:
        self.kinds[kind] = self.kinds.get(kind, 0) + 1

    def next(self) -> tuple[str | bytes, Any]:
        rng = self.rng
        self.n += 1
        rid: Any = self.n
        if self.n % self.big_every == 0:
            self._count("oversized message (64-128 KiB)")
            return json.dumps({"type": "help", "id": rid, "reason": "酒" * 30000}, ensure_ascii=False), None
        if self.n % self.deep_every == 0:
            self._count("deep nesting (20,000 brackets)")
            return rng.choice(["[" * 20000 + "]" * 20000, '{"type":"ping","id":1,"x":' + "[" * 20000 + "]" * 20000 + "}",
                               '{"a":' * 12000 + "1" + "}" * 12000]), None
        r = rng.random()
        if r < 0.12:
            self._count("raw garbage")
            return self._garbage(), None
        mtype = rng.choice(self.types)
        body = rng.choice(self.hellos) if mtype == "hello" else self.templates[mtype]
        msg: dict[str, Any] = {"type": mtype, "id": rid, **body}
        if "idempotency_key" in msg:
            msg["idempotency_key"] = f"fz-{self.n}"
        if r < 0.17:
            self._count("valid template")
        else:
            for _ in range(rng.choice((1, 1, 1, 2, 3))):
                rid = self._mutate(mtype, msg, rid)
        text = self._encode(msg)
        if rng.random() < 0.04:
            self._count("binary frame")
            data = text.encode("utf-8", "surrogatepass")
            if rng.random() < 0.5:
                i = rng.randrange(len(data))
                data = data[:i] + bytes([rng.choice([0xFF, 0xC0, 0x80, 0xED])]) + data[i + 1:]
                self._count("binary frame with invalid UTF-8")
            return data, None
        return text, rid if type(rid) is int and "id" in msg else None

    def _mutate(self, mtype: str, msg: dict[str, Any], rid: Any) -> Any:
        rng = self.rng
        op = rng.random()
        if op < 0.45:  # a known field gets a hostile value
            name = rng.choice(list(self.templates[mtype]) or self.all_fields) if rng.random() < 0.7 \
                else rng.choice(self.all_fields)
            msg[name] = rng.choice(NASTY)
            self._count("hostile value")
        elif op < 0.6:  # drop a field (sometimes the id or the type)
            name = rng.choice([k for k in msg if k != "type"] + ["type", "id"])
            msg.pop(name, None)
            self._count("missing field")
        elif op < 0.7:
            msg[rng.choice(EXTRA_FIELDS)] = rng.choice(NASTY)
            self._count("unknown field")
        elif op < 0.8:
            rid = msg["id"] = rng.choice(NASTY)
            self._count("hostile id")
        elif op < 0.88:
            msg["type"] = rng.choice(NASTY + ["end_of_day", "HELLO", "hello\x00"])
            self._count("hostile type")
        else:  # valid-looking values of the wrong kind for another message
            other = self.templates[rng.choice(self.types)]
            if other:
                k = rng.choice(list(other))
                msg[k] = other[k]
            self._count("field from another message")
        return rid

    def _encode(self, msg: dict[str, Any]) -> str:
        text = json.dumps(msg, ensure_ascii=self.rng.random() < 0.5)
        if not text.isascii() and _SURROGATE.search(text):
            # a text frame must be UTF-8 (RFC 6455): lone surrogates travel as JSON escapes "\\ud800"
            text = json.dumps(msg)
        if "@@RAW" in text:
            for i, lit in enumerate(RAW_LITERALS):
                text = text.replace(json.dumps(_RAW.format(i)), lit)
        return text

    def _garbage(self) -> str:
        rng = self.rng
        base = self._encode({"type": rng.choice(self.types), "id": self.n, **self.templates[rng.choice(self.types)]})
        choice = rng.randrange(9)
        if choice == 0:
            return base[: rng.randrange(len(base))]
        if choice == 1:
            i = rng.randrange(len(base))
            return base[:i] + rng.choice(['"', "{", "]", "\\", ",", ":", "\\u", "\\ud800", "\\u0000", "\n"]) + base[i + 1:]
        if choice == 2:
            return rng.choice(["", " ", "null", "true", "1", "[]", '"x"', "NaN", "1e999", "[1,2]", '"\\ud800"'])
        if choice == 3:
            return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(1, 40)))
        if choice == 4:
            return base + base
        if choice == 5:
            return '{"type":"ping","id":1,"type":"issue"}'  # duplicate keys: the last one wins
        if choice == 6:
            return base.replace('"id"', '"id":1,"id"', 1)
        if choice == 7:
            return "\ufeff" + base  # a byte-order mark is not JSON
        return json.dumps([base])
