"""The bytes a printer receives, read back: rasters pixel for pixel, kanji text through cp932."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PIL import ImageChops

from printers.escpos_bytes import KANJI_OFF, KANJI_ON, KANJI_SHIFT_JIS, Raster, encode
from printers.layout import TextLine, block_texts, layout_ticket
from printers.printing import print_ticket, render_ticket_bytes
from printers.render_image import render_ticket_image
from printers.render_kanji import printable_in_kanji_mode, render_kanji_ops
from printers.sample import sample_ticket
from tests.printers.escpos_reader import EscposParseError, parse


def _same_pixels(a, b) -> bool:
    return a.size == b.size and ImageChops.difference(a.convert("L"), b.convert("L")).getbbox() is None


@pytest.mark.parametrize("width", [384, 512, 576])
def test_image_job_decodes_to_the_rendered_image_pixel_for_pixel(width):
    ticket = sample_ticket("ja")
    expected = render_ticket_image(layout_ticket(ticket), width, "ja")
    parsed = parse(render_ticket_bytes(ticket, "image", width))
    assert parsed.events[0] == "init" and parsed.events[-1] == "cut"
    assert not parsed.texts  # nothing sent as text: no GB18030 surprise
    [image] = parsed.rasters
    assert expected.height > 960  # so the job really crosses python-escpos's 960-row fragments
    assert _same_pixels(image, expected)


def test_a_flipped_byte_in_the_raster_is_caught():
    ticket = sample_ticket("en")
    data = bytearray(render_ticket_bytes(ticket, "image", 576))
    expected = render_ticket_image(layout_ticket(ticket), 576, "en")
    data[5000] ^= 0x10
    assert not _same_pixels(parse(bytes(data)).rasters[0], expected)


def test_a_truncated_job_is_caught():
    data = render_ticket_bytes(sample_ticket("en"), "image", 576)
    with pytest.raises(EscposParseError):
        parse(data[:-5000])


def test_kanji_job_decodes_back_to_the_layout_text():
    ticket = sample_ticket("ja")
    blocks = layout_ticket(ticket)
    data = render_ticket_bytes(ticket, "kanji", 576)
    parsed = parse(data)
    assert data.startswith(b"\x1b@" + KANJI_SHIFT_JIS)
    assert parsed.kanji_code_system == 1
    printed = "".join(t.text.replace(" ", "") for t in parsed.texts)
    for text in block_texts(blocks):
        assert text.replace(" ", "") in printed, text
    # The kanji really went as Shift_JIS bytes, not as python-escpos's GB18030.
    assert KANJI_ON + "受付番号".encode("cp932") + KANJI_OFF in data
    assert "受付番号".encode("gb18030") not in data
    # Titles and headings are bold double height; the number is magnified ASCII, 8x on 80 mm.
    big = next(t for t in parsed.texts if t.text == "123")
    assert big.size == (8, 8) and not big.kanji and big.align == 1
    site = next(t for t in parsed.texts if t.text == ticket.site_name)
    assert site.size == (1, 2) and site.bold and site.kanji
    # Only the QR code is an image in an all-Japanese ticket.
    assert len(parsed.rasters) == 1


def test_kanji_lines_fit_the_paper_in_columns():
    for width in (384, 512, 576):
        parsed = parse(render_ticket_bytes(sample_ticket("ja"), "kanji", width))
        for t in parsed.texts:
            dots = len(t.text.encode("cp932")) * 12 * t.size[0]
            assert dots <= width, (width, t.text)


def test_characters_the_printer_font_lacks_fall_back_to_an_image_line():
    ticket = replace(sample_ticket("ja"), documents=("髙橋様の委任状", "本人確認書類", "山﨑様の印鑑"))
    blocks = layout_ticket(ticket)
    parsed = parse(render_ticket_bytes(ticket, "kanji", 576))
    printed = [t.text for t in parsed.texts]
    assert not any("髙" in t or "﨑" in t for t in printed)
    assert any("本人確認書類" in t for t in printed)
    # QR + the two lines with 髙 and 﨑, each drawn exactly as the image renderer draws it.
    assert len(parsed.rasters) == 3
    from printers.render_image import render_block

    line = next(b for b in blocks if isinstance(b, TextLine) and "髙" in b.text)
    assert _same_pixels(parsed.rasters[0], render_block(line, 576, "ja"))


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("受付番号 123", True),
        ("ｶﾀｶﾅ", True),  # half-width katakana: single bytes in the printer's font
        ("髙橋", False),  # IBM extension: cp932 encodes it, the printer's JIS X 0208 font lacks it
        ("山﨑", False),
        ("①", False),  # NEC row 13
        ("课", False),  # simplified Chinese
        ("접수", False),
        ("Tiếng Việt", False),
        ("Guichê", False),
        ("C:\\path", False),  # backslash prints as ¥ on a Japanese printer
    ],
)
def test_printable_in_kanji_mode(text, ok):
    assert printable_in_kanji_mode(text) is ok


def test_a_vietnamese_ticket_in_kanji_mode_is_all_images_but_the_number_and_the_japanese_names():
    ticket = sample_ticket("vi")
    parsed = parse(render_ticket_bytes(ticket, "kanji", 576))
    texts = [t.text.strip() for t in parsed.texts]
    assert "123" in texts
    # the Japanese department names (to match the signs) are printable in kanji mode: text, not images
    japanese = {r.department_name_ja for r in ticket.route}
    assert japanese <= set(texts), texts
    assert all(t.isascii() or set(t) <= {"─"} or t in japanese for t in texts)
    ops = render_kanji_ops(layout_ticket(ticket), 576, "vi")
    assert sum(isinstance(op, Raster) for op in ops) >= 10


def test_file_backend_writes_the_same_bytes_as_the_dummy(tmp_path):
    ticket = sample_ticket("en")
    out = tmp_path / "lp0"
    dummy = print_ticket("dummy:", ticket, "kanji", 512)
    filed = print_ticket(f"file:{out}", ticket, "kanji", 512)
    assert dummy.status is None and filed.status is None  # write-only: no status query sent
    assert out.read_bytes() == dummy.data == filed.data == render_ticket_bytes(ticket, "kanji", 512)


def test_encode_rejects_an_image_wider_than_the_paper():
    from PIL import Image

    with pytest.raises(ValueError, match="wide"):
        encode([Raster(Image.new("1", (600, 10), 1))], 576)


def test_a_wrong_byte_in_kanji_text_changes_the_decoded_text():
    ticket = sample_ticket("ja")
    data = render_ticket_bytes(ticket, "kanji", 576)
    good = KANJI_ON + "受付番号".encode("cp932") + KANJI_OFF
    bad = data.replace(good, KANJI_ON + "受付番号".encode("cp932")[:-1] + b"\x8d" + KANJI_OFF)
    assert bad != data
    texts = [t.text for t in parse(bad).texts]
    assert "受付番号" not in texts


def test_package_exports_load_lazily():
    import subprocess
    import sys

    code = (
        "import sys, printers.cli; assert 'PIL' not in sys.modules and 'escpos' not in sys.modules;"
        "from printers import print_ticket, PrintableTicket, PaperOut; print(PaperOut.code)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "paper_out"
