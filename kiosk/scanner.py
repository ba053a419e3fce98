"""QR scanners that type like a keyboard (USB HID / serial-as-keyboard readers): characters, then Enter.

Two pure parts: :class:`ScanBuffer` collects keystrokes into one scan (a gap longer than
``gap_seconds`` starts afresh, so a stray key press is not glued to the next scan), and
:func:`parse_scan` reads what the planning page's QR codes hold (docs/planning.md):

- a booking: ``…/plan/?site=honcho&b=482913`` (optionally with ``p`` and ``a``, see below), or the
  6-digit code alone;
- a list planned at home without booking: ``…/plan/?site=honcho&p=death,move_in&a=q1:yes;q2:80``.

Keyboard layouts: a scanner set to a US layout on a JIS keyboard host types some punctuation
differently, so the parser looks for the ``b=`` and ``p=``/``a=`` parts rather than a whole URL,
and a bare run of six digits is a code. Nothing here touches Kivy.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

CODE = re.compile(r"(?<!\d)(\d{6})(?!\d)")
MAX_SCAN = 2000  # characters: a QR the page makes is far shorter; anything longer is noise


@dataclass(frozen=True)
class Scan:
    code: str | None  # booking code, if the QR is a booking
    site: str | None
    purposes: tuple[str, ...]  # empty for a bare code: the server knows the booking's purposes
    answers: tuple[tuple[str, str], ...]


class ScanBuffer:
    """Keystrokes to scans. ``key(text, now)`` per character; ``enter(now)`` returns the scan text."""

    def __init__(self, gap_seconds: float = 0.5):
        self.gap = gap_seconds
        self.chars: list[str] = []
        self.last = -1e9

    def key(self, text: str, now: float) -> None:
        if now - self.last > self.gap:
            self.chars = []
        self.last = now
        if len(self.chars) < MAX_SCAN:
            self.chars.append(text)

    def enter(self, now: float) -> str | None:
        text = "".join(self.chars).strip() if now - self.last <= self.gap else ""
        self.chars = []
        return text or None


def parse_scan(text: str, purposes: Mapping[str, object] | None = None,
               questions: Mapping[str, object] | None = None) -> Scan | None:
    """What a scanned QR asks the kiosk to do, or None when it is not one of ours.

    ``purposes`` and ``questions`` (the catalogue's) drop ids the kiosk does not know, so an old
    printout after a catalogue change asks the missing questions again instead of failing.
    """
    text = text.strip()
    if not text or len(text) > MAX_SCAN:
        return None
    m = CODE.fullmatch(text)
    if m:  # the code alone (typed on a pad or a plain code QR)
        return Scan(m.group(1), None, (), ())
    query = urlsplit(text).query if "?" in text else text
    q = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    code = q.get("b")
    if code is not None and not re.fullmatch(r"\d{6}", code):
        return None
    ps = tuple(p for p in (q.get("p") or "").split(",") if p and (purposes is None or p in purposes))
    answers = []
    for pair in (q.get("a") or "").split(";"):
        k, sep, v = pair.partition(":")
        if sep and k and (questions is None or k in questions):
            answers.append((k, v[:40]))
    if code is None and not ps:
        return None
    return Scan(code, q.get("site"), ps, tuple(answers) if ps else ())
