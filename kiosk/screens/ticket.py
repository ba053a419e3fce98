"""Issuing, offline, printing, done (number, route, wait, QR), abandoned and error screens."""

from __future__ import annotations

from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from kiosk import flow as F
from kiosk.screens import ViewContext
from kiosk.screens.widgets import fill, qr_image, vstack
from kiosk.ticket import route_lines, site_shared_counters, whole_minutes
from printers.layout import format_place


def _message(ctx: ViewContext, title: str, body: str = "", extra: str = "", title_color=None) -> BoxLayout:
    box = BoxLayout(orientation="vertical", spacing=30, padding=(40, 60, 40, 20))
    box.add_widget(ctx.text(title, "title", halign="center", color=title_color))
    if body:
        box.add_widget(ctx.text(body, "heading", halign="center"))
    if extra:
        box.add_widget(ctx.text(extra, "heading", halign="center", color=ctx.theme.muted))
    return box


def issuing(ctx: ViewContext) -> Widget:
    box = _message(ctx, ctx.t("issuing.title"))
    box.add_widget(Widget())
    return box


def printing(ctx: ViewContext) -> Widget:
    box = _message(ctx, ctx.t("printing.title"))
    box.add_widget(Widget())
    return box


def offline(ctx: ViewContext) -> Widget:
    """Server down while a ticket is pending: what happens next, and a way out."""
    retry = ctx.t("offline.retry")  # no "every 4 s": the backoff is the kiosk's business
    box = _message(ctx, ctx.t("offline.title"), ctx.t("offline.body"), retry, title_color=ctx.theme.accent)
    box.add_widget(Widget())
    anchor = AnchorLayout(size_hint_y=None, height=ctx.theme.button_height)
    b = ctx.button(ctx.t("offline.abandon"), F.Abandon(), role="heading", name="abandon")
    b.size_hint_x, b.width = None, 520
    anchor.add_widget(b)
    box.add_widget(anchor)
    return box


def abandoned(ctx: ViewContext) -> Widget:
    box = _message(ctx, ctx.t("abandoned.title"), ctx.t("abandoned.body"), title_color=ctx.theme.accent)
    box.add_widget(Widget())
    box.add_widget(ctx.button(ctx.t("done.finish"), F.Finish(), primary=True, role="title", name="finish"))
    return box


def error(ctx: ViewContext) -> Widget:
    code = ctx.state.error_code or "internal"
    if code in F.RESERVATION_ERRORS:
        box = _message(ctx, ctx.t(f"error.{code}"), ctx.t("error.reservation_retry"), title_color=ctx.theme.accent)
    else:
        # the code goes to the log and the staff console, never on the citizen's screen
        body = ctx.t("plan.nothing_here") if code == "empty_route" else ctx.t("error.body")
        box = _message(ctx, ctx.t("error.title"), body, title_color=ctx.theme.accent)
    box.add_widget(Widget())
    box.add_widget(ctx.button(ctx.t("done.finish"), F.Finish(), primary=True, role="title", name="finish"))
    return box


def done(ctx: ViewContext) -> Widget:
    """The number as large as the screen allows, where to go, the wait, and the QR to follow it."""
    th, s = ctx.theme, ctx.state
    r = s.issue_result or {}
    t = r.get("ticket", {})
    lang = ctx.lang
    portrait = th.portrait
    outer = BoxLayout(orientation="vertical", spacing=16)
    main = BoxLayout(orientation="vertical" if portrait else "horizontal", spacing=30)

    left = vstack(spacing=12)
    left.add_widget(ctx.text(ctx.t("done.number"), "heading", halign="center"))
    number_box = AnchorLayout(size_hint_y=None, height=round(230 * min(th.scale, 1.15)))
    fill(number_box, th.panel, th.border, 3)
    number = ctx.text(str(t.get("number", "")), "huge", halign="center", bold=True)
    number.font_size = round(th.font("huge") * 1.2)
    number_box.add_widget(number)
    left.add_widget(number_box)
    if s.assist:
        left.add_widget(ctx.text(ctx.t("done.assist"), "body", halign="center", color=th.accent, bold=True))
    if s.print_error:
        left.add_widget(ctx.text(ctx.printer_messages.get(s.print_error, lang), "heading", color=th.accent,
                                 bold=True))
        left.add_widget(ctx.text(ctx.t("done.print_failed"), "body", color=th.accent))
        left.add_widget(ctx.button(ctx.t("done.reprint"), F.Reprint(), role="heading", name="reprint"))
    elif s.printed:
        left.add_widget(ctx.text(ctx.t("done.take_ticket"), "heading"))
    else:
        left.add_widget(ctx.text(ctx.t("done.no_printer"), "heading"))
    wait = whole_minutes(r.get("wait_minutes"))
    visit = whole_minutes(r.get("visit_minutes"))
    wait_text = ctx.t("plan.wait_unknown") if wait is None else (
        ctx.t("plan.wait_soon") if wait <= 0 else ctx.t("plan.wait", minutes=wait))
    left.add_widget(ctx.text(wait_text, "body"))
    if visit is not None and len(r.get("route", [])) > 1:
        left.add_widget(ctx.text(ctx.t("plan.visit", minutes=visit), "body"))

    middle = vstack(spacing=8)
    middle.add_widget(ctx.text(ctx.t("done.route"), "heading"))
    # the same floor and counter wording as the printed ticket (térreo, 1F, 4番窓口（共用）)
    for i, line in enumerate(route_lines(r, lang, site_shared_counters(ctx.site_config, r)), start=1):
        place = format_place(line, lang, ctx.printer_messages)
        middle.add_widget(ctx.text(f"{i}. {line.department_name}", "body", bold=True))
        if line.department_name_ja and line.department_name_ja != line.department_name and lang != "ja":
            middle.add_widget(ctx.text("      " + line.department_name_ja, "small"))
        middle.add_widget(ctx.text("      " + place, "small", color=th.muted))

    qr_col = vstack(spacing=8)
    url = t.get("status_url", "")
    if url:
        size = 300 if not portrait else 340
        anchor = AnchorLayout(size_hint_y=None, height=size)
        anchor.add_widget(qr_image(url, size))
        qr_col.add_widget(anchor)
        qr_col.add_widget(ctx.text(ctx.t("done.qr"), "small", halign="center"))

    if portrait:
        main.add_widget(left)
        main.add_widget(middle)
        main.add_widget(qr_col)
        main.add_widget(Widget())
    else:
        left_holder = BoxLayout(orientation="vertical", size_hint_x=0.34)
        left_holder.add_widget(left)
        left_holder.add_widget(Widget())
        # A long route (7 departments, long English names) scrolls rather than spilling over the bar.
        mid_holder = ScrollView(do_scroll_x=False, bar_width=12, size_hint_x=0.44)
        mid_holder.add_widget(middle)
        qr_holder = BoxLayout(orientation="vertical", size_hint_x=0.22)
        qr_holder.add_widget(qr_col)
        qr_holder.add_widget(Widget())
        main.add_widget(left_holder)
        main.add_widget(mid_holder)
        main.add_widget(qr_holder)
    outer.add_widget(main)
    outer.add_widget(ctx.button(ctx.t("done.finish"), F.Finish(), primary=True, role="title", name="finish"))
    return outer
