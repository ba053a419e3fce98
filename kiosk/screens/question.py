"""One question per screen: yes / no / わからない, a choice list, a number pad or a multi-select."""

from __future__ import annotations

from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.gridlayout import GridLayout
from kivy.uix.progressbar import ProgressBar
from kivy.uix.widget import Widget

from kiosk import flow as F
from kiosk.screens import ViewContext
from kiosk.screens.widgets import digit_pad, fill, hbox


def question(ctx: ViewContext) -> Widget:
    th, s = ctx.theme, ctx.state
    q = ctx.kiosk.question_view(s)
    assert q is not None
    n, left = ctx.kiosk.progress(s)
    box = BoxLayout(orientation="vertical", spacing=16)
    bar = ProgressBar(max=n + left, value=n, size_hint_y=None, height=18)
    # "3 / 約10": skipped questions make the total an estimate, said as one ("about"), not a maximum
    progress = ctx.t("question.progress", n=n, total=ctx.kiosk.estimated_total(s)) if left else ctx.t("question.progress_last", n=n)
    box.add_widget(hbox(ctx.text(progress, "small", color=th.muted), height=44))
    box.add_widget(bar)
    box.add_widget(ctx.text(q["text"], "title"))
    if q.get("help"):
        box.add_widget(ctx.text(q["help"], "body", color=th.muted))
    if s.notice in ("question.choose_one", "question.out_of_range"):
        box.add_widget(ctx.text(ctx.t(s.notice), "heading", color=th.accent))
    unknown = next(c for c in q["choices"] if c["value"] == "unknown")
    kind = q["kind"]
    if kind == "yesno":
        if th.portrait:  # full-width answers, one under the other, at hand height
            row = BoxLayout(orientation="vertical", spacing=24, size_hint_y=None,
                            height=3 * round(200 * th.scale) + 48)
        else:
            row = hbox(spacing=24, height=round(220 * th.scale))
        for c in q["choices"]:
            row.add_widget(ctx.button(c["text"], F.Answer(c["value"]), role="title", height=0,
                                      primary=c["value"] != "unknown", name=f"answer-{c['value']}"))
        box.add_widget(row)
        box.add_widget(Widget())
    elif kind == "choice":
        grid = GridLayout(cols=1 if th.portrait or len(q["choices"]) <= 4 else 2, spacing=14, size_hint_y=None)
        grid.bind(minimum_height=grid.setter("height"))
        for c in q["choices"]:
            grid.add_widget(ctx.button(c["text"], F.Answer(c["value"]), role="heading",
                                       primary=c["value"] != "unknown", name=f"answer-{c['value']}"))
        box.add_widget(grid)
        box.add_widget(Widget())
    elif kind == "number":
        row = BoxLayout(orientation="vertical" if th.portrait else "horizontal", spacing=30)
        left_col = BoxLayout(orientation="vertical", spacing=14, size_hint=(None, 1), width=624)
        shown = AnchorLayout(size_hint_y=None, height=110)
        fill(shown, th.panel, th.border, 2)
        shown.add_widget(ctx.text(s.entry or " ", "title", halign="center"))
        left_col.add_widget(shown)
        pad = digit_pad(th, ctx.lang, lambda d: ctx.send(F.PadDigit(d)), lambda: ctx.send(F.PadDelete()),
                        lambda: ctx.send(F.PadDone()), ctx.t("nav.ok"), ctx.t("nav.delete"),
                        key_height=92 if not th.portrait else 130)
        left_col.add_widget(pad)
        left_col.add_widget(Widget())
        row.add_widget(left_col)
        right = BoxLayout(orientation="vertical", spacing=14)
        right.add_widget(ctx.text(ctx.t("question.number_hint"), "body", color=th.muted))
        right.add_widget(ctx.button(unknown["text"], F.Answer("unknown"), role="heading", name="answer-unknown"))
        right.add_widget(Widget())
        row.add_widget(right)
        box.add_widget(row)
    else:  # multi: toggle buttons, then Next
        grid = GridLayout(cols=1 if th.portrait else 2, spacing=14, size_hint_y=None)
        grid.bind(minimum_height=grid.setter("height"))
        for c in q["choices"]:
            if c["value"] == "unknown":
                continue
            chosen = c["value"] in s.selection
            grid.add_widget(ctx.button(("✓ " if chosen else "") + c["text"], F.ToggleChoice(c["value"]),
                                       role="heading", selected=chosen, name=f"choice-{c['value']}"))
        box.add_widget(grid)
        box.add_widget(Widget())
        box.add_widget(hbox(ctx.button(unknown["text"], F.Answer("unknown"), name="answer-unknown"),
                            ctx.button(ctx.t("question.next") + " ▶", F.Answer("selected"), primary=True,
                                       name="answer-next"),
                            spacing=24, height=th.button_height))
    return box
