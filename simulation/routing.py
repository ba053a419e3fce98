"""Routes from the real planner: synthetic citizens answer the kiosk's questions, then
:func:`queue_server.core.journey.plan_visit` makes their personal procedure list.

Each question of a purpose is answered independently with the scenario's probabilities (values
the scenario leaves out are answered "unknown", as a citizen who does not know would; the
planner then keeps the procedures "to confirm at the counter"). Plans are cached by the answers
drawn, so a lobby of certificate requests costs one planner call per distinct request.

A step's service time is lognormal with the step's planned minutes as mean and the standard
deviation of a sum of independent procedures, sqrt(Σ (minutes_i · cv_i)²), using the
catalogue's per-procedure priors (domain.md §4, estimates).
"""

from __future__ import annotations

import math
import random
import tomllib
from bisect import bisect_right
from collections.abc import Callable
from itertools import accumulate
from pathlib import Path

from queue_server.config import DEFAULT_CONFIG_DIR
from queue_server.core.catalogue import Catalogue
from queue_server.core.conditions import MULTI, NUMBER, UNKNOWN, YESNO
from queue_server.core.journey import PlanError, plan_visit, questions_for, resolve_purpose
from queue_server.core.model import RouteStep
from queue_server.core.problems import ConfigError, Problem, where
from queue_server.loaders import load_catalogue

from .model import Route, Router, service_params
from .scenario import Scenario


def check_answers(sc: Scenario, cat: Catalogue) -> tuple[list[Problem], list[str]]:
    """Problems (unknown purpose, question or value) and notes (questions left unanswered)."""
    problems: list[Problem] = []
    notes: list[str] = []
    try:
        text = Path(sc.file).read_text(encoding="utf-8")
    except OSError:
        text = ""

    def at(key: str, qid: str) -> str:
        return where(sc.file, text, f"purposes.{key}.answers.{qid}", f"purposes.{key}", qid)

    for key, p in sc.purposes.items():
        if p.route is not None:
            continue
        try:
            pid = resolve_purpose(cat, key)
        except PlanError as e:
            problems.append(Problem(sc.file, where(sc.file, text, f"purposes.{key}", f"purposes.{key}"), str(e)))
            continue
        qs = {q.id: q for q in questions_for(cat, [pid])}
        for qid, dist in p.answers.items():
            q = qs.get(qid)
            if q is None:
                problems.append(Problem(sc.file, at(key, qid), f"{pid} has no question {qid!r} (its questions: {', '.join(qs)})"))
                continue
            for value in dist:
                reason = _bad_value(q, value)
                if reason:
                    problems.append(Problem(sc.file, at(key, qid), reason))
        missing = [q for q in qs if q not in p.answers]
        if missing:
            notes.append(f"{key}: no probabilities for {', '.join(missing)} — answered 'unknown'")
    return problems, notes


def _bad_value(q, value: str) -> str | None:
    if value == UNKNOWN:
        return None
    if q.kind == YESNO:
        return None if value in ("yes", "no") else f"{q.id} is yes/no: {value!r} is not an answer"
    if q.kind == NUMBER:
        try:
            n = int(value)
        except ValueError:
            return f"{q.id} takes a whole number: {value!r}"
        if (q.min is not None and n < q.min) or (q.max is not None and n > q.max):
            return f"{q.id}: {n} is outside {q.min}–{q.max}"
        return None
    if q.kind == MULTI:
        bad = [v for v in value.split(",") if v.strip() and v.strip() not in q.choices]
        return f"{q.id}: {', '.join(bad)} not among {', '.join(q.choices)}" if bad else None
    return None if value in q.choices else f"{q.id}: {value!r} is not one of {', '.join(q.choices)}"


def load_for(sc: Scenario) -> Catalogue:
    site_file = DEFAULT_CONFIG_DIR / "site.toml"
    site = tomllib.loads(site_file.read_text(encoding="utf-8"))
    return load_catalogue(sc.catalogue_dir or DEFAULT_CONFIG_DIR / "catalogue", site)


def answer_sampler(sc: Scenario) -> Callable[[str, random.Random], dict[str, str]]:
    """Draw one citizen's kiosk answers for a purpose (question id -> raw answer)."""
    draws: dict[str, list[tuple[str, list[str], list[float]]]] = {}
    for key, p in sc.purposes.items():
        draws[key] = [(qid, list(dist), list(accumulate(dist.values()))) for qid, dist in p.answers.items()]

    def draw(purpose: str, rng: random.Random) -> dict[str, str]:
        out = {}
        for qid, values, cum in draws[purpose]:
            i = bisect_right(cum, rng.random() * cum[-1]) if cum and cum[-1] > 0 else 0
            out[qid] = values[min(i, len(values) - 1)]
        return out

    return draw


def planner_router(sc: Scenario, cat: Catalogue | None = None) -> Router:
    """A router drawing answers and asking the planner; raises ConfigError on bad answers."""
    cat = cat or load_for(sc)
    problems, _notes = check_answers(sc, cat)
    if problems:
        raise ConfigError(problems)
    draw = answer_sampler(sc)
    direct: dict[str, Route] = {}
    for key, p in sc.purposes.items():
        if p.route is not None:
            direct[key] = (
                tuple(RouteStep(s.department, (), s.after, s.minutes) for s in p.route),
                tuple(service_params(s.minutes, s.minutes * s.cv, s.distribution) for s in p.route),
            )
    ids = {k: resolve_purpose(cat, k) for k, p in sc.purposes.items() if p.route is None}
    cv = {pid: proc.cv for pid, proc in cat.procedures.items()}
    cache: dict[tuple, Route] = {}

    def route(purpose: str, rng: random.Random) -> Route:
        d = direct.get(purpose)
        if d is not None:
            return d
        answers = draw(purpose, rng)
        k = (purpose, tuple(answers.values()))
        r = cache.get(k)
        if r is None:
            plan = plan_visit(cat, [ids[purpose]], answers, "ja")
            service = tuple(
                service_params(s.minutes, math.sqrt(sum((p.minutes * cv.get(p.id, 0.5)) ** 2 for p in s.procedures)))
                for s in plan.steps
            )
            r = cache[k] = (plan.route, service)
        return r

    route.notes = _notes  # type: ignore[attr-defined]
    return route
