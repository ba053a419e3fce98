"""The planner: exact plans for the seed's cases and more, the route hand-off, question skipping,
and properties over random answers (unknown gives a superset, routes are acyclic, every
procedure is reachable, the kiosk interview reaches the same plan as answering everything)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queue_server.core.catalogue import probe_values
from queue_server.core.i18n import LANGUAGES
from queue_server.core.journey import (
    PlanError,
    next_question,
    plan_to_dict,
    plan_visit,
    question_to_dict,
    questions_for,
    resolve_purpose,
)
from queue_server.core.model import RouteStep
from queue_server.loaders import load_catalogue

ROOT = Path(__file__).resolve().parents[2]
SITE = tomllib.loads((ROOT / "config" / "site.toml").read_text(encoding="utf-8"))
CAT = load_catalogue(ROOT / "config" / "catalogue", SITE)
CASES = tomllib.loads((ROOT / "tests" / "fixtures" / "plan_cases.toml").read_text(encoding="utf-8"))
SEED_CASES = ("death_1_late_stage_elderly", "death_2_child_allowance", "birth_second_child")


# ------------------------------------------------------------------ exact cases


@pytest.mark.parametrize("name", sorted(CASES))
def test_case_gives_exactly_the_expected_plan(name):
    case = CASES[name]
    plan = plan_visit(CAT, case["purposes"], case["answers"], "ja")
    queued = [p.id for s in plan.steps for p in s.procedures]
    assert sorted(queued) == sorted(case["procedures"])
    assert len(queued) == len(set(queued))  # nothing twice, even across purposes
    assert [s.department for s in plan.steps] == case["departments"]
    assert sorted(e.id for e in plan.external) == sorted(case["external"])
    assert plan.to_confirm == frozenset()


def test_the_seed_cases_are_among_the_cases():
    assert set(SEED_CASES) <= set(CASES)
    life_events = {resolve_purpose(CAT, p) for c in CASES.values() for p in c["purposes"]}
    assert life_events == set(CAT.purposes)
    per_event = {pid: sum(resolve_purpose(CAT, c["purposes"][0]) == pid for c in CASES.values() if len(c["purposes"]) == 1)
                 for pid in CAT.purposes}
    assert min(per_event.values()) >= 2, per_event


def test_death_1_route_puts_the_registration_first():
    case = CASES["death_1_late_stage_elderly"]
    route = plan_visit(CAT, case["purposes"], case["answers"], "en").route
    assert all(isinstance(r, RouteStep) for r in route)
    assert route[0] == RouteStep("shimin", ("death_registration", "head_of_household_change", "seal_registration_end"),
                                 (), 18.0)
    assert all(r.after == (0,) for r in route[1:])
    assert sum(r.minutes for r in route) == 76.0  # (est.) priors; seed: 40–90 min for a bereavement


def test_no_order_constraint_when_the_registration_was_filed_elsewhere():
    case = CASES["death_3_filed_by_funeral_home"]
    route = plan_visit(CAT, case["purposes"], case["answers"], "ja").route
    assert route[0].procedures == ("my_number_card_return",)
    assert all(r.after == () for r in route)


def test_combined_purposes_share_one_step_per_department():
    case = CASES["death_and_move_within"]
    plan = plan_visit(CAT, case["purposes"], case["answers"], "ja")
    shimin = plan.steps[0]
    assert [p.purpose for p in shimin.procedures] == ["death", "death", "move_within", "move_within"]
    assert plan.purposes == ("death", "move_within")
    # Each step waits for the shimin step: the death or the move must be accepted first.
    assert all(s.after == (0,) for s in plan.steps[1:])


def test_documents_are_merged_without_duplicates():
    case = CASES["death_2_child_allowance"]
    plan = plan_visit(CAT, case["purposes"], case["answers"], "en")
    per_procedure = [d.id for s in plan.steps for p in s.procedures for d in p.documents]
    assert per_procedure.count("identity") > 1
    assert [d.id for d in plan.documents] == list(dict.fromkeys(per_procedure))
    assert plan.documents[0].name == CAT.documents["death_certificate"].name["en"]


def test_alternatives_link_through_the_site_base_url():
    plan = plan_visit(CAT, ["certificate"], {"certificates": "juminhyo,nouzei"}, "en")
    assert [(a.procedure, a.kind, a.url) for a in plan.online] == [
        ("juminhyo", "convenience_store", "https://www.city.sakata.lg.jp/kurashi/todokede/konbini.html"),
        ("tax_payment_certificate", "mail", "https://www.city.sakata.lg.jp/kurashi/todokede/yuso.html"),
    ]
    move_out = plan_visit(CAT, ["move_out"], {}, "ja")
    assert ("move_out_notice", "online", "https://myna.go.jp/") in [(a.procedure, a.kind, a.url) for a in move_out.online]


def test_external_items_say_where_to_go_and_are_never_queued():
    case = CASES["death_1_late_stage_elderly"]
    plan = plan_visit(CAT, case["purposes"], case["answers"], "en")
    land = next(e for e in plan.external if e.id == "land_registration")
    assert land.where == "Yamagata Legal Affairs Bureau, Sakata Branch"
    queued = {p for r in plan.route for p in r.procedures}
    assert not queued & {e.id for e in plan.external}


def test_minutes_grow_with_the_household():
    base = {"in_joins_nhi": "no"}
    one = plan_visit(CAT, ["move_in"], {**base, "in_household_size": "1"}, "ja")
    four = plan_visit(CAT, ["move_in"], {**base, "in_household_size": "4"}, "ja")
    notice = lambda plan: next(p for p in plan.steps[0].procedures if p.id == "move_in_notice")  # noqa: E731
    assert (notice(one).minutes, notice(four).minutes) == (15.0, 30.0)
    assert four.minutes - one.minutes == 15.0
    assert four.minutes == pytest.approx(sum(r.minutes for r in four.route))


def test_unknown_answers_keep_procedures_to_confirm():
    plan = plan_visit(CAT, ["death"], {"deceased_age": "80", "deceased_head": "unknown"}, "en")
    ids = plan.procedure_ids
    assert {"head_of_household_change", "kouki_loss", "care_insurance_loss"} <= ids
    assert "head_of_household_change" in plan.to_confirm
    assert "kouki_loss" not in plan.to_confirm  # the age settles it
    assert "nhi_loss" not in ids  # 80: late-stage elderly insurance, never NHI


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_language_renders_the_plan(lang):
    case = CASES["death_1_late_stage_elderly"]
    plan = plan_visit(CAT, case["purposes"], case["answers"], lang)
    names = [p.name for s in plan.steps for p in s.procedures]
    expected = [CAT.procedures[p.id].name[lang] for s in plan.steps for p in s.procedures]
    assert names == expected
    assert plan.steps[0].department_name == SITE["departments"]["shimin"]["name"][lang]
    json.dumps(plan_to_dict(plan), ensure_ascii=False)


def test_plan_to_dict_mirrors_the_plan():
    case = CASES["birth_second_child"]
    plan = plan_visit(CAT, case["purposes"], case["answers"], "ja")
    data = json.loads(json.dumps(plan_to_dict(plan), ensure_ascii=False))
    assert [s["department"] for s in data["steps"]] == case["departments"]
    assert data["route"] == [
        {"department": r.department, "procedures": list(r.procedures), "after": list(r.after), "minutes": r.minutes}
        for r in plan.route
    ]
    assert data["minutes"] == plan.minutes and data["to_confirm"] == []
    assert {d["id"] for d in data["documents"]} == {d.id for d in plan.documents}


# ------------------------------------------------------------------ purposes and answers


def test_resolve_purpose_accepts_ids_aliases_and_names():
    assert resolve_purpose(CAT, "死亡") == "death"
    assert resolve_purpose(CAT, "death") == "death"
    assert resolve_purpose(CAT, "Moving out of Sakata") == "move_out"
    assert resolve_purpose(CAT, "出産") == "birth"
    with pytest.raises(PlanError) as info:
        resolve_purpose(CAT, "宝くじ")
    assert info.value.field == "purposes"


def test_a_single_purpose_string_is_one_purpose():
    assert plan_visit(CAT, "certificate", {"certificates": "inkan"}, "ja").purposes == ("certificate",)


@pytest.mark.parametrize(
    ("answers", "field", "message"),
    [
        ({"deceased_agee": "80"}, "deceased_agee", "unknown answer id 'deceased_agee'"),
        ({"deceased_head": "maybe"}, "deceased_head", "answer 'deceased_head': expected yes, no or unknown, got 'maybe'"),
        ({"deceased_age": "200"}, "deceased_age", "answer 'deceased_age': 200 is outside 0–130"),
        ({"deceased_pension": "big"}, "deceased_pension",
         "answer 'deceased_pension': 'big' is not one of none, basic_only, employee or unknown"),
    ],
)
def test_bad_answers_raise_with_the_field(answers, field, message):
    with pytest.raises(PlanError) as info:
        plan_visit(CAT, ["death"], answers, "ja")
    assert (info.value.field, str(info.value)) == (field, message)


def test_unknown_language_is_refused():
    with pytest.raises(PlanError, match="unknown language 'fr'"):
        plan_visit(CAT, ["death"], {}, "fr")


# ------------------------------------------------------------------ questions


def _interview(purposes, answers_for):
    """Drive next_question like the kiosk, answering from ``answers_for``; return asked ids."""
    answers: dict[str, str] = {}
    asked = []
    while (q := next_question(CAT, purposes, answers)) is not None:
        assert q.id not in answers
        asked.append(q.id)
        answers[q.id] = answers_for.get(q.id, "unknown")
    return asked, answers


def test_questions_that_cannot_matter_are_skipped():
    asked, _ = _interview(["death"], CASES["death_1_late_stage_elderly"]["answers"])
    # 80 years old: late-stage elderly insurance and care insurance follow from the age alone.
    assert {"deceased_on_nhi", "deceased_disabled_kouki", "deceased_care_certified"}.isdisjoint(asked)
    assert {"deceased_national_pension", "child_allowance_recipient"}.isdisjoint(asked)  # no children
    asked50, _ = _interview(["death"], {"deceased_age": "50", "children_under_18": "no"})
    assert {"deceased_on_nhi", "deceased_care_certified"} <= set(asked50)
    assert "deceased_disabled_kouki" not in asked50  # only for 65–74


def test_the_first_question_is_the_first_of_the_file():
    assert next_question(CAT, ["death"], {}).id == "death_filed"
    assert [q.id for q in questions_for(CAT, ["certificate", "consultation"])] == ["certificates", "consult_topic"]


def test_interview_of_each_case_reaches_the_case_plan():
    for name, case in CASES.items():
        _, answers = _interview(case["purposes"], case["answers"])
        plan = plan_visit(CAT, case["purposes"], answers, "ja")
        assert sorted(p.id for s in plan.steps for p in s.procedures) == sorted(case["procedures"]), name
        assert plan.to_confirm == frozenset(), name


def test_question_to_dict_offers_unknown():
    q = CAT.questions["deceased_pension"]
    d = question_to_dict(CAT, q, "en")
    assert [c["value"] for c in d["choices"]] == ["none", "basic_only", "employee", "unknown"]
    assert d["choices"][-1]["text"] == "I don't know"
    assert question_to_dict(CAT, CAT.questions["deceased_age"], "ja")["max"] == 130


# ------------------------------------------------------------------ properties


def _values(q) -> list[str]:
    """Definite raw answers worth drawing for a question (probe values as strings)."""
    procs = [CAT.procedures[p] for p in CAT.purposes[q.purpose].procedures]
    out = []
    for v in probe_values(q, [p.condition for p in procs]):
        if isinstance(v, frozenset):
            out.append(",".join(sorted(v)))
        elif isinstance(v, float):
            lo, hi = q.min if q.min is not None else 0, q.max if q.max is not None else 10**6
            if lo <= v <= hi:
                out.append(str(int(v)))
        else:
            out.append(str(v))
    return out


@st.composite
def purposes_and_answers(draw, definite: bool = False):
    purposes = draw(st.lists(st.sampled_from(sorted(CAT.purposes)), min_size=1, max_size=2, unique=True))
    answers = {}
    for q in questions_for(CAT, purposes):
        choices = _values(q) if definite else [*_values(q), "unknown"]
        if definite or draw(st.booleans()):
            answers[q.id] = draw(st.sampled_from(choices))
    return purposes, answers


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(purposes_and_answers())
def test_all_unknown_is_a_superset_of_any_answers(args):
    purposes, answers = args
    plan = plan_visit(CAT, purposes, answers, "ja")
    unknown = plan_visit(CAT, purposes, {k: "unknown" for k in answers}, "ja")
    assert plan.procedure_ids <= unknown.procedure_ids
    # what applies whatever the answers applies, definitely, in every plan
    assert unknown.procedure_ids - unknown.to_confirm <= plan.procedure_ids - plan.to_confirm
    assert {s.department for s in plan.steps} <= {s.department for s in unknown.steps}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(purposes_and_answers())
def test_route_is_ordered_valid_and_acyclic(args):
    purposes, answers = args
    plan = plan_visit(CAT, purposes, answers, "ja")
    route = plan.route
    departments = [r.department for r in route]
    assert len(departments) == len(set(departments))  # one visit per department
    order = list(CAT.department_order)
    assert departments == sorted(departments, key=order.index)
    for i, r in enumerate(route):
        assert all(0 <= a < i for a in r.after)  # only earlier steps: acyclic by construction
        assert r.procedures and r.minutes == pytest.approx(sum(p.minutes for p in plan.steps[i].procedures))
        assert r.minutes >= sum(CAT.procedures[p].minutes for p in r.procedures)  # extra people only add
    # A procedure whose prerequisite is on the plan in another department waits for that step.
    where = {p: i for i, r in enumerate(route) for p in r.procedures}
    for i, r in enumerate(route):
        for p in r.procedures:
            for pre in CAT.procedures[p].after:
                if pre in where and where[pre] != i:
                    assert where[pre] in r.after
    if "shimin" in departments:
        assert departments[0] == "shimin"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(purposes_and_answers(definite=True))
def test_interview_skips_only_what_cannot_matter(args):
    purposes, full = args
    everything = plan_visit(CAT, purposes, full, "ja")
    assert everything.to_confirm == frozenset()  # every answer definite: nothing left to confirm
    asked, answers = _interview(purposes, full)
    interviewed = plan_visit(CAT, purposes, answers, "ja")
    assert interviewed.procedure_ids == everything.procedure_ids
    assert interviewed.to_confirm == frozenset()
    assert interviewed.minutes == everything.minutes


def test_every_procedure_is_reachable_by_some_definite_answers():
    for pid, proc in CAT.procedures.items():
        purpose = proc.purpose
        names = sorted(proc.condition.names())
        domains = [_values(CAT.questions[n]) for n in names]
        found = False
        for combo in itertools.product(*domains):
            plan = plan_visit(CAT, [purpose], dict(zip(names, combo, strict=True)), "ja")
            if pid in plan.procedure_ids and pid not in plan.to_confirm:
                found = True
                break
        assert found, pid


# ------------------------------------------------------------------ CLI


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "run.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, encoding="utf-8")


def _answer_args(case: str) -> list[str]:
    return [x for k, v in CASES[case]["answers"].items() for x in ("--answer", f"{k}={v}")]


def test_cli_plan_table_in_japanese_and_english():
    ja = _run("plan", "死亡", *_answer_args("death_1_late_stage_elderly"))
    assert ja.returncode == 0, ja.stderr
    names = [SITE["departments"][d]["name"]["ja"] for d in CASES["death_1_late_stage_elderly"]["departments"]]
    positions = [ja.stdout.index(n) for n in names]
    assert positions == sorted(positions)  # departments in visit order
    docs = ja.stdout.split("お持ちいただくもの:")[1].split("\n\n")[0]
    assert docs.count(CAT.documents["identity"].name["ja"]) == 1  # merged
    assert "死亡届・火葬許可申請" in ja.stdout and "予想時間（目安）: 76 分" in ja.stdout

    en = _run("plan", "死亡", *_answer_args("death_1_late_stage_elderly"), "--lang", "en")
    assert en.returncode == 0, en.stderr
    assert "1. Citizens Division [shimin]" in en.stdout
    assert "Procedures outside city hall:" in en.stdout and "Sakata Tax Office" in en.stdout


def test_cli_plan_json():
    out = _run("plan", "birth", *_answer_args("birth_second_child"), "--json", "--lang", "vi")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [r["department"] for r in data["route"]] == CASES["birth_second_child"]["departments"]
    assert data["lang"] == "vi"


def test_cli_questions_and_errors():
    out = _run("questions", "死亡", "--lang", "en")
    assert out.returncode == 0, out.stderr
    assert "deceased_age  (number)" in out.stdout and "How old was the person who died?" in out.stdout
    bad = _run("plan", "死亡", "--answer", "deceased_head=maybe")
    assert bad.returncode == 2
    assert "answer 'deceased_head': expected yes, no or unknown, got 'maybe'" in bad.stderr
    other = _run("plan", "死亡", "--config-dir", "tests/fixtures/catalogue")
    assert other.returncode == 2 and "unknown purpose '死亡' (known: pet)" in other.stderr


def test_cli_reports_a_broken_catalogue(tmp_path):
    broken = tmp_path / "catalogue"
    broken.mkdir()
    for f in (ROOT / "tests" / "fixtures" / "catalogue").glob("*.toml"):
        text = f.read_text(encoding="utf-8").replace('department = "hoken_nenkin"', 'department = "hoken"')
        (broken / f.name).write_text(text, encoding="utf-8")
    out = _run("plan", "pet", "--config-dir", str(broken))
    assert out.returncode == 1
    assert "department 'hoken' is not in [catalogue] department_order" in out.stderr
    assert f"{broken / 'pets.toml'}:line " in out.stderr


def test_cli_module_imports_only_argparse_at_top_level():
    code = ("import sys, queue_server.catalogue_cli; "
            "print(sorted(m for m in ('queue_server.core.catalogue', 'queue_server.core.journey', 'tomllib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
