"""The journey planner: from purposes and answers to a personal procedure list (個人別手続きリスト).

Pure functions over the loaded catalogue: no I/O, no clock. The kiosk calls ``next_question``
until it returns None, then ``plan_visit``; the server turns ``plan.route`` into a ticket's steps;
the simulation plans synthetic citizens with the same code.

Unknown answers never drop a procedure that might apply: such a procedure stays in the plan
with ``to_confirm=True`` (confirmed at the counter), see queue_server.core.conditions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from queue_server.core.catalogue import Catalogue, Procedure, Question, probe_values
from queue_server.core.conditions import NUMBER, UNKNOWN, typed_answer
from queue_server.core.i18n import LANGUAGES, pick
from queue_server.core.model import RouteStep


class PlanError(ValueError):
    """A request the planner cannot serve: unknown purpose, unknown answer id or bad value.

    ``field`` names the offending purpose or answer id (the protocol's ``error.field``).
    """

    def __init__(self, message: str, field: str = ""):
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class DocumentItem:
    id: str
    name: str


@dataclass(frozen=True)
class AlternativeItem:
    """Another way to do a procedure: online or at a convenience store, with its link."""

    procedure: str
    procedure_name: str
    kind: str
    text: str
    url: str


@dataclass(frozen=True)
class PlannedProcedure:
    id: str
    purpose: str
    name: str
    to_confirm: bool  # an unknown answer keeps it: staff confirm whether it applies
    documents: tuple[DocumentItem, ...]
    deadline: str | None
    alternative: AlternativeItem | None
    note: str | None
    minutes: float
    # Added for the sourced catalogue (issue 13); consumers that do not know them ignore them.
    deadline_id: str | None = None
    deadline_event: str | None = None  # the event the deadline counts from (data, not text)
    source: tuple[str, ...] = ()
    estimate: bool = False  # Sakata's rule unknown: staff confirm, the citizen is not told it as fact
    explain: str | None = None  # one-line explanation of the institutional term (ja-easy)
    minutes_source: str = ""
    also_for: tuple[str, ...] = ()  # other purposes that brought the same act (merged into this one)


@dataclass(frozen=True)
class PlanStep:
    """One department visit: its procedures, the steps that must come first, expected minutes."""

    index: int
    department: str
    department_name: str
    procedures: tuple[PlannedProcedure, ...]
    after: tuple[int, ...]
    minutes: float


@dataclass(frozen=True)
class ExternalItem:
    """A procedure done outside city hall: shown on the list, never queued."""

    id: str
    purpose: str
    name: str
    where: str
    url: str
    deadline: str | None
    documents: tuple[DocumentItem, ...]
    to_confirm: bool
    note: str | None
    deadline_id: str | None = None
    deadline_event: str | None = None
    source: tuple[str, ...] = ()
    estimate: bool = False
    explain: str | None = None
    also_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """The personal procedure list for one visit (one or several purposes)."""

    purposes: tuple[str, ...]
    lang: str
    steps: tuple[PlanStep, ...]
    documents: tuple[DocumentItem, ...]  # merged over all steps, first-use order, no duplicates
    online: tuple[AlternativeItem, ...]
    external: tuple[ExternalItem, ...]
    minutes: float  # (est.) expected service minutes at counters, to-confirm procedures included
    minutes_sd: float  # (est.) standard deviation, procedures taken as independent
    merged: tuple[tuple[str, str], ...] = ()  # (procedure, the same act it was merged into), merge rule 1
    moot: tuple[tuple[str, str], ...] = ()  # (procedure, the one that made it moot), merge rule 2
    merged_unsure: frozenset[str] = frozenset()  # merged procedures that only might apply themselves

    @property
    def route(self) -> tuple[RouteStep, ...]:
        """The hand-off to the ticket core: one RouteStep per department visit."""
        return tuple(
            RouteStep(s.department, tuple(p.id for p in s.procedures), s.after, s.minutes) for s in self.steps
        )

    @property
    def procedure_ids(self) -> frozenset[str]:
        """Every procedure on the list, queued or external (an act merged into another counts)."""
        listed = frozenset(p.id for s in self.steps for p in s.procedures) | {e.id for e in self.external}
        return listed | {m for m, _ in self.merged}

    @property
    def to_confirm(self) -> frozenset[str]:
        """Procedures kept because an answer was unknown."""
        unsure = frozenset(p.id for s in self.steps for p in s.procedures if p.to_confirm) | {
            e.id for e in self.external if e.to_confirm
        }
        return unsure | (self.merged_unsure & {m for m, _ in self.merged})


# ------------------------------------------------------------------ purposes and answers


def resolve_purpose(catalogue: Catalogue, name: str) -> str:
    """The purpose id for an id, an alias (死亡, 死亡届) or a name in any language (Death)."""
    key = name.strip()
    if key in catalogue.purposes:
        return key
    folded = key.casefold()
    for p in catalogue.purposes.values():
        if key in p.aliases or folded in (t.casefold() for t in p.name.values()) or folded == p.id.casefold():
            return p.id
    raise PlanError(f"unknown purpose {name!r} (known: {', '.join(catalogue.purposes)})", "purposes")


def _purposes(catalogue: Catalogue, purposes: Sequence[str]) -> tuple[str, ...]:
    if isinstance(purposes, str):  # a lone "death" would otherwise be split into letters
        purposes = (purposes,)
    ids = tuple(dict.fromkeys(resolve_purpose(catalogue, p) for p in purposes))
    if not ids:
        raise PlanError("no purpose given", "purposes")
    return ids


def questions_for(catalogue: Catalogue, purposes: Sequence[str]) -> tuple[Question, ...]:
    """Every question of the purposes, in asking order (purpose order, then file order)."""
    return tuple(catalogue.questions[q] for pid in _purposes(catalogue, purposes) for q in catalogue.purposes[pid].questions)


def _typed(catalogue: Catalogue, answers: Mapping[str, str], purposes: Sequence[str] | None = None) -> dict[str, object]:
    """Answers as typed values; an answer the chosen purposes do not ask is an error, not ignored."""
    asked = None if purposes is None else {q for pid in purposes for q in catalogue.purposes[pid].questions}
    typed: dict[str, object] = {}
    for qid, raw in answers.items():
        q = catalogue.questions.get(qid)
        if q is None:
            raise PlanError(f"unknown answer id {qid!r}", qid)
        if asked is not None and qid not in asked:
            raise PlanError(f"answer id {qid!r} belongs to purpose {q.purpose!r}, which is not among the chosen "
                            f"purposes ({', '.join(purposes or ())})", qid)
        try:
            value = typed_answer(q.kind, None if raw is None else str(raw))
        except ValueError as e:
            raise PlanError(f"answer {qid!r}: {e}", qid) from None
        if q.kind == "choice" and value is not None and value not in q.choices:
            raise PlanError(f"answer {qid!r}: {value!r} is not one of {', '.join(q.choices)} or unknown", qid)
        if q.kind == "multi" and value is not None and not value <= set(q.choices):  # type: ignore[operator]
            raise PlanError(f"answer {qid!r}: choose among {', '.join(q.choices)}", qid)
        if q.kind == NUMBER and value is not None and (
            (q.min is not None and value < q.min) or (q.max is not None and value > q.max)  # type: ignore[operator]
        ):
            raise PlanError(f"answer {qid!r}: {raw} is outside {q.min}–{q.max}", qid)
        typed[qid] = value
    return typed


def _applies(proc: Procedure, typed: Mapping[str, object]) -> bool | None:
    return proc.condition.evaluate(typed)


# ------------------------------------------------------------------ questions


def next_question(catalogue: Catalogue, purposes: Sequence[str], answers: Mapping[str, str]) -> Question | None:
    """The next question worth asking, or None when the plan is settled.

    A question is skipped while no value of it can change whether any procedure applies given
    the answers so far (e.g. "on NHI?" once the age says late-stage elderly insurance). It is
    asked again later if another answer makes it matter; "unknown" counts as answered.
    """
    ids = _purposes(catalogue, purposes)
    typed = _typed(catalogue, answers, ids)
    procs = [catalogue.procedures[p] for pid in ids for p in catalogue.purposes[pid].procedures]
    for q in questions_for(catalogue, ids):
        if q.id in answers:
            continue
        readers = [p for p in procs if q.id in p.condition.names()]
        if any(_matters(q, p, typed) for p in readers):
            return q
        if any(q.id in c.names() for p in procs if _applies(p, typed) is not False
               for _, c in (*p.documents_if, *(catalogue.purposes[p.purpose].documents_if if p.department else ()))):
            return q  # the answer changes what to bring
    return None


def _matters(q: Question, proc: Procedure, typed: Mapping[str, object]) -> bool:
    now = _applies(proc, typed)
    if proc.extra_minutes and proc.extra_minutes[0] == q.id and now is not False:
        return True  # the answer changes the time estimate
    if now is not None:
        return False  # settled by other answers: Kleene logic is monotonic, no value of q flips it
    return any(_applies(proc, {**typed, q.id: value}) != now for value in probe_values(q, [proc.condition]))


# ------------------------------------------------------------------ planning


def _docs(catalogue: Catalogue, ids: Sequence[str], lang: str) -> tuple[DocumentItem, ...]:
    return tuple(DocumentItem(d, pick(catalogue.documents[d].name, lang)) for d in ids)


def _doc_ids(catalogue: Catalogue, proc: Procedure, typed: Mapping[str, object]) -> tuple[str, ...]:
    """The procedure's documents plus those whose condition may hold (unknown keeps them)."""
    extra = proc.documents_if
    if proc.department:  # a purpose's documents_if (委任状 for a proxy) is for the counters only
        extra = (*extra, *catalogue.purposes[proc.purpose].documents_if)
    return tuple(dict.fromkeys((*proc.documents, *(d for d, c in extra if c.evaluate(typed) is not False))))


def _minutes(proc: Procedure, typed: Mapping[str, object]) -> float:
    minutes = proc.minutes
    if proc.extra_minutes:
        qid, per = proc.extra_minutes
        n = typed.get(qid)
        if isinstance(n, float) and n > 1:
            minutes += per * (n - 1)
    return minutes


def plan_visit(catalogue: Catalogue, purposes: Sequence[str], answers: Mapping[str, str], lang: str) -> Plan:
    """The personal procedure list for the purposes given the answers, in ``lang``.

    Steps are grouped by department in ``department_order`` (shimin first); ``after`` links a
    step to the earlier steps whose procedures must be accepted first. Several purposes share one
    step per department. Unanswered questions count as unknown. Raises PlanError for an
    unknown purpose, an unknown answer id or a value the question cannot take.
    """
    if lang not in LANGUAGES:
        raise PlanError(f"unknown language {lang!r} (languages: {', '.join(LANGUAGES)})", "lang")
    ids = _purposes(catalogue, purposes)
    typed = _typed(catalogue, answers, ids)
    chosen, merged_into, also_for, moot, merged_unsure = _merge(catalogue, ids, typed)

    rank = {d: i for i, d in enumerate(catalogue.department_order)}
    departments = sorted({p.department for p, _ in chosen if p.department}, key=lambda d: (rank.get(d, len(rank)), d))
    index_of = {d: i for i, d in enumerate(departments)}
    dept_of = {p.id: p.department for p, _ in chosen}
    dept_of |= {old: dept_of[new] for old, new in merged_into.items() if new in dept_of}
    minutes_of = _step_minutes(chosen, typed)

    def alternative(proc: Procedure) -> AlternativeItem | None:
        if not proc.alternative:
            return None
        alt = catalogue.alternatives[proc.alternative]
        return AlternativeItem(proc.id, pick(proc.name, lang), alt.kind, pick(alt.text, lang), catalogue.url(alt.path))

    def deadline(proc: Procedure) -> str | None:
        if not proc.deadline:
            return None
        d = catalogue.deadlines[proc.deadline]
        text = pick(d.text, lang)
        if d.estimate:  # not a sourced fact for Sakata: say so instead of stating it
            text = f"{text}（{pick(catalogue.labels['estimate'], lang)}）"
        return text

    def event(proc: Procedure) -> str | None:
        return catalogue.deadlines[proc.deadline].rule.event if proc.deadline else None

    def explain(proc: Procedure) -> str | None:
        return proc.explain.get(lang) if proc.explain else None

    steps: list[PlanStep] = []
    for d in departments:
        items = tuple(
            PlannedProcedure(
                id=p.id, purpose=p.purpose, name=pick(p.name, lang), to_confirm=unsure,
                documents=_docs(catalogue, _doc_ids(catalogue, p, typed), lang), deadline=deadline(p),
                alternative=alternative(p), note=pick(p.note, lang) if p.note else None,
                minutes=minutes_of[p.id], deadline_id=p.deadline, deadline_event=event(p), source=p.source,
                estimate=p.estimate, explain=explain(p), minutes_source=p.minutes_source,
                also_for=also_for.get(p.id, ()),
            )
            for p, unsure in chosen
            if p.department == d
        )
        # A prerequisite that is not on the plan (e.g. the funeral home already filed the death
        # registration) imposes nothing; one in the same step is handled by procedure order.
        after = sorted({
            index_of[dept_of[a]]
            for p, _ in chosen if p.department == d
            for a in (merged_into.get(x, x) for x in p.after)
            if a in dept_of and dept_of[a] and dept_of[a] != d
        })
        name = pick(catalogue.department_names[d], lang) if d in catalogue.department_names else d
        steps.append(PlanStep(index_of[d], d, name, items, tuple(after), sum(i.minutes for i in items)))

    external = tuple(
        ExternalItem(
            id=p.id, purpose=p.purpose, name=pick(p.name, lang),
            where=pick(catalogue.places[p.external].name, lang) if p.external else "",
            url=catalogue.places[p.external].url if p.external else "",
            deadline=deadline(p), documents=_docs(catalogue, _doc_ids(catalogue, p, typed), lang), to_confirm=unsure,
            note=pick(p.note, lang) if p.note else None, deadline_id=p.deadline, deadline_event=event(p),
            source=p.source, estimate=p.estimate, explain=explain(p), also_for=also_for.get(p.id, ()),
        )
        for p, unsure in chosen
        if p.department is None
    )
    documents = tuple({d.id: d for s in steps for p in s.procedures for d in p.documents}.values())
    online = tuple(p.alternative for s in steps for p in s.procedures if p.alternative)
    queued = [(p, minutes_of[p.id]) for p, _ in chosen if p.department]
    total = sum(m for _, m in queued)
    sd = math.sqrt(sum((m * p.cv) ** 2 for p, m in queued))
    merged = tuple((m, k) for m, k in merged_into.items() if m not in moot)
    return Plan(ids, lang, tuple(steps), documents, online, external, total, sd, merged, tuple(moot.items()),
                frozenset(merged_unsure))


def _merge(catalogue: Catalogue, ids: Sequence[str], typed: Mapping[str, object]
           ) -> tuple[list[tuple[Procedure, bool]], dict[str, str], dict[str, tuple[str, ...]], dict[str, str], set[str]]:
    """The procedures that apply, each act once, contradictions resolved (docs/catalogue.md).

    Rule 1 (same act): procedures linked by ``same_as`` are one act; the one of the first purpose
    is kept (unless only a later copy surely applies: then that one), marked with the other
    purposes in ``also_for``; it is "to confirm" only if every copy was. Rule 2 (moot act): a procedure that surely applies removes the procedures it
    ``supersedes`` (a withdrawal from NHI makes its address change moot); one that only might
    apply (an unknown answer) removes nothing.
    Returns (chosen, merged or moot id -> kept id, also_for, moot id -> the procedure making it moot,
    merged ids that only might apply).
    """
    chosen: list[tuple[Procedure, bool]] = []
    index: dict[str, int] = {}
    merged_into: dict[str, str] = {}
    also_for: dict[str, tuple[str, ...]] = {}
    merged_unsure: set[str] = set()
    for pid in ids:
        for proc_id in catalogue.purposes[pid].procedures:
            proc = catalogue.procedures[proc_id]
            applies = _applies(proc, typed)
            if applies is False:
                continue
            twin = next((k for k in index if k in proc.same_as or proc.id in catalogue.procedures[k].same_as), None)
            if twin is None:
                index[proc.id] = len(chosen)
                chosen.append((proc, applies is None))
                continue
            kept, unsure = chosen[index[twin]]
            if unsure and applies is True:
                # the copy that surely applies is the one listed (whatever the purpose order), so an
                # unknown answer elsewhere never turns a definite act into a "to confirm" one
                i = index.pop(twin)
                index[proc.id] = i
                chosen[i] = (proc, False)
                for m, k in list(merged_into.items()):
                    if k == twin:
                        merged_into[m] = proc.id
                merged_into[twin] = proc.id
                merged_unsure.add(twin)
                also_for[proc.id] = tuple(x for x in (*also_for.pop(twin, ()), kept.purpose) if x != proc.purpose)
                continue
            merged_into[proc.id] = twin
            if applies is None:
                merged_unsure.add(proc.id)
            if proc.purpose != kept.purpose and proc.purpose not in also_for.get(twin, ()):
                also_for[twin] = (*also_for.get(twin, ()), proc.purpose)
    moot = {y: p.id for p, unsure in chosen if not unsure for y in p.supersedes if y in index}
    merged_into |= moot
    return [(p, u) for p, u in chosen if p.id not in moot], merged_into, also_for, moot, merged_unsure


def _step_minutes(chosen: Sequence[tuple[Procedure, bool]], typed: Mapping[str, object]) -> dict[str, float]:
    """Minutes per procedure; a shared ``overhead`` (one certificate request for several
    certificates) is counted once per department step, on the first procedure that needs it."""
    seen: set[tuple[str | None, str]] = set()
    out: dict[str, float] = {}
    for p, _ in chosen:
        m = _minutes(p, typed)
        if p.overhead and (p.department, p.overhead[0]) not in seen:
            seen.add((p.department, p.overhead[0]))
            m += p.overhead[1]
        out[p.id] = m
    return out


# ------------------------------------------------------------------ JSON


def question_to_dict(catalogue: Catalogue, q: Question, lang: str) -> dict:
    """A question as the kiosk shows it, in ``lang``: text, help and the answers to offer."""
    if lang not in LANGUAGES:
        raise PlanError(f"unknown language {lang!r} (languages: {', '.join(LANGUAGES)})", "lang")
    if q.kind == "yesno":
        values = ["yes", "no"]
        choices = [{"value": v, "text": pick(catalogue.answer_labels[v], lang)} for v in values]
    else:
        choices = [{"value": v, "text": pick(q.choice_text[v], lang)} for v in q.choices]
    choices.append({"value": UNKNOWN, "text": pick(catalogue.answer_labels[UNKNOWN], lang)})
    out = {"id": q.id, "purpose": q.purpose, "kind": q.kind, "text": pick(q.text, lang),
           "help": pick(q.help, lang), "choices": choices}
    if q.kind == NUMBER:
        out["min"], out["max"] = q.min, q.max
    return out


def _docs_dict(docs: Sequence[DocumentItem]) -> list[dict]:
    return [{"id": d.id, "name": d.name} for d in docs]


def _alt_dict(a: AlternativeItem | None) -> dict | None:
    if a is None:
        return None
    return {"procedure": a.procedure, "procedure_name": a.procedure_name, "kind": a.kind, "text": a.text, "url": a.url}


def plan_to_dict(plan: Plan) -> dict:
    """The plan as JSON-ready data (server protocol, kiosk, printer)."""
    return {
        "purposes": list(plan.purposes),
        "lang": plan.lang,
        "steps": [
            {
                "index": s.index,
                "department": s.department,
                "department_name": s.department_name,
                "after": list(s.after),
                "minutes": round(s.minutes, 1),
                "procedures": [
                    {
                        "id": p.id, "purpose": p.purpose, "name": p.name, "to_confirm": p.to_confirm,
                        "documents": _docs_dict(p.documents), "deadline": p.deadline,
                        "alternative": _alt_dict(p.alternative), "note": p.note, "minutes": round(p.minutes, 1),
                        "deadline_id": p.deadline_id, "deadline_event": p.deadline_event, "source": list(p.source),
                        "estimate": p.estimate, "explain": p.explain, "minutes_source": p.minutes_source,
                        "also_for": list(p.also_for),
                    }
                    for p in s.procedures
                ],
            }
            for s in plan.steps
        ],
        "documents": _docs_dict(plan.documents),
        "online": [_alt_dict(a) for a in plan.online],
        "external": [
            {
                "id": e.id, "purpose": e.purpose, "name": e.name, "where": e.where, "url": e.url,
                "deadline": e.deadline, "documents": _docs_dict(e.documents), "to_confirm": e.to_confirm,
                "note": e.note, "deadline_id": e.deadline_id, "deadline_event": e.deadline_event,
                "source": list(e.source), "estimate": e.estimate, "explain": e.explain, "also_for": list(e.also_for),
            }
            for e in plan.external
        ],
        "minutes": round(plan.minutes, 1),
        "minutes_sd": round(plan.minutes_sd, 1),
        "to_confirm": sorted(plan.to_confirm),
        "merged": [{"procedure": m, "into": k} for m, k in plan.merged],
        "moot": [{"procedure": m, "by": k} for m, k in plan.moot],
        "route": [
            {"department": r.department, "procedures": list(r.procedures), "after": list(r.after), "minutes": round(r.minutes, 1)}
            for r in plan.route
        ],
    }
