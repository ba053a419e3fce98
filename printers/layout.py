"""The ticket's layout: a printable ticket in, a list of lines and blocks out. Pure: no I/O, no clock.

The kiosk builds a :class:`PrintableTicket` from the server's reply (already in the citizen's
language: site and department names come localized from the catalogue); :func:`layout_ticket`
turns it into blocks that both renderers understand. Every fixed text comes from
``printers/messages.toml`` so that a new language is a table edit, never a code change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal

from queue_server.core.i18n import LANGUAGES, Messages
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


def format_place(line: RouteLine, lang: str, messages: Messages) -> str:
    """'1階　1・2・3番窓口' / 'Floor 1 · Counters 1, 2, 3'; parts that are unknown are left out."""
    parts = []
    if line.floor is not None:
        parts.append(messages.get("ticket.route_floor", lang, floor=line.floor))
    if line.counters:
        sep = messages.get("ticket.list_separator", lang)
        numbers = sep.join(str(n) for n in line.counters)
        key = "ticket.route_counter" if len(line.counters) == 1 else "ticket.route_counters"
        parts.append(messages.get(key, lang, numbers=numbers))
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
            if ticket.wait_minutes <= 0:
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
    return blocks


def block_texts(blocks: list[Block]) -> list[str]:
    """The visible text of the blocks, in order (markers included): for tests and logs."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, TextLine):
            out.append(f"{b.marker}{b.text}" if b.marker.strip() else b.text)
        elif isinstance(b, BigNumber):
            out.append(b.text)
    return out
