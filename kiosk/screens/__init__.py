"""Thin Kivy views over kiosk.flow: each builder turns a state into widgets; buttons send events.

Nothing here decides anything: what to show is ``state.screen`` and its fields, what a button
does is an event for :meth:`kiosk.flow.Kiosk.step`. Every text comes from kiosk/messages.toml,
the catalogue, kiosk/card/messages.toml or printers/messages.toml in the state's language.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.widget import Widget

from kiosk import flow as F
from kiosk.screens.widgets import BigButton, Text, Theme, fill, hbox
from queue_server.core.i18n import LANGUAGE_NAMES, LANGUAGES, Messages, pick


@dataclass
class ViewContext:
    """Everything a builder may read, and the one way it may act (``send``)."""

    state: F.KioskState
    kiosk: F.Kiosk
    messages: Messages
    card_messages: Messages
    printer_messages: Messages
    theme: Theme
    send: Callable[[F.Event], None]
    pin_length: int = 0  # digits typed on a PIN pad (the digits stay in the shell)
    pin_digit: Callable[[str], None] = lambda d: None
    pin_delete: Callable[[], None] = lambda: None
    pin_submit: Callable[[], None] = lambda: None
    staff_enabled: bool = False
    site_config: Mapping[str, Any] | None = None  # site.toml (which counters are shared)

    @property
    def lang(self) -> str:
        return self.state.lang

    def t(self, key: str, **fields: object) -> str:
        """A kiosk message in the citizen's language."""
        return self.messages.get(key, self.lang, **fields)

    def label(self, key: str) -> str:
        """A catalogue label (plan_title, documents, …) in the citizen's language."""
        return pick(self.kiosk.catalogue.labels[key], self.lang)

    def text(self, text: str, role: str = "body", **kw: object) -> Text:
        return Text(text, self.lang, self.theme, role, **kw)

    def button(self, text: str, event: F.Event | Callable[[], None], **kw: object) -> BigButton:
        # events are frozen dataclasses (never callable); a callable is a shell action (PIN pad)
        action = event if callable(event) else (lambda: self.send(event))
        return BigButton(text, self.lang, self.theme, action, **kw)


def build(ctx: ViewContext) -> Widget:
    """The whole page for ``ctx.state``: top bar, status line, the screen, navigation."""
    from kiosk.screens import card, plan, question, start, ticket

    builders: dict[F.Screen, Callable[[ViewContext], Widget]] = {
        F.Screen.LANGUAGE: start.language,
        F.Screen.PURPOSE: start.purpose,
        F.Screen.RESERVATION: start.reservation,
        F.Screen.STAFF_PIN: start.staff_pin,
        F.Screen.QUESTION: question.question,
        F.Screen.PLAN: plan.plan,
        F.Screen.CONVENIENCE: plan.convenience,
        F.Screen.CARD_OFFER: plan.card_offer,
        F.Screen.CARD: card.card,
        F.Screen.ISSUING: ticket.issuing,
        F.Screen.OFFLINE: ticket.offline,
        F.Screen.PRINTING: ticket.printing,
        F.Screen.DONE: ticket.done,
        F.Screen.ABANDONED: ticket.abandoned,
        F.Screen.ERROR: ticket.error,
    }
    th = ctx.theme
    page = BoxLayout(orientation="vertical", padding=(th.pad, 12, th.pad, th.pad), spacing=14)
    fill(page, th.bg)
    top = top_bar(ctx)
    if top is not None:
        page.add_widget(top)
    status = status_line(ctx)
    if status is not None:
        page.add_widget(status)
    body = builders[ctx.state.screen](ctx)
    page.add_widget(body)
    page.add_widget(bottom_band(ctx))
    return page


def top_bar(ctx: ViewContext) -> Widget | None:
    """The language switch (every screen but the start, where languages are the content).

    Only languages live up here: what a seated or short citizen needs to reach — help, larger
    text, contrast, reading aloud — is in the bottom band (:func:`access_band`).
    """
    th, s = ctx.theme, ctx.state
    if s.screen is F.Screen.LANGUAGE:
        return None
    h = th.bar_height
    langs = [BigButton(LANGUAGE_NAMES[code], code, th, lambda c=code: ctx.send(F.ChooseLanguage(c)),
                       role="bar", height=h, selected=code == s.lang, name=f"lang-{code}") for code in LANGUAGES]
    if th.portrait:
        box = BoxLayout(orientation="vertical", spacing=10, size_hint_y=None, height=2 * h + 10)
        box.add_widget(hbox(*langs[:4], spacing=8, height=h))
        box.add_widget(hbox(*langs[4:], spacing=8, height=h))
        return box
    return hbox(*langs, spacing=8, height=h)


def access_controls(ctx: ViewContext) -> list[BigButton]:
    """Read aloud, large text, contrast, "with staff" and "call staff": on every screen, in the
    bottom band, and larger in large-text mode (the toggle must stay findable after using it)."""
    th, s = ctx.theme, ctx.state
    h = th.band_height
    return [
        ctx.button(ctx.t("bar.read_aloud"), F.ReadAloud(),
                   role="band", height=h, name="read-aloud"),
        ctx.button(ctx.t("bar.large_text"), F.ToggleLargeText(), role="band", height=h, selected=s.large_text,
                   name="toggle-large"),
        ctx.button(ctx.t("bar.high_contrast"), F.ToggleHighContrast(), role="band", height=h,
                   selected=s.high_contrast, name="toggle-contrast"),
        ctx.button(ctx.t("bar.with_staff"), F.AssistRequested(), role="band", height=h, name="with-staff"),
        ctx.button(ctx.t("bar.help"), F.HelpPressed(), role="band", height=h, name="help", primary=True),
    ]


def status_line(ctx: ViewContext) -> Widget | None:
    """Offline, staff-assist mode and the one-line notice (help called, wrong PIN…)."""
    s, th = ctx.state, ctx.theme
    parts = []
    if not s.online and s.screen not in (F.Screen.OFFLINE,):
        parts.append(ctx.t("status.offline"))
    elif not s.storage_ok and s.screen is not F.Screen.OFFLINE:
        parts.append(ctx.t("offline.storage"))  # say it before the citizen answers any question
    if s.assist:
        parts.append(ctx.t("staff.mode"))
    if s.notice in ("help.sent", "help.queued", "staff.on", "scan.unreadable", "assist.called"):
        parts.append(ctx.t(s.notice))  # the others are shown next to the pad or answer they concern
    if not parts:
        return None
    line = ctx.text("　/　".join(parts), "small", color=th.primary_fg if th.high_contrast else (1, 1, 1, 1),
                    halign="center", bold=True)
    box = AnchorLayout(size_hint_y=None, height=max(64, th.font("small") * 2 + 10))
    fill(box, th.accent)
    box.add_widget(line)
    return box


def nav_buttons(ctx: ViewContext) -> list[BigButton]:
    """Back and start over where they make sense; staff leave assist mode here."""
    s = ctx.state
    back = s.screen in (F.Screen.PURPOSE, F.Screen.RESERVATION, F.Screen.QUESTION, F.Screen.PLAN,
                        F.Screen.CONVENIENCE, F.Screen.CARD_OFFER, F.Screen.STAFF_PIN, F.Screen.ERROR)
    # (screens with their own "finish" need no second way to the start)
    restart = s.screen not in (F.Screen.LANGUAGE, F.Screen.ISSUING, F.Screen.PRINTING, F.Screen.OFFLINE,
                               F.Screen.DONE, F.Screen.ABANDONED, F.Screen.ERROR, F.Screen.STAFF_PIN)
    h = ctx.theme.band_height
    buttons = []
    if back:
        buttons.append(ctx.button("◀ " + ctx.t("nav.back"), F.Back(), role="band", height=h, name="back"))
    if restart:
        buttons.append(ctx.button(ctx.t("nav.restart"), F.Restart(), role="band", height=h, name="restart"))
    if s.assist and s.screen is not F.Screen.LANGUAGE:
        buttons.append(ctx.button(ctx.t("staff.exit"), F.StaffExit(), role="band", height=h, name="staff-exit"))
    return buttons


def bottom_band(ctx: ViewContext) -> Widget:
    """Navigation and the accessibility controls at the bottom of every screen, within a seated
    user's reach in both orientations (a wheelchair user or a short citizen cannot reach the top
    of a portrait panel). Landscape: one row; portrait: navigation above the controls."""
    th = ctx.theme
    nav, access = nav_buttons(ctx), access_controls(ctx)
    if th.portrait:
        box = BoxLayout(orientation="vertical", spacing=10, size_hint_y=None)
        rows = [nav + [Widget()]] if nav else []
        # large text: five controls do not fit one 1080-pixel row with their enlarged labels
        rows += [access[:3], access[3:]] if th.scale > 1 else [access]
        for r in rows:
            box.add_widget(hbox(*r, spacing=10, height=th.band_height))
        box.height = th.band_height * len(rows) + 10 * (len(rows) - 1)
        return box
    row = hbox(spacing=12, height=th.band_height)
    for b in nav:
        b.size_hint_x = 1.2
        row.add_widget(b)
    row.add_widget(Widget(size_hint_x=0.2 if nav else 0.01))
    for b in access:
        b.size_hint_x = 1.25  # 職員と一緒に fits on one line in large text too
        row.add_widget(b)
    if not nav:  # keep the controls where they always are: right-aligned, same size
        row.children[-1].size_hint_x = 2.6
    return row
