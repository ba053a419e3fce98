"""Issuing, offline, printing, done (number, route, wait, QR), abandoned and error screens."""

from __future__ import annotations

from kivy.uix.anchorlayout import AnchorLayout
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.widget import Widget

from kiosk import flow as F
from kiosk.screens import ViewContext
from kiosk.screens.widgets import fill, qr_image, vstack
from kiosk.ticket import route_lines, site_shared_counters, wait_words, whole_minutes
from printers.layout import format_place, needs_japanese_name


def _message(ctx: ViewContext, title: str, body: str = "", extra: str = "", title_color=None) -> BoxLayout:
    box = BoxLayout(orientation="vertical", spacing=30, padding=(40, 60, 40, 20))
    box.add_widget(ctx.text(title, "title", halign="center", color=title_color))
    if body:
        box.add_widget(ctx.text(body, "heading", halign="center"))
    if extra:
        box.add_widget(ctx.text(extra, "heading", halign="center", color=ctx.theme.muted))
    return box


def issuing(ctx: ViewContext) -> Widget:
    # the server keeps answering busy: say why it takes long (the client retries the same ticket)
    body = ctx.t("issuing.busy") if ctx.state.notice == "issuing.busy" else ""
    box = _message(ctx, ctx.t("issuing.title"), body)
    box.add_widget(Widget())
    return box


def printing(ctx: ViewContext) -> Widget:
    box = _message(ctx, ctx.t("printing.title"))
    box.add_widget(Widget())
    return box


def offline(ctx: ViewContext) -> Widget:
    """Server down while a ticket is pending: what happens next, and a way out."""
    s = ctx.state
    retry = ctx.t("offline.retry")  # no "every 4 s": the backoff is the kiosk's business
    if not s.storage_ok:  # connected, but the server cannot save tickets
        box = _message(ctx, ctx.t("offline.storage"), "", "", title_color=ctx.theme.accent)
    else:
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


#: The number's share of the screen height (the issue's "≥ 25 %": read from a chair, by tired eyes).
NUMBER_SHARE = 0.28
NUMBER_SHARE_PORTRAIT = 0.255  # 490 of 1920 pixels: the route below needs the rest


def done(ctx: ViewContext) -> Widget:
    """The number as large as a quarter of the screen, where to go first, the rest of the route,
    what to have ready, the wait, and the QR to follow it on a phone."""
    from kivy.core.window import Window

    th, s = ctx.theme, ctx.state
    r = s.issue_result or {}
    t = r.get("ticket", {})
    lang = ctx.lang
    portrait = th.portrait
    route = route_lines(r, lang, site_shared_counters(ctx.site_config, r))

    # --- the number
    number_h = round(Window.height * (NUMBER_SHARE_PORTRAIT if portrait else NUMBER_SHARE))
    number_col = BoxLayout(orientation="vertical", spacing=8, size_hint_y=None)
    caption = ctx.text(ctx.t("done.number"), "heading", halign="center")
    number_col.add_widget(caption)
    number_box = AnchorLayout(size_hint_y=None, height=number_h)
    fill(number_box, th.panel, th.border, 3)
    number = ctx.text(str(t.get("number", "")), "huge", halign="center", bold=True, fixed_height=True,
                      size_hint_y=1)
    number.font_size = round(number_h * 0.9)  # the line box of the digits fills the panel
    number.name = "ticket-number"
    number_box.add_widget(number)
    number_col.add_widget(number_box)
    caption.bind(height=lambda *_: setattr(number_col, "height", number_h + 8 + caption.height))
    number_col.height = number_h + 8 + caption.height

    # --- what to do now
    status = vstack(spacing=8)
    if s.assist:
        status.add_widget(ctx.text(ctx.t("done.assist"), "body", halign="center", color=th.accent, bold=True))
    if s.print_error:
        status.add_widget(ctx.text(ctx.printer_messages.get(s.print_error, lang), "body", color=th.accent,
                                   bold=True))
        status.add_widget(ctx.text(ctx.t("done.print_failed"), "small", color=th.accent))
        status.add_widget(ctx.button(ctx.t("done.reprint"), F.Reprint(), role="heading", height=96,
                                     name="reprint"))
    elif s.printed:
        status.add_widget(ctx.text(ctx.t("done.take_ticket"), "heading"))
        if ctx.kiosk.can_print_list(s):  # [printing] list = "on_request": the list only when asked for
            status.add_widget(ctx.button(ctx.t("done.print_list"), F.PrintListPressed(), role="heading", height=96,
                                         name="print-list"))
        elif s.list_printed:
            status.add_widget(ctx.text(ctx.t("done.list_printed"), "body"))
    else:
        status.add_widget(ctx.text(ctx.t("done.no_printer"), "heading"))

    # --- where to go first, then the rest of the route, documents, wait
    info = vstack(spacing=10)
    if route:
        first = route[0]
        panel = vstack(spacing=4, padding=14)
        fill(panel, th.panel, th.primary, 3)
        panel.add_widget(ctx.text(ctx.t("done.first"), "body", color=th.muted))
        panel.add_widget(ctx.text(first.department_name, "title"))
        if needs_japanese_name(first, lang):
            panel.add_widget(ctx.text(first.department_name_ja, "heading"))
        panel.add_widget(ctx.text(format_place(first, lang, ctx.printer_messages), "heading", bold=True))
        info.add_widget(panel)
    visit = whole_minutes(r.get("visit_minutes"))
    wait_text = wait_words(ctx.messages, lang, r)
    info.add_widget(ctx.text(wait_text, "body"))
    if visit is not None and len(route) > 1:
        info.add_widget(ctx.text(ctx.t("plan.visit", minutes=visit), "body"))
    if len(route) > 1:
        info.add_widget(ctx.text(ctx.t("done.then"), "heading"))
        for i, line in enumerate(route[1:], start=2):
            info.add_widget(ctx.text(f"{i}. {line.department_name}", "body", bold=True))
            if needs_japanese_name(line, lang):
                info.add_widget(ctx.text(line.department_name_ja, "small", padding=(48, 0)))
            info.add_widget(ctx.text(format_place(line, lang, ctx.printer_messages), "small", color=th.muted,
                                     padding=(48, 0)))
    docs = [d["name"] for d in (r.get("plan") or {}).get("documents", [])]
    if docs:
        info.add_widget(ctx.text(ctx.label("documents"), "heading"))
        for d in docs:
            info.add_widget(ctx.text("・" + d, "body"))

    url = t.get("status_url", "")

    outer = BoxLayout(orientation="vertical", spacing=14)
    from kiosk.screens.plan import paged

    if portrait:
        outer.add_widget(number_col)
        row = BoxLayout(orientation="horizontal", spacing=20, size_hint_y=None)
        row.add_widget(status)
        if url:  # the QR beside what to do now, its caption in the same column: the route needs the height
            status.add_widget(ctx.text(ctx.t("done.qr") + " →", "small", color=th.muted))
            holder = AnchorLayout(anchor_y="top", size_hint_x=None, width=220)
            holder.add_widget(qr_image(url, 220))
            row.add_widget(holder)
        fit = lambda *_: setattr(row, "height", max(status.height, 220 if url else 0))  # noqa: E731
        status.bind(height=fit)
        fit()
        outer.add_widget(row)
        outer.add_widget(paged(ctx, info, "route"))
    else:
        main = BoxLayout(orientation="horizontal", spacing=30)
        left = BoxLayout(orientation="vertical", spacing=10, size_hint_x=0.42)
        left.add_widget(number_col)
        left.add_widget(status)
        left.add_widget(Widget())
        right = BoxLayout(orientation="vertical", spacing=10, size_hint_x=0.58)
        right.add_widget(paged(ctx, info, "route"))
        if url:
            qr_row = BoxLayout(orientation="horizontal", spacing=16, size_hint_y=None, height=160)
            qr_row.add_widget(qr_image(url, 160))
            qr_row.add_widget(ctx.text(ctx.t("done.qr"), "small", fixed_height=True, size_hint_y=1))
            # large text needs the left column's height for the number and what to do now
            # large text or a printer message needs the left column's height for the number and
            # what to do now
            # (the procedure-list button or its note take that room too)
            crowded = th.scale > 1 or s.print_error or s.list_printed or ctx.kiosk.can_print_list(s)
            (right if crowded else left).add_widget(qr_row)
        main.add_widget(left)
        main.add_widget(right)
        outer.add_widget(main)
    outer.add_widget(ctx.button(ctx.t("done.finish"), F.Finish(), primary=True, role="title", name="finish"))
    return outer
