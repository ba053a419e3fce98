"""The personal procedure list, the convenience-store notice and the card offer."""

from __future__ import annotations

from kivy.uix.boxlayout import BoxLayout
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from kiosk import flow as F
from kiosk.screens import ViewContext
from kiosk.screens.widgets import fill, hbox, paged_scroll, qr_image, vstack
from kiosk.ticket import wait_words, whole_minutes


def wait_lines(ctx: ViewContext) -> list[str]:
    """The wait and whole-visit estimate as the server gave them, or why there is none."""
    s = ctx.state
    if s.waits is None:
        return [ctx.t("plan.offline") if s.plan_offline else ctx.t("plan.waits_loading")]
    visit = whole_minutes(s.waits.get("visit_minutes"))
    lines = [wait_words(ctx.messages, ctx.lang, s.waits)]
    if visit is not None:
        lines.append(ctx.t("plan.visit", minutes=visit))
    return lines


def _panel(ctx: ViewContext, padding: int = 18) -> BoxLayout:
    box = vstack(spacing=8, padding=padding)
    fill(box, ctx.theme.panel, ctx.theme.border, 1.5)
    return box


def _alt_row(ctx: ViewContext, name: str, text: str, url: str) -> Widget:
    """An alternative with its link as a QR code the citizen can scan before leaving."""
    th = ctx.theme
    qr = round(190 * min(th.scale, 1.2))
    row = BoxLayout(orientation="horizontal", spacing=20, size_hint_y=None)
    col = vstack(spacing=6)
    col.add_widget(ctx.text(name, "heading"))
    col.add_widget(ctx.text(text, "body"))
    col.add_widget(ctx.text(ctx.t("plan.scan") + " →", "small", color=th.muted))
    row.add_widget(col)
    if url:
        row.add_widget(qr_image(url, qr))
    row.height = qr
    col.bind(height=lambda *_: setattr(row, "height", max(qr, col.height)))
    return row


def plan_body(ctx: ViewContext) -> BoxLayout:
    """Steps in visiting order, what to bring, what could be done elsewhere, external procedures."""
    th, p = ctx.theme, ctx.state.plan or {}
    body = vstack(spacing=18)
    steps = p.get("steps", [])
    if steps:
        body.add_widget(ctx.text(ctx.t("plan.steps"), "heading"))
        # One column, in visiting order: 1 is read before 2, never beside 5.
        for i, st in enumerate(steps, start=1):
            panel = _panel(ctx)
            panel.add_widget(ctx.text(f"{i}.  {st['department_name']}", "heading"))
            for proc in st["procedures"]:
                line = "・" + proc["name"]
                if proc.get("to_confirm"):
                    line += f"（{ctx.label('to_confirm')}）"
                if proc.get("deadline"):
                    line += f" — {ctx.label('deadline')}: {proc['deadline']}"
                panel.add_widget(ctx.text(line, "body"))
            body.add_widget(panel)
    else:
        body.add_widget(ctx.text(ctx.t("plan.nothing_here"), "heading", color=th.accent))
    docs = p.get("documents", [])
    if docs:
        panel = _panel(ctx)
        panel.add_widget(ctx.text(ctx.label("documents"), "heading"))
        for d in docs:
            panel.add_widget(ctx.text("・" + d["name"], "body"))
        body.add_widget(panel)
    online = [a for a in p.get("online", []) if a]
    if online:
        panel = _panel(ctx)
        panel.add_widget(ctx.text(ctx.label("online"), "heading"))
        for a in online:
            panel.add_widget(_alt_row(ctx, a["procedure_name"], a["text"], a.get("url", "")))
        body.add_widget(panel)
    external = p.get("external", [])
    if external:
        panel = _panel(ctx)
        panel.add_widget(ctx.text(ctx.label("external"), "heading"))
        for e in external:
            where = f"（{e['where']}）" if e.get("where") else ""
            mark = f"（{ctx.label('to_confirm')}）" if e.get("to_confirm") else ""
            panel.add_widget(ctx.text(f"・{e['name']}{where}{mark}", "body"))
        body.add_widget(panel)
    return body


def plan(ctx: ViewContext) -> Widget:
    th, s = ctx.theme, ctx.state
    box = BoxLayout(orientation="vertical", spacing=14)
    summary = _panel(ctx, padding=14)
    for line in wait_lines(ctx):
        summary.add_widget(ctx.text(line, "heading"))
    if th.portrait:
        box.add_widget(ctx.text(ctx.label("plan_title"), "title"))
        box.add_widget(summary)
    else:  # title beside the waits: the list below gets the height
        head = BoxLayout(orientation="horizontal", spacing=20, size_hint_y=None)
        title = ctx.text(ctx.label("plan_title"), "title", size_hint_x=0.4)
        head.add_widget(title)
        summary.size_hint_x = 0.6
        head.add_widget(summary)
        summary.bind(height=lambda *_: setattr(head, "height", max(summary.height, title.height)))
        box.add_widget(head)
    box.add_widget(paged(ctx, plan_body(ctx), "plan"))
    buttons = []
    if ctx.kiosk.can_add_purpose(s):  # 転入 and 出生 on one list and one ticket (flow.AddPurpose)
        buttons.append(ctx.button("＋ " + ctx.t("plan.add_purpose"), F.AddPurpose(), role="heading",
                                  height=130, name="add-purpose"))
    if s.plan and s.plan.get("steps"):
        buttons.append(ctx.button(ctx.t("plan.take_number") + " ▶", F.TakeNumber(), primary=True, role="title",
                                  height=130, name="take-number"))
    if len(buttons) == 2 and not th.portrait:  # the number first in size: it is what most citizens came for
        buttons[0].size_hint_x, buttons[1].size_hint_x = 0.38, 0.62
        box.add_widget(hbox(*buttons, height=130))
    else:  # portrait: a third of its narrow width cut "Add another purpose" in large text: one per row
        for b in buttons:
            box.add_widget(b)
    return box


def paged(ctx: ViewContext, content: Widget, name: str) -> Widget:
    return paged_scroll(content, ctx.theme, ctx.lang, ctx.t("list.more_below"), ctx.t("list.page_up"),
                        ctx.t("list.page_down"), name=name)


def convenience(ctx: ViewContext) -> Widget:
    """Said before the list: these certificates need no queue with a My Number card."""
    box = BoxLayout(orientation="vertical", spacing=18)
    box.add_widget(ctx.text(ctx.t("convenience.title"), "title"))
    box.add_widget(ctx.text(ctx.t("convenience.body"), "heading"))
    scroll = ScrollView(do_scroll_x=False, bar_width=14)
    items = vstack(spacing=16)
    for a in ctx.kiosk.convenience_items(ctx.state):
        panel = _panel(ctx)
        panel.add_widget(_alt_row(ctx, a["procedure_name"], a["text"], a.get("url", "")))
        items.add_widget(panel)
    scroll.add_widget(items)
    box.add_widget(scroll)
    box.add_widget(ctx.button(ctx.t("convenience.take_number") + " ▶", F.TakeNumber(), primary=True,
                              role="title", height=130, name="convenience-continue"))
    return box


def card_offer(ctx: ViewContext) -> Widget:
    th = ctx.theme
    box = BoxLayout(orientation="vertical", spacing=24)
    box.add_widget(ctx.text(ctx.t("card.offer.title"), "title"))
    box.add_widget(ctx.text(ctx.t("card.offer.body"), "heading"))
    box.add_widget(Widget())
    box.add_widget(hbox(ctx.button(ctx.t("card.offer.skip"), F.SkipCard(), role="heading", height=0,
                                   name="card-skip"),
                        ctx.button(ctx.t("card.offer.use"), F.UseCard(), role="heading", primary=True, height=0,
                                   name="card-use"),
                        spacing=24, height=round(180 * th.scale)))
    return box
