"""The personal procedure list on the thermal roll: the seed's 死亡① list laid out, rendered by both
renderers and parsed back from the ESC/POS bytes; screenshots in ja, en and vi for review."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from printers.layout import block_texts
from printers.procedure_list import list_blocks, list_messages, list_mode, render_list_bytes
from printers.render_image import render_ticket_image
from queue_server.core.i18n import LANGUAGES
from queue_server.core.journey import plan_to_dict, plan_visit, resolve_purpose
from queue_server.loaders import load_catalogue
from tests.printers.escpos_reader import parse

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "tests" / "screenshots" / "printers"
DEATH_1 = {
    "death_filed": "no", "deceased_age": "80", "deceased_head": "yes", "household_remaining": "3",
    "deceased_pension": "basic_only", "children_under_18": "no", "had_my_number_card": "no",
    "seal_registered": "yes", "disability_certificate": "yes", "owned_real_estate": "yes", "owned_moped": "yes",
    "owned_car": "no", "tax_account_transfer": "yes", "water_contract": "yes", "inherited_farmland": "no",
    "elderly_pass": "no", "household_on_nhi": "no", "high_medical_costs": "no", "deceased_income_return": "no",
    "proxy": "no",
}


@pytest.fixture(scope="module")
def setup():
    with (ROOT / "config" / "site.toml").open("rb") as f:
        site = tomllib.load(f)
    return load_catalogue(ROOT / "config" / "catalogue", site), site


def issue_reply(setup, lang: str, answers=DEATH_1) -> dict:
    """What the server's issue reply carries for the list: the plan and the route with all names."""
    cat, site = setup
    plan = plan_visit(cat, [resolve_purpose(cat, "death")], answers, lang)
    names = site["sites"]["honcho"].get("department_names") or {}
    route = [{"department": r.department, "name": names.get(r.department) or site["departments"][r.department]["name"]}
             for r in plan.route]
    return {"plan": plan_to_dict(plan), "route": route}


def test_the_list_has_every_procedure_in_visiting_order_with_deadlines_in_japanese(setup):
    result = issue_reply(setup, "ja")
    texts = block_texts(list_blocks(result, "ja"))
    joined = "\n".join(texts)
    for step in result["plan"]["steps"]:
        for p in step["procedures"]:
            assert p["name"].split("{")[0][:4] in joined, p["id"]
    assert "期限：" in joined and "持ち物：" in joined
    assert "市役所以外での手続き" in joined and "家庭裁判所" in joined
    heads = [t for t in texts if t[:2].rstrip(".").isdigit()]
    assert heads[0].startswith("1. 市民課") and len(heads) == len(result["route"])


def test_translated_lists_keep_the_japanese_department_names_beside(setup):
    for lang in ("en", "vi"):
        texts = block_texts(list_blocks(issue_reply(setup, lang), lang))
        first = next(t for t in texts if t.startswith("1. "))
        assert "（市民課" in first, first
        assert all(not t.startswith("期限") for t in texts)


@pytest.mark.parametrize("renderer", ["kanji", "image"])
def test_the_bytes_parse_back(setup, renderer):
    result = issue_reply(setup, "ja")
    parsed = parse(render_list_bytes(result, "ja", renderer, 576))
    if renderer == "kanji":
        text = "\n".join(t.text for t in parsed.texts)
        assert "世帯主変更届" in text and "期限：" in text and "死亡" in text
    else:
        assert parsed.rasters and parsed.rasters[0].width == 576
    assert "cut" in " ".join(e for e in parsed.events if isinstance(e, str))


@pytest.mark.parametrize("lang", ["ja", "en", "vi"])
def test_screenshots_of_the_printed_list(setup, lang):
    image = render_ticket_image(list_blocks(issue_reply(setup, lang), lang), 576, lang)
    SHOTS.mkdir(parents=True, exist_ok=True)
    image.save(SHOTS / f"procedure_list_{lang}.png")
    assert image.width == 576 and image.height > 1500  # a whole visit, not a stub


def test_every_language_has_every_list_text():
    m = list_messages()
    assert not m.missing()
    for key in ("list.heading", "list.deadline"):
        assert all(m.get(key, lang, deadline="x") for lang in LANGUAGES)


def test_the_config_switch(tmp_path):
    assert list_mode(tmp_path) == "always"
    (tmp_path / "printing.toml").write_text('[printing]\nlist = "on_request"\n')
    assert list_mode(tmp_path) == "on_request"
    (tmp_path / "printing.toml").write_text('[printing]\nlist = "sometimes"\n')
    with pytest.raises(ValueError, match="printing.toml"):
        list_mode(tmp_path)
    assert list_mode(ROOT / "config") in ("always", "on_request", "never")


def test_print_list_follows_the_ticket_on_a_file_roll(setup, tmp_path):
    from printers.procedure_list import print_list

    roll = tmp_path / "roll.bin"
    roll.write_bytes(b"\x1b@TICKET")
    print_list(f"file://{roll}", issue_reply(setup, "ja"), "ja", "kanji", 576)
    data = roll.read_bytes()
    assert data.startswith(b"\x1b@TICKET")
    text = "\n".join(t.text for t in parse(data[len(b"\x1b@TICKET"):]).texts)
    assert "あなたの手続きリスト" in text and "期限：" in text
