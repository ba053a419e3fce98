"""Kanji-mode renderer for Japanese-model Epson printers: text as Shift_JIS in the printer's font.

python-escpos's ``text()`` sends any string with a CJK ideograph as GB18030, which prints garbage
on a Japanese printer; so this renderer writes the commands by hand: ``FS C 1`` (Shift_JIS) once,
then for each line ``FS &``, the cp932 bytes, ``FS .``. The job is ~10x smaller than a raster
ticket and prints faster on slow links (serial).

The printer's kanji font holds JIS X 0208 only. A line with anything else — 髙 and 﨑 (IBM/NEC
extensions that Python's cp932 *can* encode but the printer cannot print), Hangul, simplified
Chinese, Vietnamese or Portuguese letters — is drawn by the image renderer and sent as a raster
strip in its place. The big number uses magnified ASCII; the QR code is always an image.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import replace

from printers.escpos_bytes import (
    KANJI_OFF,
    KANJI_ON,
    KANJI_SHIFT_JIS,
    LF,
    Op,
    Raster,
    Raw,
    align,
    bold,
    char_size,
    feed_dots,
)
from printers.layout import BigNumber, Block, QrCode, Rule, Space, TextLine
from printers.render_image import find_fonts, render_block, wrap

ANK_DOTS = 12  # font A: half-width characters are 12 dots wide, kanji 24 (one cp932 byte = 12 dots)
LINE_DOTS = 30  # default line spacing (1/6 inch at 180 dpi)
MARKER_COLUMNS = 4  # hanging indent of numbered and bulleted lines, in half-width columns

# Lead bytes of JIS X 0208 in Shift_JIS. Rows 13 (0x87: ①, ㈱) and 89–92 (0xED/0xEE, 0xFA–0xFC:
# 髙, 﨑) are Microsoft/NEC/IBM extensions that Epson's built-in font does not have.
_JIS0208_LEADS = frozenset(range(0x81, 0x85)) | frozenset(range(0x88, 0xA0)) | frozenset(range(0xE0, 0xEB))
# '\\' and '~' print as ¥ and ‾ with the Japanese international character set.
_UNSAFE_ASCII = frozenset(b"\\~")


def printable_in_kanji_mode(text: str) -> bool:
    """True when every character of ``text`` prints correctly from the printer's own fonts."""
    try:
        data = text.encode("cp932")
    except UnicodeEncodeError:
        return False
    i = 0
    while i < len(data):
        b = data[i]
        if b < 0x80:
            if b < 0x20 or b in _UNSAFE_ASCII or b == 0x7F:
                return False
            i += 1
        elif 0xA1 <= b <= 0xDF:  # half-width katakana
            i += 1
        elif b in _JIS0208_LEADS:
            i += 2
        else:
            return False
    return True


def columns(text: str) -> int:
    """Print width in half-width columns: in Shift_JIS one byte is one column."""
    return len(text.encode("cp932"))


def _text_ops(block: TextLine, width: int) -> list[Op]:
    # Titles and headings are double height: larger, yet as many characters per line as body text.
    height = 2 if block.style in ("title", "heading") else 1
    cols = width // ANK_DOTS
    indent = MARKER_COLUMNS if block.marker else 0
    lines = wrap(block.text, cols - indent, columns)
    out = bytearray(align(block.align == "center"))
    out += char_size(1, height) + bold(block.style in ("title", "heading"))
    for i, line in enumerate(lines):
        if indent:
            lead = block.marker if i == 0 and block.marker.strip() else ""
            line = lead + " " * (indent - columns(lead)) + line
        out += KANJI_ON + line.encode("cp932") + KANJI_OFF + LF
    out += char_size(1, 1) + bold(False) + align(False)
    return [Raw(bytes(out))]


def _big_number_ops(block: BigNumber, width: int) -> list[Op]:
    mag = max(1, min(8, width // (ANK_DOTS * max(1, columns(block.text)))))
    return [
        Raw(
            align(True)
            + char_size(mag, mag)
            + bold(True)
            + block.text.encode("ascii")
            + LF
            + char_size(1, 1)
            + bold(False)
            + align(False)
        )
    ]


def render_kanji_ops(blocks: Sequence[Block], width: int = 576, lang: str = "ja") -> list[Op]:
    """The ticket as ESC/POS operations: kanji-mode text where the printer can, images elsewhere."""
    fonts = None
    ops: list[Op] = [Raw(KANJI_SHIFT_JIS)]

    def as_image(block: Block) -> Raster:
        nonlocal fonts
        fonts = fonts or find_fonts()
        return Raster(render_block(block, width, lang, fonts))

    for block in blocks:
        if isinstance(block, TextLine):
            block = replace(block, text=unicodedata.normalize("NFC", block.text))
            ok = printable_in_kanji_mode(block.text) and printable_in_kanji_mode(block.marker or " ")
            ops.extend(_text_ops(block, width) if ok else [as_image(block)])
        elif isinstance(block, BigNumber):
            ok = block.text.isascii() and printable_in_kanji_mode(block.text)
            ops.extend(_big_number_ops(block, width) if ok else [as_image(block)])
        elif isinstance(block, Rule):
            ops.append(Raw(KANJI_ON + "─".encode("cp932") * (width // (2 * ANK_DOTS)) + KANJI_OFF + LF))
        elif isinstance(block, Space):
            ops.append(Raw(feed_dots(round(block.lines * LINE_DOTS))))
        elif isinstance(block, QrCode):
            ops.append(as_image(block))
        else:  # pragma: no cover - the Block union is closed
            raise TypeError(f"unknown block {block!r}")
    return ops
