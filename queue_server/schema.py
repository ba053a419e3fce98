"""A small declarative validator for the websocket protocol's messages (pure: no I/O, no clock).

Every field of every request is described by a *spec* (``Text``, ``Int``, ``Num``, ``Bool``,
``OneOf``, ``Array``, ``Map``, ``Obj``, ``Date``, ``Either``); a message type is a dict of field
name -> ``Field(spec, required)``. ``check_message`` applies one table to a decoded JSON object
and raises ``Invalid(field, rule)`` at the first violation, naming the field (with a path such as
``purposes[2]`` or ``prefill.name``) and the rule broken — never echoing the offending value,
which may not even be encodable.

Rules every string obeys unless it is a ``Raw`` (tokens, compared in constant time elsewhere):
valid Unicode with no lone surrogates (JSON ``"\\ud800"`` decodes to one), no control characters
(C0 including NUL, DEL, C1; ``multiline=True`` allows TAB and LF only), and a maximum length in
characters. Numbers are finite, never booleans, and inside their stated range.

To register a new message type (e.g. for a new role), add one entry to ``protocol.FIELDS``::

    "book": {"day": Field(Date()), "purposes": Field(PURPOSES), "idempotency_key": Field(KEY)},

then list it in ``protocol.ALLOWED`` for its role and document it (and its limits) in
docs/protocol.md; tests/queue_server/test_protocol_doc.py checks the doc names it. Unknown fields
are refused, so a new optional field on an existing message must be added to its table too.

Validation is cheap: 5–15 µs per request on top of json.loads (bench/schema_bench.py,
docs/reliability.md).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

# C0 controls (NUL included), DEL, C1 controls, and UTF-16 surrogates (only lone ones survive
# json.loads: a valid escaped pair decodes to one astral character).
_BAD_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_BAD_MULTILINE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


class NotFinite:
    """What the strict decoder puts where JSON had NaN, Infinity, a float that overflows (1e999)
    or an over-long integer, so that the schema can name the field instead of failing the parse."""

    __slots__ = ("kind",)

    def __init__(self, kind: str):
        self.kind = kind  # "NaN, Infinity or ..." or "an integer of N digits"

    def __repr__(self) -> str:
        return f"NotFinite({self.kind})"


class Invalid(Exception):
    """A field breaks its rule. ``field`` is the path, ``rule`` says what is required."""

    def __init__(self, field: str, rule: str, missing: bool = False):
        super().__init__(f"{field}: {rule}")
        self.field, self.rule, self.missing = field, rule, missing


class Spec:
    """One field's rule. ``check`` returns the value (unchanged) or raises Invalid."""

    def check(self, v: Any, where: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Text(Spec):
    max_len: int
    min_len: int = 0
    pattern: str | None = None
    multiline: bool = False
    hint: str = ""  # the pattern in words, for the error message

    def check(self, v: Any, where: str) -> Any:
        if type(v) is not str:
            raise Invalid(where, f"must be {self.describe()}")
        n = len(v)
        if n > self.max_len or n < self.min_len:
            raise Invalid(where, f"must be {self._length()} (got {n})")
        if (_BAD_MULTILINE if self.multiline else _BAD_TEXT).search(v):
            raise Invalid(where, "must be valid Unicode text without control characters or lone surrogates")
        if self.pattern is not None and not _compiled(self.pattern).fullmatch(v):
            raise Invalid(where, f"must be {self.describe()}")
        return v

    def _length(self) -> str:
        if self.min_len == self.max_len:
            return f"{self.max_len} characters"
        if self.min_len:
            return f"{self.min_len}–{self.max_len} characters"
        return f"at most {self.max_len} characters"

    def describe(self) -> str:
        extra = ", TAB and LF allowed" if self.multiline else ""
        return f"{self.hint or 'text'} ({self._length()}{extra})"


@dataclass(frozen=True, slots=True)
class Raw(Spec):
    """A string checked only for type and length: a token, compared byte-wise elsewhere, so a
    wrong one (even non-ASCII) answers the semantic error (bad_token) rather than bad_field."""

    max_len: int

    def check(self, v: Any, where: str) -> Any:
        if type(v) is not str:
            raise Invalid(where, "must be a string")
        if len(v) > self.max_len:
            raise Invalid(where, f"must be at most {self.max_len} characters (got {len(v)})")
        return v

    def describe(self) -> str:
        return f"a string (at most {self.max_len} characters)"


@dataclass(frozen=True, slots=True)
class Int(Spec):
    lo: int
    hi: int

    def check(self, v: Any, where: str) -> Any:
        if type(v) is not int:  # bool is a subclass of int: `type is` refuses true/false
            if type(v) is NotFinite:
                raise Invalid(where, f"must be {self.describe()} (got {v.kind})")
            raise Invalid(where, f"must be {self.describe()}")
        if not self.lo <= v <= self.hi:
            raise Invalid(where, f"must be {self.describe()}")
        return v

    def describe(self) -> str:
        return f"an integer {self.lo} ≤ n ≤ {self.hi}"


@dataclass(frozen=True, slots=True)
class Num(Spec):
    """A finite number; ``lo_open`` makes the lower bound exclusive (0 < minutes)."""

    lo: float
    hi: float
    lo_open: bool = False

    def check(self, v: Any, where: str) -> Any:
        t = type(v)
        if t is not int and t is not float:
            if t is NotFinite:
                raise Invalid(where, f"must be {self.describe()} (got {v.kind})")
            raise Invalid(where, f"must be {self.describe()}")
        if t is float and not math.isfinite(v):  # only if a caller decoded without the strict hooks
            raise Invalid(where, "must be a finite number")
        if v > self.hi or v < self.lo or (self.lo_open and v == self.lo):
            raise Invalid(where, f"must be {self.describe()}")
        return v

    def describe(self) -> str:
        return f"a finite number {self.lo:g} {'<' if self.lo_open else '≤'} x ≤ {self.hi:g}"


@dataclass(frozen=True, slots=True)
class Bool(Spec):
    def check(self, v: Any, where: str) -> Any:
        if type(v) is not bool:
            raise Invalid(where, "must be true or false")
        return v

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True, slots=True)
class OneOf(Spec):
    values: tuple[str, ...]

    def check(self, v: Any, where: str) -> Any:
        if type(v) is not str or v not in self.values:
            raise Invalid(where, f"must be one of {', '.join(self.values)}")
        return v

    def describe(self) -> str:
        return "one of " + ", ".join(f"`{x}`" for x in self.values)


@dataclass(frozen=True, slots=True)
class Date(Spec):
    """A calendar date as YYYY-MM-DD (a real date: 2026-02-30 is refused)."""

    def check(self, v: Any, where: str) -> Any:
        if type(v) is not str or len(v) != 10 or not _compiled(r"\d{4}-\d{2}-\d{2}").fullmatch(v):
            raise Invalid(where, "must be a date YYYY-MM-DD")
        try:
            date.fromisoformat(v)
        except ValueError:
            raise Invalid(where, "must be a real calendar date YYYY-MM-DD") from None
        return v

    def describe(self) -> str:
        return "a date YYYY-MM-DD"


@dataclass(frozen=True, slots=True)
class Array(Spec):
    item: Spec
    max_items: int
    min_items: int = 0

    def check(self, v: Any, where: str) -> Any:
        if type(v) is not list:
            raise Invalid(where, f"must be {self.describe()}")
        if not self.min_items <= len(v) <= self.max_items:
            raise Invalid(where, f"must have {self.min_items}–{self.max_items} items (got {len(v)})")
        item = self.item
        for i, x in enumerate(v):
            item.check(x, f"{where}[{i}]")
        return v

    def describe(self) -> str:
        return f"an array of {self.min_items}–{self.max_items} × {self.item.describe()}"


@dataclass(frozen=True, slots=True)
class Map(Spec):
    """An object with free keys (e.g. answers: question id -> answer)."""

    key: Text
    value: Spec
    max_items: int

    def check(self, v: Any, where: str) -> Any:
        if type(v) is not dict:
            raise Invalid(where, "must be an object")
        if len(v) > self.max_items:
            raise Invalid(where, f"must have at most {self.max_items} entries (got {len(v)})")
        for k, x in v.items():
            try:
                self.key.check(k, where)
            except Invalid as e:
                raise Invalid(where, f"has a key that {e.rule}") from None
            self.value.check(x, f"{where}.{k}")
        return v

    def describe(self) -> str:
        return f"an object of at most {self.max_items} entries, key {self.key.describe()} → {self.value.describe()}"


@dataclass(frozen=True, slots=True)
class Obj(Spec):
    """An object with fixed, optional keys (e.g. the card prefill); unknown keys are refused."""

    fields: dict[str, Spec]

    def check(self, v: Any, where: str) -> Any:
        if type(v) is not dict:
            raise Invalid(where, "must be an object")
        for k, x in v.items():
            spec = self.fields.get(k)
            if spec is None:
                raise Invalid(where, f"has no field {_safe(k)} (allowed: {', '.join(self.fields)})")
            if x is not None:
                spec.check(x, f"{where}.{k}")
        return v

    def describe(self) -> str:
        return "an object with optional " + ", ".join(f"`{k}` {v.describe()}" for k, v in self.fields.items())


@dataclass(frozen=True, slots=True)
class Either(Spec):
    """The first spec whose JSON type matches decides (e.g. an id is an integer or a string)."""

    options: tuple[Spec, ...]

    def check(self, v: Any, where: str) -> Any:
        for spec in self.options:
            if _same_kind(spec, v):
                return spec.check(v, where)
        raise Invalid(where, "must be " + " or ".join(s.describe() for s in self.options))

    def describe(self) -> str:
        return " or ".join(s.describe() for s in self.options)


@dataclass(frozen=True, slots=True)
class Field:
    spec: Spec
    required: bool = False


def check_message(mtype: str, table: dict[str, Field], msg: dict[str, Any], skip: tuple[str, ...] = ("type", "id")) -> None:
    """Check every field of ``msg`` against ``table``: required ones present, unknown ones refused.

    A field whose value is JSON ``null`` counts as absent.
    """
    for name, fld in table.items():
        v = msg.get(name)
        if v is None:
            if fld.required:
                raise Invalid(name, "is required", missing=True)
            continue
        fld.spec.check(v, name)
    for k in msg:
        if k not in table and k not in skip:
            raise Invalid(_safe(k), f"is not a field of {mtype} (allowed: {', '.join(table) or 'none'})")


def _same_kind(spec: Spec, v: Any) -> bool:
    t = type(v)
    if isinstance(spec, Int):
        return t is int
    if isinstance(spec, Num):
        return t is int or t is float
    if isinstance(spec, Text | Raw | OneOf | Date):
        return t is str
    if isinstance(spec, Bool):
        return t is bool
    if isinstance(spec, Array):
        return t is list
    return t is dict


def _safe(name: Any) -> str:
    """A field name fit to quote back: printable ASCII, at most 40 characters, else a placeholder."""
    s = str(name)
    if len(s) <= 40 and s.isascii() and s.isprintable():
        return s
    return "(unprintable field name)"


_patterns: dict[str, re.Pattern[str]] = {}


def _compiled(p: str) -> re.Pattern[str]:
    r = _patterns.get(p)
    if r is None:
        r = _patterns[p] = re.compile(p)
    return r
