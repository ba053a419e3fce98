"""The card reader against a real PC/SC stack: pcscd + vpcd + a virtual My Number card.

Every test also runs under a privacy guard: all log records (DEBUG and up, every logger) and the
text and repr of every error a test provokes are scanned for the holder's name, address, birth
date and PIN — in plain text and as hex.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from kiosk.card.errors import (
    BadPinFormat,
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
from kiosk.card.reader import CardSession, ReaderConfig, read_card
from kiosk.card.record import Sex
from tests.kiosk.virtual_card import (
    TEST_ADDRESS,
    TEST_BIRTH,
    TEST_NAME,
    TEST_PIN,
    VirtualMyNumberCard,
    encode_basic_four,
    on_command,
)

pytestmark = [pytest.mark.device]

E = TypeVar("E", bound=BaseException)
Insert = Callable[..., VirtualMyNumberCard]

CONFIG = ReaderConfig(reader_timeout=2, card_timeout=3, command_timeout=2)
WRONG_PIN = "2468"
SELECT_EF0002 = "00A4020C020002"


def _secrets() -> list[str]:
    """Everything that must never reach a log line or an error text."""
    plain = [
        TEST_NAME,
        *TEST_NAME.split("\u3000"),
        TEST_ADDRESS,
        TEST_ADDRESS[:6],  # 東京都清瀬市
        "観布子",
        TEST_BIRTH,
        "1980-02-17",
        "1980/02/17",
        TEST_PIN,
        WRONG_PIN,
    ]
    hexes = []
    for text in (TEST_NAME, TEST_ADDRESS, TEST_BIRTH, TEST_PIN, WRONG_PIN):
        raw = text.encode()
        hexes += [raw.hex(), raw.hex().upper(), raw.hex(" "), raw.hex(" ").upper()]
    return plain + hexes


class PrivacyGuard:
    """Collects error texts; the fixture scans them and the captured logs after each test."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def raises(self, kind: type[E], fn: Callable[..., Any], *args: Any, **kwargs: Any) -> E:
        with pytest.raises(kind) as excinfo:
            fn(*args, **kwargs)
        self.texts += [str(excinfo.value), repr(excinfo.value), excinfo.exconly()]
        return excinfo.value


@pytest.fixture(autouse=True)
def privacy(caplog: pytest.LogCaptureFixture) -> Iterator[PrivacyGuard]:
    caplog.set_level(logging.DEBUG)
    guard = PrivacyGuard()
    yield guard
    # caplog.records/text hold only the current phase (teardown here): gather every phase.
    records = [r for when in ("setup", "call", "teardown") for r in caplog.get_records(when)]  # type: ignore[arg-type]
    haystack = [*(r.getMessage() for r in records), *(repr(r.args) for r in records), *guard.texts]
    for secret in _secrets():
        for text in haystack:
            assert secret not in text, "personal data or PIN leaked into a log line or an error"


def pin(text: str = TEST_PIN) -> bytearray:
    return bytearray(text.encode("ascii"))


def verifies(card: VirtualMyNumberCard) -> int:
    """How many VERIFY commands *with a PIN* the card received (tries-left queries excluded)."""
    return sum(1 for c in card.commands if c.ins == 0x20 and len(c.apdu) > 4)


def open_session(config: ReaderConfig = CONFIG) -> CardSession:
    session = CardSession(config)
    session.wait_for_card()
    return session


# -- happy path --------------------------------------------------------------------------------


def test_reads_the_basic_four_items_and_wipes_the_pin(insert_card: Insert) -> None:
    card = insert_card()
    secret = pin()
    with open_session() as session:
        assert session.reader == "Virtual PCD 00 00"
        assert session.tries_left() == 3
        session.verify_pin(secret)
        assert secret == bytearray(4), "the PIN buffer must be zeroed after verify"
        record = session.read_record()
    assert record.name == TEST_NAME
    assert record.address == TEST_ADDRESS
    assert record.birth_date == dt.date(1980, 2, 17)
    assert record.sex is Sex.MALE
    assert verifies(card) == 1
    # The tries-left query precedes the VERIFY, and the file is read by one 256-byte READ BINARY.
    inses = [c.apdu[:4].hex() for c in card.commands]
    assert inses.index("00200080") < [i for i, c in enumerate(card.commands) if len(c.apdu) > 4 and c.ins == 0x20][0]
    assert sum(c.ins == 0xB0 for c in card.commands) == 1
    # Closing reset the card: its security status is gone.
    assert card._verified is False


def test_read_card_one_shot(insert_card: Insert) -> None:
    insert_card()
    secret = pin()
    record = read_card(secret, config=CONFIG)
    assert record.to_payload()["birth_date"] == "1980-02-17"
    assert secret == bytearray(4)


def test_reads_a_long_file_in_chunks_even_when_the_card_returns_less(insert_card: Insert) -> None:
    address = "山形県酒田市本町二丁目２－４５" * 14  # 630 bytes: two-byte long-form lengths
    card = insert_card(ef0002=encode_basic_four(address=address, file_size=0x400), max_chunk=100)
    with open_session(ReaderConfig(card_timeout=3, command_timeout=2, chunk_size=128)) as session:
        session.verify_pin(pin())
        record = session.read_record()
    assert record.address == address
    reads = [c for c in card.commands if c.ins == 0xB0]
    size = len(encode_basic_four(address=address))
    assert len(reads) == -(-size // 100)  # exactly as many as needed: the filler is never read
    offsets = [int.from_bytes(c.apdu[2:4], "big") for c in reads]
    assert offsets == list(range(0, size, 100))


def test_pin_must_be_a_bytearray_and_reading_needs_a_verified_pin(insert_card: Insert, privacy: PrivacyGuard) -> None:
    card = insert_card()
    with open_session() as session:
        privacy.raises(TypeError, session.verify_pin, TEST_PIN)
        privacy.raises(TypeError, session.verify_pin, TEST_PIN.encode())
        privacy.raises(RuntimeError, session.read_record)
        before = len(card.commands)
        # Every malformed PIN is a citizen-facing CardError (wiped, no try used, nothing sent).
        for text in (b"12a4", b"123", b"12345", b"", b"\xef\xbc\x91234", b" 123"):
            bad = bytearray(text)
            error = privacy.raises(BadPinFormat, session.verify_pin, bad)
            assert isinstance(error, CardError) and error.code == "bad_pin_format" and error.retryable
            assert bad == bytearray(len(text))
        assert len(card.commands) == before, "a malformed PIN must not reach the card"
    assert verifies(card) == 0
    assert not any(c.ins == 0xB0 for c in card.commands)


def test_read_card_refuses_a_bad_pin_before_waiting_for_a_card(pcscd: str, privacy: PrivacyGuard) -> None:
    # No card is inserted: if read_card opened the reader first, this would wait for card_timeout
    # (and a str PIN used to make the final wipe raise TypeError over the real error).
    slow = ReaderConfig(reader_timeout=30, card_timeout=30, command_timeout=5)
    started = time.monotonic()
    privacy.raises(TypeError, read_card, TEST_PIN, config=slow)  # type: ignore[arg-type]
    privacy.raises(TypeError, read_card, TEST_PIN.encode(), config=slow)  # type: ignore[arg-type]
    bad = bytearray(b"1a34")
    privacy.raises(BadPinFormat, read_card, bad, config=slow)
    assert bad == bytearray(4)
    assert time.monotonic() - started < 5, "the PIN must be refused before any reader I/O"


# -- no reader, no card, cancel ------------------------------------------------------------


def test_no_matching_reader(pcscd: str, privacy: PrivacyGuard) -> None:
    config = ReaderConfig(reader_timeout=0.3, reader_name="No Such Reader")
    start = time.monotonic()
    with CardSession(config) as session:
        error = privacy.raises(NoReader, session.wait_for_card)
    assert time.monotonic() - start < 2
    assert error.code == "no_reader" and error.message_key == "card.error.no_reader"


def test_no_pcsc_service_is_no_reader(pcscd: str, tmp_path: Path) -> None:
    # A separate process pointed at a socket where no pcscd listens (libpcsclite reads the
    # variable once per process, so this cannot run in the test process itself).
    code = (
        "from kiosk.card.reader import CardSession, ReaderConfig\n"
        "from kiosk.card.errors import CardError\n"
        "try:\n"
        "    CardSession(ReaderConfig(reader_timeout=0.3)).wait_for_card()\n"
        "except CardError as e:\n"
        "    print(e.code)\n"
    )
    env = dict(os.environ, PCSCLITE_CSOCK_NAME=str(tmp_path / "no-pcscd.comm"))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.stdout.strip() == "no_reader", out.stderr


def test_no_card_times_out(pcscd: str, privacy: PrivacyGuard) -> None:
    start = time.monotonic()
    with CardSession(ReaderConfig(card_timeout=0.4)) as session:
        error = privacy.raises(NoCard, session.wait_for_card)
    assert 0.35 < time.monotonic() - start < 2
    assert error.retryable


def test_waiting_can_be_cancelled_from_another_thread(pcscd: str, privacy: PrivacyGuard) -> None:
    session = CardSession(ReaderConfig(card_timeout=10))
    threading.Timer(0.3, session.cancel).start()
    start = time.monotonic()
    privacy.raises(Cancelled, session.wait_for_card)
    session.close()
    session.close()  # idempotent: must not wait on the stopped worker
    assert time.monotonic() - start < 3
    assert session.wait_closed(0)


def test_waits_for_a_card_presented_later(insert_card: Insert) -> None:
    threading.Timer(0.3, lambda: insert_card(wait=False)).start()
    with open_session() as session:
        assert session.tries_left() == 3


def test_not_a_my_number_card(insert_card: Insert, privacy: PrivacyGuard) -> None:
    card = insert_card(has_ap=False)
    with CardSession(CONFIG) as session:
        error = privacy.raises(NotMyNumberCard, session.wait_for_card)
    assert error.retryable  # another card (a transit IC card?) may have been presented
    assert "6A 82" in str(error)
    assert [c.ins for c in card.commands] == [0xA4]


# -- PIN -----------------------------------------------------------------------------------


def test_wrong_pin_reports_tries_left_and_is_not_retried(insert_card: Insert, privacy: PrivacyGuard) -> None:
    card = insert_card()
    secret = pin(WRONG_PIN)
    with open_session() as session:
        error = privacy.raises(WrongPin, session.verify_pin, secret)
        assert error.tries_left == 2 and error.message_fields() == {"tries_left": 2}
        assert secret == bytearray(4)
        assert verifies(card) == 1, "a wrong PIN must never be retried automatically"
        assert session.tries_left() == 2
        # The citizen tries again with the right PIN: the counter goes back to 3.
        session.verify_pin(pin())
        assert session.read_record().sex is Sex.MALE
    assert card.tries == 3


def test_one_try_left_needs_confirmation_before_verifying(insert_card: Insert, privacy: PrivacyGuard) -> None:
    card = insert_card(tries=1)
    with open_session() as session:
        assert session.tries_left() == 1
        secret = pin()
        error = privacy.raises(OneTryLeft, session.verify_pin, secret)
        assert error.message_key == "card.prompt.one_try_left"
        assert secret == bytearray(4), "the PIN is wiped even when it was not sent"
        assert verifies(card) == 0 and card.tries == 1
        session.verify_pin(pin(), confirm_last_try=True)
        assert session.read_record().name == TEST_NAME


def test_pin_locks_after_three_wrong_tries(insert_card: Insert, privacy: PrivacyGuard) -> None:
    card = insert_card()
    with open_session() as session:
        assert privacy.raises(WrongPin, session.verify_pin, pin(WRONG_PIN)).tries_left == 2
        assert privacy.raises(WrongPin, session.verify_pin, pin(WRONG_PIN)).tries_left == 1
        privacy.raises(OneTryLeft, session.verify_pin, pin(WRONG_PIN))
        error = privacy.raises(PinLocked, session.verify_pin, pin(WRONG_PIN), confirm_last_try=True)
        assert not error.retryable and error.message_key == "card.error.pin_locked"
        privacy.raises(PinLocked, session.tries_left)
        # Even the right PIN is no longer sent to a locked card.
        privacy.raises(PinLocked, session.verify_pin, pin(), confirm_last_try=True)
    assert card.tries == 0
    assert verifies(card) == 3


def test_locked_card_is_reported_before_any_pin_is_sent(insert_card: Insert, privacy: PrivacyGuard) -> None:
    card = insert_card(tries=0)
    with open_session() as session:
        privacy.raises(PinLocked, session.tries_left)
        privacy.raises(PinLocked, session.verify_pin, pin(), confirm_last_try=True)
    assert verifies(card) == 0


# -- removal, malformed data, timeouts -----------------------------------------------------


def test_card_removed_between_verify_and_read(insert_card: Insert, privacy: PrivacyGuard) -> None:
    card = insert_card(remove_on=on_command(SELECT_EF0002))
    with open_session() as session:
        session.verify_pin(pin())
        error = privacy.raises(CardRemoved, session.read_record)
        assert error.retryable
    assert card.removed.is_set()
    assert not any(c.ins == 0xB0 for c in card.commands)


def test_card_removed_in_the_middle_of_the_read(insert_card: Insert, privacy: PrivacyGuard) -> None:
    def second_read(apdu: bytes) -> bool:
        return apdu[:2] == b"\x00\xb0" and apdu[2:4] != b"\x00\x00"

    insert_card(remove_on=second_read)
    with open_session(ReaderConfig(card_timeout=3, command_timeout=2, chunk_size=32)) as session:
        session.verify_pin(pin())
        privacy.raises(CardRemoved, session.read_record)


def test_card_removed_while_the_pin_is_typed(insert_card: Insert, privacy: PrivacyGuard) -> None:
    card = insert_card()
    with open_session() as session:
        assert session.tries_left() == 3
        card.remove()
        secret = pin()
        privacy.raises(CardRemoved, session.verify_pin, secret)
        assert secret == bytearray(4)
    assert card.tries == 3


@pytest.mark.parametrize(
    "ef0002",
    [
        pytest.param(b"\xff\x20\x82\x01\x00" + encode_basic_four()[3:], id="file-shorter-than-header"),
        pytest.param(b"\x30\x03\x02\x01\x01" + b"\xff" * 60, id="not-ff20"),
        pytest.param(encode_basic_four(birth="19801302", file_size=0x100), id="bad-date"),
    ],
)
def test_malformed_file(insert_card: Insert, privacy: PrivacyGuard, ef0002: bytes) -> None:
    insert_card(ef0002=ef0002)
    with open_session() as session:
        session.verify_pin(pin())
        error = privacy.raises(MalformedData, session.read_record)
    assert not error.retryable


def test_reader_timeout_when_the_card_stops_answering(insert_card: Insert, privacy: PrivacyGuard) -> None:
    card = insert_card(hang_on=on_command("00B0"))
    session = open_session(ReaderConfig(card_timeout=3, command_timeout=0.3))
    session.verify_pin(pin())
    start = time.monotonic()
    error = privacy.raises(ReaderTimeout, session.read_record)
    assert error.code == "reader_timeout"
    # The session is unusable now, and closing it must not hang on the stuck reader.
    privacy.raises(ReaderTimeout, session.tries_left)
    session.close()
    assert time.monotonic() - start < 1.5
    assert not session.wait_closed(0), "the release waits behind the stuck command"
    card.remove()  # unblocks pcscd: the stuck command fails, then the queued release runs
    assert session.wait_closed(5)


def test_every_error_has_a_code_and_a_message_key() -> None:
    from kiosk.card.errors import ALL_ERRORS

    codes = set()
    for cls in ALL_ERRORS:
        error = cls(1) if cls is WrongPin else cls()
        assert isinstance(error, CardError)
        assert error.code and error.message_key.startswith("card.")
        codes.add(error.code)
    assert len(codes) == len(ALL_ERRORS)


def test_the_privacy_guard_sees_the_log(insert_card: Insert, caplog: pytest.LogCaptureFixture) -> None:
    # Proves the scan is not vacuous: a full read does log, at DEBUG, from kiosk.card.reader.
    insert_card()
    with open_session() as session:
        session.verify_pin(pin())
        session.read_record()
    messages = [r.getMessage() for r in caplog.records if r.name == "kiosk.card.reader"]
    assert any("PIN verified" in m for m in messages)
    assert any("READ BINARY" in m or "00 B0" in m for m in messages)
    assert len(messages) >= 8
