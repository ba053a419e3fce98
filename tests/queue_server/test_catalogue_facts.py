"""Issue 13: every fact sourced, deadlines as data rendered from their own event, やさしい日本語
checked, strict answers. Broken copies of the fixture catalogue show check-config naming each."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from queue_server.core import easy_japanese, ruby
from queue_server.core.catalogue import ESTIMATE
from queue_server.core.deadlines import EVENT_KINDS
from queue_server.core.i18n import LANGUAGES
from queue_server.core.journey import PlanError, next_question, plan_to_dict, plan_visit, question_to_dict
from queue_server.loaders import load_catalogue, validate_catalogue

ROOT = Path(__file__).resolve().parents[2]
SITE = tomllib.loads((ROOT / "config" / "site.toml").read_text(encoding="utf-8"))
CAT = load_catalogue(ROOT / "config" / "catalogue", SITE)
FIXTURE = ROOT / "tests" / "fixtures" / "catalogue"
FIXTURE_SITE = {"departments": {"shimin": {}, "hoken_nenkin": {}, "kosodate": {}}}
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# ------------------------------------------------------------------ sources


def test_every_procedure_deadline_document_and_place_has_a_source_and_a_date():
    facts = [*CAT.procedures.values(), *CAT.deadlines.values(), *CAT.documents.values(), *CAT.places.values()]
    assert len(facts) > 150
    for fact in facts:
        assert fact.source and all(s.strip() for s in fact.source), fact.id
        assert DATE.match(fact.checked), fact.id
        # an address is an address; anything else is a law's name or says it is an estimate
        for s in fact.source:
            assert s.startswith(("http://", "https://", ESTIMATE)) or re.search(r"法|令|規則|条", s), (fact.id, s)


def test_sourced_share_of_procedures_is_reported():
    sourced = [p for p in CAT.procedures.values() if not p.estimate]
    print(f"procedures: {len(CAT.procedures)}, sourced: {len(sourced)}, estimate: {len(CAT.procedures) - len(sourced)}")
    assert len(sourced) >= 0.7 * len(CAT.procedures)


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "catalogue"
    shutil.copytree(FIXTURE, target)
    return target


def _edit(d: Path, name: str, old: str, new: str) -> str:
    path = d / name
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return str(path)


def test_check_config_fails_on_a_procedure_without_a_source(tmp_path):
    d = _copy(tmp_path)
    text = (d / "pets.toml").read_text(encoding="utf-8")
    start = text.index("[procedures.vet_check]")
    block = text[start:]
    (d / "pets.toml").write_text(text[:start] + block.replace('source = "https://pets.example/guide"\n', "", 1),
                                 encoding="utf-8")
    [problem] = validate_catalogue(d, FIXTURE_SITE)
    assert problem.where.endswith("(procedures.vet_check)")
    assert problem.reason.startswith("procedures.vet_check has no 'source'")
    cli = subprocess.run([sys.executable, "run.py", "plan", "pet", "--config-dir", str(d)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, encoding="utf-8")
    assert cli.returncode == 1 and "has no 'source'" in cli.stderr


def test_check_config_fails_on_a_bad_checked_date(tmp_path):
    d = _copy(tmp_path)
    text = (d / "common.toml").read_text(encoding="utf-8")
    (d / "common.toml").write_text(text.replace('checked = "2026-11-30"', 'checked = "last year"', 1), encoding="utf-8")
    reasons = [p.reason for p in validate_catalogue(d, FIXTURE_SITE)]
    assert len(reasons) == 1 and "needs 'checked' = \"YYYY-MM-DD\"" in reasons[0]


# ------------------------------------------------------------------ deadlines as data


def test_every_deadline_renders_in_every_language_from_its_own_event():
    for d in CAT.deadlines.values():
        assert set(d.text) == set(LANGUAGES), d.id
        for lang in LANGUAGES:
            assert "{" not in ruby.RUBY.sub("", d.text[lang]), (d.id, lang)  # every field filled in
            if d.rule.kind in EVENT_KINDS:
                assert CAT.events[d.rule.event][lang] in d.text[lang], (d.id, lang)
            if d.rule.amount is not None:
                assert str(d.rule.amount) in d.text[lang], (d.id, lang)


def test_every_procedure_deadline_counts_from_an_event_of_its_own_purpose():
    for p in CAT.procedures.values():
        if p.deadline and CAT.deadlines[p.deadline].rule.event:
            assert CAT.deadlines[p.deadline].rule.event in CAT.purposes[p.purpose].events, p.id


@pytest.mark.parametrize(("purpose", "answers", "proc", "event"), [
    ("death", {"children_under_18": "yes", "child_allowance_recipient": "yes"}, "child_allowance_recipient_change", "death_next_day"),
    ("divorce", {"divorce_children_custody": "yes", "divorce_spouse_received_allowance": "yes"}, "child_allowance_recipient_divorce", "divorce_next_day"),
    ("birth", {"already_child_allowance": "no"}, "child_allowance_claim", "birth_next_day"),
    ("move_in", {"in_children": "yes"}, "child_allowance_in", "move_next_day"),
])
def test_child_allowance_deadline_counts_from_the_families_own_event(purpose, answers, proc, event):
    for lang in LANGUAGES:
        plan = plan_to_dict(plan_visit(CAT, [purpose], answers, lang))
        [p] = [p for s in plan["steps"] for p in s["procedures"] if p["id"] == proc]
        assert p["deadline_event"] == event
        assert CAT.events[event][lang] in p["deadline"]
    # and never another event's words (the old 出生日・転入日 text after a death)
    ja = plan_to_dict(plan_visit(CAT, [purpose], answers, "ja"))
    text = next(p["deadline"] for s in ja["steps"] for p in s["procedures"] if p["id"] == proc)
    others = [CAT.events[e]["ja"] for e in CAT.events if e != event and CAT.events[e]["ja"] not in CAT.events[event]["ja"]]
    assert not [o for o in others if o in text]


def test_corrected_deadlines():
    rule = {p: CAT.deadlines[CAT.procedures[p].deadline].rule for p in (
        "pension_office_report", "pension_death_report", "survivor_basic_pension", "move_out_notice",
        "car_transfer", "quasi_tax_return", "death_lump_sum", "widow_pension")}
    assert (rule["pension_office_report"].amount, rule["pension_office_report"].unit) == (10, "days")
    assert (rule["pension_death_report"].amount, rule["pension_death_report"].unit) == (14, "days")
    assert (rule["survivor_basic_pension"].kind, rule["survivor_basic_pension"].amount,
            rule["survivor_basic_pension"].unit) == ("lapses", 5, "years")
    assert (rule["move_out_notice"].kind, rule["move_out_notice"].amount) == ("before_or_within", 14)
    assert rule["car_transfer"].amount == 15
    assert (rule["quasi_tax_return"].amount, rule["quasi_tax_return"].unit) == (4, "months")
    assert (rule["death_lump_sum"].kind, rule["death_lump_sum"].amount) == ("lapses", 2)
    assert (rule["widow_pension"].kind, rule["widow_pension"].amount) == ("lapses", 5)
    en = CAT.deadlines[CAT.procedures["move_out_notice"].deadline].text["en"]
    assert en == "Before moving, or within 14 days after it"


def test_check_config_fails_on_an_unreadable_deadline_and_a_foreign_event(tmp_path):
    d = _copy(tmp_path)
    _edit(d, "common.toml", 'event = "adoption"\ndays = 30', 'event = "adoption"\nweeks = 30')
    reasons = [p.reason for p in validate_catalogue(d, FIXTURE_SITE)]
    assert "unknown key 'weeks' in deadlines.within_30_days" in reasons[0]
    assert any(r.startswith("unreadable deadline 'within_30_days'") for r in reasons)
    d2 = _copy(tmp_path / "b")
    _edit(d2, "pets.toml", 'events = ["adoption"]', 'events = []')
    reasons = [p.reason for p in validate_catalogue(d2, FIXTURE_SITE)]
    assert reasons and all("counts from 'adoption', which is not an event of purpose 'pet'" in r for r in reasons)


def test_an_estimate_deadline_is_not_told_as_fact():
    plan = plan_visit(CAT, ["death"], {"water_contract": "yes"}, "ja")
    [p] = [p for s in plan.steps for p in s.procedures if p.id == "water_contract_change"]
    assert CAT.deadlines[CAT.procedures[p.id].deadline].estimate
    assert p.deadline.endswith("（目安・窓口で確認）") and p.estimate


# ------------------------------------------------------------------ やさしい日本語


def test_easy_japanese_helpers():
    assert easy_japanese.kanji_without_reading("{市民課|しみんか}へ いきます") == []
    assert easy_japanese.kanji_without_reading("市民課へ いきます") == ["市民課"]
    assert easy_japanese.sentences("あ い。う{市民課|しみんか}！") == ["あい", "う市民課"]
    assert easy_japanese.long_sentences("あ" * 36) == ["あ" * 36]
    assert easy_japanese.long_sentences("あ" * 35) == []


def test_check_config_flags_kanji_without_reading_and_long_sentences(tmp_path):
    d = _copy(tmp_path)
    _edit(d, "pets.toml", 'ja-easy = "pet (ja-easy)"', 'ja-easy = "ペットの 登録"')
    _edit(d, "common.toml", 'ja-easy = "ID (ja-easy)"', 'ja-easy = "' + "あ" * 40 + '"')
    reasons = sorted(p.reason for p in validate_catalogue(d, FIXTURE_SITE))
    assert reasons == [
        "ja-easy of documents.identity.name: sentence of 40 characters (at most 35, aim 30): " + "あ" * 40,
        "ja-easy of purpose.name: kanji without a reading 登録 (write {漢字|かんじ}, or kana)",
    ]


def test_shipped_easy_japanese_has_readings_for_department_and_procedure_names():
    # key terms keep their kanji with a reading: every procedure name with a kanji term has ruby
    with_ruby = [p for p in CAT.procedures.values() if ruby.RUBY.search(p.name["ja-easy"])]
    share = len(with_ruby) / len(CAT.procedures)
    print(f"procedure names with ruby in ja-easy: {len(with_ruby)}/{len(CAT.procedures)}")
    assert share >= 0.5
    for texts in CAT.department_names.values():
        if "ja-easy" in texts:
            assert ruby.RUBY.search(texts["ja-easy"]), texts


# ------------------------------------------------------------------ strict answers


def test_an_answer_the_purposes_do_not_ask_is_an_error_naming_it():
    with pytest.raises(PlanError) as info:
        plan_visit(CAT, ["birth"], {"deceased_age": "80"}, "ja")
    assert info.value.field == "deceased_age"
    assert "answer id 'deceased_age' belongs to purpose 'death', which is not among the chosen purposes (birth)" in str(info.value)
    with pytest.raises(PlanError):
        next_question(CAT, ["birth"], {"deceased_age": "80"})
    # the same answer with its purpose chosen is fine
    plan_visit(CAT, ["birth", "death"], {"deceased_age": "80"}, "ja")


def test_an_unknown_language_is_an_error_naming_it():
    with pytest.raises(PlanError, match="unknown language 'xx'") as info:
        plan_visit(CAT, ["death"], {}, "xx")
    assert info.value.field == "lang"
    q = next_question(CAT, ["death"], {})
    with pytest.raises(PlanError, match="unknown language 'xx'"):
        question_to_dict(CAT, q, "xx")
    cli = subprocess.run([sys.executable, "run.py", "questions", "死亡", "--lang", "xx"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, encoding="utf-8")
    assert cli.returncode == 2 and "unknown language 'xx'" in cli.stderr


# ------------------------------------------------------------------ proxies, abroad, overhead


def test_a_proxy_brings_a_letter_of_attorney_to_every_counter():
    plan = plan_visit(CAT, ["death"], {"proxy": "yes", "deceased_age": "80", "death_filed": "no"}, "ja")
    for s in plan.steps:
        for p in s.procedures:
            assert "power_of_attorney" in [d.id for d in p.documents], p.id
    plain = plan_visit(CAT, ["death"], {"proxy": "no", "deceased_age": "80", "death_filed": "no"}, "ja")
    assert "power_of_attorney" not in [d.id for d in plain.documents]
    # the kiosk asks the question, since the answer changes what to bring
    asked, answers = [], {"death_filed": "no", "deceased_age": "80"}
    while (q := next_question(CAT, ["death"], answers)) is not None:
        asked.append(q.id)
        answers[q.id] = "no" if q.kind == "yesno" else ("1" if q.kind == "number" else q.choices[0])
    assert "proxy" in asked


def test_moving_in_from_abroad_needs_a_passport_not_a_moving_out_certificate():
    abroad = plan_visit(CAT, ["move_in"], {"in_from_abroad": "yes", "in_pension_age": "yes"}, "en")
    docs = [d.id for d in abroad.documents]
    assert "passport" in docs and "moving_out_certificate" not in docs
    assert "pension_enrolment_abroad" in abroad.procedure_ids
    domestic = plan_visit(CAT, ["move_in"], {"in_from_abroad": "no"}, "en")
    assert "moving_out_certificate" in [d.id for d in domestic.documents]
    assert "pension_enrolment_abroad" not in domestic.procedure_ids


def test_one_certificate_request_pays_its_overhead_once():
    one = plan_visit(CAT, ["certificate"], {"certificates": "juminhyo"}, "ja")
    three = plan_visit(CAT, ["certificate"], {"certificates": "juminhyo,inkan,koseki"}, "ja")
    assert one.minutes == 6.0  # 4 for the request + 2 for the certificate
    assert three.minutes == 10.0  # one request, three certificates (not 3 × 6)
    assert three.steps[0].minutes == sum(p.minutes for p in three.steps[0].procedures)


def test_pyopenjtalk_proposes_readings_for_review():
    proposal = easy_japanese.propose_ruby("国民健康保険の加入")
    assert proposal == "{国民健康保険|こくみんけんこうほけん}の{加入|かにゅう}"
    assert easy_japanese.kanji_without_reading(proposal) == []


def test_institutional_terms_have_a_one_line_explanation():
    explained = [p for p in CAT.procedures.values() if p.explain]
    print(f"procedures with an explanation: {len(explained)}/{len(CAT.procedures)}")
    assert len(explained) >= 0.7 * len(CAT.procedures)
    for p in explained:
        assert len(easy_japanese.sentences(p.explain["ja-easy"])) == 1, p.id  # one line, one sentence
    plan = plan_to_dict(plan_visit(CAT, ["death"], {"children_under_18": "yes"}, "ja-easy"))
    item = next(p for s in plan["steps"] for p in s["procedures"] if p["id"] == "survivor_basic_pension")
    assert item["explain"] and ruby.RUBY.search(item["explain"])
    assert plan_to_dict(plan_visit(CAT, ["death"], {"children_under_18": "yes"}, "en"))["steps"][1]["procedures"][0][
        "explain"] is None  # ja-easy only


def test_my_number_card_of_the_deceased_need_not_be_returned():
    # 松本市 and the cities a 行政書士 quotes: the card lapses with the death registration and
    # returning it is not required, so no deadline and a sourced (not estimated) fact.
    card = CAT.procedures["my_number_card_return"]
    assert not card.estimate and card.source[0].startswith("https://")
    assert CAT.deadlines[card.deadline].rule.kind == "none"
    assert card.note and all(card.note[lang] for lang in LANGUAGES)


def test_moped_is_explained_as_up_to_125cc():
    # 原付 is registered by the city up to 125cc (川口市); an explanation saying 50cc would mislead.
    assert "125cc" in CAT.procedures["moped_deregistration"].explain["ja-easy"]
