"""The My Number card screens over kiosk.card.flow: insert, PIN pad (masked), warnings, consent."""

from __future__ import annotations

from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.widget import Widget

from kiosk import flow as F
from kiosk.card import flow as C
from kiosk.screens import ViewContext
from kiosk.screens.pictograms import Pictogram
from kiosk.screens.widgets import digit_pad, fill, hbox

#: What each card-screen button sends into the card flow.
ACTION_EVENTS = {
    C.Action.SKIP: C.Skip(),
    C.Action.RETRY: C.Retry(),
    C.Action.CONFIRM: C.LastTryConfirmed(),
    C.Action.SEND: C.ConsentGiven(),
    C.Action.DECLINE: C.ConsentDeclined(),
}


def card(ctx: ViewContext) -> Widget:
    th, cs = ctx.theme, ctx.state.card
    assert cs is not None
    lang, cm = ctx.lang, ctx.card_messages
    box = BoxLayout(orientation="vertical", spacing=18)
    text = cs.text(cm, lang)
    warn = cs.step in (C.Step.FAILED, C.Step.CONFIRM_LAST_TRY) or cs.notice_key is not None
    box.add_widget(ctx.text(text, "title", color=th.accent if warn else th.fg))
    if cs.step is C.Step.ENTER_PIN:
        # Pad and buttons side by side (landscape): stacked, they would not fit under the text.
        row = BoxLayout(orientation="vertical" if th.portrait else "horizontal", spacing=30)
        col = BoxLayout(orientation="vertical", spacing=14, size_hint=(None, 1), width=624)
        shown = AnchorLayout(size_hint_y=None, height=104)
        fill(shown, th.panel, th.border, 2)
        shown.add_widget(ctx.text("●" * ctx.pin_length or " ", "title", halign="center"))
        col.add_widget(shown)
        col.add_widget(digit_pad(th, lang, ctx.pin_digit, ctx.pin_delete, ctx.pin_submit, ctx.t("nav.ok"),
                                 ctx.t("nav.delete"), key_height=92 if not th.portrait else 130))
        col.add_widget(Widget())
        row.add_widget(col)
        side = BoxLayout(orientation="vertical", spacing=18)
        for action in cs.actions:
            side.add_widget(ctx.button(cm.get(action.message_key, lang), F.CardEvent(ACTION_EVENTS[action]),
                                       role="heading", name=f"card-{action.name.lower()}"))
        side.add_widget(Widget())
        row.add_widget(side)
        box.add_widget(row)
        return box
    elif cs.step is C.Step.CONSENT and cs.record is not None:
        grid = GridLayout(cols=2, spacing=(24, 12), size_hint_y=None)
        grid.bind(minimum_height=grid.setter("height"))
        for label, value in C.consent_items(cs.record, cm, lang):
            k = ctx.text(label, "heading", color=th.muted, size_hint_x=0.3)
            v = ctx.text(value, "heading", size_hint_x=0.7)
            grid.add_widget(k)
            grid.add_widget(v)
        box.add_widget(grid)
        box.add_widget(Widget())
    elif cs.step is C.Step.INSERT_CARD:
        # where the card goes, as a picture: the reader lies below the screen
        box.add_widget(Pictogram("card_reader", th.fg))
        box.add_widget(ctx.text(ctx.t("card.where"), "heading", halign="center", color=th.muted))
    else:
        box.add_widget(Widget())
    if cs.actions:
        row = hbox(spacing=24, height=round(150 * th.scale))
        for action in cs.actions:
            primary = action in (C.Action.SEND, C.Action.CONFIRM, C.Action.RETRY)
            row.add_widget(ctx.button(cm.get(action.message_key, lang), F.CardEvent(ACTION_EVENTS[action]),
                                      role="heading", primary=primary, height=0,
                                      name=f"card-{action.name.lower()}"))
        box.add_widget(row)
    return box
