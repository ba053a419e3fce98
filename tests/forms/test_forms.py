"""Forms as data: every form of config/forms/ loads and names real catalogue procedures; fields are
filled from their source only, a missing source leaves the field empty and marked."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from queue_server.core import forms as F
from queue_server.loaders import check_forms, load_catalogue, load_forms

ROOT = Path(__file__).resolve().parents[2]
CARD = {"name": "黒桐　幹也", "address": "山形県酒田市本町二丁目2番45号", "birth_date": "1980-02-17", "sex": "1"}
TICKET = {"date": "2026年11月30日", "site": "本庁舎", "number": "L3"}


@pytest.fixture(scope="module")
def forms():
    return load_forms(ROOT / "config" / "forms")


@pytest.fixture(scope="module")
def catalogue():
    with (ROOT / "config" / "site.toml").open("rb") as f:
        site = tomllib.load(f)
    return load_catalogue(ROOT / "config" / "catalogue", site), site


def test_the_seed_cases_forms_load_and_name_catalogue_procedures_and_departments(forms, catalogue):
    cat, site = catalogue
    assert {"juumin_idou", "kouki_soushitsu", "sousaihi", "kaigo_soushitsu", "inkan_haishi", "jidou_teate",
            "kokuho_kanyu", "kodomo_iryou", "kouza_furikae"} <= set(forms)
    for f in forms.values():
        assert f.source, f.id
        assert f.department in site["departments"], f.id
        for p in f.procedures:
            assert p in cat.procedures, (f.id, p)
            assert cat.procedures[p].department == f.department, (f.id, p)


def test_card_fields_are_filled_and_ask_fields_stay_empty_and_marked(forms):
    out = F.fill(forms["sousaihi"], card=CARD, answers={}, ticket=TICKET, asked={})
    by = {r["id"]: r for r in out["fields"]}
    assert by["applicant_name"]["value"] == CARD["name"] and not by["applicant_name"]["missing"]
    assert by["applicant_birth"]["value"] == "1980年2月17日"
    assert by["filed_on"]["value"] == TICKET["date"]
    assert by["deceased_name"]["value"] == "" and by["deceased_name"]["missing"]
    out = F.fill(forms["sousaihi"], card=CARD, answers={}, ticket=TICKET, asked={"deceased_name": "酒田　太郎"})
    assert {r["id"]: r for r in out["fields"]}["deceased_name"]["value"] == "酒田　太郎"


def test_without_a_card_the_card_fields_are_missing_never_guessed(forms):
    out = F.fill(forms["jidou_teate"], card=None, answers={}, ticket=TICKET, asked={})
    card_rows = [r for r in out["fields"] if r["origin"] == "card"]
    assert card_rows and all(r["missing"] and r["value"] == "" for r in card_rows)


def test_answers_fill_answer_fields_and_unknown_stays_missing(forms):
    f = forms["juumin_idou"]
    by = {r["id"]: r for r in F.fill(f, card=CARD, answers={"household_remaining": "3"}, ticket=TICKET, asked={})["fields"]}
    assert by["remaining"]["value"] == "3"
    by = {r["id"]: r for r in F.fill(f, card=CARD, answers={"household_remaining": "unknown"}, ticket=TICKET, asked={})["fields"]}
    assert by["remaining"]["missing"]


def test_sex_code_prints_in_japanese(forms):
    by = {r["id"]: r for r in F.fill(forms["jidou_teate"], card=CARD, answers={}, ticket=TICKET, asked={})["fields"]}
    assert by["claimant_sex"]["value"] == "男"


def test_forms_for_death_1_shimin_first_then_insurance(forms):
    got = [f.id for f in F.forms_for(forms, ["death_registration", "head_of_household_change", "seal_registration_end",
                                             "kouki_loss", "kouki_funeral_grant", "care_insurance_loss",
                                             "account_transfer_change"])]
    assert got == ["juumin_idou", "inkan_haishi", "kouki_soushitsu", "sousaihi", "kaigo_soushitsu", "kouza_furikae"]
    keys = F.ask_keys(F.forms_for(forms, ["head_of_household_change", "kouki_funeral_grant"]))
    assert keys.count("deceased_name") == 1 and "date_of_death" in keys and "bank_account" in keys


@pytest.mark.parametrize("bad, says", [
    ({"values": {"nope": "x"}}, "values.nope"),
    ({"values": {"deceased_name": 3}}, "values.deceased_name"),
    ({"values": {"deceased_name": "x" * 201}}, "at most 200"),
])
def test_bad_values_are_refused_naming_the_key(bad, says):
    with pytest.raises(F.FormError, match=says):
        F.check_values(bad["values"], ["deceased_name"])


@pytest.mark.parametrize("mutate, says", [
    (lambda d: d["form"].pop("source"), "source"),
    (lambda d: d["fields"][0].update(source="card.phone"), "card gives only"),
    (lambda d: d["fields"][0].update(source="guess.x"), "source must be"),
    (lambda d: d["fields"].append(dict(d["fields"][0])), "duplicate"),
    (lambda d: d["fields"][0].update(width=5), "width"),
])
def test_a_bad_form_file_is_refused_naming_the_file_and_field(mutate, says):
    with (ROOT / "config" / "forms" / "sousaihi.toml").open("rb") as f:
        data = tomllib.load(f)
    mutate(data)
    with pytest.raises(F.FormError, match=says) as e:
        F.parse_form(data, "sousaihi.toml")
    assert "sousaihi.toml" in str(e.value)


# ------------------------------------------------------------------ the in-memory desk (forms_api)
def _desk_with_ticket():
    from queue_server.core.model import RouteStep
    from queue_server.forms_api import FormsDesk
    from tests.queue_server.core_helpers import lobby, ticket

    lb = lobby((1, ("shimin",)), (5, ("hoken_nenkin",)))
    route = (RouteStep("shimin", ("head_of_household_change",), (), 10),
             RouteStep("hoken_nenkin", ("kouki_funeral_grant",), (0,), 8))
    t = ticket(1, route=route)
    lb.apply(lb.issue(t, {}))
    desk = FormsDesk.load(ROOT / "config" / "forms")
    desk.on_issue(t.id, t.day, {"household_remaining": "3"})
    lb.apply(lb.call_next(1, 1.0)[1])
    return desk, lb, t.id


def test_values_are_erased_when_the_visit_closes():
    desk, lb, tid = _desk_with_ticket()
    desk.handle("form_values", {"values": {"deceased_name": "酒田　太郎"}}, ticket=lb.tickets[tid], card=CARD,
                site_name="本庁舎", staff="佐藤", counter=1, now=2.0)
    assert desk.prune({"honcho": lb}, {"honcho": "2026-04-01"}) == 0
    assert desk.visits[tid].asked["deceased_name"] == "酒田　太郎"
    lb.apply(lb.requeue(1, 3.0))  # back to the queue, then the citizen leaves
    lb.apply(lb.cancel(tid, 4.0, "left"))
    assert desk.prune({"honcho": lb}, {"honcho": "2026-04-01"}) == 1
    assert tid not in desk.visits
    assert desk.closed_stats[-1] == {"day": "2026-04-01", "printed": 0, "typed": 1, "eligible": 2, "fields": {}}
    assert "酒田" not in repr(desk.closed_stats)  # counts, no values


def test_values_are_erased_at_the_end_of_the_day_even_in_service():
    desk, lb, tid = _desk_with_ticket()
    desk.handle("form_values", {"values": {"deceased_name": "酒田　太郎"}}, ticket=lb.tickets[tid], card=None,
                site_name="本庁舎", staff="佐藤", counter=1, now=2.0)
    assert desk.prune({"honcho": lb}, {"honcho": "2026-04-02"}) == 1
    assert tid not in desk.visits


def test_the_flushers_prune_checks_the_touched_tickets_and_every_visit_now_and_then():
    """The flusher's prune (with ``now``): a full check first; then only the tickets of committed
    events (``touched``); every visit again after FULL_PRUNE_SECONDS, and at once at a new day."""
    from queue_server.forms_api import FULL_PRUNE_SECONDS

    desk, lb, tid = _desk_with_ticket()
    lobbies, today = {"honcho": lb}, {"honcho": "2026-04-01"}
    assert desk.prune(lobbies, today, now=0.0) == 0
    lb.apply(lb.requeue(1, 3.0))
    lb.apply(lb.cancel(tid, 4.0, "left"))
    assert desk.prune(lobbies, today, now=0.2) == 0 and tid in desk.visits  # nothing touched it
    desk.touched(tid)
    assert desk.prune(lobbies, today, now=0.4) == 1 and tid not in desk.visits and not desk.pending

    desk, lb, tid = _desk_with_ticket()  # closed with no event heard: the full check finds it
    assert desk.prune(lobbies | {"honcho": lb}, today, now=100.0) == 0
    lb.apply(lb.requeue(1, 3.0))
    lb.apply(lb.cancel(tid, 4.0, "left"))
    assert desk.prune({"honcho": lb}, today, now=100.0 + FULL_PRUNE_SECONDS - 0.1) == 0
    assert desk.prune({"honcho": lb}, today, now=100.0 + FULL_PRUNE_SECONDS) == 1

    desk, lb, tid = _desk_with_ticket()  # a new day: every visit at once
    assert desk.prune({"honcho": lb}, today, now=0.0) == 0
    assert desk.prune({"honcho": lb}, {"honcho": "2026-04-02"}, now=0.2) == 1


def test_the_writer_tells_the_forms_which_tickets_its_commit_changed(tmp_path):
    """Wiring, on the in-process server: a committed cancel marks the ticket for the next prune,
    and the flusher's prune then erases its values."""
    import asyncio

    from tests.queue_server import writer_support as W

    qs = W.make_server(tmp_path)

    async def scenario() -> str:
        (issued,) = await W.run(qs, [W.job(W.kiosk(), "issue", purposes=["certificate"], lang="ja",
                                           answers={}, idempotency_key="f1")])
        assert "result" in issued, issued
        tid = issued["result"]["ticket"]["id"]
        lobbies = {k: h.lobby for k, h in qs.hubs.items()}
        days = {k: h.day for k, h in qs.hubs.items()}
        assert qs.forms_desk.prune(lobbies, days, now=0.0) == 0 and tid in qs.forms_desk.visits
        await W.run(qs, [W.job(W.admin(), "cancel", ticket=tid)])
        assert tid in qs.forms_desk.pending
        assert qs.forms_desk.prune(lobbies, days, now=0.2) == 1
        return tid

    assert asyncio.run(scenario()) not in qs.forms_desk.visits


def test_kpi_counts_printed_forms_and_typed_versus_filled_fields():
    from queue_server.kpi_forms import summarize

    desk, lb, tid = _desk_with_ticket()
    desk.handle("form_values", {"values": {"deceased_name": "酒田　太郎"}}, ticket=lb.tickets[tid], card=CARD,
                site_name="本庁舎", staff="佐藤", counter=1, now=2.0)
    desk.handle("forms_printed", {"forms": ["juumin_idou"]}, ticket=lb.tickets[tid], card=CARD,
                site_name="本庁舎", staff="佐藤", counter=1, now=3.0)
    s = summarize([*desk.live_stats(), {"day": "2026-04-01", "printed": 0, "typed": 0, "eligible": 1}])
    # juumin_idou: date (ticket), name and address (card), remaining (answer) filled; deceased typed;
    # relation, date of death, new head left blank
    assert s["eligible_visits"] == 2 and s["visits_with_forms_printed"] == 1 and s["kakanai_rate"] == 0.5
    assert s["forms_per_visit"] == 1 and s["fields_filled"] == 4 and s["fields_typed"] == 1 and s["fields_blank"] == 3
    with pytest.raises(F.FormError, match="not a form of this visit"):
        desk.handle("forms_printed", {"forms": ["kouza_furikae"]}, ticket=lb.tickets[tid], card=CARD,
                    site_name="本庁舎", staff="佐藤", counter=1, now=4.0)


def test_the_forms_page_table_has_every_language_and_every_key_it_uses():
    import json
    import re

    from queue_server.core.i18n import LANGUAGES

    web = ROOT / "counter" / "forms_web"
    table = json.loads((web / "messages.json").read_text(encoding="utf-8"))
    for key, texts in table.items():
        assert set(texts) == set(LANGUAGES), key
        assert len({frozenset(re.findall(r"\{(\w+)\}", t)) for t in texts.values()}) == 1, key
    used: set[str] = set()
    for p in web.iterdir():
        if p.suffix in (".js", ".html"):
            text = p.read_text(encoding="utf-8")
            used |= set(re.findall(r'data-t="([\w.]+)"', text)) | set(re.findall(r'\bt[l]?\("([\w.]+)"', text))
    assert used and sorted(used - set(table)) == []


def test_visit_list_states_follow_the_ticket(catalogue):
    from queue_server.core.model import RouteStep
    from queue_server.visit_list import visit_list
    from tests.queue_server.core_helpers import lobby, ticket

    cat, site = catalogue
    names = {k: v["name"] for k, v in site["departments"].items()}
    lb = lobby((1, ("shimin",)), (5, ("hoken_nenkin",)), (6, ("kaigo",)))
    route = (RouteStep("shimin", ("head_of_household_change",), (), 10),
             RouteStep("hoken_nenkin", ("kouki_funeral_grant",), (0,), 8),
             RouteStep("kaigo", ("care_insurance_loss",), (0,), 5))
    t = ticket(1, route=route)
    lb.apply(lb.issue(t, {}))
    got = visit_list(cat, lb.tickets[t.id], names, "en")
    assert [s["state"] for s in got["steps"]] == ["next", "later", "later"]
    assert got["steps"][0]["procedures"][0]["name"] == "Change of head of household"
    assert got["steps"][0]["procedures"][0]["deadline"] and got["steps"][0]["procedures"][0]["documents"]
    lb.apply(lb.call_next(1, 1.0)[1])
    assert [s["state"] for s in visit_list(cat, lb.tickets[t.id], names, "ja")["steps"]] == ["now", "later", "later"]
    lb.apply(lb.start(1, 2.0))
    lb.apply(lb.complete(1, 3.0)[1])
    got = visit_list(cat, lb.tickets[t.id], names, "ja")
    assert [s["state"] for s in got["steps"]][0] == "done" and "next" in [s["state"] for s in got["steps"]]
    assert got["steps"][0]["name"]["ja"] == "市民課"


def test_check_config_names_a_form_with_an_unknown_procedure(tmp_path, catalogue):
    cat, _ = catalogue
    procs = {k: p.department for k, p in cat.procedures.items()}
    assert check_forms(ROOT / "config" / "forms", procs) == []
    text = (ROOT / "config" / "forms" / "sousaihi.toml").read_text(encoding="utf-8")
    (tmp_path / "bad.toml").write_text(text.replace('"kouki_funeral_grant"', '"no_such_procedure"'), encoding="utf-8")
    (tmp_path / "moved.toml").write_text(text.replace('department = "hoken_nenkin"', 'department = "shimin"'),
                                         encoding="utf-8")
    got = check_forms(tmp_path, procs)
    assert any("bad.toml" in f and "no_such_procedure" in m for f, m in got)
    assert any("moved.toml" in f and "is done at 'hoken_nenkin'" in m for f, m in got)
