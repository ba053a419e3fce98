"""Household cases written from public guides (tests/fixtures/household_cases.toml): the
procedures a clerk must list and must not, and their deadlines, in all seven languages."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from queue_server.core.i18n import LANGUAGES
from queue_server.core.journey import plan_to_dict, plan_visit
from queue_server.loaders import load_catalogue

ROOT = Path(__file__).resolve().parents[2]
SITE = tomllib.loads((ROOT / "config" / "site.toml").read_text(encoding="utf-8"))
CAT = load_catalogue(ROOT / "config" / "catalogue", SITE)
CASES = tomllib.loads((ROOT / "tests" / "fixtures" / "household_cases.toml").read_text(encoding="utf-8"))


def test_there_are_at_least_forty_household_cases_covering_every_life_event():
    assert len(CASES) >= 40
    events = {p.id for p in CAT.purposes.values() if p.kind == "life_event"}
    covered = {CAT.purposes[pid].id for c in CASES.values() for pid in
               (next(p.id for p in CAT.purposes.values() if x in (p.id, *p.aliases)) for x in c["purposes"])}
    assert covered == events
    assert all(c["guide"].strip() for c in CASES.values())


def _parse(spec: str) -> tuple[str, int | None, str | None, str | None]:
    """'within 14 days from death' -> (kind, 14, 'days', 'death'); 'before from moving'; 'asap'."""
    words = spec.split()
    if len(words) == 1:
        return words[0], None, None, None
    if words[1] == "from":
        return words[0], None, None, words[2]
    kind, n, unit, _from, event = words
    return kind, int(n), unit, event


def _item(plan: dict, proc: str) -> dict:
    merged = {m["procedure"]: m["into"] for m in plan["merged"]}
    target = merged.get(proc, proc)
    items = [p for s in plan["steps"] for p in s["procedures"]] + plan["external"]
    return next(i for i in items if i["id"] == target)


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("name", sorted(CASES))
def test_household_case(name, lang):
    case = CASES[name]
    plan = plan_visit(CAT, case["purposes"], case["answers"], lang)
    data = plan_to_dict(plan)
    ids = plan.procedure_ids
    assert set(case["must"]) <= ids, sorted(set(case["must"]) - ids)
    assert not set(case["must_not"]) & ids, sorted(set(case["must_not"]) & ids)
    assert set(case.get("moot", [])) <= {m for m, _ in plan.moot}
    docs = {d.id for s in plan.steps for p in s.procedures for d in p.documents} | {
        d.id for e in plan.external for d in e.documents}
    assert set(case.get("documents", [])) <= docs
    assert not set(case.get("no_documents", [])) & docs
    for proc, spec in case["deadlines"].items():
        kind, n, unit, event = _parse(spec)
        item = _item(data, proc)
        rule = CAT.deadlines[item["deadline_id"]].rule
        assert (rule.kind, rule.amount, rule.unit, rule.event) == (kind, n, unit, event), (proc, spec, rule)
        assert item["deadline_event"] == event
        text = item["deadline"]
        if event:
            assert CAT.events[event][lang] in text, (proc, lang, text)
        if n is not None:
            assert str(n) in text
