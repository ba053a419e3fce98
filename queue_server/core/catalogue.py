"""The procedure catalogue: loading and validating ``config/catalogue/*.toml``.

The catalogue is data a city edits (see docs/catalogue.md). Each purpose file (one per life event,
``certificates.toml``, ``consultation.toml``) holds a ``[purpose]`` table, its ``[questions.*]``
and its ``[procedures.*]``. Shared tables — ``[documents.*]``, ``[deadlines.*]``,
``[alternatives.*]``, ``[places.*]``, ``[answers]``, ``[labels]`` and ``[catalogue]`` (the
department order) — may live in any file; the shipped catalogue keeps them in ``common.toml``.

Loading reads the files once and returns plain frozen data; nothing here touches the world
afterwards. Every problem found is reported at once, each with its file and line, because a
city editor fixing one typo at a time through a slow deploy loop would give up.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from queue_server.core import easy_japanese
from queue_server.core.conditions import (
    ALWAYS,
    CHOICE,
    MULTI,
    NUMBER,
    YESNO,
    Condition,
    ConditionError,
    check_condition,
    parse_condition,
)
from queue_server.core.deadlines import AMOUNT_KINDS, EVENT_KINDS, KINDS, UNITS, DeadlineRule, render
from queue_server.core.i18n import LANGUAGES
from queue_server.core.problems import Problem

Texts = Mapping[str, str]

PURPOSE_KINDS = ("life_event", "certificate", "consultation")
QUESTION_KINDS = (YESNO, CHOICE, NUMBER, MULTI)
ALTERNATIVE_KINDS = ("online", "convenience_store", "mail")
ANSWER_LABELS = ("yes", "no", "unknown")
# Labels the CLI and kiosk print around a plan; the catalogue must translate each one.
LABEL_KEYS = (
    "plan_title", "step", "minutes", "documents", "deadline", "online", "external",
    "to_confirm", "total", "question", "answers", "where", "estimate",
)

_TOP_LEVEL = ("catalogue", "purpose", "questions", "procedures", "documents", "deadlines",
              "alternatives", "places", "answers", "labels", "deadline_templates", "events", "units")
_PROCEDURE_KEYS = frozenset({"name", "department", "external", "when", "documents", "deadline",
                             "alternative", "minutes", "cv", "after", "note", "extra_minutes",
                             "source", "checked", "same_as", "supersedes", "explain", "minutes_source",
                             "overhead", "documents_if"})
_DEADLINE_KEYS = frozenset({"kind", "event", "note", "source", "checked", *UNITS})
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ESTIMATE = "estimate"  # the source of a fact Sakata has not confirmed: shown to staff, not as fact
_QUESTION_KEYS = frozenset({"kind", "text", "help", "choice", "min", "max"})
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Question:
    """A yes/no, choice, multiple-choice or number question the kiosk asks on one screen."""

    id: str
    purpose: str
    kind: str
    text: Texts
    help: Texts
    choices: tuple[str, ...] = ()  # values of a choice or multi question, in display order
    choice_text: Mapping[str, Texts] = field(default_factory=dict)
    min: int | None = None
    max: int | None = None


@dataclass(frozen=True)
class Procedure:
    """One administrative act: where it is done, when it applies, what to bring."""

    id: str
    purpose: str
    name: Texts
    department: str | None  # None for an external procedure (shown, never queued)
    external: str | None  # a place key when the act is done outside city hall
    condition: Condition
    documents: tuple[str, ...]
    deadline: str | None
    alternative: str | None
    minutes: float  # (est.) mean service minutes, domain.md §4
    cv: float  # (est.) coefficient of variation of the lognormal prior
    after: tuple[str, ...]  # procedure ids (same purpose) that must be done first
    note: Texts | None = None
    extra_minutes: tuple[str, float] | None = None  # (number question, minutes per unit above 1)
    source: tuple[str, ...] = ()  # a law, a national or city page (address), or "estimate"
    checked: str = ""  # the date the source was last read (YYYY-MM-DD)
    same_as: tuple[str, ...] = ()  # the same act in other purposes: one step when combined
    supersedes: tuple[str, ...] = ()  # acts this one makes moot when both apply (merge rule 2)
    explain: Texts | None = None  # a one-line explanation of the institutional term (ja-easy at least)
    minutes_source: str = ESTIMATE  # where ``minutes`` comes from (a page, the KPI calibration, estimate)
    overhead: tuple[str, float] | None = None  # (key, minutes) counted once per visit step for all sharing it
    documents_if: tuple[tuple[str, Condition], ...] = ()  # documents needed only when a condition holds

    @property
    def estimate(self) -> bool:
        """True when Sakata's own rule is unknown: staff confirm it, citizens are not told it as fact."""
        return is_estimate(self.source)


def is_estimate(sources: tuple[str, ...]) -> bool:
    """True when any of a fact's sources is an estimate rather than a law or a public page."""
    return any(s.startswith(ESTIMATE) for s in sources)


@dataclass(frozen=True)
class Purpose:
    """A reason to visit: a life event, a certificate request or a consultation."""

    id: str
    kind: str
    name: Texts
    aliases: tuple[str, ...]
    questions: tuple[str, ...]  # question ids in asking order
    procedures: tuple[str, ...]  # procedure ids in file order
    file: str = ""
    events: tuple[str, ...] = ()  # events this purpose's deadlines may count from
    documents_if: tuple[tuple[str, Condition], ...] = ()  # added to every queued procedure (e.g. 委任状)


@dataclass(frozen=True)
class Document:
    id: str
    name: Texts
    source: tuple[str, ...] = ()
    checked: str = ""


@dataclass(frozen=True)
class Deadline:
    """A deadline: its rule (data) and its text in every language, rendered from the rule."""

    id: str
    text: Texts
    rule: DeadlineRule = DeadlineRule("none")
    source: tuple[str, ...] = ()
    checked: str = ""

    @property
    def estimate(self) -> bool:
        return is_estimate(self.source)


@dataclass(frozen=True)
class Alternative:
    """Another way to get it done: online (マイナポータル, 電子申請), convenience store, mail."""

    id: str
    kind: str
    text: Texts
    path: str  # appended to the site's online_base_url, unless it is already an absolute URL


@dataclass(frozen=True)
class Place:
    """Where an external procedure is done (pension office, legal affairs bureau, family court)."""

    id: str
    name: Texts
    url: str = ""
    source: tuple[str, ...] = ()
    checked: str = ""


@dataclass(frozen=True)
class Catalogue:
    """Everything the planner needs, as plain frozen data."""

    purposes: Mapping[str, Purpose]
    questions: Mapping[str, Question]
    procedures: Mapping[str, Procedure]
    documents: Mapping[str, Document]
    deadlines: Mapping[str, Deadline]
    alternatives: Mapping[str, Alternative]
    places: Mapping[str, Place]
    department_order: tuple[str, ...]
    department_names: Mapping[str, Texts]
    answer_labels: Mapping[str, Texts]
    labels: Mapping[str, Texts]
    online_base_url: str = ""
    events: Mapping[str, Texts] = field(default_factory=dict)  # names of the events deadlines count from

    def url(self, path: str) -> str:
        """An absolute link for an alternative's path (placeholder base from site config)."""
        if not path or re.match(r"^[a-z]+://", path):
            return path
        return self.online_base_url.rstrip("/") + "/" + path.lstrip("/") if self.online_base_url else path


# ------------------------------------------------------------------ locating lines


class _Locator:
    """Finds the line of a table header or of a key inside a table in one TOML file's text.

    tomllib gives no positions; headers and ``key =`` lines are found by text, which is exact
    for the shapes the catalogue uses (one table per header, one key per line).
    """

    def __init__(self, text: str):
        self.lines = text.splitlines()
        self.headers: dict[str, int] = {}
        for i, line in enumerate(self.lines):
            m = re.match(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$", line)
            if m:
                self.headers.setdefault(re.sub(r"\s*\.\s*", ".", m.group(1)).replace('"', ""), i + 1)

    def table(self, header: str) -> int | None:
        return self.headers.get(header)

    def key(self, header: str, key: str) -> int | None:
        start = self.headers.get(header)
        if start is None:
            # a key of a parent table written as a dotted key, e.g. "questions.x" inside [questions]
            return None
        pattern = re.compile(r"^\s*" + re.escape(key).replace(r"\.", r"\s*\.\s*") + r"\s*=")
        for i in range(start, len(self.lines)):
            if re.match(r"^\s*\[", self.lines[i]):
                break
            if pattern.match(self.lines[i]):
                return i + 1
        return start

    def where(self, header: str, key: str | None = None) -> str:
        line = self.key(header, key) if key else self.table(header)
        path = f"{header}.{key}" if key else header
        return f"line {line} ({path})" if line else path


# ------------------------------------------------------------------ loading


@dataclass
class _File:
    name: str
    data: dict
    loc: _Locator


@dataclass
class _Builder:
    """Collects entries and problems while reading every file of a catalogue directory."""

    site: Mapping | None
    problems: list[Problem] = field(default_factory=list)
    files: list[_File] = field(default_factory=list)
    origin: dict[tuple[str, str], tuple[_File, str]] = field(default_factory=dict)  # (kind, id) -> (file, header)
    empty: bool = False  # no files at all: one problem says so, not twenty about missing tables

    def problem(self, f: _File, where: str, reason: str) -> None:
        self.problems.append(Problem(f.name, where, reason))

    def texts(self, f: _File, header: str, key: str, value: object, *, required: bool = True) -> Texts | None:
        """Check a multilingual string table: every language present and non-empty."""
        if value is None:
            if required:
                self.problem(f, f.loc.where(header), f"missing {key!r} (a table of texts in {', '.join(LANGUAGES)})")
            return None
        if isinstance(value, str):
            self.problem(f, f.loc.where(header, key),
                         f"{key!r} must be a table of texts keyed by language, e.g. {{ ja = \"…\", en = \"…\" }}")
            return {"ja": value}
        if not isinstance(value, dict):
            self.problem(f, f.loc.where(header, key), f"{key!r} must be a table of texts keyed by language")
            return None
        for lang in LANGUAGES:
            text = value.get(lang)
            if not isinstance(text, str) or not text.strip():
                self.problem(f, f.loc.where(header, key), f"missing translation {lang!r} of {header}.{key}")
        for lang in value:
            if lang not in LANGUAGES:
                self.problem(f, f.loc.where(header, key),
                             f"unknown language {lang!r} in {header}.{key} (languages: {', '.join(LANGUAGES)})")
        self.easy(f, header, key, value.get("ja-easy"))
        return {k: str(v) for k, v in value.items() if isinstance(v, str)}

    def easy(self, f: _File, header: str, key: str, text: object) -> None:
        """やさしい日本語 by the guideline: every kanji with its reading, short sentences."""
        if not isinstance(text, str):
            return
        bare = easy_japanese.kanji_without_reading(text)
        if bare:
            self.problem(f, f.loc.where(header, key),
                         f"ja-easy of {header}.{key}: kanji without a reading {', '.join(dict.fromkeys(bare))} "
                         "(write {漢字|かんじ}, or kana)")
        for sentence in easy_japanese.long_sentences(text):
            self.problem(f, f.loc.where(header, key),
                         f"ja-easy of {header}.{key}: sentence of {len(sentence)} characters "
                         f"(at most {easy_japanese.MAX_SENTENCE}, aim {easy_japanese.TARGET_SENTENCE}): {sentence}")

    def source(self, f: _File, header: str, entry: Mapping) -> tuple[tuple[str, ...], str]:
        """The ``source`` (string or list) and ``checked`` date every fact must carry."""
        raw, checked = entry.get("source"), entry.get("checked")
        sources: tuple[str, ...] = ()
        if raw is None:
            self.problem(f, f.loc.where(header), f"{header} has no 'source' (a law, a public page's address, "
                         f"or \"{ESTIMATE}\" when Sakata's rule is unknown)")
        elif isinstance(raw, str) and raw.strip():
            sources = (raw.strip(),)
        elif isinstance(raw, list) and raw and all(isinstance(x, str) and x.strip() for x in raw):
            sources = tuple(x.strip() for x in raw)
        else:
            self.problem(f, f.loc.where(header, "source"), "'source' must be a non-empty string or list of strings")
        if not isinstance(checked, str) or not _DATE_RE.match(checked):
            self.problem(f, f.loc.where(header, "checked") if checked is not None else f.loc.where(header),
                         f"{header} needs 'checked' = \"YYYY-MM-DD\" (when its source was last read)")
            checked = ""
        return sources, checked

    def claim(self, f: _File, kind: str, id_: str, header: str) -> bool:
        """Record where an id is defined; report a duplicate. False when the id is unusable."""
        if not _ID_RE.match(id_):
            self.problem(f, f.loc.where(header),
                         f"bad {kind} id {id_!r}: use lower-case ASCII letters, digits and '_'")
            return False
        if (kind, id_) in self.origin:
            other, other_header = self.origin[(kind, id_)]
            self.problem(f, f.loc.where(header),
                         f"duplicate {kind} id {id_!r}: already defined in {other.name} "
                         f"{other.loc.where(other_header)}")
            return False
        self.origin[(kind, id_)] = (f, header)
        return True


def _parse_files(directory: str, files: Sequence[tuple[str, str | Problem]], b: _Builder) -> None:
    """Parse each file's text; ``files`` is (name, text) or (name, the Problem that kept it unread)."""
    if not files:
        b.problems.append(Problem(directory, "-", "no catalogue files (*.toml) found"))
        b.empty = True
    for name, text in files:
        if isinstance(text, Problem):
            b.problems.append(text)
            continue
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            m = re.search(r"line (\d+)", str(e))
            b.problems.append(Problem(name, f"line {m.group(1)}" if m else "-", f"TOML syntax error: {e}"))
            continue
        b.files.append(_File(name, data, _Locator(text)))


def _positive(b: _Builder, f: _File, header: str, key: str, value: object, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        b.problem(f, f.loc.where(header, key), f"{key!r} must be a non-negative number, got {value!r}")
        return default
    return float(value)


def _str_list(b: _Builder, f: _File, header: str, key: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        b.problem(f, f.loc.where(header, key), f"{key!r} must be a list of strings")
        return ()
    return tuple(value)


def _documents_if(b: _Builder, f: _File, header: str, value: object, documents: Mapping[str, Document],
                  kinds: Mapping[str, str], choice_map: Mapping[str, tuple[str, ...]], used: set[str]
                  ) -> tuple[tuple[str, Condition], ...]:
    """``documents_if = { <document> = "<condition>" }``: documents to bring only in some cases."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        b.problem(f, f.loc.where(header, "documents_if"), "'documents_if' must be a table { <document> = \"<condition>\" }")
        return ()
    out = []
    for doc, when in value.items():
        if doc not in documents:
            b.problem(f, f.loc.where(header, "documents_if"), f"unknown document {doc!r} (add it under [documents.{doc}])")
            continue
        try:
            cond = parse_condition(str(when))
            check_condition(cond, kinds, choice_map)
        except ConditionError as e:
            b.problem(f, f.loc.where(header, "documents_if"), _condition_reason(e, str(when)))
            continue
        used |= cond.names()
        out.append((doc, cond))
    return tuple(out)


def build_catalogue(directory: str, files: Sequence[tuple[str, str | Problem]], site: Mapping | None = None
                    ) -> tuple[Catalogue | None, list[Problem]]:
    """The catalogue built from its files' texts, and every problem found (file + line + reason).

    ``files`` is ``(name, text)`` per file in order, or ``(name, Problem)`` for a file that could
    not be read (queue_server.loaders reads them); ``directory`` names the folder in the
    "no files" problem. ``site`` is the parsed site.toml (department keys and names,
    ``online_base_url``). The catalogue is None when there were no files at all.
    """
    b = _Builder(site)
    _parse_files(directory, files, b)
    if b.empty:
        return None, b.problems

    documents: dict[str, Document] = {}
    deadlines: dict[str, Deadline] = {}
    alternatives: dict[str, Alternative] = {}
    places: dict[str, Place] = {}
    answer_labels: dict[str, Texts] = {}
    labels: dict[str, Texts] = {}
    department_order: list[str] = []
    order_file: _File | None = None
    raw_deadlines: list[tuple[_File, str, dict]] = []
    templates: dict[str, Texts] = {}
    units: dict[str, Texts] = {}
    events: dict[str, Texts] = {}

    # Shared tables first: purposes refer to them.
    for f in b.files:
        for key in f.data:
            if key not in _TOP_LEVEL:
                b.problem(f, f.loc.where(key), f"unknown table [{key}] (expected one of: {', '.join(_TOP_LEVEL)})")
        cat = f.data.get("catalogue")
        if isinstance(cat, dict) and "department_order" in cat:
            if order_file is not None:
                b.problem(f, f.loc.where("catalogue", "department_order"),
                          f"department_order is already set in {order_file.name}")
            else:
                order_file = f
                department_order = list(_str_list(b, f, "catalogue", "department_order", cat["department_order"]))
        for id_, entry in _tables(b, f, "documents"):
            h = f"documents.{id_}"
            if b.claim(f, "document", id_, h):
                src, checked = b.source(f, h, entry)
                documents[id_] = Document(id_, b.texts(f, h, "name", entry.get("name")) or {}, src, checked)
        for id_, entry in _tables(b, f, "deadlines"):
            h = f"deadlines.{id_}"
            if b.claim(f, "deadline", id_, h):
                raw_deadlines.append((f, id_, entry))
        for table, target in (("deadline_templates", templates), ("units", units)):
            entries = f.data.get(table)
            if isinstance(entries, dict):
                for key, value in entries.items():
                    if b.claim(f, table, key, table):
                        target[key] = b.texts(f, table, key, value) or {}
        for id_, entry in _tables(b, f, "events"):
            h = f"events.{id_}"
            if b.claim(f, "event", id_, h):
                events[id_] = b.texts(f, h, "name", entry.get("name")) or {}
        for id_, entry in _tables(b, f, "alternatives"):
            h = f"alternatives.{id_}"
            kind = entry.get("kind")
            if kind not in ALTERNATIVE_KINDS:
                b.problem(f, f.loc.where(h, "kind"),
                          f"alternative kind must be one of {', '.join(ALTERNATIVE_KINDS)}, got {kind!r}")
            path = entry.get("path", "")
            if not isinstance(path, str):
                b.problem(f, f.loc.where(h, "path"), "'path' must be a string")
                path = ""
            if b.claim(f, "alternative", id_, h):
                alternatives[id_] = Alternative(id_, str(kind), b.texts(f, h, "text", entry.get("text")) or {}, path)
        for id_, entry in _tables(b, f, "places"):
            h = f"places.{id_}"
            if b.claim(f, "place", id_, h):
                src, checked = b.source(f, h, entry)
                places[id_] = Place(id_, b.texts(f, h, "name", entry.get("name")) or {}, str(entry.get("url", "")),
                                    src, checked)
        for table, target, expected in (("answers", answer_labels, ANSWER_LABELS), ("labels", labels, LABEL_KEYS)):
            entries = f.data.get(table)
            if entries is None:
                continue
            if not isinstance(entries, dict):
                b.problem(f, f.loc.where(table), f"[{table}] must be a table")
                continue
            for key, value in entries.items():
                if key not in expected:
                    b.problem(f, f.loc.where(table, key), f"unknown {table} key {key!r} (expected: {', '.join(expected)})")
                    continue
                if b.claim(f, table, key, table):
                    target[key] = b.texts(f, table, key, value) or {}

    for table, target, expected in (("answers", answer_labels, ANSWER_LABELS), ("labels", labels, LABEL_KEYS)):
        for key in expected:
            if key not in target:
                b.problems.append(Problem(str(directory), f"[{table}]", f"missing [{table}] text {key!r}"))

    for f, id_, entry in raw_deadlines:
        deadlines[id_] = _deadline(b, f, id_, entry, templates, events, units)

    site_departments: Mapping[str, Mapping] = {}
    if site is not None:
        site_departments = site.get("departments", {}) or {}
        if order_file is not None:
            for key in department_order:
                if key not in site_departments:
                    b.problem(order_file, order_file.loc.where("catalogue", "department_order"),
                              f"unknown department key {key!r} in department_order "
                              f"(site departments: {', '.join(site_departments)})")
    if order_file is None:
        b.problems.append(Problem(str(directory), "[catalogue]",
                                  "missing [catalogue] department_order (shimin first, then the others)"))

    purposes: dict[str, Purpose] = {}
    questions: dict[str, Question] = {}
    procedures: dict[str, Procedure] = {}
    for f in b.files:
        if "purpose" in f.data:
            _build_purpose(b, f, purposes, questions, procedures, documents, deadlines, alternatives,
                           places, department_order, site_departments if site is not None else None)
        elif "questions" in f.data or "procedures" in f.data:
            b.problem(f, f.loc.where("questions" if "questions" in f.data else "procedures"),
                      "questions and procedures need a [purpose] table in the same file")

    # Aliases resolve purposes from Japanese names: two purposes must not share one.
    seen_alias: dict[str, str] = {}
    for p in purposes.values():
        for alias in (p.id, *p.aliases):
            if alias in seen_alias and seen_alias[alias] != p.id:
                f = next(x for x in b.files if x.name == p.file)
                b.problem(f, f.loc.where("purpose", "aliases"),
                          f"alias {alias!r} is also used by purpose {seen_alias[alias]!r}")
            seen_alias[alias] = p.id

    department_names: dict[str, Texts] = {}
    for key, entry in site_departments.items():
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), Mapping):
            department_names[key] = dict(entry["name"])
    base = ""
    if site is not None:
        base = str((site.get("city") or {}).get("online_base_url", ""))

    catalogue = Catalogue(
        purposes=purposes, questions=questions, procedures=procedures, documents=documents,
        deadlines=deadlines, alternatives=alternatives, places=places,
        department_order=tuple(department_order), department_names=department_names,
        answer_labels=answer_labels, labels=labels, online_base_url=base, events=events,
    )
    _check_merge_links(b, procedures)
    return catalogue, b.problems


def _deadline(b: _Builder, f: _File, id_: str, entry: dict, templates: Mapping[str, Texts],
              events: Mapping[str, Texts], units: Mapping[str, Texts]) -> Deadline:
    """A deadline from its data; every language rendered now so an unreadable one fails check-config."""
    h = f"deadlines.{id_}"
    for key in entry:
        if key not in _DEADLINE_KEYS:
            b.problem(f, f.loc.where(h, key), f"unknown key {key!r} in {h} (expected: {', '.join(sorted(_DEADLINE_KEYS))})")
    src, checked = b.source(f, h, entry)
    kind = entry.get("kind")
    if kind not in KINDS:
        b.problem(f, f.loc.where(h, "kind") if kind is not None else f.loc.where(h),
                  f"unreadable deadline {id_!r}: 'kind' must be one of {', '.join(KINDS)}")
        return Deadline(id_, {}, DeadlineRule("none"), src, checked)
    amounts = [(u, entry[u]) for u in UNITS if u in entry]
    event = entry.get("event")
    rule = DeadlineRule(kind)
    if kind in EVENT_KINDS:
        if event not in events:
            b.problem(f, f.loc.where(h, "event") if event is not None else f.loc.where(h),
                      f"unreadable deadline {id_!r}: 'event' must be one of [events] ({', '.join(events)}), got {event!r}")
            return Deadline(id_, {}, rule, src, checked)
        rule = DeadlineRule(kind, event)
        if kind in AMOUNT_KINDS:
            if len(amounts) != 1 or isinstance(amounts[0][1], bool) or not isinstance(amounts[0][1], int) or amounts[0][1] <= 0:
                b.problem(f, f.loc.where(h),
                          f"unreadable deadline {id_!r}: a {kind!r} deadline needs exactly one of {', '.join(UNITS)} = N (N > 0)")
                return Deadline(id_, {}, rule, src, checked)
            rule = DeadlineRule(kind, event, amounts[0][1], amounts[0][0])
        elif amounts:
            b.problem(f, f.loc.where(h), f"a {kind!r} deadline takes no amount: remove {amounts[0][0]!r}")
    elif event is not None or amounts:
        b.problem(f, f.loc.where(h), f"a {kind!r} deadline counts from no event: remove 'event' and the amount")
    note = b.texts(f, h, "note", entry.get("note"), required=False)
    text: dict[str, str] = {}
    for lang in LANGUAGES:
        try:
            text[lang] = render(rule, lang, templates, events, units, note)
        except (KeyError, IndexError, ValueError) as e:
            b.problem(f, f.loc.where(h), f"unreadable deadline {id_!r} in {lang}: no template, event or unit text {e}")
    for lang in ("ja-easy",):
        if lang in text:
            for sentence in easy_japanese.long_sentences(text[lang]):
                b.problem(f, f.loc.where(h), f"ja-easy of {h} renders a sentence of {len(sentence)} characters: {sentence}")
    return Deadline(id_, text, rule, src, checked)


def _check_merge_links(b: _Builder, procedures: Mapping[str, Procedure]) -> None:
    """``same_as`` and ``supersedes`` name procedures of other purposes that exist."""
    for p in procedures.values():
        f = next((x for x in b.files if x.name == _file_of(b, p.id)), None)
        if f is None:
            continue
        for key, ids in (("same_as", p.same_as), ("supersedes", p.supersedes)):
            for other in ids:
                if other not in procedures:
                    b.problem(f, f.loc.where(f"procedures.{p.id}", key), f"{key!r} names unknown procedure {other!r}")
                elif procedures[other].purpose == p.purpose:
                    b.problem(f, f.loc.where(f"procedures.{p.id}", key),
                              f"{key!r} names {other!r} of the same purpose: merge them in the file instead")


def _file_of(b: _Builder, proc_id: str) -> str:
    origin = b.origin.get(("procedure", proc_id))
    return origin[0].name if origin else ""


def _tables(b: _Builder, f: _File, name: str) -> Iterable[tuple[str, dict]]:
    section = f.data.get(name)
    if section is None:
        return
    if not isinstance(section, dict):
        b.problem(f, f.loc.where(name), f"[{name}] must contain tables [{name}.<id>]")
        return
    for id_, entry in section.items():
        if not isinstance(entry, dict):
            b.problem(f, f.loc.where(name, id_), f"{name}.{id_} must be a table [{name}.{id_}]")
            continue
        yield id_, entry


def _build_purpose(b, f, purposes, questions, procedures, documents, deadlines, alternatives, places,
                   department_order, site_departments) -> None:
    head = f.data["purpose"]
    if not isinstance(head, dict):
        b.problem(f, f.loc.where("purpose"), "[purpose] must be a table")
        return
    pid = head.get("id")
    if not isinstance(pid, str):
        b.problem(f, f.loc.where("purpose"), "[purpose] needs an 'id' (ASCII key such as \"death\")")
        return
    if not b.claim(f, "purpose", pid, "purpose"):
        return
    kind = head.get("kind", "life_event")
    if kind not in PURPOSE_KINDS:
        b.problem(f, f.loc.where("purpose", "kind"), f"purpose kind must be one of {', '.join(PURPOSE_KINDS)}, got {kind!r}")
    name = b.texts(f, "purpose", "name", head.get("name")) or {}
    aliases = _str_list(b, f, "purpose", "aliases", head.get("aliases"))
    purpose_events = _str_list(b, f, "purpose", "events", head.get("events"))

    # Questions of this purpose, in file order (the kiosk asks them in this order).
    own: dict[str, Question] = {}
    for qid, entry in _tables(b, f, "questions"):
        h = f"questions.{qid}"
        for key in entry:
            if key not in _QUESTION_KEYS:
                b.problem(f, f.loc.where(h, key), f"unknown key {key!r} in {h} (expected: {', '.join(sorted(_QUESTION_KEYS))})")
        if not b.claim(f, "question", qid, h):
            continue
        qkind = entry.get("kind", YESNO)
        if qkind not in QUESTION_KINDS:
            b.problem(f, f.loc.where(h, "kind"), f"question kind must be one of {', '.join(QUESTION_KINDS)}, got {qkind!r}")
            qkind = YESNO
        choice = entry.get("choice") or {}
        choices: tuple[str, ...] = ()
        choice_text: dict[str, Texts] = {}
        if qkind in (CHOICE, MULTI):
            if not isinstance(choice, dict) or len(choice) < 2:
                b.problem(f, f.loc.where(h), f"a {qkind} question needs at least two 'choice.<value> = {{ ja = … }}' lines")
                choice = choice if isinstance(choice, dict) else {}
            for value, texts in choice.items():
                if value == "unknown" or not _ID_RE.match(value):
                    b.problem(f, f.loc.where(h, f"choice.{value}"),
                              f"bad choice value {value!r} (lower-case ASCII; 'unknown' is always offered)")
                choice_text[value] = b.texts(f, h, f"choice.{value}", texts) or {}
            choices = tuple(choice)
        elif choice:
            b.problem(f, f.loc.where(h, "choice"), f"a {qkind} question takes no choices")
        lo, hi = entry.get("min"), entry.get("max")
        for key, v in (("min", lo), ("max", hi)):
            if v is not None and (qkind != NUMBER or not isinstance(v, int) or isinstance(v, bool)):
                b.problem(f, f.loc.where(h, key), f"{key!r} is for number questions and must be a whole number")
        q = Question(
            id=qid, purpose=pid, kind=qkind,
            text=b.texts(f, h, "text", entry.get("text")) or {},
            help=b.texts(f, h, "help", entry.get("help")) or {},
            choices=choices, choice_text=choice_text,
            min=lo if isinstance(lo, int) else None, max=hi if isinstance(hi, int) else None,
        )
        own[qid] = q
        questions[qid] = q

    kinds = {q.id: q.kind for q in own.values()}
    choice_map = {q.id: q.choices for q in own.values()}
    used: set[str] = set()
    purpose_docs_if = _documents_if(b, f, "purpose", head.get("documents_if"), documents, kinds, choice_map, used)
    own_procs: dict[str, Procedure] = {}
    raw_after: dict[str, tuple[str, ...]] = {}
    for proc_id, entry in _tables(b, f, "procedures"):
        h = f"procedures.{proc_id}"
        for key in entry:
            if key not in _PROCEDURE_KEYS:
                b.problem(f, f.loc.where(h, key),
                          f"unknown key {key!r} in {h} (expected: {', '.join(sorted(_PROCEDURE_KEYS))})")
        # A duplicate is still checked (its condition marks questions used), just not kept.
        duplicate = not b.claim(f, "procedure", proc_id, h)
        pname = b.texts(f, h, "name", entry.get("name")) or {}
        department = entry.get("department")
        external = entry.get("external")
        if (department is None) == (external is None):
            b.problem(f, f.loc.where(h), "a procedure needs either 'department' (queued) or 'external' (a place key)")
        if department is not None:
            if not isinstance(department, str):
                b.problem(f, f.loc.where(h, "department"), "'department' must be a department key")
                department = None
            elif site_departments is not None and department not in site_departments:
                b.problem(f, f.loc.where(h, "department"),
                          f"unknown department key {department!r} (site departments: {', '.join(site_departments)})")
            elif department_order and department not in department_order:
                b.problem(f, f.loc.where(h, "department"),
                          f"department {department!r} is not in [catalogue] department_order")
        if external is not None and external not in places:
            b.problem(f, f.loc.where(h, "external"), f"unknown place {external!r} (places: {', '.join(places)})")
        cond = ALWAYS
        when = entry.get("when")
        if when is not None:
            if not isinstance(when, str):
                b.problem(f, f.loc.where(h, "when"), "'when' must be a condition string")
            else:
                try:
                    cond = parse_condition(when)
                    check_condition(cond, kinds, choice_map)
                except ConditionError as e:
                    b.problem(f, f.loc.where(h, "when"), _condition_reason(e, when))
                    cond = ALWAYS
                else:
                    used |= cond.names()
        docs = _str_list(b, f, h, "documents", entry.get("documents"))
        for d in docs:
            if d not in documents:
                b.problem(f, f.loc.where(h, "documents"), f"unknown document {d!r} (add it under [documents.{d}])")
        deadline = entry.get("deadline")
        if deadline is not None and deadline not in deadlines:
            b.problem(f, f.loc.where(h, "deadline"), f"unknown deadline {deadline!r} (add it under [deadlines.{deadline}])")
        elif deadline is not None:
            ev = deadlines[deadline].rule.event
            if ev is not None and ev not in purpose_events:
                b.problem(f, f.loc.where(h, "deadline"),
                          f"deadline {deadline!r} counts from {ev!r}, which is not an event of purpose {pid!r} "
                          f"(its events: {', '.join(purpose_events) or 'none'}); use a deadline counting from one of them")
        src, checked = b.source(f, h, entry)
        explain = None
        if entry.get("explain") is not None:
            explain = entry["explain"]
            if not isinstance(explain, dict) or not isinstance(explain.get("ja-easy"), str):
                b.problem(f, f.loc.where(h, "explain"), "'explain' must be a table of texts with at least ja-easy")
                explain = None
            else:
                b.easy(f, h, "explain", explain["ja-easy"])
        overhead = None
        raw_over = entry.get("overhead")
        if raw_over is not None:
            ok = isinstance(raw_over, dict) and isinstance(raw_over.get("key"), str) and isinstance(
                raw_over.get("minutes"), int | float) and not isinstance(raw_over.get("minutes"), bool)
            if not ok or department is None:
                b.problem(f, f.loc.where(h, "overhead"),
                          "overhead must be { key = \"<shared act>\", minutes = N } on a queued procedure")
            else:
                overhead = (raw_over["key"], float(raw_over["minutes"]))
        # やさしい日本語 by the guideline: the name keeps its key term in kanji with the reading (so it
        # matches the signs), and every procedure explains its institutional term in one line.
        easy_name = pname.get("ja-easy")
        if isinstance(easy_name, str) and easy_name.strip() and not easy_japanese.marked_terms(easy_name):
            b.problem(f, f.loc.where(h, "name"),
                      f"ja-easy of {h}.name has no key term in kanji with its reading: write the word on the "
                      "signs and forms as {漢字|かんじ}, e.g. {国民健康保険|こくみんけんこうほけん}")
        if explain is None and entry.get("explain") is None:
            b.problem(f, f.loc.where(h),
                      f"{h} has no 'explain' = {{ ja-easy = \"…\" }} (one short line on what the procedure is)")
        if department is not None and entry.get("minutes_source") is None:
            b.problem(f, f.loc.where(h),
                      f"{h} has no 'minutes_source' (a page's address, the KPI calibration, or "
                      f"\"{ESTIMATE}: …\" saying what the estimate rests on)")
        minutes_source = entry.get("minutes_source", ESTIMATE)
        if not isinstance(minutes_source, str) or not minutes_source.strip():
            b.problem(f, f.loc.where(h, "minutes_source"), "'minutes_source' must be a non-empty string")
            minutes_source = ESTIMATE
        alternative = entry.get("alternative")
        if alternative is not None and alternative not in alternatives:
            b.problem(f, f.loc.where(h, "alternative"),
                      f"unknown alternative {alternative!r} (add it under [alternatives.{alternative}])")
        extra = entry.get("extra_minutes")
        extra_minutes = None
        if extra is not None:
            q = extra.get("question") if isinstance(extra, dict) else None
            per = extra.get("minutes") if isinstance(extra, dict) else None
            if q not in kinds or kinds[q] != NUMBER or not isinstance(per, int | float):
                b.problem(f, f.loc.where(h, "extra_minutes"),
                          "extra_minutes must be { question = \"<number question of this purpose>\", minutes = N }")
            else:
                extra_minutes = (q, float(per))
                used.add(q)
        note = b.texts(f, h, "note", entry.get("note"), required=False)
        docs_if = _documents_if(b, f, h, entry.get("documents_if"), documents, kinds, choice_map, used)
        afters = _str_list(b, f, h, "after", entry.get("after"))
        if department is not None and entry.get("minutes") is None:
            b.problem(f, f.loc.where(h), "a queued procedure needs 'minutes' (an (est.) prior, domain.md §4)")
        if duplicate:
            continue
        raw_after[proc_id] = afters
        own_procs[proc_id] = Procedure(
            id=proc_id, purpose=pid, name=pname,
            department=department if isinstance(department, str) else None,
            external=external if isinstance(external, str) else None,
            condition=cond, documents=docs,
            deadline=deadline if isinstance(deadline, str) else None,
            alternative=alternative if isinstance(alternative, str) else None,
            minutes=_positive(b, f, h, "minutes", entry.get("minutes"), 0.0 if external else 8.0),
            cv=_positive(b, f, h, "cv", entry.get("cv"), 0.5),
            after=afters, note=note, extra_minutes=extra_minutes, source=src, checked=checked,
            same_as=_str_list(b, f, h, "same_as", entry.get("same_as")),
            supersedes=_str_list(b, f, h, "supersedes", entry.get("supersedes")),
            explain=dict(explain) if explain else None, minutes_source=str(minutes_source), overhead=overhead,
            documents_if=docs_if,
        )

    # Order constraints: only towards an earlier department (so any plan's route is acyclic
    # by construction) and within the same purpose (ids of other files may be absent).
    rank = {d: i for i, d in enumerate(department_order)}
    for proc_id, afters in raw_after.items():
        p = own_procs[proc_id]
        for a in afters:
            h = f"procedures.{proc_id}"
            other = own_procs.get(a)
            if other is None:
                b.problem(f, f.loc.where(h, "after"), f"'after' names {a!r}, which is not a procedure of this file")
            elif p.department is None or other.department is None:
                b.problem(f, f.loc.where(h, "after"), f"'after' links {proc_id!r} and {a!r}, but external procedures are never queued")
            elif rank.get(other.department, 0) > rank.get(p.department, 0):
                b.problem(f, f.loc.where(h, "after"),
                          f"{proc_id!r} ({p.department}) cannot come after {a!r} ({other.department}): "
                          "department_order puts it later")

    for qid in own:
        if qid not in used:
            b.problem(f, f.loc.where(f"questions.{qid}"), f"unused question {qid!r}: no condition of this file reads it")
    for proc_id, p in own_procs.items():
        if p.condition is not ALWAYS and not _reachable(p.condition, own):
            b.problem(f, f.loc.where(f"procedures.{proc_id}", "when"),
                      f"unreachable procedure {proc_id!r}: no answers make '{p.condition.source}' true")
    procedures.update(own_procs)
    purposes[pid] = Purpose(id=pid, kind=str(kind), name=name, aliases=aliases, questions=tuple(own),
                            procedures=tuple(own_procs), file=f.name, events=purpose_events,
                            documents_if=purpose_docs_if)


def _condition_reason(e: ConditionError, source: str) -> str:
    if e.reason.startswith("unknown answer id"):
        return f"{e.reason} in condition '{source}' (questions of this file only)"
    return f"bad condition '{source}': {e.reason}"


def probe_values(q: Question, conditions: Iterable[Condition]) -> list[object]:
    """Definite typed values worth trying for a question (every distinct outcome is among them).

    A number question only matters at the thresholds its conditions compare it with, so trying
    each literal and its neighbours covers every region; a multiple-choice question is probed with
    the empty set, each single choice, all of them, and all but one.
    """
    if q.kind == YESNO:
        return ["yes", "no"]
    if q.kind == CHOICE:
        return list(q.choices)
    if q.kind == MULTI:
        full = frozenset(q.choices)
        sets = [frozenset(), full, *(frozenset({c}) for c in q.choices), *(full - {c} for c in q.choices)]
        return list(dict.fromkeys(sets))
    nums: set[float] = {float(q.min) if q.min is not None else 0.0}
    for c in conditions:
        for lit in c.literals_for(q.id):
            if isinstance(lit, float) and not isinstance(lit, bool):
                nums |= {lit - 1, lit, lit + 1}
    return sorted(nums)


def _reachable(cond: Condition, questions: Mapping[str, Question], limit: int = 20000) -> bool:
    """Whether some definite answers make the condition true (exhaustive over probe values)."""
    names = sorted(cond.names())
    domains = [probe_values(questions[n], [cond]) for n in names]
    size = 1
    for d in domains:
        size *= max(1, len(d))
    if size > limit:  # too many to enumerate: do not claim it unreachable
        return True
    for combo in itertools.product(*domains):
        if cond.evaluate(dict(zip(names, combo, strict=True))) is True:
            return True
    return False
