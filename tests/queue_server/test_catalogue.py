"""Loading and validating the catalogue: the shipped one is clean, broken copies are named precisely."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest

from queue_server.core import easy_japanese, ruby
from queue_server.core.i18n import LANGUAGES
from queue_server.core.problems import ConfigError, Problem
from queue_server.loaders import load_catalogue, validate_catalogue

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "config" / "catalogue"
FIXTURE = ROOT / "tests" / "fixtures" / "catalogue"
SITE = tomllib.loads((ROOT / "config" / "site.toml").read_text(encoding="utf-8"))
FIXTURE_SITE = {"departments": {"shimin": {}, "hoken_nenkin": {}, "kosodate": {}},
                "city": {"online_base_url": "https://city.example/"}}


# ------------------------------------------------------------------ the shipped catalogue


def test_shipped_catalogue_is_clean_against_the_site_config():
    assert validate_catalogue(SHIPPED, SITE) == []


def test_shipped_catalogue_has_every_purpose():
    cat = load_catalogue(SHIPPED, SITE)
    assert set(cat.purposes) == {"birth", "death", "move_in", "move_within", "move_out", "marriage", "divorce",
                                 "certificate", "consultation"}
    assert cat.department_order[0] == "shimin"


# Every procedure ../shared/data/domain.md §3 lists, by life event: (procedure id, department
# key, or "external:<place>"). The catalogue may hold more; it must hold at least these.
DOMAIN_PROCEDURES = {
    "death": [
        ("death_registration", "shimin"), ("head_of_household_change", "shimin"),
        ("seal_registration_end", "shimin"), ("nhi_loss", "hoken_nenkin"), ("nhi_funeral_grant", "hoken_nenkin"),
        ("kouki_loss", "hoken_nenkin"), ("kouki_funeral_grant", "hoken_nenkin"), ("care_insurance_loss", "kaigo"),
        ("pension_death_report", "hoken_nenkin"), ("pension_office_report", "external:pension_office"),
        ("survivor_basic_pension", "hoken_nenkin"), ("disability_certificate_return", "shogai"),
        ("child_allowance_recipient_change", "kosodate"), ("child_medical_change", "kosodate"),
        ("fixed_asset_heir", "zeimu"), ("moped_deregistration", "zeimu"), ("account_transfer_change", "nouzei"),
        ("water_contract_change", "suido"), ("farmland_notice", "nogyo"), ("elderly_pass_return", "kaigo"),
        ("inheritance_renunciation", "external:family_court"), ("inheritance_tax", "external:tax_office"),
        ("land_registration", "external:legal_affairs_bureau"),
    ],
    "birth": [
        ("birth_registration", "shimin"), ("child_allowance_claim", "kosodate"), ("child_medical_aid", "kosodate"),
        ("nhi_enrolment_birth", "hoken_nenkin"), ("birth_grant", "hoken_nenkin"), ("birth_contact_card", "kenko"),
        ("low_birth_weight_report", "kenko"), ("daycare_application", "kosodate"),
        ("single_parent_allowance", "kosodate"),
    ],
    "move_in": [
        ("move_in_notice", "shimin"), ("my_number_address_in", "shimin"), ("seal_registration", "shimin"),
        ("nhi_enrolment_in", "hoken_nenkin"), ("kouki_enrolment_in", "hoken_nenkin"), ("care_transfer_in", "kaigo"),
        ("child_allowance_in", "kosodate"), ("child_medical_in", "kosodate"), ("daycare_in", "kosodate"),
        ("school_transfer_in", "kyoiku"), ("disability_address_in", "shogai"), ("moped_registration", "zeimu"),
        ("pregnancy_vouchers", "kenko"), ("dog_registration", "external:environment_office"),
        ("residence_card_address", "shimin"),
    ],
    "move_out": [
        ("move_out_notice", "shimin"), ("nhi_loss_out", "hoken_nenkin"), ("kouki_out", "hoken_nenkin"),
        ("care_out", "kaigo"), ("seal_registration_end_out", "shimin"), ("child_allowance_end_out", "kosodate"),
        ("moped_deregistration_out", "zeimu"), ("school_certificates_out", "kyoiku"), ("water_stop_out", "suido"),
    ],
    "move_within": [
        ("moving_notice", "shimin"), ("my_number_address_within", "shimin"), ("nhi_address_within", "hoken_nenkin"),
        ("kouki_address_within", "hoken_nenkin"), ("care_address_within", "kaigo"),
        ("child_certificates_within", "kosodate"), ("school_district_change", "kyoiku"),
    ],
    "marriage": [
        ("marriage_registration", "shimin"), ("household_change_marriage", "shimin"),
        ("my_number_name_marriage", "shimin"), ("seal_reregistration_marriage", "shimin"),
        ("nhi_change_marriage", "hoken_nenkin"), ("pension_category_1_to_3", "hoken_nenkin"),
        ("single_parent_allowance_end", "kosodate"),
    ],
    "divorce": [
        ("divorce_registration", "shimin"), ("keep_married_surname", "shimin"), ("household_change_divorce", "shimin"),
        ("my_number_card_divorce", "shimin"), ("seal_reregistration_divorce", "shimin"),
        ("nhi_enrolment_divorce", "hoken_nenkin"), ("pension_category_3_to_1", "hoken_nenkin"),
        ("child_allowance_recipient_divorce", "kosodate"), ("child_rearing_allowance", "kosodate"),
        ("single_parent_medical", "kosodate"), ("child_surname_permission", "external:family_court"),
    ],
}


@pytest.mark.parametrize("purpose", sorted(DOMAIN_PROCEDURES))
def test_every_domain_procedure_is_in_the_catalogue_at_its_department(purpose):
    cat = load_catalogue(SHIPPED, SITE)
    assert set(cat.purposes[purpose].procedures) >= {pid for pid, _ in DOMAIN_PROCEDURES[purpose]}
    for pid, where in DOMAIN_PROCEDURES[purpose]:
        proc = cat.procedures[pid]
        actual = proc.department if proc.department else f"external:{proc.external}"
        assert (pid, actual) == (pid, where)


def test_certificates_offer_the_convenience_store_where_it_serves():
    cat = load_catalogue(SHIPPED, SITE)
    kinds = {pid: cat.alternatives[cat.procedures[pid].alternative].kind
             for pid in cat.purposes["certificate"].procedures}
    assert kinds["juminhyo"] == kinds["inkan_certificate"] == kinds["income_certificate"] == "convenience_store"
    assert set(kinds) == {"juminhyo", "inkan_certificate", "koseki_certificate", "fuhyo_certificate",
                          "income_certificate", "tax_payment_certificate"}


def test_consultations_go_to_the_consultation_desk():
    cat = load_catalogue(SHIPPED, SITE)
    assert {cat.procedures[p].department for p in cat.purposes["consultation"].procedures} == {"soudan"}


def test_queued_procedures_carry_time_priors():
    cat = load_catalogue(SHIPPED, SITE)
    for proc in cat.procedures.values():
        if proc.department and proc.purpose != "consultation":
            # an (est.) prior stays within 1–30 minutes; a longer time needs its source (児童扶養手当 ~1.5 h)
            limit = 30 if proc.minutes_source.startswith("estimate") else 120
            assert (1 if not proc.overhead else 0.5) <= proc.minutes <= limit and 0 < proc.cv <= 1, proc.id


def test_simple_japanese_gives_a_reading_for_every_kanji():
    # やさしい日本語 by the guideline: kanji only inside ruby markup {漢字|かんじ}, short sentences.
    kanji = re.compile(r"[\u4e00-\u9fff]")
    cat = load_catalogue(SHIPPED, SITE)
    texts = [p.name for p in cat.procedures.values()] + [q.text for q in cat.questions.values()]
    texts += [q.help for q in cat.questions.values()] + [d.name for d in cat.documents.values()]
    texts += [t for q in cat.questions.values() for t in q.choice_text.values()]
    texts += [d.text for d in cat.deadlines.values()]
    assert all(set(t) == set(LANGUAGES) for t in texts)
    assert [t["ja-easy"] for t in texts if kanji.search(ruby.RUBY.sub("", t["ja-easy"]))] == []
    assert [t["ja-easy"] for t in texts if easy_japanese.long_sentences(t["ja-easy"])] == []


def test_every_procedure_name_keeps_a_kanji_term_with_reading_and_an_explanation():
    # The guideline keeps the key term of a name in kanji with its reading, so that 「くるまの なまえを
    # かえる」 can be matched to the sign 「自動車の名義変更」; every procedure explains its term.
    cat = load_catalogue(SHIPPED, SITE)
    assert [p.id for p in cat.procedures.values() if not easy_japanese.marked_terms(p.name["ja-easy"])] == []
    assert [p.id for p in cat.procedures.values() if not (p.explain or {}).get("ja-easy")] == []


def test_every_queued_procedure_says_where_its_minutes_come_from():
    cat = load_catalogue(SHIPPED, SITE)
    for p in cat.procedures.values():
        if p.department:
            assert p.minutes_source.startswith(("estimate: ", "https://", "calibrat")), (p.id, p.minutes_source)


def test_site_url_base_is_taken_from_site_config():
    cat = load_catalogue(SHIPPED, SITE)
    assert cat.url("kurashi/x.html") == "https://www.city.sakata.lg.jp/kurashi/x.html"
    assert cat.url("https://myna.go.jp/") == "https://myna.go.jp/"


# ------------------------------------------------------------------ broken copies of the fixture


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "catalogue"
    shutil.copytree(FIXTURE, target)
    return target


def _edit(directory: Path, name: str, old: str, new: str) -> tuple[str, int]:
    """Replace one exact snippet; return the file's name and the line where the new text starts."""
    path = directory / name
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} must occur once in {name}"
    text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")
    return str(path), text[: text.index(new)].count("\n") + 1 if new else 0


def _line_of(directory: Path, name: str, line_text: str) -> int:
    lines = (directory / name).read_text(encoding="utf-8").splitlines()
    return lines.index(line_text) + 1


def test_fixture_catalogue_is_clean():
    assert validate_catalogue(FIXTURE, FIXTURE_SITE) == []


def test_missing_translation_names_file_line_and_language(tmp_path):
    d = _copy(tmp_path)
    file, line = _edit(d, "pets.toml", ', vi = "dog licence (vi)"', "")
    line = _line_of(d, "pets.toml", "[procedures.dog_licence]") + 1
    assert validate_catalogue(d, FIXTURE_SITE) == [
        Problem(file, f"line {line} (procedures.dog_licence.name)", "missing translation 'vi' of procedures.dog_licence.name")
    ]


def test_unused_question(tmp_path):
    d = _copy(tmp_path)
    file, _ = _edit(d, "pets.toml", 'when = "has_insurance and owner_age >= 65"', 'when = "owner_age >= 65"')
    line = _line_of(d, "pets.toml", "[questions.has_insurance]")
    assert validate_catalogue(d, FIXTURE_SITE) == [
        Problem(file, f"line {line} (questions.has_insurance)", "unused question 'has_insurance': no condition of this file reads it")
    ]


def test_unreachable_procedure(tmp_path):
    d = _copy(tmp_path)
    new = 'when = "has_insurance and owner_age >= 65 and owner_age < 18"'
    file, line = _edit(d, "pets.toml", 'when = "has_insurance and owner_age >= 65"', new)
    assert validate_catalogue(d, FIXTURE_SITE) == [
        Problem(file, f"line {line} (procedures.pet_insurance.when)",
                "unreachable procedure 'pet_insurance': no answers make "
                "'has_insurance and owner_age >= 65 and owner_age < 18' true")
    ]


def test_unknown_department_key(tmp_path):
    d = _copy(tmp_path)
    file, line = _edit(d, "pets.toml", 'department = "hoken_nenkin"', 'department = "hoken"')
    assert validate_catalogue(d, FIXTURE_SITE) == [
        Problem(file, f"line {line} (procedures.pet_insurance.department)",
                "unknown department key 'hoken' (site departments: shimin, hoken_nenkin, kosodate)")
    ]
    # Without a site config the department order still catches it.
    assert [p.reason for p in validate_catalogue(d)] == ["department 'hoken' is not in [catalogue] department_order"]


def test_bad_condition_syntax_names_the_token(tmp_path):
    d = _copy(tmp_path)
    file, line = _edit(d, "pets.toml", 'when = "species == \\"dog\\""', 'when = "species = \\"dog\\""')
    assert validate_catalogue(d, FIXTURE_SITE) == [
        Problem(file, f"line {line} (procedures.dog_licence.when)",
                "bad condition 'species = \"dog\"': unexpected character '=' at column 9")
    ]


def test_unknown_answer_id_in_condition(tmp_path):
    d = _copy(tmp_path)
    file, line = _edit(d, "pets.toml", 'when = "species == \\"dog\\""', 'when = "specie == \\"dog\\""')
    problems = validate_catalogue(d, FIXTURE_SITE)
    assert problems[0] == Problem(file, f"line {line} (procedures.dog_licence.when)",
                                  "unknown answer id 'specie' in condition 'specie == \"dog\"' (questions of this file only)")
    # species is still read by vet_check, so nothing else is wrong
    assert len(problems) == 1


def test_a_condition_value_that_is_not_a_choice(tmp_path):
    d = _copy(tmp_path)
    file, line = _edit(d, "pets.toml", 'when = "species == \\"dog\\""', 'when = "species == \\"horse\\""')
    assert validate_catalogue(d, FIXTURE_SITE) == [
        Problem(file, f"line {line} (procedures.dog_licence.when)",
                "bad condition 'species == \"horse\"': \"horse\" is not a choice of 'species' (choices: dog, cat)")
    ]


def test_unknown_document_and_key_typos(tmp_path):
    d = _copy(tmp_path)
    file, line = _edit(d, "pets.toml", 'documents = ["identity", "vaccination_record"]',
                       'documents = ["identity", "vaccine_record"]')
    _, typo_line = _edit(d, "pets.toml", "minutes = 8\n", "minute = 8\n")
    assert validate_catalogue(d, FIXTURE_SITE) == [
        Problem(file, f"line {line} (procedures.dog_licence.documents)",
                "unknown document 'vaccine_record' (add it under [documents.vaccine_record])"),
        Problem(file, f"line {typo_line} (procedures.pet_insurance.minute)",
                "unknown key 'minute' in procedures.pet_insurance (expected: after, alternative, checked, cv, deadline, "
                "department, documents, documents_if, explain, external, extra_minutes, minutes, minutes_source, name, note, overhead, "
                "same_as, source, supersedes, when)"),
        Problem(file, f"line {_line_of(d, 'pets.toml', '[procedures.pet_insurance]')} (procedures.pet_insurance)",
                "a queued procedure needs 'minutes' (an (est.) prior, domain.md §4)"),
    ]


def test_after_must_point_to_an_earlier_department(tmp_path):
    d = _copy(tmp_path)
    file, line = _edit(d, "pets.toml", 'alternative = "online_form"\n',
                       'alternative = "online_form"\nafter = ["pet_insurance"]\n')
    line += 1
    assert validate_catalogue(d, FIXTURE_SITE) == [
        Problem(file, f"line {line} (procedures.pet_registration.after)",
                "'pet_registration' (shimin) cannot come after 'pet_insurance' (hoken_nenkin): department_order puts it later")
    ]


def test_duplicate_ids_across_files_name_both_places(tmp_path):
    d = _copy(tmp_path)
    text = (d / "pets.toml").read_text(encoding="utf-8").replace('id = "pet"', 'id = "pet2"')
    text = text.replace("[questions.", "[questions.x_").replace('"species ', '"x_species ').replace(
        '"has_insurance and owner_age', '"x_has_insurance and x_owner_age')
    (d / "pets2.toml").write_text(text.replace('aliases = ["ペット"]', "aliases = []"), encoding="utf-8")
    problems = validate_catalogue(d, FIXTURE_SITE)
    line = _line_of(d, "pets2.toml", "[procedures.pet_registration]")
    first = _line_of(d, "pets.toml", "[procedures.pet_registration]")
    assert Problem(str(d / "pets2.toml"), f"line {line} (procedures.pet_registration)",
                   f"duplicate procedure id 'pet_registration': already defined in {d / 'pets.toml'} "
                   f"line {first} (procedures.pet_registration)") in problems
    assert len(problems) == 4  # the four procedure ids; the renamed questions are fine


def test_toml_syntax_error_gives_the_line(tmp_path):
    d = _copy(tmp_path)
    file, line = _edit(d, "pets.toml", "minutes = 5\n", "minutes = = 5\n")
    [problem] = validate_catalogue(d, FIXTURE_SITE)
    assert (problem.file, problem.where) == (file, f"line {line}")
    assert problem.reason.startswith("TOML syntax error:")


def test_load_raises_with_every_problem(tmp_path):
    d = _copy(tmp_path)
    _edit(d, "pets.toml", 'department = "hoken_nenkin"', 'department = "hoken"')
    _edit(d, "pets.toml", ', vi = "dog licence (vi)"', "")
    with pytest.raises(ConfigError) as info:
        load_catalogue(d, FIXTURE_SITE)
    assert sorted(p.reason for p in info.value.problems) == [
        "missing translation 'vi' of procedures.dog_licence.name",
        "unknown department key 'hoken' (site departments: shimin, hoken_nenkin, kosodate)",
    ]
    assert "pets.toml:line" in str(info.value)


def test_missing_labels_and_department_order_are_reported(tmp_path):
    d = _copy(tmp_path)
    _edit(d, "common.toml", 'department_order = ["shimin", "hoken_nenkin", "kosodate"]', "")
    text = (d / "common.toml").read_text(encoding="utf-8")
    (d / "common.toml").write_text(re.sub(r"(?m)^where = .*$", "", text), encoding="utf-8")
    reasons = [p.reason for p in validate_catalogue(d, FIXTURE_SITE)]
    assert "missing [labels] text 'where'" in reasons
    assert "missing [catalogue] department_order (shimin first, then the others)" in reasons


def test_empty_directory(tmp_path):
    assert [p.reason for p in validate_catalogue(tmp_path)] == ["no catalogue files (*.toml) found"]


def test_ja_easy_name_without_a_marked_kanji_term_is_named(tmp_path):
    d = _copy(tmp_path)
    file, line = _edit(d, "pets.toml", '"{犬|いぬ} dog licence (ja-easy)"', '"いぬの とうろく"')
    assert validate_catalogue(d, FIXTURE_SITE) == [
        Problem(file, f"line {line} (procedures.dog_licence.name)",
                "ja-easy of procedures.dog_licence.name has no key term in kanji with its reading: write the word on "
                "the signs and forms as {漢字|かんじ}, e.g. {国民健康保険|こくみんけんこうほけん}"),
    ]


def test_missing_explain_and_minutes_source_are_named(tmp_path):
    d = _copy(tmp_path)
    _edit(d, "pets.toml", 'explain = { ja-easy = "dog licence (explain)" }\n', "")
    _edit(d, "pets.toml", 'minutes = 8\nminutes_source = "estimate: a test figure"\n', "minutes = 8\n")
    file = str(d / "pets.toml")
    assert validate_catalogue(d, FIXTURE_SITE) == [
        Problem(file, f"line {_line_of(d, 'pets.toml', '[procedures.dog_licence]')} (procedures.dog_licence)",
                "procedures.dog_licence has no 'explain' = { ja-easy = \"…\" } (one short line on what the procedure is)"),
        Problem(file, f"line {_line_of(d, 'pets.toml', '[procedures.pet_insurance]')} (procedures.pet_insurance)",
                "procedures.pet_insurance has no 'minutes_source' (a page's address, the KPI calibration, or "
                "\"estimate: …\" saying what the estimate rests on)"),
    ]
