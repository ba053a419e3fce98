"""What a citizen reads on the kiosk: no internal code, no raw seconds, every language complete.

Covers every message of every screen: kiosk/messages.toml, the card screens' table and the printer
fault texts the done screen shows. (The offscreen UI test also checks each screen it draws.)
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from queue_server.core.i18n import LANGUAGES
from queue_server.loaders import load_messages

ROOT = Path(__file__).resolve().parents[2]
TABLES = {
    "kiosk": ROOT / "kiosk" / "messages.toml",
    "card": ROOT / "kiosk" / "card" / "messages.toml",
    "printer": ROOT / "printers" / "messages.toml",
}
#: Messages that may show a number of seconds: they count down on screen, once a second.
COUNTDOWNS = {"kiosk:idle.body"}
SNAKE = re.compile(r"(?<![\w/.])[a-z][a-z0-9]*_[a-z0-9_]+\b")
SECONDS = re.compile(r"\d+\s*(s|sec|secs|seconds?|秒|초|giây|segundos?|びょう)\b|\d+\s*(秒|초|びょう)")


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def every_message() -> list[tuple[str, str, str]]:
    out = []
    for table, path in TABLES.items():
        for key, texts in load_messages(path).table.items():
            for lang in LANGUAGES:
                out.append((f"{table}:{key}", lang, texts.get(lang, "")))
    return out


def _filled(template: str) -> str:
    return template.format(**{n: 7 for n in _fields(template)})


@pytest.mark.parametrize("table", sorted(TABLES))
def test_every_message_has_every_language(table):
    assert load_messages(TABLES[table]).missing() == []


def test_no_internal_code_reaches_a_citizen():
    bad = [(where, lang, text) for where, lang, text in every_message() if SNAKE.search(_filled(text))]
    assert not bad, bad
    # nor a field that would carry one (an error code, a retry delay)
    fields = {(where, f) for where, _, text in every_message() for f in _fields(text)}
    assert not {f for _, f in fields} & {"code", "error_code", "detail", "reason"}, fields


def test_seconds_appear_only_where_they_count_down():
    bad = [(where, lang, text) for where, lang, text in every_message()
           if where not in COUNTDOWNS and ("seconds" in _fields(text) or SECONDS.search(_filled(text)))]
    assert not bad, bad
    # and the countdown keeps the number with its unit ("17秒", not "17 秒" that can break apart)
    for where, lang, text in every_message():
        if where in COUNTDOWNS and lang in ("ja", "zh", "ko"):
            assert re.search(r"\{seconds\}(秒|초)", text), (where, lang, text)


def test_the_patterns_catch_what_they_are_for():
    assert SNAKE.search("番号札を発行できませんでした（storage_error）")
    assert not SNAKE.search("https://example.jp/a_b and My Number")
    assert SECONDS.search("Trying again every 4 s") and SECONDS.search("4秒ごとに")
    assert not SECONDS.search("about 15 min")
