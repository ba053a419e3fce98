"""BER-TLV walking and the parser of EF 0002 (the basic four items). Pure: bytes in, values out.

EF 0002 of the card-info input support AP is one constructed object ``FF 20 <len>`` holding
``DF 21`` (offsets), ``DF 22`` name, ``DF 23`` address, ``DF 24`` birth date, ``DF 25`` sex, and
then filler up to the end of the file. The parser walks the tags instead of trusting fixed
offsets (the offsets in ``DF 21`` are ignored), and reads every length in short or long BER form.

Error messages name the tag and byte offset that were wrong, never the bytes themselves: the
bytes are personal data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from kiosk.card.errors import MalformedData
from kiosk.card.record import CardRecord, Sex

TAG_BASIC_FOUR = 0xFF20
TAG_OFFSETS = 0xDF21
TAG_NAME = 0xDF22
TAG_ADDRESS = 0xDF23
TAG_BIRTH_DATE = 0xDF24
TAG_SEX = 0xDF25

#: Bytes that ISO 7816-4 allows as padding between and after data objects.
FILLER = frozenset(b"\x00\xff")

# Four length bytes (4 GiB) is far beyond any card file; more means garbage, not a bigger file.
_MAX_LENGTH_BYTES = 4


@dataclass(frozen=True)
class Tlv:
    """One data object: its tag (bytes as a big-endian int), value and offset of the tag."""

    tag: int
    value: bytes
    offset: int

    def __repr__(self) -> str:
        # The value may be a name or an address: show only its size.
        return f"Tlv(tag={self.tag:#06x}, offset={self.offset}, length={len(self.value)})"


def read_tag(data: bytes, pos: int) -> tuple[int, int]:
    """Decode the tag starting at ``data[pos]``; return ``(tag, position after the tag)``."""
    if pos >= len(data):
        raise MalformedData(f"tag expected at offset {pos}, data ends")
    first = data[pos]
    tag = first
    pos += 1
    if first & 0x1F == 0x1F:
        # Multi-byte tag: subsequent bytes follow while bit 8 is set.
        while True:
            if pos >= len(data):
                raise MalformedData(f"tag at offset {pos} is cut off")
            b = data[pos]
            tag = (tag << 8) | b
            pos += 1
            if not b & 0x80:
                break
            if tag > 0xFFFFFFFF:
                raise MalformedData(f"tag ending at offset {pos} is longer than 4 bytes")
    return tag, pos


def read_length(data: bytes, pos: int) -> tuple[int, int]:
    """Decode the BER length at ``data[pos]`` (short or long form); return ``(length, next pos)``."""
    if pos >= len(data):
        raise MalformedData(f"length expected at offset {pos}, data ends")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    count = first & 0x7F
    if count == 0:
        raise MalformedData(f"indefinite length at offset {pos - 1} is not allowed in a card file")
    if count > _MAX_LENGTH_BYTES:
        raise MalformedData(f"length at offset {pos - 1} has {count} bytes")
    if pos + count > len(data):
        raise MalformedData(f"length at offset {pos - 1} is cut off")
    return int.from_bytes(data[pos : pos + count], "big"), pos + count


def header_size(data: bytes) -> int | None:
    """Total size in bytes (header + value) of the TLV at the start of ``data``.

    Returns ``None`` when ``data`` is too short to hold the whole header yet, so the reader knows
    it must read more before it can tell the file's length.
    """
    try:
        _, pos = read_tag(data, 0)
        length, pos = read_length(data, pos)
    except MalformedData:
        if _header_is_incomplete(data):
            return None
        raise
    return pos + length


def _header_is_incomplete(data: bytes) -> bool:
    """True if ``data`` is a valid but unfinished tag + length header."""
    pos = 0
    if not data:
        return True
    first = data[0]
    pos = 1
    if first & 0x1F == 0x1F:
        while True:
            if pos >= len(data):
                return True
            if not data[pos] & 0x80:
                pos += 1
                break
            pos += 1
    if pos >= len(data):
        return True
    count = data[pos] & 0x7F if data[pos] & 0x80 else 0
    return 0 < count <= _MAX_LENGTH_BYTES and pos + 1 + count > len(data)


def iter_tlv(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Tlv]:
    """Walk the data objects in ``data[start:end]``.

    A run of filler bytes (00 or FF) that reaches ``end`` ends the walk; filler followed by more
    data is malformed, because ``FF`` also starts real tags (``FF 20``) and guessing would hide a
    broken file.
    """
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        if all(b in FILLER for b in data[pos:end]):
            return
        offset = pos
        tag, pos = read_tag(data[:end], pos)
        length, pos = read_length(data[:end], pos)
        if pos + length > end:
            raise MalformedData(
                f"tag {tag:#x} at offset {offset} claims {length} bytes, only {end - pos} remain"
            )
        yield Tlv(tag, bytes(data[pos : pos + length]), offset)
        pos += length


def parse_basic_four(data: bytes) -> CardRecord:
    """Parse the content of EF 0002 into a :class:`CardRecord`.

    ``data`` may carry filler after the ``FF 20`` object (a whole-file read); it must not be
    shorter than the object. Raises :class:`MalformedData` naming the tag and offset at fault.
    """
    objects = list(_outer(data))
    fields: dict[int, Tlv] = {}
    for obj in objects:
        if obj.tag in fields and obj.tag != TAG_OFFSETS:
            raise MalformedData(f"tag {obj.tag:#x} appears twice (offset {obj.offset})")
        fields[obj.tag] = obj
    for tag, label in (
        (TAG_NAME, "name"),
        (TAG_ADDRESS, "address"),
        (TAG_BIRTH_DATE, "birth date"),
        (TAG_SEX, "sex"),
    ):
        if tag not in fields:
            raise MalformedData(f"tag {tag:#x} ({label}) is missing")
    return CardRecord(
        name=_text(fields[TAG_NAME], "name"),
        address=_text(fields[TAG_ADDRESS], "address"),
        birth_date=_birth_date(fields[TAG_BIRTH_DATE]),
        sex=_sex(fields[TAG_SEX]),
    )


def _outer(data: bytes) -> Iterator[Tlv]:
    """The data objects inside the ``FF 20`` template at the start of ``data``."""
    tag, pos = read_tag(data, 0)
    if tag != TAG_BASIC_FOUR:
        raise MalformedData(f"file starts with tag {tag:#x}, expected 0xff20")
    length, pos = read_length(data, pos)
    if pos + length > len(data):
        raise MalformedData(f"tag 0xff20 claims {length} bytes, only {len(data) - pos} were read")
    # Whatever follows the template up to the end of the file is filler; it is not inspected.
    yield from iter_tlv(data, pos, pos + length)


def _text(obj: Tlv, label: str) -> str:
    try:
        text = obj.value.decode("utf-8")
    except UnicodeDecodeError as e:
        # Only the position of the bad byte, never the bytes themselves.
        raise MalformedData(
            f"{label} (tag {obj.tag:#x} at offset {obj.offset}) is not UTF-8 at byte {e.start}"
        ) from None
    # Some cards pad text fields; padding is not part of the name or address.
    text = text.rstrip("\x00").strip()
    if not text:
        raise MalformedData(f"{label} (tag {obj.tag:#x} at offset {obj.offset}) is empty")
    return text


def _birth_date(obj: Tlv) -> dt.date:
    raw = obj.value
    if len(raw) != 8 or not raw.isdigit():
        raise MalformedData(f"birth date (tag 0xdf24 at offset {obj.offset}) is not 8 ASCII digits")
    try:
        return dt.date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
    except ValueError:
        raise MalformedData(f"birth date (tag 0xdf24 at offset {obj.offset}) is not a date") from None


def _sex(obj: Tlv) -> Sex:
    try:
        return Sex(obj.value.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise MalformedData(f"sex (tag 0xdf25 at offset {obj.offset}) is not one of 0, 1, 2, 9") from None
