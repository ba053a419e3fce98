"""The web pages' message table: every key in all seven languages, every key the pages use exists."""

from __future__ import annotations

import json
import re
from pathlib import Path

from queue_server.core.i18n import LANGUAGES, Messages

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "display_board" / "web" / "messages.json"
PAGES = [ROOT / "display_board" / "web", ROOT / "display_board" / "status_web", ROOT / "counter" / "web"]


def _table() -> dict:
    return json.loads(TABLE.read_text(encoding="utf-8"))


def _sources() -> dict[Path, str]:
    return {p: p.read_text(encoding="utf-8") for d in PAGES for p in sorted(d.iterdir()) if p.suffix in (".js", ".html")}


def test_every_message_has_all_seven_languages_and_the_same_fields():
    table = _table()
    assert Messages(table, str(TABLE)).missing() == []
    for key, texts in table.items():
        assert set(texts) == set(LANGUAGES), key
        fields = {frozenset(re.findall(r"\{(\w+)\}", t)) for t in texts.values()}
        assert len(fields) == 1, f"{key}: languages disagree on fields {fields}"


def test_every_key_the_pages_use_is_in_the_table():
    table = _table()
    used: set[str] = set()
    for text in _sources().values():
        used |= set(re.findall(r'data-(?:label|t)="([\w.]+)"', text))
        used |= set(re.findall(r'\bt\("([\w.]+)"', text))
        used |= set(re.findall(r'label\("([\w.]+)"', text))
    assert used, "no keys found: the pattern is wrong"
    assert sorted(used - set(table)) == []


def test_no_japanese_or_english_sentence_is_hard_coded_in_the_pages():
    # user-facing text comes from the table: a kana/kanji run in markup or logic is a leak
    kana_kanji = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
    for path, text in _sources().items():
        code = re.sub(r"//.*|/\*.*?\*/", "", text, flags=re.S)
        assert not kana_kanji.search(code), f"{path.name}: {kana_kanji.search(code).group()}"
        if path.suffix == ".html":
            visible = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style|title)[^>]*>.*?</\1>", " ", code, flags=re.S))
            assert not re.search(r"[A-Za-z]{3,}", visible), f"{path.name}: {visible.split()[:5]}"
