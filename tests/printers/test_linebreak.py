"""Kinsoku line breaking (printers/linebreak.py), over every message the kiosk and the ticket show."""

from __future__ import annotations

import string
import unicodedata
from pathlib import Path

import pytest

from printers.linebreak import NO_LINE_END, NO_LINE_START, char_units, units, violations, wrap
from queue_server.core.i18n import LANGUAGES
from queue_server.loaders import load_messages

ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "kiosk": ROOT / "kiosk" / "messages.toml",
    "card": ROOT / "kiosk" / "card" / "messages.toml",
    "printer": ROOT / "printers" / "messages.toml",
}


def columns(text: str) -> int:
    """A monospace stand-in for a font: wide (CJK) characters are two columns."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def sample(template: str) -> str:
    """The message with every field filled by a number (the worst case: digits beside counters)."""
    names = {f for _, f, _, _ in string.Formatter().parse(template) if f}
    return template.format(**{n: 17 for n in names})


def every_message() -> list[tuple[str, str, str]]:
    out = []
    for table, path in TABLES.items():
        messages = load_messages(path)
        for key, texts in messages.table.items():
            for lang in LANGUAGES:
                if lang in texts:
                    out.append((f"{table}:{key}", lang, sample(texts[lang])))
    return out


def test_every_message_wraps_without_breaking_a_kinsoku_rule_at_any_width():
    checked = 0
    for where, lang, text in every_message():
        widest_unit = max((columns(u.rstrip()) for u in units(text)), default=0)
        for width in range(max(10, widest_unit), 61, 3):
            lines = wrap(text, width, columns)
            assert not violations(lines), (where, lang, width, lines)
            assert "".join(lines).replace(" ", "").replace("\u3000", "") == \
                text.replace("\n", "").replace(" ", "").replace("\u3000", ""), (where, lang)
            checked += 1
    assert checked > 5000


@pytest.mark.parametrize(
    ("text", "width", "expected"),
    [
        ("番号はすべての窓口で共通です。", 7, ["番号はすべての", "窓口で共通で", "す。"]),
        ("あと17秒で最初の画面に戻ります", 8, ["あと17秒で最初", "の画面に戻ります"]),
        ("あと17秒で", 3, ["あと", "17秒", "で"]),
        ("質問 3 / 約10", 9, ["質問", "3 / 約10"]),
        ("「戻る」を押してください", 4, ["「戻る」", "を押して", "ください"]),
        ("さいしょに もどります。 ？", 9, ["さいしょに", "もどります。 ？"]),
    ],
)
def test_examples(text, width, expected):
    assert wrap(text, width, len) == expected


def test_units_keep_numbers_with_counters_and_brackets_with_their_words():
    assert "17秒" in char_units("あと17秒")
    assert "4番" in char_units("4番窓口")
    assert "（共" in char_units("4番窓口（共用）")
    assert units("17 秒後に") == ["17 秒後に"]
    assert not NO_LINE_START & NO_LINE_END


def test_violations_reports_each_rule():
    assert violations(["あいう", "。えお"])
    assert violations(["あ（", "い"])
    assert violations(["あと17", "秒"])
    assert "1234567秒" in wrap("あと1234567秒", 9, len)
    assert not violations(["Floor 1,", "counter 4"])
