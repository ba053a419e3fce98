"""The ESC/POS byte stream of a print job: a list of operations encoded by python-escpos.

Renderers return operations (raw command bytes, or a raster image); :func:`encode` turns them
into the bytes a printer receives, using python-escpos's ``Dummy`` printer, so the image command
is exactly the library's (``GS v 0``, split every 960 rows). Encoding first and sending after
keeps the device I/O one plain write that a deadline can bound, and lets tests read back the very
bytes a real printer would get.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image

ESC, GS, FS, DLE, EOT, LF = b"\x1b", b"\x1d", b"\x1c", b"\x10", b"\x04", b"\n"

INIT = ESC + b"@"  # reset modes left over from a previous job (size, bold, kanji)
KANJI_SHIFT_JIS = FS + b"C\x01"  # FS C 1: kanji code system = Shift_JIS (Japanese-model Epson)
KANJI_ON = FS + b"&"
KANJI_OFF = FS + b"."
FEED_AND_CUT = GS + b"V\x42\x00"  # GS V 66 0: feed to the cutter, partial cut (paper stays held)


def align(center: bool) -> bytes:
    """ESC a n: 0 left, 1 centre."""
    return ESC + b"a" + bytes((1 if center else 0,))


def bold(on: bool) -> bytes:
    """ESC E n."""
    return ESC + b"E" + bytes((1 if on else 0,))


def char_size(width_mag: int, height_mag: int) -> bytes:
    """GS ! n: character magnification 1–8 in each direction (applies to kanji too)."""
    if not (1 <= width_mag <= 8 and 1 <= height_mag <= 8):
        raise ValueError(f"magnification {width_mag}x{height_mag} out of 1..8")
    return GS + b"!" + bytes((((width_mag - 1) << 4) | (height_mag - 1),))


def feed_dots(n: int) -> bytes:
    """ESC J n: print the buffer and feed n dots (n ≤ 255)."""
    return ESC + b"J" + bytes((max(0, min(255, n)),))


@dataclass(frozen=True, slots=True)
class Raw:
    """Command or text bytes, sent as they are."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Raster:
    """A 1-bit image exactly as wide as the paper's dot width."""

    image: Image.Image


Op = Raw | Raster


def _set_paper_width(printer, width: int) -> None:
    """Tell python-escpos the dot width, so ``image()`` checks it (and prints no warning).

    On a private copy: the library shares ``profile_data`` between all instances of a profile.
    """
    data = copy.deepcopy(printer.profile.profile_data)
    data["media"]["width"]["pixels"] = width
    printer.profile.profile_data = data


def encode(ops: Sequence[Op], width: int, *, cut: bool = True) -> bytes:
    """The job's bytes: initialise, the operations in order, then feed and cut."""
    from escpos.printer import Dummy  # imported here: `run.py --help` must not load escpos

    printer = Dummy()
    _set_paper_width(printer, width)
    printer._raw(INIT)
    for op in ops:
        if isinstance(op, Raw):
            printer._raw(op.data)
        else:
            if op.image.width > width:
                raise ValueError(f"image {op.image.width} dots wide on {width}-dot paper")
            printer.image(op.image, impl="bitImageRaster")
    if cut:
        printer._raw(FEED_AND_CUT)
    return printer.output
