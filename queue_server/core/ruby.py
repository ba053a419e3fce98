"""Ruby (furigana) markup in catalogue and message text: ``{市民課|しみんか}``.

やさしい日本語 keeps kanji for key terms and gives their reading (the national guideline,
在留支援のためのやさしい日本語ガイドライン, 2020). The catalogue writes a reading once, in the text
itself, as ``{base|reading}``; every renderer turns it into what its medium can show: ``<ruby>`` on
web pages, the base with the reading in brackets on a thermal ticket, segments for the kiosk.
Text without braces passes through unchanged. Pure: no I/O.
"""

from __future__ import annotations

import html as _html
import re

# Neither part may hold a brace or a bar, so ``{n}`` format fields of the message tables never match.
RUBY = re.compile(r"\{([^{}|]+)\|([^{}|]+)\}")


def segments(text: str) -> list[tuple[str, str | None]]:
    """Split ``text`` into (base, reading) pairs; reading is None for text without ruby."""
    out: list[tuple[str, str | None]] = []
    pos = 0
    for m in RUBY.finditer(text):
        if m.start() > pos:
            out.append((text[pos:m.start()], None))
        out.append((m.group(1), m.group(2)))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], None))
    return out


def plain(text: str) -> str:
    """The text as the signs write it: bases only (``{市民課|しみんか}`` → ``市民課``)."""
    return RUBY.sub(r"\1", text)


def bracketed(text: str) -> str:
    """For media without ruby (printed tickets, logs): ``市民課（しみんか）``."""
    return RUBY.sub(r"\1（\2）", text)


def to_html(text: str) -> str:
    """HTML-escaped text with ``<ruby>base<rt>reading</rt></ruby>`` for each marked term."""
    parts = []
    for base, reading in segments(text):
        if reading is None:
            parts.append(_html.escape(base))
        else:
            parts.append(f"<ruby>{_html.escape(base)}<rt>{_html.escape(reading)}</rt></ruby>")
    return "".join(parts)
