"""Pure tests of the EF 0002 parser, the BER-TLV walker and the APDU helpers (no PC/SC)."""

from __future__ import annotations

import datetime as dt

import pytest

from kiosk.card import apdu
from kiosk.card.errors import MalformedData
from kiosk.card.record import CardRecord, Sex
from kiosk.card.tlv import header_size, iter_tlv, parse_basic_four, read_length, read_tag
from tests.kiosk.virtual_card import (
    TEST_ADDRESS,
    TEST_BIRTH,
    TEST_NAME,
    TEST_PIN,
    encode_basic_four,
    tlv,
)

# The synthetic vector of domain.md §5, written out byte by byte (not produced by our encoder),
# so the parser is checked against an independent encoding.
NAME_UTF8 = "黒桐\u3000幹也".encode()  # 15 bytes
ADDRESS_UTF8 = "東京都清瀬市観布子南１２－７－２０２".encode()  # 54 bytes
VECTOR = (
    bytes.fromhex("FF20")
    + bytes([0x65])  # 101 = DF21 11 + DF22 18 + DF23 57 + DF24 11 + DF25 4
    # offsets of the four field tags from the start of the file: 14, 32, 89, 100
    + bytes.fromhex("DF2108") + bytes.fromhex("000E002000590064")
    + bytes.fromhex("DF22") + bytes([len(NAME_UTF8)]) + NAME_UTF8
    + bytes.fromhex("DF23") + bytes([len(ADDRESS_UTF8)]) + ADDRESS_UTF8
    + bytes.fromhex("DF2408") + b"19800217"
    + bytes.fromhex("DF2501") + b"1"
)


def test_vector_is_well_formed() -> None:
    # Guard on the hand-written vector itself: its outer length byte must match its body.
    assert VECTOR[2] == len(VECTOR) - 3


def test_synthetic_vector_from_domain_md_parses() -> None:
    record = parse_basic_four(VECTOR + b"\xff" * 100)
    assert record.name == "黒桐\u3000幹也"
    assert record.family_name == "黒桐"
    assert record.given_name == "幹也"
    assert record.address == "東京都清瀬市観布子南１２－７－２０２"
    assert record.birth_date == dt.date(1980, 2, 17)
    assert record.sex is Sex.MALE
    assert record.to_payload() == {
        "name": "黒桐\u3000幹也",
        "address": "東京都清瀬市観布子南１２－７－２０２",
        "birth_date": "1980-02-17",
        "sex": "1",
    }


def test_encoder_of_the_virtual_card_agrees_with_the_vector() -> None:
    assert encode_basic_four() == VECTOR
    assert parse_basic_four(encode_basic_four(file_size=0x200)) == parse_basic_four(VECTOR)


@pytest.mark.parametrize(
    ("raw", "length", "end"),
    [
        (b"\x00", 0, 1),
        (b"\x7f", 127, 1),
        (b"\x81\x80", 128, 2),
        (b"\x81\xff", 255, 2),
        (b"\x82\x01\x00", 256, 3),
        (b"\x82\x02\x58", 600, 3),
        (b"\x83\x01\x00\x00", 65536, 4),
    ],
)
def test_short_and_long_ber_lengths(raw: bytes, length: int, end: int) -> None:
    assert read_length(raw, 0) == (length, end)


@pytest.mark.parametrize("raw", [b"", b"\x80", b"\x81", b"\x82\x01", b"\x85\x01\x02\x03\x04\x05"])
def test_bad_lengths_are_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedData):
        read_length(raw, 0)


def test_multi_byte_tags() -> None:
    assert read_tag(b"\xff\x20", 0) == (0xFF20, 2)
    assert read_tag(b"\xdf\x21", 0) == (0xDF21, 2)
    assert read_tag(b"\x5f\x81\x01", 0) == (0x5F8101, 3)  # three-byte tag
    assert read_tag(b"\x04", 0) == (0x04, 1)
    with pytest.raises(MalformedData):
        read_tag(b"\xdf", 0)
    with pytest.raises(MalformedData):
        read_tag(b"\xdf\x81\x81\x81\x81\x81", 0)  # tag never ends within 4 bytes


def test_long_form_lengths_in_a_whole_file() -> None:
    # An address long enough that DF 23 and FF 20 both need the two-byte long form (82 xx xx).
    long_address = "山形県酒田市本町二丁目２－４５" * 14
    data = encode_basic_four(address=long_address, file_size=0x400)
    assert data[2] == 0x82 and data[3:5] == (len(data.rstrip(b"\xff")) - 5).to_bytes(2, "big")
    assert parse_basic_four(data).address == long_address
    # One-byte long form (81 xx): a body between 128 and 255 bytes.
    medium = encode_basic_four(address="山形県酒田市本町二丁目２－４５" * 2)
    assert medium[2] == 0x81
    assert parse_basic_four(medium).address == "山形県酒田市本町二丁目２－４５" * 2


def test_header_size_tells_the_file_length_or_asks_for_more() -> None:
    data = encode_basic_four(file_size=0x200)
    assert header_size(data) == len(data.rstrip(b"\xff"))
    assert header_size(data[:2]) is None
    assert header_size(b"\xff") is None
    assert header_size(b"") is None
    assert header_size(b"\xff\x20\x82\x01") is None
    assert header_size(b"\xff\x20\x82\x01\x00") == 5 + 256
    with pytest.raises(MalformedData):
        header_size(b"\xff\x20\x80")  # indefinite length


def test_walker_skips_trailing_filler_and_yields_offsets() -> None:
    data = tlv(0xDF22, b"ab") + tlv(0xDF25, b"1") + b"\x00\x00\xff"
    objects = list(iter_tlv(data))
    assert [(o.tag, o.value, o.offset) for o in objects] == [(0xDF22, b"ab", 0), (0xDF25, b"1", 5)]


def test_unknown_tags_are_ignored_and_field_order_does_not_matter() -> None:
    body = (
        tlv(0xDF25, b"2")
        + tlv(0xDF30, b"future")
        + tlv(0xDF24, b"20000229")
        + tlv(0xDF23, "酒田市本町".encode())
        + tlv(0xDF22, "山田\u3000花子".encode())
    )
    record = parse_basic_four(tlv(0xFF20, body))
    assert record.sex is Sex.FEMALE
    assert record.birth_date == dt.date(2000, 2, 29)
    assert record.address == "酒田市本町"


def _file(**fields: bytes) -> bytes:
    parts = {
        "name": tlv(0xDF22, NAME_UTF8),
        "address": tlv(0xDF23, ADDRESS_UTF8),
        "birth": tlv(0xDF24, b"19800217"),
        "sex": tlv(0xDF25, b"1"),
    }
    parts.update(fields)
    return tlv(0xFF20, b"".join(parts.values()))


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "tag expected"),
        (b"\xdf\x22\x01a", "expected 0xff20"),
        (b"\xff\x20\x50" + b"\xdf\x22\x01a", "only"),  # outer length longer than the data
        (_file(name=b""), "0xdf22"),  # missing name
        (_file(sex=b""), "0xdf25"),  # missing sex
        (_file(name=tlv(0xDF22, b"\xe9\xbb")), "not UTF-8"),  # cut multi-byte character
        (_file(name=tlv(0xDF22, "\u3000 ".encode())), "empty"),
        (_file(birth=tlv(0xDF24, b"1980021")), "8 ASCII digits"),
        (_file(birth=tlv(0xDF24, b"19800230")), "not a date"),
        (_file(birth=tlv(0xDF24, b"1980-2-1")), "8 ASCII digits"),
        (_file(sex=tlv(0xDF25, b"3")), "0, 1, 2, 9"),
        (_file(sex=tlv(0xDF25, b"\xff")), "0, 1, 2, 9"),
        (_file(address=tlv(0xDF23, b"x") + tlv(0xDF23, b"y")), "twice"),
        (tlv(0xFF20, tlv(0xDF22, NAME_UTF8) + b"\xff\xff" + tlv(0xDF23, b"x")), "0xdf23"),
        (b"\xff\x20\x06\xdf\x22\x10abc", "claims 16 bytes"),  # inner length past the template
    ],
)
def test_malformed_files_raise_malformed_data(data: bytes, needle: str) -> None:
    with pytest.raises(MalformedData) as excinfo:
        parse_basic_four(data)
    assert needle in str(excinfo.value)
    assert excinfo.value.code == "malformed_data"


def test_malformed_messages_never_quote_the_data() -> None:
    bad_date = _file(birth=tlv(0xDF24, b"19800230"))
    bad_name = _file(name=tlv(0xDF22, NAME_UTF8[:-1]))
    for data in (bad_date, bad_name):
        with pytest.raises(MalformedData) as excinfo:
            parse_basic_four(data)
        text = str(excinfo.value) + repr(excinfo.value)
        for secret in ("19800230", "黒桐", "幹", NAME_UTF8[:6].hex()):
            assert secret not in text


def test_record_repr_and_str_hide_personal_data() -> None:
    record = parse_basic_four(VECTOR)
    for text in (repr(record), str(record), f"{record}", repr([record])):
        assert "黒桐" not in text and "清瀬" not in text and "1980" not in text and "MALE" not in text
    assert record == CardRecord(TEST_NAME, TEST_ADDRESS, dt.date(1980, 2, 17), Sex.MALE)
    assert TEST_BIRTH == "19800217"


def test_tlv_repr_shows_only_the_size() -> None:
    (obj,) = list(iter_tlv(tlv(0xDF22, NAME_UTF8)))
    assert "黒桐" not in repr(obj) and NAME_UTF8.hex() not in repr(obj)
    assert "length=15" in repr(obj)


# -- APDU builders and status words --------------------------------------------------------


def test_apdus_match_domain_md() -> None:
    assert apdu.select_ap().hex(" ").upper() == "00 A4 04 0C 0A D3 92 10 00 31 00 01 01 04 08"
    assert apdu.select_ef(apdu.FID_PIN).hex(" ").upper() == "00 A4 02 0C 02 00 11"
    assert apdu.select_ef(apdu.FID_BASIC_FOUR).hex(" ").upper() == "00 A4 02 0C 02 00 02"
    assert apdu.tries_left_query().hex(" ").upper() == "00 20 00 80"
    assert bytes(apdu.verify_pin(bytearray(b"1234"))).hex(" ").upper() == "00 20 00 80 04 31 32 33 34"
    assert apdu.read_binary(0, 256).hex(" ").upper() == "00 B0 00 00 00"
    assert apdu.read_binary(0x123, 16).hex(" ").upper() == "00 B0 01 23 10"


def test_the_my_number_ef_cannot_even_be_selected() -> None:
    with pytest.raises(ValueError, match="My Number"):
        apdu.select_ef(b"\x00\x01")


@pytest.mark.parametrize("pin", [b"123", b"12345", b"12a4", b"", "１２３４".encode()])
def test_pin_must_be_four_ascii_digits_and_is_not_echoed(pin: bytes) -> None:
    with pytest.raises(ValueError) as excinfo:
        apdu.verify_pin(bytearray(pin))
    if pin:
        assert pin.decode(errors="replace") not in str(excinfo.value)


def test_describe_never_shows_the_data_field() -> None:
    text = apdu.describe(apdu.verify_pin(bytearray(TEST_PIN.encode())))
    assert text == "00 20 00 80 Lc=4"
    assert TEST_PIN not in text and "37 33" not in text


@pytest.mark.parametrize(
    ("sw", "status", "tries"),
    [
        ((0x90, 0x00), apdu.Status.OK, None),
        ((0x62, 0x82), apdu.Status.END_OF_FILE, None),
        ((0x63, 0xC3), apdu.Status.WRONG_PIN, 3),
        ((0x63, 0xC1), apdu.Status.WRONG_PIN, 1),
        ((0x63, 0xC0), apdu.Status.WRONG_PIN, 0),
        ((0x69, 0x84), apdu.Status.BLOCKED, 0),
        ((0x69, 0x83), apdu.Status.BLOCKED, 0),
        ((0x69, 0x82), apdu.Status.SECURITY, None),
        ((0x6A, 0x82), apdu.Status.NOT_FOUND, None),
        ((0x6B, 0x00), apdu.Status.WRONG_OFFSET, None),
        ((0x61, 0x10), apdu.Status.MORE_DATA, None),
        ((0x6C, 0x20), apdu.Status.WRONG_LE, None),
        ((0x63, 0x00), apdu.Status.OTHER, None),
        ((0x6F, 0x00), apdu.Status.OTHER, None),
    ],
)
def test_status_words(sw: tuple[int, int], status: apdu.Status, tries: int | None) -> None:
    word = apdu.StatusWord(*sw)
    assert word.status is status
    assert word.tries_left == tries


def test_split_response() -> None:
    assert apdu.split_response([1, 2, 0x90, 0x00]) == (b"\x01\x02", apdu.StatusWord(0x90, 0))
    with pytest.raises(ValueError):
        apdu.split_response([0x90])
