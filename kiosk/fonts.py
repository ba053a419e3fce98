"""Fonts for the kiosk screens: no tofu in any of the seven languages.

Kivy's SDL2 text provider draws a label with one font file and has no fallback. No single font
installed here covers kanji, simplified Chinese, Hangul and Vietnamese at once (IPAex Gothic lacks
한국어, 课 and ế), so each label's text is split into runs of one font each, chosen per character
from the fonts' character maps (the same choice the ticket printer makes, printers.render_image),
and written as Kivy markup ``[font=path]…[/font]``.

:func:`register_default_font` must run before the first widget is built; kiosk/app.py does it
right after importing Kivy.
"""

from __future__ import annotations

from functools import lru_cache

from printers.render_image import FontSet, find_fonts


@lru_cache(maxsize=1)
def fonts() -> FontSet:
    """The font set (IPAex or Noto CJK first; DejaVu, Droid Sans Fallback, Nanum for the rest)."""
    return find_fonts()


def register_default_font() -> str:
    """Make the Japanese font Kivy's default, so even an unmarked label shows kanji. Returns its path."""
    from kivy.core.text import DEFAULT_FONT, LabelBase

    path = fonts().cjk.path
    LabelBase.register(DEFAULT_FONT, path)
    return path


def escape(text: str) -> str:
    """Kivy markup escaping (same as kivy.utils.escape_markup, without importing Kivy)."""
    return text.replace("&", "&amp;").replace("[", "&bl;").replace("]", "&br;")


def runs(text: str, lang: str, font_set: FontSet | None = None) -> list[tuple[str, str]]:
    """``text`` as (font path, substring) runs, each drawable by its font."""
    fs = font_set or fonts()
    out: list[tuple[str, str]] = []
    for ch in text:
        path = fs.cjk.path if ch in "\n " else fs.font_for(lang, ch).path
        if out and (out[-1][0] == path or ch in "\n "):
            out[-1] = (out[-1][0], out[-1][1] + ch)
        else:
            out.append((path, ch))
    return out


def markup(text: str, lang: str, font_set: FontSet | None = None, bold: bool = False) -> str:
    """Kivy markup for ``text`` in ``lang`` with a font switch wherever the default font lacks a glyph."""
    fs = font_set or fonts()
    parts = []
    for path, chunk in runs(text, lang, fs):
        body = escape(chunk)
        parts.append(body if path == fs.cjk.path else f"[font={path}]{body}[/font]")
    s = "".join(parts)
    return f"[b]{s}[/b]" if bold else s


def missing(text: str, lang: str) -> str:
    """Characters no installed font can draw (they would show as boxes)."""
    return fonts().missing(text, lang)


# ---------------------------------------------------------------- line breaking (禁則)
#: Kivy (SDL2) and Pillow measure the same font files within a few percent; this margin keeps a
#: line that fits by Pillow's measure from being wrapped a second time by Kivy at any character.
SCREEN_FIT = 0.93


@lru_cache(maxsize=64)
def _char_widths(lang: str, size: int) -> dict[str, float]:
    return {}


def measure(text: str, lang: str, size: float) -> float:
    """Width in pixels of ``text`` drawn at ``size`` px, per character from the run fonts (cached)."""
    from printers.render_image import _pil_font

    widths = _char_widths(lang, round(size))
    total = 0.0
    for ch in text:
        w = widths.get(ch)
        if w is None:
            path = fonts().cjk.path if ch == " " else fonts().font_for(lang, ch).path
            w = widths[ch] = _pil_font(path, round(size)).getlength(ch)
        total += w
    return total


def needs_kinsoku(text: str) -> bool:
    """Text with wide (CJK) characters: Kivy would break it at any character, so we break it."""
    import unicodedata

    return any(unicodedata.east_asian_width(c) in "WF" for c in text)


def break_lines(text: str, lang: str, size: float, width: float) -> str:
    """``text`` with newlines where printers.linebreak (the ticket's kinsoku rules) breaks it for
    a label ``width`` px wide at ``size`` px; Kivy then draws those lines as they are."""
    from printers.linebreak import wrap

    avail = width * SCREEN_FIT
    if avail <= 0 or ("\n" not in text and measure(text, lang, size) <= avail):
        return text
    return "\n".join(wrap(text, avail, lambda s: measure(s, lang, size)))
