"""Start (language), purpose, reservation code and staff PIN screens."""

from __future__ import annotations

from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.widget import Widget

from kiosk import flow as F
from kiosk.screens import ViewContext
from kiosk.screens.pictograms import DRAWINGS
from kiosk.screens.widgets import BigButton, digit_pad, fill
from queue_server.core.i18n import LANGUAGE_NAMES, LANGUAGES


def language(ctx: ViewContext) -> Widget:
    """Welcome and the seven languages, each written in itself; the staff entry sits apart."""
    th = ctx.theme
    box = BoxLayout(orientation="vertical", spacing=24)
    box.add_widget(ctx.text(ctx.messages.get("language.welcome", "ja"), "title", halign="center"))
    # The prompt in Japanese and English first: most visitors read one of them.
    box.add_widget(ctx.text(ctx.messages.get("language.title", "ja") + "\n"
                            + ctx.messages.get("language.title", "en"), "heading", halign="center",
                            color=th.muted))
    cols = 2 if th.portrait else 4
    grid = GridLayout(cols=cols, spacing=20, size_hint_y=None)
    grid.bind(minimum_height=grid.setter("height"))
    for code in LANGUAGES:
        grid.add_widget(BigButton(LANGUAGE_NAMES[code], code, th, lambda c=code: ctx.send(F.ChooseLanguage(c)),
                                  role="title", height=round((240 if th.portrait else 170) * th.scale), primary=True,
                                  name=f"lang-{code}"))
    box.add_widget(grid)
    box.add_widget(Widget())
    if ctx.staff_enabled:
        row = BoxLayout(size_hint_y=None, height=96)
        row.add_widget(Widget())
        staff = ctx.button(ctx.t("staff.button"), F.StaffPressed(), role="small", height=96, name="staff")
        staff.size_hint_x, staff.width = None, 220
        row.add_widget(staff)
        box.add_widget(row)
    return box


def purpose(ctx: ViewContext) -> Widget:
    """Life events, certificates, consultation and reservation check-in as big buttons."""
    th = ctx.theme
    box = BoxLayout(orientation="vertical", spacing=20)
    adding = ctx.state.adding  # one more purpose for this visit: those chosen are not offered again
    box.add_widget(ctx.text(ctx.t("purpose.add_title" if adding else "purpose.title"), "title"))
    cols = 2 if th.portrait else 3
    grid = GridLayout(cols=cols, spacing=18)
    for pid in ctx.kiosk.offered_purposes(ctx.state):
        name = purpose_name(ctx, pid)
        # long names (相談（福祉・子ども・障がい・介護）) one size smaller, so they wrap cleanly
        role = "body" if len(name) > 16 and ctx.lang in ("ja", "ja-easy", "zh") else "heading"
        grid.add_widget(ctx.button(bracket_break(name), F.ChoosePurpose(pid), role=role, height=0,
                                   name=f"purpose-{pid}", icon=pid if pid in DRAWINGS else None))
    if not adding:  # (a booking is a visit of its own)
        grid.add_widget(ctx.button(ctx.t("purpose.reservation"), F.ChooseReservation(), role="heading", height=0,
                                   primary=True, name="purpose-reservation", icon="reservation"))
    box.add_widget(grid)
    return box


def purpose_name(ctx: ViewContext, pid: str) -> str:
    """The button's wording (the same label the keypad path reads aloud)."""
    from kiosk.keypad import purpose_label

    return purpose_label(ctx.kiosk, ctx.messages, pid, ctx.lang)


def bracket_break(name: str) -> str:
    """Start a full-width parenthesis on its own line: "転居（市内で引っ越し）" would otherwise wrap
    inside the brackets and leave a lone "）" (Kivy wraps CJK at any character, with no kinsoku)."""
    head, sep, tail = name.partition("（")
    return f"{head}\n{sep}{tail}" if sep and head else name


def _masked(ctx: ViewContext, shown: str) -> Widget:
    th = ctx.theme
    holder = AnchorLayout(size_hint=(None, None), size=(624, 130))
    fill(holder, th.panel, th.border, 2)
    holder.add_widget(ctx.text(shown or " ", "title", halign="center"))
    return holder


def _pad_screen(ctx: ViewContext, title: str, shown: str, on_digit, on_delete, on_ok, hint: str = "") -> Widget:
    th = ctx.theme
    outer = BoxLayout(orientation="vertical", spacing=18)
    outer.add_widget(ctx.text(title, "title"))
    if hint:
        outer.add_widget(ctx.text(hint, "body", color=th.muted))
    if ctx.state.notice and ctx.state.notice in ("staff.pin_wrong", "reservation.too_short",
                                                 "question.out_of_range", "reservation.checking"):
        calm = ctx.state.notice == "reservation.checking"  # the booking's list is on its way: no warning
        outer.add_widget(ctx.text(ctx.t(ctx.state.notice), "heading", color=th.muted if calm else th.accent))
    centre = AnchorLayout(anchor_x="center", anchor_y="top")
    col = BoxLayout(orientation="vertical", spacing=16, size_hint=(None, None), width=624)
    col.add_widget(_masked(ctx, shown))
    key_h = 110 if not th.portrait else 140
    pad = digit_pad(th, ctx.lang, on_digit, on_delete, on_ok, ctx.t("nav.ok"), ctx.t("nav.delete"), key_h)
    col.add_widget(pad)
    col.height = 130 + 16 + pad.height
    centre.add_widget(col)
    outer.add_widget(centre)
    return outer


def reservation(ctx: ViewContext) -> Widget:
    s = ctx.state
    return _pad_screen(ctx, ctx.t("reservation.title"), s.entry,
                       lambda d: ctx.send(F.PadDigit(d)), lambda: ctx.send(F.PadDelete()),
                       lambda: ctx.send(F.PadDone()), hint=ctx.t("reservation.hint"))


def staff_pin(ctx: ViewContext) -> Widget:
    """Masked: the digits stay in the shell's buffer; only dots are drawn."""
    return _pad_screen(ctx, ctx.t("staff.title"), "●" * ctx.pin_length, ctx.pin_digit, ctx.pin_delete,
                       ctx.pin_submit)
