"""Thin Kivy views over kiosk.flow: each builder turns a state into widgets; buttons send events.

Nothing here decides anything: what to show is ``state.screen`` and its fields, what a button
does is an event for :meth:`kiosk.flow.Kiosk.step`. Every text comes from kiosk/messages.toml,
the catalogue, kiosk/card/messages.toml or printers/messages.toml in the state's language.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    page.add_widget(top_bar(ctx))
    status = status_line(ctx)
    if status is not None:
        page.add_widget(status)
    body = builders[ctx.state.screen](ctx)
    page.add_widget(body)
    nav = nav_bar(ctx)
    if nav is not None:
        page.add_widget(nav)
    return page


def top_bar(ctx: ViewContext) -> Widget:
    """Language switch (every screen but the start, where languages are the content), the
    large-text and high-contrast toggles, and "call staff"."""
    th, s = ctx.theme, ctx.state
    h = th.bar_height
    langs = []
    if s.screen is not F.Screen.LANGUAGE:
        for code in LANGUAGES:
            langs.append(BigButton(LANGUAGE_NAMES[code], code, th, lambda c=code: ctx.send(F.ChooseLanguage(c)),
                                   role="bar", height=h, selected=code == s.lang, name=f"lang-{code}"))
    toggles = [
        ctx.button(ctx.t("bar.large_text"), F.ToggleLargeText(), role="bar", height=h, selected=s.large_text,
                   name="toggle-large"),
        ctx.button(ctx.t("bar.high_contrast"), F.ToggleHighContrast(), role="bar", height=h,
                   selected=s.high_contrast, name="toggle-contrast"),
        ctx.button(ctx.t("bar.help"), F.HelpPressed(), role="bar", height=h, name="help", primary=True),
    ]
    if th.portrait and langs:
        box = BoxLayout(orientation="vertical", spacing=10, size_hint_y=None, height=2 * h + 10)
        box.add_widget(hbox(*langs[:4], spacing=8, height=h))
        box.add_widget(hbox(*langs[4:], *toggles, spacing=8, height=h))
        # portrait: 3 languages + 3 toggles on the second row
        return box
    row = hbox(*langs, spacing=8, height=h)
    spacer = Widget(size_hint_x=0.02 if langs else 1)
    row.add_widget(spacer)
    for t in toggles:
        t.size_hint_x = 1.3 if langs else 0.5
        row.add_widget(t)
    return row


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
    if s.notice in ("help.sent", "help.queued", "staff.on", "scan.unreadable"):
        parts.append(ctx.t(s.notice))  # the others are shown next to the pad or answer they concern
    if not parts:
        return None
    line = ctx.text("　/　".join(parts), "small", color=th.primary_fg if th.high_contrast else (1, 1, 1, 1),
                    halign="center", bold=True)
    box = AnchorLayout(size_hint_y=None, height=max(64, th.font("small") * 2 + 10))
    fill(box, th.accent)
    box.add_widget(line)
    return box


def nav_bar(ctx: ViewContext) -> Widget | None:
    """Back and start over where they make sense; staff leave assist mode here."""
    s = ctx.state
    back = s.screen in (F.Screen.PURPOSE, F.Screen.RESERVATION, F.Screen.QUESTION, F.Screen.PLAN,
                        F.Screen.CONVENIENCE, F.Screen.CARD_OFFER, F.Screen.STAFF_PIN, F.Screen.ERROR)
    # (screens with their own "finish" need no second way to the start)
    restart = s.screen not in (F.Screen.LANGUAGE, F.Screen.ISSUING, F.Screen.PRINTING, F.Screen.OFFLINE,
                               F.Screen.DONE, F.Screen.ABANDONED, F.Screen.ERROR, F.Screen.STAFF_PIN)
    buttons = []
    if back:
        buttons.append(ctx.button("◀ " + ctx.t("nav.back"), F.Back(), name="back"))
    if restart:
        buttons.append(ctx.button(ctx.t("nav.restart"), F.Restart(), name="restart"))
    if s.assist and s.screen is not F.Screen.LANGUAGE:
        buttons.append(ctx.button(ctx.t("staff.exit"), F.StaffExit(), name="staff-exit"))
    if not buttons:
        return None
    row = hbox(spacing=24, height=ctx.theme.button_height)
    for b in buttons:
        b.size_hint_x = None
        b.width = 420 if not ctx.theme.portrait else 320
        row.add_widget(b)
    row.add_widget(Widget())
    return row
