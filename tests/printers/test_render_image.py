"""Raster rendering: golden tickets, the QR code read back, widths, fonts, wrapping.

Golden PNGs (tests/printers/golden/) were reviewed by eye. After a deliberate layout change,
regenerate them with ``MADOGUCHI_REGEN_GOLDEN=1 pytest tests/printers/test_render_image.py`` and
look at them again before committing.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from printers.errors import PrinterConfigError
from printers.layout import BigNumber, QrCode, TextLine, layout_ticket
from printers.printing import render_ticket_bytes
from printers.render_image import find_fonts, render_block, render_ticket_image, wrap
from printers.sample import SAMPLE_URL, sample_ticket
from tests.printers.escpos_reader import parse

GOLDEN = Path(__file__).with_name("golden")
# Font hinting may differ a little between FreeType builds: allow a sliver of pixels to differ,
# far less than one changed word (a 29-px word is ~1,500 dots, 0.15 % of the ticket).
TOLERANCE = 0.0005


def _differing_fraction(a: Image.Image, b: Image.Image) -> float:
    diff = ImageChops.difference(a.convert("L"), b.convert("L"))
    return sum(1 for v in diff.getdata() if v) / (a.width * a.height)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_golden_ticket_at_80_mm(lang):
    path = GOLDEN / f"ticket_{lang}_576.png"
    image = render_ticket_image(layout_ticket(sample_ticket(lang)), 576, lang)
    if os.environ.get("MADOGUCHI_REGEN_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        image.save(path, optimize=True)
    golden = Image.open(path)
    assert image.size == golden.size, f"size changed: {image.size} vs golden {golden.size}"
    assert _differing_fraction(image, golden) <= TOLERANCE


def test_rendering_is_deterministic():
    blocks = layout_ticket(sample_ticket("ja"))
    a, b = render_ticket_image(blocks, 576, "ja"), render_ticket_image(blocks, 576, "ja")
    assert ImageChops.difference(a.convert("L"), b.convert("L")).getbbox() is None


@pytest.mark.parametrize("renderer", ["image", "kanji"])
def test_qr_code_in_the_printed_bytes_decodes_to_the_status_url(renderer):
    from pyzbar.pyzbar import decode

    parsed = parse(render_ticket_bytes(sample_ticket("ja"), renderer, 576))
    found = [d.data.decode() for img in parsed.rasters for d in decode(img.convert("L"))]
    assert found == [SAMPLE_URL]


def test_qr_code_decodes_at_58_mm():
    from pyzbar.pyzbar import decode

    url = "https://example.jp/t/honcho/2026-11-26/R12?k=0123456789abcdef"
    img = render_block(QrCode(url), 384, "ja")
    assert [d.data.decode() for d in decode(img.convert("L"))] == [url]


@pytest.mark.parametrize("width", [384, 512, 576])
def test_every_width_renders_exactly_that_wide_in_one_bit(width):
    image = render_ticket_image(layout_ticket(sample_ticket("en")), width, "en")
    assert image.mode == "1" and image.width == width


def test_an_unsupported_width_is_a_config_error():
    with pytest.raises(PrinterConfigError):
        render_ticket_image(layout_ticket(sample_ticket("en")), 600, "en")


def test_big_number_is_big_and_fits_the_paper():
    for width in (384, 576):
        for label in ("7", "123", "R123"):
            img = render_block(BigNumber(label), width, "ja")
            left, top, right, bottom = ImageChops.invert(img.convert("L")).getbbox()
            ink_height = bottom - top
            assert ink_height >= 0.22 * width, (label, width, ink_height)  # ≥ 17 mm on 80 mm paper
            assert left > 0 and right < width  # never cut off at the paper edge


def test_all_languages_render_without_missing_glyphs():
    fonts = find_fonts()
    # Simplified Chinese and Hangul need their fallback fonts (fonts-droid-fallback or
    # fonts-noto-cjk; fonts-nanum): checked where installed, reported by print-test where not.
    optional = (("zh",) if fonts.hanzi else ()) + (("ko",) if fonts.hangul else ())
    for lang in ("ja", "en", "vi", "pt", "ja-easy", *optional):
        text = " ".join(getattr(b, "text", "") for b in layout_ticket(sample_ticket(lang)))
        assert fonts.missing(text, lang) == "", lang


def test_hangul_needs_a_korean_font_and_says_so():
    fonts = find_fonts()
    if fonts.hangul is None:
        assert fonts.missing("접수", "ko") == "접수"
    else:
        assert fonts.missing("접수", "ko") == ""


def test_long_text_wraps_inside_the_margins():
    long = replace(sample_ticket("en"), documents=("A" * 10 + " " + "very long document name " * 6,))
    img = render_ticket_image(layout_ticket(long), 384, "en")
    inked = ImageChops.invert(img.convert("L")).getbbox()
    assert inked[0] > 0 and inked[2] < 384


def test_wrap_breaks_japanese_by_character_and_keeps_closing_punctuation():
    lines = wrap("番号はすべての窓口で共通です。", 7, len)
    assert "".join(lines) == "番号はすべての窓口で共通です。"
    assert not any(line.startswith("。") for line in lines)
    assert wrap("First call in about 15 min", 12, len) == ["First call", "in about 15", "min"]


def test_missing_font_is_a_clear_config_error(monkeypatch):
    import printers.render_image as ri

    monkeypatch.setattr(ri, "CJK_FONTS", ("/nonexistent/font.ttf",))
    monkeypatch.delenv("MADOGUCHI_FONT", raising=False)
    ri.find_fonts.cache_clear()
    try:
        with pytest.raises(PrinterConfigError, match="fonts-ipaexfont-gothic"):
            ri.find_fonts()
    finally:
        ri.find_fonts.cache_clear()


def test_text_block_marker_hangs_left_of_wrapped_lines():
    img = render_block(TextLine("本人確認書類" * 6, marker="・"), 576, "ja")
    assert img.height > 60  # wrapped to several lines
