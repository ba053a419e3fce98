"""Application forms as data (書かない窓口): load config/forms/*.toml, fill each field from its source.

Pure: no I/O except ``load_forms`` reading the TOML files, no clock. A field names where its value
comes from:

- ``card.name`` / ``card.address`` / ``card.birth_date`` / ``card.sex``: the My Number card's
  基本4情報 the kiosk read (the informant's, the person at the counter);
- ``answer.<question id>``: the kiosk or planning answers of the visit;
- ``ticket.date`` / ``ticket.site`` / ``ticket.number``: the ticket itself;
- ``ask.<key>``: typed once by the clerk for the whole visit and shared by every form that names
  the same key (the deceased's name, the date of death, the bank account …).

A field whose source has no value stays empty and is marked ``missing``: it is never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

SOURCE_KINDS = ("card", "answer", "ticket", "ask")
CARD_KEYS = ("name", "address", "birth_date", "sex")
TICKET_KEYS = ("date", "site", "number")
SEX_JA = {"0": "不明", "1": "男", "2": "女", "9": "適用不能"}  # ISO 5218, as on the 住民票
MAX_VALUE = 200  # characters: a typed value longer than this is refused, not cut


class FormError(ValueError):
    """A form definition that cannot be used, naming the file and the field."""


@dataclass(frozen=True)
class Field:
    id: str
    label: dict[str, str]
    source: str  # "card.name", "answer.deceased_age", "ticket.date", "ask.deceased_name"
    width: int = 100  # percent of the row on the A4 layout
    values: Mapping[str, str] | None = None  # answer code -> text printed on the form

    @property
    def kind(self) -> str:
        return self.source.split(".", 1)[0]

    @property
    def key(self) -> str:
        return self.source.split(".", 1)[1]


@dataclass(frozen=True)
class Form:
    id: str
    name: dict[str, str]
    department: str
    procedures: tuple[str, ...]
    source: str  # the city page or law the form follows, or "estimate"
    fields: tuple[Field, ...]
    note: dict[str, str] | None = None


def _label(raw: object, where: str) -> dict[str, str]:
    if isinstance(raw, str):
        return {"ja": raw}
    if not isinstance(raw, dict) or "ja" not in raw or not all(isinstance(v, str) for v in raw.values()):
        raise FormError(f"{where}: needs a Japanese text (a string or a table with ja = …)")
    return dict(raw)


def parse_form(data: Mapping, where: str) -> Form:
    """One form from its TOML table; raises FormError naming the file and the field at fault."""
    f = data.get("form")
    if not isinstance(f, dict):
        raise FormError(f"{where}: missing [form] table")
    for k in ("id", "department", "source"):
        if not isinstance(f.get(k), str) or not f[k]:
            raise FormError(f"{where}: [form] needs {k} = \"…\"")
    procs = f.get("procedures")
    if not isinstance(procs, list) or not procs or not all(isinstance(p, str) for p in procs):
        raise FormError(f"{where}: [form] procedures must list the catalogue procedure ids it serves")
    fields = []
    seen: set[str] = set()
    for i, raw in enumerate(data.get("fields") or []):
        at = f"{where}: fields[{i}]"
        fid, src = raw.get("id"), raw.get("source")
        if not isinstance(fid, str) or not fid:
            raise FormError(f"{at}: needs id")
        if fid in seen:
            raise FormError(f"{at}: duplicate field id {fid!r}")
        seen.add(fid)
        if not isinstance(src, str) or "." not in src or src.split(".", 1)[0] not in SOURCE_KINDS:
            raise FormError(f"{at} ({fid}): source must be one of {', '.join(k + '.…' for k in SOURCE_KINDS)}")
        kind, key = src.split(".", 1)
        if kind == "card" and key not in CARD_KEYS:
            raise FormError(f"{at} ({fid}): the card gives only {', '.join(CARD_KEYS)}")
        if kind == "ticket" and key not in TICKET_KEYS:
            raise FormError(f"{at} ({fid}): the ticket gives only {', '.join(TICKET_KEYS)}")
        if kind == "ask" and not re.fullmatch(r"[a-z][a-z0-9_]*", key):
            raise FormError(f"{at} ({fid}): ask keys are lower_snake_case")
        width = raw.get("width", 100)
        if not isinstance(width, int) or not 10 <= width <= 100:
            raise FormError(f"{at} ({fid}): width is a percentage from 10 to 100")
        values = raw.get("values")
        fields.append(Field(fid, _label(raw.get("label"), f"{at} ({fid}) label"), src, width,
                            dict(values) if isinstance(values, dict) else None))
    if not fields:
        raise FormError(f"{where}: a form needs at least one [[fields]]")
    note = f.get("note")
    return Form(f["id"], _label(f.get("name"), f"{where}: [form] name"), f["department"], tuple(procs),
                f["source"], tuple(fields), _label(note, f"{where}: note") if note else None)


def forms_for(forms: Mapping[str, Form], procedures: Iterable[str]) -> list[Form]:
    """The forms the given procedures need, each once, in the order of the procedures."""
    out: list[Form] = []
    for p in procedures:
        for f in forms.values():
            if p in f.procedures and f not in out:
                out.append(f)
    return out


def _card_text(key: str, value: str) -> str:
    if key == "birth_date":
        m = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})", value)
        return f"{m[1]}年{int(m[2])}月{int(m[3])}日" if m else value
    if key == "sex":
        return SEX_JA.get(value, value)
    return value


def fill(form: Form, *, card: Mapping[str, str] | None, answers: Mapping[str, str],
         ticket: Mapping[str, str], asked: Mapping[str, str]) -> dict:
    """The form with each field's value from its source; a missing source leaves the field empty
    and ``missing`` (never guessed). ``origin`` says where a value came from (for the KPI)."""
    rows = []
    for fld in form.fields:
        value: str | None = None
        if fld.kind == "card" and card:
            raw = card.get(fld.key)
            value = _card_text(fld.key, str(raw)) if raw else None
        elif fld.kind == "answer":
            raw = answers.get(fld.key)
            if raw is not None and raw != "unknown":
                value = (fld.values or {}).get(raw, raw if fld.values is None else None)
        elif fld.kind == "ticket":
            value = ticket.get(fld.key) or None
        elif fld.kind == "ask":
            value = asked.get(fld.key) or None
        rows.append({"id": fld.id, "label": fld.label, "source": fld.source, "origin": fld.kind,
                     "ask": fld.key if fld.kind == "ask" else None, "width": fld.width,
                     "value": value or "", "missing": not value})
    return {"id": form.id, "name": form.name, "department": form.department, "procedures": list(form.procedures),
            "source": form.source, "estimate": form.source == "estimate", "note": form.note, "fields": rows}


def ask_keys(forms: Iterable[Form]) -> list[str]:
    """The ask-once keys of the given forms, each once, in form order."""
    out: list[str] = []
    for f in forms:
        for fld in f.fields:
            if fld.kind == "ask" and fld.key not in out:
                out.append(fld.key)
    return out


def check_values(values: Mapping[str, object], allowed: Iterable[str]) -> dict[str, str]:
    """Typed ask-once values, checked: known keys, strings, at most MAX_VALUE characters."""
    allowed = set(allowed)
    out: dict[str, str] = {}
    for k, v in values.items():
        if k not in allowed:
            raise FormError(f"values.{k}: no form of this visit asks for {k!r}")
        if not isinstance(v, str):
            raise FormError(f"values.{k}: must be a string")
        if len(v) > MAX_VALUE:
            raise FormError(f"values.{k}: at most {MAX_VALUE} characters")
        out[k] = v.strip()
    return out


def form_problems(form: Form, procedures: Mapping[str, str | None]) -> list[str]:
    """Why ``form`` does not fit the catalogue: unknown procedure ids, or a procedure done at
    another department than the form's (``procedures``: id -> department); [] when it fits."""
    out: list[str] = []
    for p in form.procedures:
        if p not in procedures:
            out.append(f"procedures: {p!r} is not a catalogue procedure")
        elif procedures[p] != form.department:
            out.append(f"department {form.department!r}: {p!r} is done at {procedures[p]!r}")
    return out
