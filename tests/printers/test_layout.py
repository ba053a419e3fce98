"""The pure layout step: what goes on a ticket, in which order, in the citizen's language."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace
from datetime import datetime

import pytest

from printers.layout import (
    BigNumber,
    PrintableTicket,
    QrCode,
    RouteLine,
    Rule,
    TextLine,
    block_texts,
    format_issued,
    format_place,
    layout_ticket,
)
from printers.sample import sample_ticket
from queue_server.core.i18n import LANGUAGES, Messages

WHEN = datetime(2026, 3, 30, 14, 7)  # a Monday in the peak season


def _ticket(**changes) -> PrintableTicket:
    base = PrintableTicket(
        site_name="酒田市役所 本庁舎",
        label="R5",
        issued_at=WHEN,
        lang="ja",
        route=(RouteLine("市民課", 1, (1, 2)), RouteLine("税務課", 2, (10,))),
        documents=("本人確認書類",),
        wait_minutes=12,
        total_minutes=40,
        status_url="http://127.0.0.1:8765/t/x",
    )
    return replace(base, **changes)


def test_ticket_reads_top_to_bottom_in_the_order_a_citizen_needs():
    blocks = layout_ticket(_ticket())
    texts = block_texts(blocks)
    assert texts[:3] == ["酒田市役所 本庁舎", "受付番号", "R5"]
    assert texts[3] == "2026年3月30日（月） 14:07 発行"
    assert isinstance(blocks[3], BigNumber)
    order = [
        texts.index("1.市民課"),
        texts.index("2.税務課"),
        texts.index("・本人確認書類"),
        texts.index("最初のお呼び出しまで 約12分"),
    ]
    assert order == sorted(order)
    qr = [b for b in blocks if isinstance(b, QrCode)]
    assert qr == [QrCode("http://127.0.0.1:8765/t/x")]
    assert texts[-1].startswith("番号が表示されるまで")


def test_route_lines_carry_floor_and_counters():
    texts = block_texts(layout_ticket(_ticket()))
    assert "1階\u30001・2番窓口" in [t.strip() for t in texts]
    assert "2階\u300010番窓口" in [t.strip() for t in texts]


@pytest.mark.parametrize(
    ("lang", "one", "many"),
    [
        ("en", "2F · Counter 10", "1F (ground floor) · Counters 1, 2"),
        # Brazil counts floors above the ground floor (térreo): Japan's 2階 is their 1º andar.
        ("pt", "1º andar · Guichê 10", "Térreo · Guichês 1, 2"),
        ("ja-easy", "2かい\u300010ばん まどぐち", "1かい\u30001・2ばん まどぐち"),
    ],
)
def test_place_wording_per_language(lang, one, many):
    from printers.layout import default_messages

    m = default_messages()
    assert format_place(RouteLine("x", 2, (10,)), lang, m) == one
    assert format_place(RouteLine("x", 1, (1, 2)), lang, m) == many


def test_unknown_floor_or_counters_are_left_out_not_printed_as_none():
    from printers.layout import default_messages

    m = default_messages()
    assert format_place(RouteLine("x", None, (3,)), "en", m) == "Counter 3"
    assert format_place(RouteLine("x", 1, ()), "en", m) == "1F (ground floor)"
    blocks = layout_ticket(_ticket(route=(RouteLine("Welfare desk"),), lang="en"))
    assert "None" not in " ".join(block_texts(blocks))


def test_english_ticket_dates_and_waits():
    texts = block_texts(layout_ticket(_ticket(lang="en")))
    assert "Issued Mon 30 Mar 2026, 14:07" in texts
    assert "First call in about 12 min" in texts
    assert "Whole visit: about 40 min" in texts


def test_wait_zero_says_soon_and_unknown_wait_prints_no_section():
    texts = block_texts(layout_ticket(_ticket(wait_minutes=0)))
    assert "まもなくお呼びします" in texts
    texts = block_texts(layout_ticket(_ticket(wait_minutes=None, total_minutes=None)))
    assert "待ち時間の目安" not in texts


def test_single_step_route_has_no_whole_visit_line_or_route_note():
    texts = block_texts(layout_ticket(_ticket(route=(RouteLine("市民課", 1, (1,)),))))
    assert not any(t.startswith("すべての手続きで") for t in texts)
    assert not any(t.startswith("番号はすべての窓口で共通") for t in texts)


def test_external_procedures_get_their_own_section():
    texts = block_texts(layout_ticket(_ticket(external=("相続放棄：山形家庭裁判所",))))
    assert texts[texts.index("市役所以外での手続き") + 1] == "・相続放棄：山形家庭裁判所"


def test_empty_sections_are_left_out():
    blocks = layout_ticket(_ticket(documents=(), route=(), status_url=""))
    assert not any(isinstance(b, QrCode) for b in blocks)
    texts = block_texts(blocks)
    assert "お持ちいただくもの" not in texts and "ご案内する窓口（この順番です）" not in texts
    # No two separators in a row, whatever is missing.
    kinds = [type(b) for b in blocks]
    assert not any(a is Rule and b is Rule for a, b in zip(kinds, kinds[1:], strict=False))


def test_unknown_language_prints_in_english():
    texts = block_texts(layout_ticket(_ticket(lang="xx")))
    assert "Your number" in texts


def test_every_language_lays_out_with_its_own_fixed_texts():
    seen = set()
    for lang in LANGUAGES:
        texts = block_texts(layout_ticket(sample_ticket(lang)))
        caption = texts[1]
        seen.add(caption)
        assert "{" not in " ".join(texts)
    assert len(seen) == len(LANGUAGES)


def test_layout_uses_the_messages_it_is_given():
    table = {key: {"ja": "X"} for key in ("ticket.number_caption",)}
    from printers.layout import default_messages

    merged = Messages({**default_messages().table, **table})
    blocks = layout_ticket(_ticket(), merged)
    assert blocks[2] == TextLine("X", style="heading", align="center")


def test_ticket_and_blocks_are_frozen_values():
    t = _ticket()
    with pytest.raises(FrozenInstanceError):
        t.label = "9"  # type: ignore[misc]
    assert layout_ticket(t) == layout_ticket(t)


def test_format_issued_pads_minutes_and_uses_weekday_of_the_given_date():
    from printers.layout import default_messages

    assert (
        format_issued(datetime(2026, 11, 29, 8, 5), "ko", default_messages())
        == "2026년 11월 29일 (일) 8:05 발행"
    )


def test_shared_counters_are_named_as_shared_not_as_part_of_a_range():
    from printers.layout import default_messages, shared_counters

    m = default_messages()
    shared = shared_counters([(1, ["shimin"]), (4, ["shimin", "hoken_nenkin"]), (5, ["hoken_nenkin"]),
                              (6, ["hoken_nenkin", "kaigo"])])
    assert shared == {4, 6}
    shimin = RouteLine("市民課", 1, (1, 2, 3, 4), shared=(4,))
    nenkin = RouteLine("国保年金課", 1, (4, 5, 6), shared=(4, 6))
    assert format_place(shimin, "ja", m) == "1階\u30001・2・3番窓口\u30004番窓口（共用）"
    assert format_place(nenkin, "ja", m) == "1階\u30005番窓口\u30004・6番窓口（共用）"
    assert format_place(nenkin, "en", m) == "1F (ground floor) · Counter 5 · Counters 4, 6 (shared)"


def test_translated_tickets_keep_the_japanese_department_name_of_the_signs():
    route = (RouteLine("Citizens Division", 1, (1,), department_name_ja="市民課"),
             RouteLine("Tax Division", 2, (10,), department_name_ja="税務課"))
    for lang in ("en", "zh", "ko", "vi", "pt", "ja-easy"):
        texts = [t.strip() for t in block_texts(layout_ticket(_ticket(route=route, lang=lang)))]
        i = texts.index("1.Citizens Division")
        assert texts[i + 1] == "市民課", (lang, texts)
        assert "税務課" in texts
    ja = [t.strip() for t in block_texts(layout_ticket(_ticket(route=(RouteLine("市民課", 1, (1,), department_name_ja="市民課"),))))]
    assert ja.count("市民課") + ja.count("1.市民課") == 1  # not repeated in Japanese
    # nor in やさしい日本語 when the name carries the kanji with its reading
    easy = layout_ticket(_ticket(lang="ja-easy", route=(RouteLine("{市民課|しみんか}", 1, (1,), department_name_ja="市民課"),)))
    assert [t.strip() for t in block_texts(easy)].count("市民課") == 0


def test_ruby_markup_prints_as_a_bracketed_reading_never_as_braces():
    route = (RouteLine("{市民課|しみんか}", 1, (1,), department_name_ja="市民課"),)
    blocks = layout_ticket(_ticket(route=route, lang="ja-easy", documents=("{本人確認書類|ほんにん かくにん しょるい}",)))
    texts = block_texts(blocks)
    assert "1.市民課（しみんか）" in texts and "・本人確認書類（ほんにん かくにん しょるい）" in texts
    assert not any("{" in t or "}" in t or "|" in t for t in texts)


def test_an_uncertain_wait_prints_as_the_servers_range():
    texts = block_texts(layout_ticket(_ticket(wait_minutes=24, wait_range=(20, 30))))
    assert "最初のお呼び出しまで 約20〜30分" in texts
    assert not any("約24分" in t for t in texts)
