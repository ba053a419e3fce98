"""Raster renderer: layout blocks → one black-and-white Pillow image at the printer's dot width.

Works on every ESC/POS printer and every script, because the printer only sees dots. Sizes are
set for 576 dots (80 mm paper at 203 dpi) and scale with the width (512 for TM-T88V at 180 dpi,
384 for 58 mm). Text is drawn antialiased in greyscale, then thresholded (not dithered: dithered
text prints fuzzy on thermal paper).

Fonts: one Japanese font (IPAex Gothic or Noto CJK) is required; a Latin font (DejaVu Sans) and
fallbacks for simplified Chinese (Droid Sans Fallback / Noto CJK) and Hangul (Nanum / Noto CJK) fill
in what the Japanese font lacks, chosen per character from each font's character map: 课, 한국어,
Vietnamese diacritics. A character no font has prints as a box: see :meth:`FontSet.missing`.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from printers.errors import PrinterConfigError
from printers.escpos_bytes import Raster
from printers.layout import BigNumber, Block, QrCode, Rule, Space, TextLine
from printers.linebreak import wrap  # the kinsoku rules shared with the kiosk screens

WIDTHS = (384, 512, 576)  # 58 mm; 80 mm at 180 dpi (TM-T88V); 80 mm at 203 dpi (TM-T20II, TM-T88VI)
BASE_WIDTH = 576

# First existing file wins. MADOGUCHI_FONT (a path) puts a font of the site's choice first.
CJK_FONTS = (
    "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf",
    "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/ipafont-gothic/ipag.ttf",
)
LATIN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)
LATIN_BOLD_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
)
HANZI_FONTS = (  # simplified Chinese (课, 龄) that a Japanese font lacks
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
HANGUL_FONTS = (  # Debian fonts-nanum or fonts-noto-cjk
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/unfonts-core/UnDotum.ttf",
)

# Pixel sizes at 576 dots. Body text ≈ 3.8 mm high: readable at arm's length by older eyes.
SIZES = {"title": 34, "heading": 32, "body": 29, "small": 24}
LINE_FACTOR = 1.32
MARGIN = 10
BIG_NUMBER_HEIGHT = 0.30  # of the width: ~22 mm of digit height on 80 mm paper
QR_SIZE = 0.40  # of the width
THRESHOLD = 150  # grey levels below this print black; a little bolder than 128 on thermal paper



@dataclass(frozen=True)
class FontFile:
    path: str
    chars: frozenset[int]


@dataclass(frozen=True)
class FontSet:
    """The fonts of one rendering: tried in order for each character."""

    cjk: FontFile
    latin: FontFile | None = None
    latin_bold: FontFile | None = None
    hanzi: FontFile | None = None
    hangul: FontFile | None = None

    def chain(self, lang: str, ch: str) -> list[FontFile]:
        """Fonts to try for ``ch`` in a text of language ``lang``, best first."""
        if lang in ("ja", "ja-easy"):
            # One design for kana, kanji and digits reads more evenly than mixing in Latin fonts.
            order = [self.cjk, self.hanzi, self.hangul, self.latin]
        elif ord(ch) < 0x2E80:  # Latin, Vietnamese, general punctuation
            order = [self.latin, self.cjk, self.hanzi, self.hangul]
        elif lang == "zh":
            order = [self.hanzi, self.cjk, self.hangul]  # Chinese glyph shapes for Chinese
        elif lang == "ko":
            order = [self.hangul, self.cjk, self.hanzi]
        else:
            order = [self.cjk, self.hanzi, self.hangul]
        return [f for f in order if f is not None]

    def font_for(self, lang: str, ch: str) -> FontFile:
        chain = self.chain(lang, ch)
        for f in chain:
            if ord(ch) in f.chars:
                return f
        return chain[0]

    def missing(self, text: str, lang: str) -> str:
        """Characters of ``text`` no font can draw (they would print as boxes)."""
        return "".join(
            ch
            for ch in text
            if not ch.isspace() and not any(ord(ch) in f.chars for f in self.chain(lang, ch))
        )


@lru_cache(maxsize=16)
def _font_file(path: str) -> FontFile:
    from fontTools.ttLib import TTFont  # fontTools comes with matplotlib; only needed here

    with TTFont(path, fontNumber=0, lazy=True) as tt:
        return FontFile(path, frozenset(tt.getBestCmap()))


def _first(paths: Iterable[str]) -> str | None:
    return next((p for p in paths if p and Path(p).is_file()), None)


@lru_cache(maxsize=4)
def find_fonts(override: str | None = None) -> FontSet:
    """Find the fonts, or raise a :class:`PrinterConfigError` that says what to install."""
    override = override or os.environ.get("MADOGUCHI_FONT")
    cjk = _first(([override] if override else []) + list(CJK_FONTS))
    if cjk is None:
        raise PrinterConfigError(
            "no Japanese font found: install Debian fonts-ipaexfont-gothic (or fonts-noto-cjk), "
            "or set MADOGUCHI_FONT to a .ttf/.otf/.ttc with kanji. Searched: " + ", ".join(CJK_FONTS)
        )
    found = {
        name: _first(paths)
        for name, paths in (
            ("latin", LATIN_FONTS),
            ("latin_bold", LATIN_BOLD_FONTS),
            ("hanzi", HANZI_FONTS),
            ("hangul", HANGUL_FONTS),
        )
    }
    return FontSet(cjk=_font_file(cjk), **{name: _font_file(p) if p else None for name, p in found.items()})


@lru_cache(maxsize=128)
def _pil_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    # BASIC layout: no shaping is needed for kana, kanji, Hangul or precomposed Latin, and raqm
    # costs ~1 ms per measurement, which wrapping does hundreds of times per ticket.
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


# ---------------------------------------------------------------- text measuring and wrapping
def _runs(text: str, lang: str, fonts: FontSet, bold: bool = False) -> list[tuple[str, str]]:
    """Split ``text`` into (font path, substring) runs of one font each.

    Bold Latin uses the real bold face; fonts without one are emboldened when drawn.
    """
    bold_latin = bold and fonts.latin is not None and fonts.latin_bold is not None
    runs: list[tuple[str, str]] = []
    for ch in text:
        path = fonts.font_for(lang, ch).path
        if bold_latin and path == fonts.latin.path and ord(ch) in fonts.latin_bold.chars:
            path = fonts.latin_bold.path
        if runs and runs[-1][0] == path:
            runs[-1] = (path, runs[-1][1] + ch)
        else:
            runs.append((path, ch))
    return runs


def _measure(text: str, size: int, lang: str, fonts: FontSet, bold: bool = False) -> float:
    return sum(_pil_font(p, size).getlength(s) for p, s in _runs(text, lang, fonts, bold))


# ---------------------------------------------------------------- block rendering
def _scale(width: int) -> float:
    return width / BASE_WIDTH


def _blank(width: int, height: int) -> Image.Image:
    return Image.new("L", (width, max(1, height)), 255)


def render_text(block: TextLine, width: int, lang: str, fonts: FontSet) -> Image.Image:
    """One paragraph, wrapped to the width, as a greyscale strip."""
    s = _scale(width)
    size = round(SIZES[block.style] * s)
    bold = block.style in ("title", "heading")
    margin = round(MARGIN * s)
    indent = round(SIZES["body"] * 1.5 * s) if block.marker else 0
    avail = width - 2 * margin - indent

    def measure(t: str) -> float:
        return _measure(t, size, lang, fonts, bold)

    # Precomposed letters: the BASIC layout engine does not place combining accents (Vietnamese).
    lines = wrap(unicodedata.normalize("NFC", block.text), avail, measure)
    line_h = round(size * LINE_FACTOR)
    img = _blank(width, line_h * len(lines))
    draw = ImageDraw.Draw(img)
    ascent = _pil_font(fonts.cjk.path, size).getmetrics()[0]
    bold_px = (2 if size >= 28 else 1) if bold else 0
    for i, line in enumerate(lines):
        baseline = i * line_h + round((line_h - size) / 2) + ascent
        x = (width - measure(line)) / 2 if block.align == "center" else margin + indent
        if i == 0 and block.marker.strip():
            _draw_runs(draw, margin, baseline, block.marker, size, lang, fonts, bold_px)
        _draw_runs(draw, x, baseline, line, size, lang, fonts, bold_px)
    return img


def _draw_runs(draw, x: float, baseline: int, text: str, size: int, lang: str, fonts: FontSet, bold_px: int):
    """Draw font runs along one baseline. Bold is faked (the Japanese fonts have no bold face) by
    drawing again ``bold_px`` dots to the right: a stroke outline would fill in dense kanji (課, 齢)."""
    bold_face = fonts.latin_bold.path if fonts.latin_bold else None
    for path, run in _runs(text, lang, fonts, bold=bold_px > 0):
        font = _pil_font(path, size)
        for dx in range(1 if path == bold_face else bold_px + 1):
            draw.text((x + dx, baseline), run, font=font, fill=0, anchor="ls")
        x += font.getlength(run)


def render_big_number(block: BigNumber, width: int, fonts: FontSet) -> Image.Image:
    """The number in heavy digits, as tall as 30 % of the width allows, never wider than the paper."""
    s = _scale(width)
    margin = round(MARGIN * s) * 2
    use_bold = fonts.latin_bold is not None and all(ord(c) in fonts.latin_bold.chars for c in block.text)
    path = fonts.latin_bold.path if use_bold and fonts.latin_bold else fonts.cjk.path
    stroke = 0 if use_bold else 3
    target = BIG_NUMBER_HEIGHT * width
    size = round(target / 0.73)  # digit height ≈ 0.73 em in DejaVu Sans Bold and IPAex
    while size > 20:
        font = _pil_font(path, size)
        left, top, right, bottom = font.getbbox(block.text, anchor="ls", stroke_width=stroke)
        if right - left <= width - 2 * margin:
            break
        size -= 4
    font = _pil_font(path, size)
    left, top, right, bottom = font.getbbox(block.text, anchor="ls", stroke_width=stroke)
    pad = round(14 * s)
    img = _blank(width, bottom - top + 2 * pad)
    draw = ImageDraw.Draw(img)
    x = (width - (right - left)) / 2 - left
    draw.text((x, pad - top), block.text, font=font, fill=0, anchor="ls", stroke_width=stroke, stroke_fill=0)
    return img


def render_qr(block: QrCode, width: int) -> Image.Image:
    """QR code of the status URL with whole-dot modules (no resampling blur) and a quiet zone."""
    import qrcode  # only the image paths need it

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    qr.add_data(block.data)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    n = len(matrix)
    box = max(2, round(QR_SIZE * width / n))
    quiet = 4 * box
    side = n * box
    img = _blank(width, side + 2 * quiet)
    draw = ImageDraw.Draw(img)
    x0 = (width - side) // 2
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if dark:
                draw.rectangle(
                    [x0 + c * box, quiet + r * box, x0 + (c + 1) * box - 1, quiet + (r + 1) * box - 1], fill=0
                )
    return img


def render_rule(width: int) -> Image.Image:
    s = _scale(width)
    pad = round(12 * s)
    thick = max(2, round(3 * s))
    img = _blank(width, 2 * pad + thick)
    ImageDraw.Draw(img).rectangle(
        [round(MARGIN * s), pad, width - round(MARGIN * s) - 1, pad + thick - 1], fill=0
    )
    return img


def render_block(block: Block, width: int, lang: str, fonts: FontSet | None = None) -> Image.Image:
    """One block as a 1-bit strip of exactly ``width`` dots (white = 1)."""
    fonts = fonts or find_fonts()
    if isinstance(block, TextLine):
        img = render_text(block, width, lang, fonts)
    elif isinstance(block, BigNumber):
        img = render_big_number(block, width, fonts)
    elif isinstance(block, QrCode):
        img = render_qr(block, width)
    elif isinstance(block, Rule):
        img = render_rule(width)
    elif isinstance(block, Space):
        img = _blank(width, round(SIZES["body"] * LINE_FACTOR * block.lines * _scale(width)))
    else:  # pragma: no cover - the Block union is closed
        raise TypeError(f"unknown block {block!r}")
    return to_1bit(img)


def to_1bit(img: Image.Image) -> Image.Image:
    """Threshold greyscale to pure black and white (1 = white), without dithering."""
    return img.point(lambda v: 255 if v >= THRESHOLD else 0, mode="1")


def stack(images: Sequence[Image.Image], width: int) -> Image.Image:
    """Strips top to bottom, as one 1-bit image."""
    out = Image.new("1", (width, max(1, sum(i.height for i in images))), 1)
    y = 0
    for im in images:
        out.paste(im, (0, y))
        y += im.height
    return out


def render_ticket_image(blocks: Sequence[Block], width: int = 576, lang: str = "ja") -> Image.Image:
    """The whole ticket as one 1-bit image of ``width`` dots, with a little paper above and below."""
    if width not in WIDTHS:
        raise PrinterConfigError(f"width {width} dots is not one of {WIDTHS}")
    fonts = find_fonts()
    strips = [render_block(b, width, lang, fonts) for b in blocks]
    edge = to_1bit(_blank(width, round(16 * _scale(width))))
    return stack([edge, *strips, edge], width)


def render_image_ops(blocks: Sequence[Block], width: int = 576, lang: str = "ja") -> list[Raster]:
    """The ticket as ESC/POS operations: one raster image (encoded as GS v 0 by python-escpos)."""
    return [Raster(render_ticket_image(blocks, width, lang))]
