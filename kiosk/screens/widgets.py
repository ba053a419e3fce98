"""Building blocks of the kiosk views: themed text, big buttons, digit pads, QR codes.

Sizes are in pixels of a 1080-pixel-high (landscape) or 1080-pixel-wide (portrait) screen. The
smallest touch target is :data:`MIN_TARGET_PX`: 15 mm on the smallest full-HD kiosk screen we
expect (21.5", 4.03 px/mm) is 61 px; targets here are larger still.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from kivy.graphics import Color, Line, Rectangle
from kivy.graphics.texture import Texture
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.gridlayout import GridLayout
from kivy.uix.image import Image
from kivy.uix.label import Label
from kivy.uix.widget import Widget

from kiosk.fonts import break_lines, escape, needs_kinsoku, runs
from queue_server.core import ruby

#: 15 mm at 4.03 px/mm (21.5" full-HD panel), rounded up.
MIN_TARGET_PX = 61


@dataclass(frozen=True)
class Theme:
    """Colours and sizes for one combination of the large-text and high-contrast toggles."""

    scale: float
    high_contrast: bool
    portrait: bool

    # colours (r, g, b, a)
    @property
    def bg(self) -> tuple[float, ...]:
        return (0, 0, 0, 1) if self.high_contrast else (0.96, 0.96, 0.94, 1)

    @property
    def fg(self) -> tuple[float, ...]:
        return (1, 1, 1, 1) if self.high_contrast else (0.08, 0.08, 0.1, 1)

    @property
    def muted(self) -> tuple[float, ...]:
        return (0.9, 0.9, 0.9, 1) if self.high_contrast else (0.3, 0.3, 0.33, 1)

    @property
    def primary(self) -> tuple[float, ...]:
        return (1, 0.86, 0, 1) if self.high_contrast else (0.0, 0.33, 0.62, 1)

    @property
    def primary_fg(self) -> tuple[float, ...]:
        return (0, 0, 0, 1) if self.high_contrast else (1, 1, 1, 1)

    @property
    def secondary(self) -> tuple[float, ...]:
        return (0.15, 0.15, 0.15, 1) if self.high_contrast else (0.86, 0.87, 0.88, 1)

    @property
    def secondary_fg(self) -> tuple[float, ...]:
        return (1, 1, 1, 1) if self.high_contrast else (0.08, 0.08, 0.1, 1)

    @property
    def accent(self) -> tuple[float, ...]:  # notices, warnings
        return (1, 0.86, 0, 1) if self.high_contrast else (0.72, 0.22, 0.0, 1)

    @property
    def panel(self) -> tuple[float, ...]:
        return (0.1, 0.1, 0.1, 1) if self.high_contrast else (1, 1, 1, 1)

    @property
    def border(self) -> tuple[float, ...]:
        return (1, 1, 1, 1) if self.high_contrast else (0.75, 0.76, 0.78, 1)

    # sizes (px)
    def font(self, role: str) -> float:
        base = {"huge": 150, "title": 50, "heading": 40, "body": 34, "button": 38, "small": 28, "bar": 27,
                "band": 27}[role]
        # The language bar keeps its size: seven language names must fit. Everything else grows,
        # the bottom band's controls included (large text must not shrink the way back to normal).
        return base if role == "bar" else round(base * self.scale)

    @property
    def button_height(self) -> int:
        return 120  # 30 mm: large text needs bigger letters, not taller buttons

    @property
    def bar_height(self) -> int:
        return 92

    @property
    def band_height(self) -> int:
        """The bottom band (navigation, help, large text, contrast, read aloud): 23 mm on a 21.5"
        full-HD panel, 30 mm in large-text mode."""
        return 92 if self.scale <= 1 else 120

    @property
    def pad(self) -> int:
        return 24


def fill(widget: Widget, color: Sequence[float], border: Sequence[float] | None = None, width: float = 2) -> None:
    """Paint a background (and a border) behind ``widget`` that follows its size."""
    with widget.canvas.before:
        Color(*color)
        rect = Rectangle(pos=widget.pos, size=widget.size)
        if border is not None:
            Color(*border)
            line = Line(rectangle=(*widget.pos, *widget.size), width=width)
        else:
            line = None

    def update(*_: object) -> None:
        rect.pos, rect.size = widget.pos, widget.size
        if line is not None:
            line.rectangle = (*widget.pos, *widget.size)

    widget.bind(pos=update, size=update)


def shown_text(text: str, lang: str) -> str:
    """What a label shows for catalogue text with ruby markup (queue_server/core/ruby.py): in やさしい
    日本語 the reading follows the kanji in brackets, 市民課（しみんか） (Kivy labels cannot set
    furigana above a line); elsewhere the kanji alone. Braces never reach the screen."""
    if "{" not in text:
        return text
    from queue_server.core.ruby import bracketed, plain

    return bracketed(text) if lang == "ja-easy" else plain(text)


def label_args(text: str, lang: str, bold: bool = False) -> dict:
    """Label properties for ``text``: one font → plain text in that font (fast: one render, no
    markup parsing); several fonts → markup runs, each in a font that has its glyphs."""
    text = ruby.bracketed(text)  # catalogue ruby {市民課|しみんか} → 市民課（しみんか）: braces never show
    parts = runs(text, lang)
    if len(parts) == 1:
        return {"text": text, "markup": False, "font_name": parts[0][0], "bold": bold}
    body = "".join(f"[font={path}]{escape(chunk)}[/font]" for path, chunk in parts)
    return {"text": f"[b]{body}[/b]" if bold else body, "markup": True}


def _apply_kinsoku(widget: Label, text: str, lang: str, bold: bool, margin: float) -> None:
    """Break ``widget``'s CJK text by the kinsoku rules (printers.linebreak) at its current width.

    Kivy wraps a text without spaces at any character, which leaves "？" or "す。" alone at the
    start of a line and splits "17 / 秒"; here the lines are chosen first and given to Kivy whole.
    """
    if not needs_kinsoku(text):
        return
    state = {"shown": text}

    def rewrap(*_: object) -> None:
        broken = break_lines(text, lang, widget.font_size, widget.width - margin)
        if broken == state["shown"]:
            return
        state["shown"] = broken
        for k, v in label_args(broken, lang, bold=bold).items():
            setattr(widget, k, v)

    widget.bind(width=rewrap, font_size=rewrap)


class Text(Label):
    """A wrapping paragraph whose height follows its text (for stacks and scroll views)."""

    def __init__(self, text: str, lang: str, theme: Theme, role: str = "body", color=None, bold: bool = False,
                 halign: str = "left", fixed_height: bool = False, **kw: object):
        text = shown_text(text, lang)
        super().__init__(
            **label_args(text, lang, bold=bold or role in ("title", "huge", "heading")),
            font_size=theme.font(role),
            color=color or theme.fg,
            halign=halign,
            valign="middle",
            size_hint_y=None if not fixed_height else kw.pop("size_hint_y", 1),
            line_height=1.15,
            **kw,
        )
        self.plain = text  # what the citizen reads: tests look for it
        self.bind(width=lambda *_: setattr(self, "text_size", (self.width, None)))
        _apply_kinsoku(self, text, lang, bold or role in ("title", "huge", "heading"), 0)
        if not fixed_height:
            self.bind(texture_size=lambda *_: setattr(self, "height", self.texture_size[1] + 8))


class BigButton(Button):
    """A touch target of at least 15 mm that wraps its label and fires ``on_tap`` once per press."""

    def __init__(self, text: str, lang: str, theme: Theme, on_tap: Callable[[], None], primary: bool = False,
                 role: str = "button", height: int | None = None, selected: bool = False, name: str = "",
                 icon: str | None = None, **kw: object):
        text = shown_text(text, lang)
        bg = theme.primary if primary or selected else theme.secondary
        fg = theme.primary_fg if primary or selected else theme.secondary_fg
        super().__init__(
            **label_args(text, lang, bold=primary or selected),
            font_size=theme.font(role),
            color=fg,
            background_normal="",
            background_down="",
            background_color=bg,
            halign="center",
            valign="middle",
            size_hint_y=None if height != 0 else 1,
            **kw,
        )
        if height != 0:
            self.height = height or theme.button_height
        self.plain = text
        self.name = name or text
        self.selected = selected
        self._on_tap = on_tap
        inset = 0.0
        if icon:
            from kiosk.screens.pictograms import attach

            inset = round(120 * min(theme.scale, 1.2))  # the picture's square and its margins
            attach(self, icon, fg, inset - 28)
            self.padding = (inset, 0, 0, 0)
        # (Kivy takes the padding out of text_size: the picture's inset is not subtracted twice)
        self.bind(size=lambda *_: setattr(self, "text_size", (self.width - 24, self.height - 12)))
        _apply_kinsoku(self, text, lang, primary or selected, 24 + inset)
        self.icon = icon
        if theme.high_contrast:
            fill(self, (0, 0, 0, 0), theme.border, 2)
        self.bind(on_release=lambda *_: self._on_tap())


def qr_image(data: str, size: int) -> Image:
    """A QR code as a Kivy image (black on white with a quiet zone, readable in high contrast too).

    The module matrix goes straight into a luminance texture: no PNG encode and decode on the way
    to the done screen, where every millisecond counts towards touch-to-ticket.
    """
    import qrcode

    qr = qrcode.QRCode(border=3, error_correction=qrcode.constants.ERROR_CORRECT_M)
    qr.add_data(data)
    qr.make(fit=True)
    matrix = qr.get_matrix()  # rows top to bottom, True = dark, quiet zone included
    n = len(matrix)
    # textures are bottom-up; one byte per module, rows padded to 4 bytes for GL's unpack alignment
    stride = (n + 3) // 4 * 4
    buf = bytearray(b"\xff" * (stride * n))
    for y, row in enumerate(reversed(matrix)):
        base = y * stride
        for x, dark in enumerate(row):
            if dark:
                buf[base + x] = 0
    texture = Texture.create(size=(stride, n), colorfmt="luminance")
    texture.blit_buffer(bytes(buf), colorfmt="luminance", bufferfmt="ubyte")
    texture.mag_filter = "nearest"  # crisp modules, no blur (set on the owner: a region shares it)
    texture.min_filter = "nearest"
    texture = texture.get_region(0, 0, n, n)
    img = Image(texture=texture, size_hint=(None, None), size=(size, size), fit_mode="contain")
    img.qr_data = data
    return img


def digit_pad(theme: Theme, lang: str, on_digit: Callable[[str], None], on_delete: Callable[[], None],
              on_ok: Callable[[], None], ok_text: str, delete_text: str, key_height: int = 120) -> GridLayout:
    """A 3×4 digit pad: 1–9, delete, 0, OK (the kiosk has no IME and needs none)."""
    grid = GridLayout(cols=3, spacing=12, size_hint=(None, None))
    grid.width = 3 * 200 + 2 * 12
    grid.height = 4 * key_height + 3 * 12
    for d in "123456789":
        grid.add_widget(BigButton(d, lang, theme, lambda d=d: on_digit(d), role="title", height=key_height,
                                  name=f"digit-{d}"))
    grid.add_widget(BigButton(delete_text, lang, theme, on_delete, height=key_height, name="pad-delete"))
    grid.add_widget(BigButton("0", lang, theme, lambda: on_digit("0"), role="title", height=key_height,
                              name="digit-0"))
    grid.add_widget(BigButton(ok_text, lang, theme, on_ok, primary=True, height=key_height, name="pad-ok"))
    return grid


def hbox(*children: Widget, spacing: int = 16, height: int | None = None, **kw: object) -> BoxLayout:
    box = BoxLayout(orientation="horizontal", spacing=spacing, size_hint_y=None if height else 1, **kw)
    if height:
        box.height = height
    for c in children:
        box.add_widget(c)
    return box


def vstack(spacing: int = 16, padding: int = 0) -> BoxLayout:
    """A vertical stack whose height follows its children (to put in a ScrollView)."""
    box = BoxLayout(orientation="vertical", spacing=spacing, padding=padding, size_hint_y=None)
    box.bind(minimum_height=box.setter("height"))
    return box


def paged_scroll(content: Widget, theme: Theme, lang: str, more_text: str, up_text: str, down_text: str,
                 name: str = "list") -> BoxLayout:
    """A scroll view with big page buttons (▲ / ▼) beside it and a "more below" line under it.

    A thin scroll bar is no cue for an 80-year-old, and dragging a list is not obvious: the page
    buttons move by one screenful, and the cue says in words that the list goes on. Buttons and
    cue are disabled / hidden when there is nothing more in their direction.
    """
    from kivy.uix.scrollview import ScrollView

    outer = BoxLayout(orientation="vertical", spacing=6)
    row = BoxLayout(orientation="horizontal", spacing=12)
    scroll = ScrollView(do_scroll_x=False, bar_width=14, scroll_type=["bars", "content"])
    scroll.add_widget(content)
    row.add_widget(scroll)
    side = BoxLayout(orientation="vertical", spacing=12, size_hint_x=None,
                     width=round(150 * min(theme.scale, 1.2)))

    def page(direction: int) -> None:
        extra = content.height - scroll.height
        if extra <= 0:
            return
        step = scroll.height * 0.85 / extra
        scroll.scroll_y = min(1.0, max(0.0, scroll.scroll_y + direction * step))

    up = BigButton("▲\n" + up_text, lang, theme, lambda: page(+1), role="small", height=110, name=f"{name}-up")
    down = BigButton("▼\n" + down_text, lang, theme, lambda: page(-1), role="small", height=0, primary=True,
                     name=f"{name}-down")
    side.add_widget(up)
    side.add_widget(down)
    row.add_widget(side)
    outer.add_widget(row)
    cue = Text("▼ " + more_text, lang, theme, "body", halign="center", bold=True, color=theme.accent)
    outer.add_widget(cue)

    def update(*_: object) -> None:
        overflow = content.height > scroll.height + 2
        at_top = not overflow or scroll.scroll_y >= 0.999
        at_bottom = not overflow or scroll.scroll_y <= 0.001
        up.disabled, down.disabled = at_top, at_bottom
        up.opacity = 0.35 if at_top else 1
        down.opacity = 0.35 if at_bottom else 1
        cue.opacity = 0 if at_bottom else 1
        side.opacity = 1 if overflow else 0
        side.disabled = not overflow

    scroll.bind(scroll_y=update, height=update)
    content.bind(height=update)
    outer.scroll, outer.cue, outer.page = scroll, cue, page  # for tests
    update()
    return outer
