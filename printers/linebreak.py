"""Line breaking for the kiosk's screens and the printed ticket, with Japanese 禁則 (kinsoku) rules.

One pure module used by both (kiosk/screens/widgets.py and printers/render_image.py,
printers/render_kanji.py), so a sentence breaks by the same rules on the screen and on paper:

- no line starts with closing punctuation, small kana or a prolonged sound mark
  (。、）」？！ー ぁぃ…: 行頭禁則);
- no line ends with an opening bracket (（「『: 行末禁則);
- a number stays with its counter or unit (17秒, 4番, 1階, 3/約10, 10:30) and ASCII words stay whole;
- texts written with spaces (Latin, Korean, やさしい日本語) break at the spaces only, unless one
  word is wider than the whole line.

No I/O: the caller passes ``measure`` (the rendered width of a string in its font).
"""

from __future__ import annotations

import re
from collections.abc import Callable

#: Characters that must not start a line (行頭禁則文字): closing brackets and punctuation, small
#: kana, the prolonged sound mark and iteration marks.
NO_LINE_START = frozenset(
    "、。，．,.!?！？‼⁇⁈⁉）)]｝}〕〉》」』】〙〗〟’”»"
    "ー・·：:；;%％‰゠–〜～…‥"
    "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ"
    "々〻ゝゞヽヾ"
)
#: Characters that must not end a line (行末禁則文字): opening brackets and quotes.
NO_LINE_END = frozenset("（([｛{〔〈《「『【〘〖〝‘“«")
#: Counters and units that stay with the number before them (数字と助数詞の分離禁止).
COUNTERS = frozenset(
    "階番分秒回人歳才枚件号日月年時問個点名円部課窓冊通台本かヶケ箇週％"
    "층번분초회명세개장건호일월년시"  # Korean counters written without a space
    "楼号个张次位岁"  # Chinese
)
SPACES = " \u3000"
_DIGITS = frozenset("0123456789０１２３４５６７８９")
#: Inside a number: 3 / 約10 and 10:30 and 1,200 stay on one line.
_NUMBER_JOINERS = frozenset(",.:/／：")


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch in "-_'@#&+")


def units(text: str) -> list[str]:
    """Pieces a line may break between. Texts with spaces break at spaces only (Latin, Korean,
    やさしい日本語 written with spaces between words); texts without break between characters,
    with the kinsoku rules of :func:`char_units`."""
    if " " in text or "\u3000" in text:
        # Each unit is a word with the space that follows it (kept as written: an ideographic
        # space is wider and is part of the look of a Japanese line). A word that starts with a
        # forbidden line-start character (a lone "？" after a space) joins the word before it.
        out: list[str] = []
        for u in re.findall(r"[^ \u3000]*[ \u3000]*", text):
            if not u:
                continue
            prev = out[-1].rstrip(SPACES) if out else ""
            if out and (u[0] in NO_LINE_START or prev[-1:] in NO_LINE_END
                        or (u[0] in COUNTERS and prev[-1:] in _DIGITS)  # "17 秒後" stays whole
                        or (u[0] in "/／" and prev[-1:] in _DIGITS)  # "3 / 約10" too
                        or (prev[-1:] in "/／" and len(prev) > 1)):
                out[-1] += u
            else:
                out.append(u)
        return out
    return char_units(text)


def _joins(prev: str, ch: str) -> bool:
    """Whether ``ch`` must stay on the same line as the unit ``prev`` ends with."""
    last = prev[-1]
    return (
        ch in NO_LINE_START
        or ch in SPACES  # a space never starts a line
        or last in NO_LINE_END
        or (_is_word_char(ch) and _is_word_char(last))
        or (ch in COUNTERS and last in _DIGITS)
        or (ch in _DIGITS and last in _DIGITS)
        or (ch in _DIGITS and last in _NUMBER_JOINERS and len(prev) > 1 and prev[-2] in _DIGITS)
        or (ch in _NUMBER_JOINERS and last in _DIGITS)
        or (ch == "約" and prev.rstrip(" ")[-1:] in _NUMBER_JOINERS)  # "3 / 約10" is one piece
        or (ch in _DIGITS and last == "約")
    )


def char_units(text: str) -> list[str]:
    """One unit per character, keeping closing punctuation, opening brackets, ASCII words and
    numbers with their counters attached."""
    out: list[str] = []
    for ch in text:
        if out and _joins(out[-1], ch):
            out[-1] += ch
        else:
            out.append(ch)
    # A unit can still be too long for a line (a URL); wrap() splits it into characters then.
    return out


def wrap(text: str, max_width: float, measure: Callable[[str], float]) -> list[str]:
    """Greedy line filling by measured width, paragraph by paragraph (``\\n`` is kept).

    A unit wider than a whole line is split into characters that continue the current line
    (long kana phrases, URLs); a single character wider than the line gets a line of its own.
    The kinsoku rules hold whenever the line is wide enough for the unit they protect.
    """
    lines: list[str] = []
    for para in text.split("\n"):
        lines += _wrap_paragraph(para, max_width, measure)
    return lines


def _wrap_paragraph(text: str, max_width: float, measure: Callable[[str], float]) -> list[str]:
    lines: list[str] = []
    line = ""
    pending = list(reversed(units(text)))
    while pending:
        unit = pending.pop()
        if measure((line + unit).rstrip(SPACES)) <= max_width:
            line += unit
            continue
        if len(unit) > 1 and measure(unit.rstrip(SPACES)) > max_width:
            parts = char_units(unit)
            if parts == [unit]:  # one unbreakable piece: keep its last characters together at least
                parts = list(unit)
            pending.extend(reversed(parts))
            continue
        if line.strip(SPACES):
            lines.append(line.rstrip(SPACES))
        line = unit
    if line.strip(SPACES) or not lines:
        lines.append(line.rstrip(SPACES))
    return lines


def violations(lines: list[str]) -> list[str]:
    """The kinsoku rules a wrapped text breaks, as readable strings (empty: none). For tests."""
    found = []
    for i, line in enumerate(lines):
        if i and line[:1] in NO_LINE_START:
            found.append(f"line {i + 1} starts with {line[0]!r}: {line!r}")
        if i + 1 < len(lines) and line[-1:] in NO_LINE_END:
            found.append(f"line {i + 1} ends with {line[-1]!r}: {line!r}")
        if i and line[:1] in COUNTERS and lines[i - 1][-1:] in _DIGITS:
            found.append(f"line {i + 1} separates a number from its counter: {lines[i - 1]!r} / {line!r}")
    return found
