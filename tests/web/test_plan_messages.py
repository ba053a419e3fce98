"""The planning page's message table (display_board/plan_web/messages.json): all seven languages
with the same fields, every key the page uses exists, no text hard-coded in the page."""

from __future__ import annotations

import json
import re
from pathlib import Path

from queue_server.core.i18n import LANGUAGES, Messages

PAGE = Path(__file__).resolve().parents[2] / "display_board" / "plan_web"
TABLE = PAGE / "messages.json"


def test_every_message_in_seven_languages_with_the_same_fields():
    table = json.loads(TABLE.read_text(encoding="utf-8"))
    assert Messages(table, str(TABLE)).missing() == []
    for key, texts in table.items():
        assert set(texts) == set(LANGUAGES), key
        assert len({frozenset(re.findall(r"\{(\w+)\}", t)) for t in texts.values()}) == 1, key


def test_keys_used_exist_and_nothing_is_hard_coded():
    table = json.loads(TABLE.read_text(encoding="utf-8"))
    kana_kanji = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")
    used: set[str] = set()
    for path in sorted(PAGE.glob("*.js")) + sorted(PAGE.glob("*.html")):
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r'\bt\("([\w.]+)"', text))
        code = re.sub(r"//.*|/\*.*?\*/", "", text, flags=re.S)
        assert not kana_kanji.search(code), f"{path.name}: {kana_kanji.search(code).group()}"
        if path.suffix == ".html":
            visible = re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style|title)[^>]*>.*?</\1>", " ", code, flags=re.S))
            assert not re.search(r"[A-Za-z]{3,}", visible), visible.split()[:5]
    assert len(used) > 30 and sorted(used - set(table)) == []
    # dynamic keys: the error codes the server can answer, the forecast levels, the booking states
    from queue_server.protocol import ERROR_CODES

    for code in ("slot_full", "slot_past", "slot_closed", "not_bookable", "booking_cancelled", "booking_expired",
                 "booking_other_day", "booking_other_site", "unknown_reservation", "reservation_used", "rate_limited", "busy"):
        assert code in ERROR_CODES and f"err.{code}" in table, code
    for key in ("level_quiet", "level_busy", "level_crowded", "state_booked", "state_checked_in",
                "state_cancelled", "state_no_show"):
        assert key in table
