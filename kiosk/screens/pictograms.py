"""Pictograms for the purpose buttons, drawn for this project with Kivy vector instructions.

A picture beside each purpose helps a citizen who reads little Japanese (or little of anything) find
「引っ越し」 or 「証明書」; they are line drawings in the button's text colour, so they follow
high contrast too. Drawn here (no image files, no third-party set, same licence as the project).
Each drawing is a list of strokes in a unit square (0,0 bottom-left, 1,1 top-right).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from kivy.graphics import Color, InstructionGroup, Line
from kivy.uix.widget import Widget

Stroke = tuple[str, tuple[float, ...]]  # ("line", x1,y1,x2,y2,…) | ("circle", cx,cy,r) | ("rect", x,y,w,h)


def _house(x: float, y: float, w: float) -> list[Stroke]:
    h = w * 0.6
    return [("rect", (x, y, w, h)), ("line", (x - w * 0.1, y + h, x + w / 2, y + h + w * 0.45, x + w * 1.1, y + h)),
            ("rect", (x + w * 0.38, y, w * 0.24, h * 0.55))]


def _arrow(x1: float, y1: float, x2: float, y2: float) -> list[Stroke]:
    a = math.atan2(y2 - y1, x2 - x1)
    h = 0.12
    left = (x2 - h * math.cos(a - 0.5), y2 - h * math.sin(a - 0.5))
    right = (x2 - h * math.cos(a + 0.5), y2 - h * math.sin(a + 0.5))
    return [("line", (x1, y1, x2, y2)), ("line", (*left, x2, y2, *right))]


def _flower() -> list[Stroke]:
    petals: list[Stroke] = [("circle", (0.5 + 0.2 * math.cos(k * math.pi / 4), 0.64 + 0.2 * math.sin(k * math.pi / 4),
                                        0.1)) for k in range(8)]
    return [*petals, ("circle", (0.5, 0.64, 0.08)), ("line", (0.5, 0.42, 0.5, 0.02)),
            ("line", (0.5, 0.2, 0.68, 0.3))]


DRAWINGS: dict[str, list[Stroke]] = {
    # a baby: head with a curl, swaddled body
    "birth": [("circle", (0.5, 0.68, 0.2)), ("line", (0.5, 0.88, 0.56, 0.96, 0.6, 0.9)),
              ("line", (0.3, 0.44, 0.22, 0.1, 0.78, 0.1, 0.7, 0.44)), ("line", (0.3, 0.3, 0.7, 0.3))],
    "death": _flower(),  # a flower: condolence, not a symbol of death
    "move_in": [*_house(0.45, 0.12, 0.5), *_arrow(0.0, 0.3, 0.4, 0.3)],
    "move_within": [*_house(0.02, 0.12, 0.36), *_house(0.62, 0.12, 0.36), *_arrow(0.38, 0.62, 0.62, 0.62)],
    "move_out": [*_house(0.05, 0.12, 0.5), *_arrow(0.6, 0.3, 1.0, 0.3)],
    "marriage": [("circle", (0.36, 0.5, 0.24)), ("circle", (0.64, 0.5, 0.24))],
    "divorce": [("circle", (0.22, 0.5, 0.2)), ("circle", (0.78, 0.5, 0.2)), ("line", (0.5, 0.25, 0.5, 0.75))],
    "certificate": [("line", (0.18, 0.02, 0.18, 0.98, 0.66, 0.98, 0.84, 0.8, 0.84, 0.02, 0.18, 0.02)),
                    ("line", (0.3, 0.78, 0.6, 0.78)), ("line", (0.3, 0.62, 0.72, 0.62)),
                    ("line", (0.3, 0.46, 0.72, 0.46)), ("circle", (0.64, 0.22, 0.1))],
    "consultation": [("rect", (0.02, 0.42, 0.56, 0.42)), ("line", (0.14, 0.42, 0.1, 0.26, 0.3, 0.42)),
                     ("rect", (0.42, 0.1, 0.56, 0.36)), ("line", (0.86, 0.1, 0.9, -0.04, 0.72, 0.1))],
    # a card going down onto the reader: the card-insert screen shows where to put it
    "card_reader": [("rect", (0.1, 0.02, 0.8, 0.22)), ("line", (0.3, 0.12, 0.7, 0.12)),
                    ("rect", (0.24, 0.5, 0.52, 0.34)), ("circle", (0.36, 0.67, 0.06)),
                    ("line", (0.48, 0.72, 0.68, 0.72)), ("line", (0.48, 0.62, 0.64, 0.62)),
                    *_arrow(0.5, 0.48, 0.5, 0.26)],
    "reservation": [("rect", (0.08, 0.04, 0.84, 0.78)), ("line", (0.08, 0.64, 0.92, 0.64)),
                    ("line", (0.3, 0.74, 0.3, 0.94)), ("line", (0.7, 0.74, 0.7, 0.94)),
                    ("line", (0.3, 0.36, 0.45, 0.2, 0.72, 0.5))],
}


def draw(group: InstructionGroup, kind: str, x: float, y: float, size: float,
         color: Sequence[float]) -> None:
    """Add the pictogram ``kind`` to ``group``, in a ``size``-pixel square at (x, y)."""
    group.add(Color(*color))
    width = max(2.0, min(size / 22, 5.0))  # a big picture keeps a clean line

    def p(u: float, v: float) -> tuple[float, float]:
        return x + u * size, y + v * size

    for shape, args in DRAWINGS[kind]:
        if shape == "line":
            pts = [c for i in range(0, len(args), 2) for c in p(args[i], args[i + 1])]
            group.add(Line(points=pts, width=width, joint="round", cap="round"))
        elif shape == "circle":
            cx, cy = p(args[0], args[1])
            group.add(Line(circle=(cx, cy, args[2] * size), width=width))
        elif shape == "rect":
            rx, ry = p(args[0], args[1])
            group.add(Line(rectangle=(rx, ry, args[2] * size, args[3] * size), width=width, joint="round"))


def attach(widget: Widget, kind: str, color: Sequence[float], size: float, margin: float = 18) -> None:
    """Draw ``kind`` at the left of ``widget``, vertically centred, following its position."""
    group = InstructionGroup()
    widget.canvas.after.add(group)

    def redraw(*_: object) -> None:
        group.clear()
        s = min(size, widget.height * 0.7)
        draw(group, kind, widget.x + margin, widget.center_y - s / 2, s, color)

    widget.bind(pos=redraw, size=redraw)
    redraw()


class Pictogram(Widget):
    """A pictogram on its own (the card-insert screen's "put the card on the reader")."""

    def __init__(self, kind: str, color: Sequence[float], **kw: object):
        super().__init__(**kw)
        group = InstructionGroup()
        self.canvas.add(group)
        self.kind = kind

        def redraw(*_: object) -> None:
            group.clear()
            s = min(self.width, self.height)
            draw(group, kind, self.center_x - s / 2, self.center_y - s / 2, s, color)

        self.bind(pos=redraw, size=redraw)
