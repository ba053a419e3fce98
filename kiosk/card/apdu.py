"""Command APDUs of the card-info input support AP and what its status words mean. Pure.

Only the commands the kiosk needs exist here. There is deliberately no builder for EF 0001
(the My Number itself): its use is restricted by law and the kiosk never reads it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

#: AID of 券面事項入力補助AP (card-info input support application).
AID_CARD_INFO_AP = bytes.fromhex("D3921000310001010408")
FID_PIN = bytes.fromhex("0011")
FID_BASIC_FOUR = bytes.fromhex("0002")

INS_SELECT = 0xA4
INS_VERIFY = 0x20
INS_READ_BINARY = 0xB0
INS_GET_RESPONSE = 0xC0

PIN_LENGTH = 4
#: Largest Le of a short READ BINARY (encoded as 00).
MAX_SHORT_LE = 256


def select_ap() -> bytes:
    """SELECT the AP by its DF name, no response data (P2 = 0C)."""
    return bytes([0x00, INS_SELECT, 0x04, 0x0C, len(AID_CARD_INFO_AP)]) + AID_CARD_INFO_AP


def select_ef(fid: bytes) -> bytes:
    """SELECT an EF of the current AP by its 2-byte file id, no response data."""
    if len(fid) != 2:
        raise ValueError("a file id has 2 bytes")
    if fid == b"\x00\x01":
        # Defence in depth: EF 0001 holds the My Number, which the kiosk must never read.
        raise ValueError("EF 0001 (the My Number) must not be selected")
    return bytes([0x00, INS_SELECT, 0x02, 0x0C, 0x02]) + fid


def tries_left_query() -> bytes:
    """VERIFY with no data: asks for the PIN's retry counter without using a try."""
    return bytes([0x00, INS_VERIFY, 0x00, 0x80])


def check_pin_format(pin: bytes | bytearray) -> None:
    """Raise ``ValueError`` unless ``pin`` is exactly 4 ASCII digits (message never shows it)."""
    if len(pin) != PIN_LENGTH or not all(0x30 <= b <= 0x39 for b in pin):
        raise ValueError("the PIN must be exactly 4 ASCII digits")


def verify_pin(pin: bytes | bytearray) -> bytearray:
    """VERIFY the PIN. Returns a *bytearray* so the caller can wipe it after transmitting."""
    check_pin_format(pin)
    apdu = bytearray([0x00, INS_VERIFY, 0x00, 0x80, PIN_LENGTH])
    apdu += pin
    return apdu


def read_binary(offset: int, le: int) -> bytes:
    """READ BINARY of the current EF from ``offset`` (short form: offset < 0x8000, 1 ≤ le ≤ 256)."""
    if not 0 <= offset < 0x8000:
        # Bit 8 of P1 set would mean "short EF id" addressing, not an offset.
        raise ValueError(f"offset {offset} is outside 0..0x7FFF")
    if not 1 <= le <= MAX_SHORT_LE:
        raise ValueError(f"Le {le} is outside 1..256")
    return bytes([0x00, INS_READ_BINARY, offset >> 8, offset & 0xFF, le & 0xFF])


def get_response(le: int) -> bytes:
    """GET RESPONSE, for T=0 readers that answer 61 xx."""
    return bytes([0x00, INS_GET_RESPONSE, 0x00, 0x00, le & 0xFF])


def describe(apdu: bytes | bytearray) -> str:
    """A log-safe description of a command: header only, never the data field (it may be a PIN)."""
    head = bytes(apdu[:4]).hex(" ").upper()
    if len(apdu) > 5:
        return f"{head} Lc={apdu[4]}"
    return head


class Status(enum.Enum):
    """What a status word means for this AP."""

    OK = "ok"  # 90 00
    END_OF_FILE = "end_of_file"  # 62 82: fewer bytes than Le, end of file reached
    WRONG_PIN = "wrong_pin"  # 63 Cx: x tries left (also the answer to the tries-left query)
    BLOCKED = "blocked"  # 69 83 / 69 84: PIN blocked
    SECURITY = "security"  # 69 82: PIN not verified (or verification lost)
    NOT_FOUND = "not_found"  # 6A 82 / 6A 86 / 69 86: no such AP or file here
    WRONG_OFFSET = "wrong_offset"  # 6B 00: offset beyond the end of the file
    MORE_DATA = "more_data"  # 61 xx: GET RESPONSE with Le = xx
    WRONG_LE = "wrong_le"  # 6C xx: repeat with Le = xx
    OTHER = "other"


@dataclass(frozen=True)
class StatusWord:
    """SW1 SW2 with its meaning for this AP."""

    sw1: int
    sw2: int

    @property
    def status(self) -> Status:
        sw1, sw2 = self.sw1, self.sw2
        if (sw1, sw2) == (0x90, 0x00):
            return Status.OK
        if (sw1, sw2) == (0x62, 0x82):
            return Status.END_OF_FILE
        if sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
            return Status.WRONG_PIN
        if (sw1, sw2) in ((0x69, 0x83), (0x69, 0x84)):
            return Status.BLOCKED
        if (sw1, sw2) == (0x69, 0x82):
            return Status.SECURITY
        if (sw1, sw2) in ((0x6A, 0x82), (0x6A, 0x86), (0x69, 0x86), (0x6A, 0x81)):
            return Status.NOT_FOUND
        if (sw1, sw2) == (0x6B, 0x00):
            return Status.WRONG_OFFSET
        if sw1 == 0x61:
            return Status.MORE_DATA
        if sw1 == 0x6C:
            return Status.WRONG_LE
        return Status.OTHER

    @property
    def tries_left(self) -> int | None:
        """The retry counter carried by 63 Cx (and 0 for a blocked PIN), else ``None``."""
        if self.status is Status.WRONG_PIN:
            return self.sw2 & 0x0F
        if self.status is Status.BLOCKED:
            return 0
        return None

    def __str__(self) -> str:
        return f"{self.sw1:02X} {self.sw2:02X}"


def split_response(response: bytes | list[int]) -> tuple[bytes, StatusWord]:
    """Split a response APDU into its data and status word."""
    if len(response) < 2:
        raise ValueError(f"a response needs at least 2 bytes (SW1 SW2), got {len(response)}")
    return bytes(response[:-2]), StatusWord(response[-2], response[-1])
