"""A small, strict ESC/POS reader for tests: bytes back into text lines and images.

It knows exactly the commands madoguchi sends (and python-escpos emits for images) and fails on
anything else, so a wrong or stray byte makes a test fail instead of printing garbage on paper.

- ``GS v 0 m xL xH yL yH d…`` raster images are decoded to 1-bit Pillow images (1 = white, as
  the renderer draws them); consecutive rasters (python-escpos splits every 960 rows) are stacked.
- ``FS &`` … ``FS .`` segments are decoded with cp932 into text; text outside kanji mode must be
  printable ASCII.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image, ImageOps


class EscposParseError(ValueError):
    pass


@dataclass
class TextOut:
    """One printed line (ended by LF) with the modes in force when it was printed."""

    text: str
    kanji: bool
    align: int
    size: tuple[int, int]
    bold: bool


@dataclass
class RasterOut:
    image: Image.Image


@dataclass
class Parsed:
    events: list[TextOut | RasterOut | str] = field(default_factory=list)  # str: "init", "cut", "feed:N"…
    kanji_code_system: int | None = None
    status_queries: list[int] = field(default_factory=list)

    @property
    def texts(self) -> list[TextOut]:
        return [e for e in self.events if isinstance(e, TextOut)]

    @property
    def rasters(self) -> list[Image.Image]:
        """Raster images, consecutive GS v 0 fragments joined into one image."""
        out: list[list[Image.Image]] = []
        previous_was_raster = False
        for e in self.events:
            if isinstance(e, RasterOut):
                if previous_was_raster and out[-1][-1].width == e.image.width:
                    out[-1].append(e.image)
                else:
                    out.append([e.image])
                previous_was_raster = True
            else:
                previous_was_raster = False
        return [_stack(parts) for parts in out]


def _stack(parts: list[Image.Image]) -> Image.Image:
    img = Image.new("1", (parts[0].width, sum(p.height for p in parts)), 1)
    y = 0
    for p in parts:
        img.paste(p, (0, y))
        y += p.height
    return img


def decode_raster(width_bytes: int, height: int, data: bytes) -> Image.Image:
    """GS v 0 data (1 bit = a black dot, MSB first) → a 1-bit image with 1 = white."""
    inked = Image.frombytes("1", (width_bytes * 8, height), data)  # here 1 = black
    return ImageOps.invert(inked.convert("L")).convert("1", dither=Image.Dither.NONE)


def parse(data: bytes) -> Parsed:
    """Parse a whole job. Raises EscposParseError at the first byte it does not understand."""
    out = Parsed()
    i = 0
    kanji = False
    align, size, bold = 0, (1, 1), False
    line = bytearray()
    line_kanji = False

    def need(n: int) -> bytes:
        if i + n > len(data):
            raise EscposParseError(f"truncated command at byte {i}: need {n} more")
        return data[i : i + n]

    def flush() -> None:
        nonlocal line, line_kanji
        encoding = "cp932" if line_kanji else "ascii"
        try:
            text = bytes(line).decode(encoding)
        except UnicodeDecodeError as e:
            raise EscposParseError(f"line ending at byte {i} is not valid {encoding}: {bytes(line)!r}") from e
        out.events.append(TextOut(text, line_kanji, align, size, bold))
        line = bytearray()
        line_kanji = False

    while i < len(data):
        b = data[i]
        if kanji:
            # In kanji mode everything up to FS . is Shift_JIS text (FS = 0x1c never occurs in it).
            end = data.find(b"\x1c.", i)
            if end < 0:
                raise EscposParseError(f"FS & at byte {i} never closed by FS .")
            chunk = data[i:end]
            if b"\n" in chunk or b"\x1b" in chunk or b"\x1d" in chunk:
                raise EscposParseError(f"control byte inside kanji text at byte {i}: {chunk!r}")
            line += chunk
            line_kanji = True
            i = end + 2
            kanji = False
            continue
        if b == 0x0A:
            flush()
            i += 1
        elif b == 0x1B:  # ESC
            cmd = need(2)[1:2]
            if cmd == b"@":
                out.events.append("init")
                align, size, bold = 0, (1, 1), False
                i += 2
            elif cmd == b"a":
                align = need(3)[2]
                if align not in (0, 1, 2):
                    raise EscposParseError(f"ESC a {align} at byte {i}")
                i += 3
            elif cmd == b"E":
                bold = bool(need(3)[2])
                i += 3
            elif cmd == b"J":
                out.events.append(f"feed:{need(3)[2]}")
                i += 3
            elif cmd == b"d":
                out.events.append(f"feedlines:{need(3)[2]}")
                i += 3
            else:
                raise EscposParseError(f"unknown ESC {cmd!r} at byte {i}")
        elif b == 0x1D:  # GS
            cmd = need(2)[1:2]
            if cmd == b"!":
                n = need(3)[2]
                size = ((n >> 4) + 1, (n & 0x0F) + 1)
                i += 3
            elif cmd == b"V":
                m = need(3)[2]
                if m in (65, 66):
                    need(4)
                    i += 4
                elif m in (0, 1, 48, 49):
                    i += 3
                else:
                    raise EscposParseError(f"GS V {m} at byte {i}")
                out.events.append("cut")
            elif cmd == b"v":
                head = need(8)
                if head[2:3] != b"0":
                    raise EscposParseError(f"GS v {head[2:3]!r} at byte {i}")
                if head[3] not in (0, 1, 2, 3, 48, 49, 50, 51):
                    raise EscposParseError(f"GS v 0 density {head[3]} at byte {i}")
                width_bytes = head[4] | head[5] << 8
                height = head[6] | head[7] << 8
                i += 8
                body = need(width_bytes * height)
                out.events.append(RasterOut(decode_raster(width_bytes, height, body)))
                i += width_bytes * height
            else:
                raise EscposParseError(f"unknown GS {cmd!r} at byte {i}")
        elif b == 0x1C:  # FS
            cmd = need(2)[1:2]
            if cmd == b"C":
                out.kanji_code_system = need(3)[2]
                i += 3
            elif cmd == b"&":
                kanji = True
                i += 2
            elif cmd == b".":
                i += 2  # kanji off while already off: harmless
            else:
                raise EscposParseError(f"unknown FS {cmd!r} at byte {i}")
        elif b == 0x10:  # DLE EOT n
            head = need(3)
            if head[1] != 0x04 or head[2] not in (1, 2, 3, 4):
                raise EscposParseError(f"unknown DLE command {head!r} at byte {i}")
            out.status_queries.append(head[2])
            i += 3
        elif 0x20 <= b < 0x7F:
            line.append(b)
            i += 1
        else:
            raise EscposParseError(f"unexpected byte 0x{b:02x} at byte {i}")
    if line:
        raise EscposParseError("text not ended by LF at the end of the job")
    return out
