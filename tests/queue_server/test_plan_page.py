"""The planning page's first screen, built without a server (queue_server/plan_page.py): the
language choice, the one-module bundle of the page's scripts, the template's slots."""

from __future__ import annotations

import html
import json

import pytest

from queue_server import plan_page as pp


@pytest.mark.parametrize(("query", "cookie", "accept", "want"), [
    (None, None, None, "ja"),
    (None, None, "vi-VN,vi;q=0.9,en-US;q=0.8,en;q=0.7", "vi"),
    (None, None, "fr-FR, en;q=0.3, pt-BR;q=0.6", "pt"),  # the best language the page has, by q
    (None, None, "zh-TW,zh;q=0.9", "zh"),
    (None, None, "fr, de;q=0.5", "ja"),  # none of ours: Japanese
    (None, None, "en;q=0, ko", "ko"),  # q=0 means "not this one"
    (None, None, "en;q=abc, ko;q=0.5", "ko"),  # a broken q counts as 0, not as an error
    (None, "ko", "vi", "ko"),  # the page's cookie (a choice made on the page) beats the browser
    ("ja-easy", "ko", "vi", "ja-easy"),  # ?lang beats both
    ("xx", "yy", "en", "en"),  # unknown values are ignored
])
def test_choose_lang(query, cookie, accept, want):
    assert pp.choose_lang(query, cookie, accept) == want


def test_cookie_value():
    assert pp.cookie_value("a=1; plan_lang=vi; b=2", "plan_lang") == "vi"
    assert pp.cookie_value("xplan_lang=vi", "plan_lang") is None
    assert pp.cookie_value(None, "plan_lang") is None


def test_bundle_of_the_real_scripts_declares_every_imported_name_once():
    js = pp.bundle(pp.COMMON_JS.read_text(encoding="utf-8"), (pp.PAGE_ROOT / "plan.js").read_text(encoding="utf-8"))
    assert "import " not in js.split("\n", 1)[0] and "\nimport " not in js and "\nexport " not in js
    for name in ("class I18n", "class Link", "function el(", "const LANGS", "function render("):
        assert js.count(name) == 1, name
    slim = pp.slim_js(js)
    assert len(slim) < len(js) * 0.9 and "function render(" in slim and "\n//" not in slim


def test_bundle_refuses_shapes_it_cannot_inline():
    common = "export const A = 1;\nexport function b() {}\n"
    assert pp.bundle(common, 'import { A, b } from "/plan/common.js";\nA;\n').endswith("A;\n")
    with pytest.raises(ValueError, match="does not export"):
        pp.bundle(common, 'import { A, c } from "/plan/common.js";\n')
    with pytest.raises(ValueError, match="nothing else"):
        pp.bundle(common, 'import { A } from "/plan/common.js";\nimport x from "/other.js";\n')
    with pytest.raises(ValueError, match="only `export"):
        pp.bundle("export default 1;\n", 'import { A } from "/plan/common.js";\n')
    with pytest.raises(ValueError, match="</script"):
        pp.bundle(common, 'import { A } from "/plan/common.js";\nconst s = "</script>";\n')
    with pytest.raises(ValueError, match="template literal"):
        pp.slim_js("const s = `a\n  b`;\n")


def test_render_fills_every_slot_and_refuses_a_missing_one():
    assert pp.render("<p><!--a--></p><i><!--a--></i>", {"a": "x"}) == "<p>x</p><i>x</i>"
    with pytest.raises(ValueError, match="slots"):
        pp.render("<p><!--a--></p>", {"a": "x", "b": "y"})
    with pytest.raises(ValueError, match="slots"):
        pp.render("<p><!--a--><!--b--></p>", {"a": "x"})


def test_page_html_escapes_catalogue_text_and_keeps_the_boot_json_inside_its_script():
    table = json.loads((pp.PAGE_ROOT / "messages.json").read_text(encoding="utf-8"))
    snap = {"site_name": {"ja": "本庁舎"}, "sites": [{"key": "h", "name": {"ja": "本庁舎"}}],
            "purposes": [{"id": "x", "kind": "life_event", "name": {"ja": "<b>{家族|かぞく}</b></script>"}}],
            "consult": {"topics": []}}
    page = pp.page_html((pp.PAGE_ROOT / "index.html").read_text(encoding="utf-8"), "", "", table, "ja", "h", snap)
    assert '<span>&lt;b&gt;<ruby>家族<rt>かぞく</rt></ruby>&lt;/b&gt;&lt;/script&gt;</span>' in page
    boot = page.split('<script type="application/json" id="boot">', 1)[1].split("</script>", 1)[0]
    assert "<" not in boot and json.loads(boot)["snapshot"]["purposes"][0]["id"] == "x"
    assert json.loads(boot)["messages"]["title"] == {"ja": table["title"]["ja"]}  # one language only
    assert '<html lang="ja">' in page and "<!--" not in page


@pytest.mark.parametrize("lang", pp.LANGUAGES)
def test_every_language_gets_its_own_words_on_the_first_screen(lang):
    table = json.loads((pp.PAGE_ROOT / "messages.json").read_text(encoding="utf-8"))
    snap = {"site_name": {"ja": "{本庁舎|ほんちょうしゃ}", "en": "Main office"},
            "sites": [{"key": "h", "name": {"ja": "本庁舎"}}, {"key": "y", "name": {"ja": "八幡"}}],
            "purposes": [{"id": "death", "kind": "life_event", "name": {"ja": "死亡", "vi": "Người thân qua đời"}}],
            "consult": {"topics": [{"key": "t"}]}}
    page = pp.page_html((pp.PAGE_ROOT / "index.html").read_text(encoding="utf-8"), "", "", table, lang, "y", snap)
    for key in ("title", "lead", "events_title", "next", "noscript", "privacy", "consult_start"):
        assert html.escape(table[key][lang]) in page, (lang, key)
    assert '<option value="y" selected>八幡</option>' in page  # the branch office chosen in the link
    assert f'<option value="{lang}" selected>' in page
    name = "Người thân qua đời" if lang == "vi" else "死亡"  # the catalogue's fallbacks (i18n.pick)
    assert f'data-purpose="death"><input type="checkbox"><span>{name}</span>' in page
