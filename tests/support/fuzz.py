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
from dataclasses import dataclass, field
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

LANGS = ["ja", "en", "zh", "ko", "vi", "pt", "ja-easy"]
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
        "queue": {}, "current": {}, "resync": {}, "status": {}, "snapshot": {},
        "open": {"staff": "fuzz"},
        "transfer": {"department": "hoken_nenkin"},
        "add_procedure": {"department": "shimin", "procedures": ["extra"], "minutes": 5},
        "cancel": {"ticket": "00000000-0000-0000-0000-000000000000", "reason": "fuzz"},
        "reserve": {"day": future_day(), "start": "10:00", "minutes": 60, "purposes": ["death"]},
        "reservations": {"day": future_day()},
        "print_result": {"ticket": "00000000-0000-0000-0000-000000000000", "printed": False, "code": "offline"},
        "reprint": {"ticket": "00000000-0000-0000-0000-000000000000", "idempotency_key": "fz"},
    }


@dataclass
class World:
    """What valid random requests draw from: the real catalogue and site, and the ticket ids the
    fuzz connections have seen (shared, filled by the test's readers)."""

    purposes: list[str]
    questions: list[tuple[str, str, tuple[str, ...], int, int]]  # id, kind, choices, min, max
    departments: list[str]
    procedures: list[str]
    tickets: list[str] = field(default_factory=list)
    exclude: set[str] | dict = field(default_factory=set)  # tickets of the well-behaved clients

    @classmethod
    def load(cls, site: str = "honcho") -> World:
        from queue_server.cli import load_catalogue_if_present
        from queue_server.config import DEFAULT_CONFIG_DIR, load_city

        city = load_city()
        cat = load_catalogue_if_present(DEFAULT_CONFIG_DIR, city)
        qs = [(q.id, q.kind, tuple(q.choices), q.min or 0, q.max or 100) for q in cat.questions.values()]
        return cls(sorted(cat.purposes), qs, sorted(city.sites[site].departments), sorted(cat.procedures))

    def learn(self, msg: Any) -> None:
        """Remember ticket ids from a reply's result (kept bounded)."""
        result = msg.get("result") if isinstance(msg, dict) else None
        t = result.get("ticket") if isinstance(result, dict) else None
        if isinstance(t, dict) and isinstance(t.get("id"), str) and t["id"] not in self.tickets:
            self.tickets.append(t["id"])
            del self.tickets[:-500]


class Fuzzer:
    """``next()`` returns (frame, id or None): frame is str (text) or bytes (binary)."""

    def __init__(self, seed: int, tokens: Any, *, deep_every: int = 400, big_every: int = 2000, ticket: str = "",
                 wrong_token_hellos: bool = False, world: World | None = None):
        self.rng = random.Random(seed)
        self.world = world
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
        elif r < 0.27 and self.world is not None:
            msg = {"type": mtype, "id": rid, **self._valid(mtype, body)}
            self._count("valid, random values")
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

    def _text(self, n: int) -> str:
        rng = self.rng
        alphabet = "abcXYZ019 -_.あ酒田窓口😀é\u3000"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(n + 1)))

    def _valid(self, mtype: str, body: dict[str, Any]) -> dict[str, Any]:
        """A schema-valid body with random values in range: exercises the core, not the edge."""
        rng, w = self.rng, self.world
        assert w is not None
        known = [t for t in w.tickets if t not in w.exclude]
        ticket = rng.choice(known) if known and rng.random() < 0.9 else "00000000-0000-0000-0000-000000000000"
        dept = rng.choice(w.departments + ["nowhere"])
        purposes = rng.sample(w.purposes, rng.choice((1, 1, 2, 3)))
        answers = {}
        for qid, kind, choices, lo, hi in rng.sample(w.questions, rng.randrange(6)):
            if kind == "number":
                answers[qid] = str(rng.randint(lo, hi))
            elif choices:
                answers[qid] = rng.choice(choices)
            else:
                answers[qid] = rng.choice(("yes", "no"))
        minutes = rng.choice([rng.uniform(1e-9, 480), 480, 1, 0.5, 5e-324, rng.randint(1, 480)])
        day = future_day(rng.randrange(0, 60))
        values: dict[str, Any] = {
            "purposes": purposes, "answers": answers, "lang": rng.choice(LANGS), "assistance": rng.random() < 0.3,
            "idempotency_key": f"fzv-{self.n}" if rng.random() < 0.8 else f"fzv-{rng.randrange(50)}",
            "reason": self._text(200), "detail": self._text(500), "staff": self._text(100),
            "device_kind": rng.choice(["printer", "card_reader", "screen"]), "code": rng.choice(["paper_out", "jam"]),
            "ticket": ticket, "department": dept, "procedures": rng.sample(w.procedures, rng.choice((1, 2))),
            "minutes": minutes, "day": day, "start": f"{rng.randrange(24):02d}:{rng.randrange(60):02d}",
            "reservation_code": f"{rng.randrange(10**6):06d}",
            "prefill": {"name": self._text(200), "address": self._text(200), "birth_date": "1980-02-17", "sex": "1"},
        }
        out: dict[str, Any] = {}
        for k, v in body.items():
            if k in values and rng.random() < 0.9:
                out[k] = values[k]
            elif k in P.FIELDS[mtype] and P.FIELDS[mtype][k].required or rng.random() < 0.5:
                out[k] = v
        for k, fld in P.FIELDS[mtype].items():  # optional fields the template leaves out
            if k not in out and k in values and not fld.required and rng.random() < 0.3 and mtype != "hello":
                out[k] = values[k]
        if mtype == "reserve" and "minutes" in out:
            out["minutes"] = rng.randint(5, 480)
        return out

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
