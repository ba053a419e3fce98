"""Combined purposes: one step per act whatever the purposes, contradictions resolved by the
documented rule (docs/catalogue.md, "Combined purposes"), checked for every pair of life events."""

from __future__ import annotations

import itertools
import random
import tomllib
from pathlib import Path

import pytest

from queue_server.core.catalogue import probe_values
from queue_server.core.journey import plan_visit, questions_for
from queue_server.loaders import load_catalogue

ROOT = Path(__file__).resolve().parents[2]
SITE = tomllib.loads((ROOT / "config" / "site.toml").read_text(encoding="utf-8"))
CAT = load_catalogue(ROOT / "config" / "catalogue", SITE)
LIFE_EVENTS = sorted(p.id for p in CAT.purposes.values() if p.kind == "life_event")
PAIRS = list(itertools.combinations(LIFE_EVENTS, 2))


def _answers(purposes, rng: random.Random, unknown_share: float) -> dict[str, str]:
    out = {}
    for q in questions_for(CAT, purposes):
        values = probe_values(q, [p.condition for p in CAT.procedures.values() if q.id in p.condition.names()])
        raw = rng.choice(values)
        if isinstance(raw, float):
            raw = str(int(max(raw, q.min or 0)))
        elif isinstance(raw, frozenset):
            raw = ",".join(sorted(raw))
        out[q.id] = "unknown" if rng.random() < unknown_share else str(raw)
    return out


def test_every_pair_of_life_events_is_covered():
    assert len(LIFE_EVENTS) == 7 and len(PAIRS) == 21


@pytest.mark.parametrize("pair", PAIRS, ids=["+".join(p) for p in PAIRS])
def test_a_combined_plan_lists_each_act_once_and_nothing_moot(pair):
    rng = random.Random("+".join(pair))
    for trial in range(40):
        answers = _answers(pair, rng, unknown_share=0.2 if trial % 2 else 0.0)
        plan = plan_visit(CAT, pair, answers, "ja")
        queued = [(s.department, p) for s in plan.steps for p in s.procedures]
        ids = [p.id for _, p in queued] + [e.id for e in plan.external]
        assert len(ids) == len(set(ids))
        # the class of the 転居届-twice error: two entries with the same name at one counter
        names = [(d, CAT.procedures[p.id].name["ja"]) for d, p in queued]
        assert len(names) == len(set(names)), (pair, answers, sorted(names))
        ext_names = [CAT.procedures[e.id].name["ja"] for e in plan.external]
        assert len(ext_names) == len(set(ext_names)), (pair, answers)
        listed = set(ids)
        for pid in listed:
            proc = CAT.procedures[pid]
            assert not set(proc.same_as) & listed, (pid, proc.same_as)  # rule 1: one step per act
            if pid not in plan.to_confirm:
                assert not set(proc.supersedes) & listed, (pid, proc.supersedes)  # rule 2: moot acts go
        # one step per department, whatever the purposes
        depts = [s.department for s in plan.steps]
        assert len(depts) == len(set(depts))


def test_marriage_and_move_within_file_one_moving_notice():
    answers = {"marriage_moves": "yes", "marriage_surname_change": "no", "marriage_on_nhi": "no",
               "marriage_becomes_dependent": "no", "marriage_single_parent_allowance": "no"}
    plan = plan_visit(CAT, ["結婚", "転居"], answers, "ja")
    shimin = plan.steps[0].procedures
    assert [p.id for p in shimin].count("household_change_marriage") == 1
    assert "moving_notice" not in [p.id for p in shimin]
    kept = next(p for p in shimin if p.id == "household_change_marriage")
    assert kept.also_for == ("move_within",)
    assert ("moving_notice", "household_change_marriage") in plan.merged
    assert "moving_notice" in plan.procedure_ids  # the act is on the list, once


def test_nhi_withdrawal_makes_the_nhi_address_change_moot_only_when_it_surely_applies():
    base = {"marriage_moves": "yes", "marriage_surname_change": "no", "marriage_becomes_dependent": "no",
            "marriage_single_parent_allowance": "no", "within_on_nhi": "yes"}
    sure = plan_visit(CAT, ["marriage", "move_within"], {**base, "marriage_on_nhi": "yes"}, "ja")
    assert "nhi_change_marriage" in sure.procedure_ids and "nhi_address_within" not in sure.procedure_ids
    assert ("nhi_address_within", "nhi_change_marriage") in sure.moot
    unsure = plan_visit(CAT, ["marriage", "move_within"], {**base, "marriage_on_nhi": "unknown"}, "ja")
    assert {"nhi_change_marriage", "nhi_address_within"} <= unsure.procedure_ids


def test_a_merged_act_keeps_the_definite_answer():
    # birth + move-in: one 児童手当 claim; definite from the move-in even if the birth side is unknown
    answers = {"already_child_allowance": "unknown", "in_children": "yes"}
    plan = plan_visit(CAT, ["birth", "move_in"], answers, "ja")
    ids = [p.id for s in plan.steps for p in s.procedures]
    assert "child_allowance_in" in ids and "child_allowance_claim" not in ids
    assert "child_allowance_in" not in plan.to_confirm
    kept = next(p for s in plan.steps for p in s.procedures if p.id == "child_allowance_in")
    assert kept.also_for == ("birth",) and ("child_allowance_claim", "child_allowance_in") in plan.merged
