"""printers/messages.toml: complete in every language, same fields everywhere, every key used exists."""

from __future__ import annotations

import re
import string
from pathlib import Path

from printers.errors import ERROR_CLASSES
from printers.layout import MESSAGES_PATH, default_messages
from queue_server.core.i18n import LANGUAGES
from queue_server.loaders import load_messages

PRINTERS = Path(__file__).resolve().parents[2] / "printers"


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_message_has_every_language():
    assert load_messages(MESSAGES_PATH).missing() == []


def test_every_language_has_the_same_fields_and_no_empty_text():
    for key, texts in default_messages().table.items():
        assert set(texts) == set(LANGUAGES), key
        fields = {lang: _fields(text) for lang, text in texts.items()}
        assert all(t for t in texts.values()), key  # separators may be a bare (ideographic) space
        if key == "ticket.date":  # each language picks its parts (English spells the month)
            assert all(f <= {"y", "m", "d", "wd", "mon"} and {"d", "wd"} <= f for f in fields.values()), (
                fields
            )
        elif key == "ticket.route_floor":  # the Japanese floor number, or the floors above ground
            assert all(len(f) == 1 and f <= {"floor", "above"} for f in fields.values()), fields
        else:
            assert len({frozenset(f) for f in fields.values()}) == 1, (key, fields)


def test_lists_have_the_right_length_in_every_language():
    m = default_messages()
    for lang in LANGUAGES:
        assert len(m.get("ticket.weekdays", lang).split(",")) == 7, lang
        assert len(m.get("ticket.months", lang).split(",")) == 12, lang


def test_every_error_class_has_its_message():
    m = default_messages()
    for cls in ERROR_CLASSES:
        assert cls.message_key in m.table, cls
        assert len({m.get(cls.message_key, lang) for lang in LANGUAGES}) == len(LANGUAGES)


def test_every_key_the_code_uses_exists():
    used = set()
    for path in PRINTERS.glob("*.py"):
        used |= set(re.findall(r"\"((?:ticket|error|sample)\.[a-z_]+)\"", path.read_text(encoding="utf-8")))
    assert used, "no message keys found in printers/*.py"
    assert used - set(default_messages().table) == set()


def test_simple_japanese_avoids_kanji():
    # やさしい日本語 for readers who know kana: the ticket's fixed texts use no kanji at all.
    kanji = re.compile(r"[\u4e00-\u9fff]")
    for key, texts in default_messages().table.items():
        assert not kanji.search(texts["ja-easy"]), key
