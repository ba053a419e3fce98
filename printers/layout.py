"""The ticket's layout: a printable ticket in, a list of lines and blocks out. Pure: no I/O, no clock.

The kiosk builds a :class:`PrintableTicket` from the server's reply (already in the citizen's
language: site and department names come localized from the catalogue); :func:`layout_ticket`
turns it into blocks that both renderers understand. Every fixed text comes from
``printers/messages.toml`` so that a new language is a table edit, never a code change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from queue_server.core.i18n import LANGUAGES, Messages
from queue_server.core.ruby import bracketed
from queue_server.loaders import load_messages

MESSAGES_PATH = Path(__file__).with_name("messages.toml")

Style = Literal["title", "heading", "body", "small"]
Align = Literal["left", "center"]


@dataclass(frozen=True, slots=True)
class RouteLine:
    """One department on the citizen's route, in visiting order."""

    department_name: str
    floor: int | None = None
    counters: tuple[int, ...] = ()
    #: The Japanese name as on the lobby's signs, printed under a translated name so a citizen who
    #: reads no Japanese can match the ticket to the sign ("" or equal to the name: not repeated).
    department_name_ja: str = ""
    #: Those of ``counters`` that also serve other departments: written "4番窓口（共用）" rather
    #: than as part of a range, so 市民課 1–4 and 国保年金課 4–6 do not read as overlapping.
    shared: tuple[int, ...] = ()


def needs_japanese_name(line: RouteLine, lang: str) -> bool:
    """Whether the Japanese name must be added under the department's name: not in Japanese, and
    not when the name already holds it (やさしい日本語 "市民課（しみんか）" from ruby markup)."""
    ja = line.department_name_ja
    return bool(ja) and lang != "ja" and ja not in bracketed(line.department_name)


def shared_counters(counters: Iterable[tuple[int, Sequence[str]]]) -> frozenset[int]:
    """Counter numbers that serve more than one department, from (number, departments) pairs."""
    return frozenset(n for n, departments in counters if len(set(departments)) > 1)


@dataclass(frozen=True, slots=True)
class PrintableTicket:
    """Everything printed on a ticket, already localized; times are passed in, never read."""

    site_name: str
    label: str  # the number as called: "123", "R5"
    issued_at: datetime  # the site's local time (Asia/Tokyo)
    lang: str
    route: tuple[RouteLine, ...]
    documents: tuple[str, ...]
    wait_minutes: int | None
    total_minutes: int | None
    status_url: str
    external: tuple[str, ...] = ()  # procedures not at city hall, each with where to go
    wait_range: tuple[int, int] | None = None  # (low, high) minutes when the server sends a range


# ---------------------------------------------------------------- blocks (what renderers draw)
@dataclass(frozen=True, slots=True)
class TextLine:
    """A paragraph; renderers wrap it to the paper width. ``marker`` hangs left of every line."""

    text: str
    style: Style = "body"
    align: Align = "left"
    marker: str = ""


@dataclass(frozen=True, slots=True)
class BigNumber:
    """The ticket number, as large as the paper allows: read at arm's length and from a chair."""

    text: str


@dataclass(frozen=True, slots=True)
class QrCode:
    data: str


@dataclass(frozen=True, slots=True)
class Rule:
    """A thin horizontal separator between sections."""


@dataclass(frozen=True, slots=True)
class Space:
    """Vertical space, in body-text lines."""

    lines: float = 0.5


Block = TextLine | BigNumber | QrCode | Rule | Space


@lru_cache(maxsize=1)
def default_messages() -> Messages:
    """The printer message table (read once per process)."""
    return load_messages(MESSAGES_PATH)


def _split_list(messages: Messages, key: str, lang: str) -> list[str]:
    return messages.get(key, lang).split(",")


def format_issued(when: datetime, lang: str, messages: Messages) -> str:
    """Date and time of issue in the citizen's language (24-hour clock everywhere)."""
    weekday = _split_list(messages, "ticket.weekdays", lang)[when.weekday()]
    month = _split_list(messages, "ticket.months", lang)[when.month - 1]
    date = messages.get("ticket.date", lang, y=when.year, m=when.month, d=when.day, wd=weekday, mon=month)
    return messages.get("ticket.issued", lang, date=date, time=f"{when.hour}:{when.minute:02d}")


def format_floor(floor: int, lang: str, messages: Messages) -> str:
    """The floor as the citizen's language counts it: Japan's 1階 is the ground floor, which is
    "térreo" in Portuguese (their "1º andar" is one floor up) and "1F" on the signs in English."""
    if floor == 1:
        return messages.get("ticket.route_floor_ground", lang)
    return messages.get("ticket.route_floor", lang, floor=floor, above=floor - 1)


def format_place(line: RouteLine, lang: str, messages: Messages) -> str:
    """'1階　1・2・3番窓口　4番窓口（共用）' / '1F · Counters 1, 2, 3 · Counter 4 (shared)';
    parts that are unknown are left out."""
    parts = []
    if line.floor is not None:
        parts.append(format_floor(line.floor, lang, messages))
    sep = messages.get("ticket.list_separator", lang)
    own = [n for n in line.counters if n not in line.shared]
    shared = [n for n in line.counters if n in line.shared]
    for numbers, suffix in ((own, ""), (shared, "_shared")):
        if numbers:
            key = ("ticket.route_counter" if len(numbers) == 1 else "ticket.route_counters") + suffix
            parts.append(messages.get(key, lang, numbers=sep.join(str(n) for n in numbers)))
    return messages.get("ticket.place_separator", lang).join(parts)


def layout_ticket(ticket: PrintableTicket, messages: Messages | None = None) -> list[Block]:
    """The ticket as blocks, top to bottom.

    Order follows what the citizen needs first: where they are, their number (big), when it was
    issued, where to go, what to have ready, how long, then the QR code and the notice.
    An unknown language prints in English rather than failing: the citizen still needs a ticket.
    """
    messages = messages or default_messages()
    lang = ticket.lang if ticket.lang in LANGUAGES else "en"
    m = messages.get
    blocks: list[Block] = [
        TextLine(ticket.site_name, style="title", align="center"),
        Space(0.3),
        TextLine(m("ticket.number_caption", lang), style="heading", align="center"),
        BigNumber(ticket.label),
        TextLine(format_issued(ticket.issued_at, lang, messages), style="small", align="center"),
        Rule(),
    ]
    if ticket.route:
        blocks.append(TextLine(m("ticket.route_heading", lang), style="heading"))
        for i, line in enumerate(ticket.route, start=1):
            blocks.append(TextLine(line.department_name, style="heading", marker=f"{i}."))
            if needs_japanese_name(line, lang):
                blocks.append(TextLine(line.department_name_ja, style="body", marker=" " * len(f"{i}.")))
            place = format_place(line, lang, messages)
            if place:
                # Same hanging indent as the department name, so the number column stays clear.
                blocks.append(TextLine(place, style="body", marker=" " * len(f"{i}.")))
        if len(ticket.route) > 1:
            blocks.append(TextLine(m("ticket.route_note", lang), style="small"))
        blocks.append(Rule())
    if ticket.documents:
        blocks.append(TextLine(m("ticket.documents_heading", lang), style="heading"))
        blocks.extend(TextLine(doc, marker="・") for doc in ticket.documents)
        blocks.append(Rule())
    if ticket.external:
        blocks.append(TextLine(m("ticket.external_heading", lang), style="heading"))
        blocks.extend(TextLine(item, marker="・") for item in ticket.external)
        blocks.append(Rule())
    if ticket.wait_minutes is not None or ticket.total_minutes is not None:
        blocks.append(TextLine(m("ticket.wait_heading", lang), style="heading"))
        if ticket.wait_minutes is not None:
            if ticket.wait_range is not None:
                low, high = ticket.wait_range
                blocks.append(TextLine(m("ticket.wait_range", lang, low=low, high=high)))
            elif ticket.wait_minutes <= 0:
                blocks.append(TextLine(m("ticket.wait_soon", lang)))
            else:
                blocks.append(TextLine(m("ticket.wait_minutes", lang, minutes=ticket.wait_minutes)))
        # The whole-visit figure only adds information when the route has several steps.
        if ticket.total_minutes is not None and (len(ticket.route) > 1 or ticket.wait_minutes is None):
            blocks.append(TextLine(m("ticket.total_minutes", lang, minutes=ticket.total_minutes)))
        blocks.append(Rule())
    if ticket.status_url:
        blocks.append(QrCode(ticket.status_url))
        blocks.append(TextLine(m("ticket.qr_caption", lang), style="small", align="center"))
        blocks.append(Space(0.3))
    blocks.append(TextLine(m("ticket.notice", lang), style="small"))
    # Ruby markup from the catalogue ({市民課|しみんか}): the reading in brackets, never braces.
    return [replace(b, text=bracketed(b.text)) if isinstance(b, TextLine) and "{" in b.text else b for b in blocks]


def block_texts(blocks: list[Block]) -> list[str]:
    """The visible text of the blocks, in order (markers included): for tests and logs."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, TextLine):
            out.append(f"{b.marker}{b.text}" if b.marker.strip() else b.text)
        elif isinstance(b, BigNumber):
            out.append(b.text)
    return out
