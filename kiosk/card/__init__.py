"""My Number card prefill (書かない窓口): read name, address, birth date and sex through PC/SC.

Pure parts: :mod:`kiosk.card.tlv` (EF 0002 parser), :mod:`kiosk.card.apdu` (commands and status
words), :mod:`kiosk.card.flow` (the kiosk's card screens as a state machine),
:mod:`kiosk.card.errors` and :mod:`kiosk.card.record`. The I/O shell is :mod:`kiosk.card.reader`
(imported lazily: it needs pyscard, the pure parts do not).
"""

from __future__ import annotations

from pathlib import Path

from kiosk.card.errors import (
    ALL_ERRORS,
    Cancelled,
    CardError,
    CardRemoved,
    MalformedData,
    NoCard,
    NoReader,
    NotMyNumberCard,
    OneTryLeft,
    PinLocked,
    ReaderTimeout,
    WrongPin,
)
from kiosk.card.record import CardRecord, Sex
from kiosk.card.tlv import parse_basic_four

#: The message table of the card screens (load with ``queue_server.loaders.load_messages``).
MESSAGES_PATH = Path(__file__).with_name("messages.toml")

__all__ = [
    "ALL_ERRORS",
    "MESSAGES_PATH",
    "Cancelled",
    "CardError",
    "CardRecord",
    "CardRemoved",
    "MalformedData",
    "NoCard",
    "NoReader",
    "NotMyNumberCard",
    "OneTryLeft",
    "PinLocked",
    "ReaderTimeout",
    "Sex",
    "WrongPin",
    "parse_basic_four",
]
