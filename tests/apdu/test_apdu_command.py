"""Command and response APDUs (ISO 7816-4 5.1): known answers, round trips, malformed input."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.command import CommandAPDU
from apdu.errors import DecodeError, EncodeError
from apdu.response import ResponseAPDU


@pytest.mark.parametrize(
    ("hex_apdu", "case", "lc", "le"),
    [
        ("00A4040007A000000003101000", "4S", 7, 256),
        ("00B2010C00", "2S", 0, 256),
        ("0084000008", "2S", 0, 8),
        ("00A40400", "1", 0, None),
        ("80CA9F3600", "2S", 0, 256),
        ("00A4040002AABB", "3S", 2, None),
        ("00B20000000000", "2E", 0, 65536),
        ("00B2000000012C", "2E", 0, 300),
        ("00DA0000000003AABBCC", "3E", 3, None),
    ],
)
def test_known_answers(hex_apdu: str, case: str, lc: int, le: int | None) -> None:
    raw = bytes.fromhex(hex_apdu)
    cmd = CommandAPDU.parse(raw)
    assert (cmd.case, len(cmd.data), cmd.le) == (case, lc, le)
    assert cmd.to_bytes() == raw


def test_select_fields() -> None:
    cmd = CommandAPDU.parse(bytes.fromhex("00A4040007A000000003101000"))
    assert cmd == CommandAPDU(0x00, 0xA4, 0x04, 0x00, bytes.fromhex("A0000000031010"), 256)


def test_extended_case_4_with_300_bytes() -> None:
    data = bytes(range(256)) + bytes(44)
    raw = bytes.fromhex("80E00000") + b"\x00\x01\x2c" + data + b"\x00\x00"
    cmd = CommandAPDU.parse(raw)
    assert cmd.case == "4E"
    assert cmd.data == data
    assert cmd.le == 65536
    assert cmd.extended
    assert cmd.to_bytes() == raw


@pytest.mark.parametrize(
    ("hex_apdu", "offset"),
    [
        ("", 0),  # empty
        ("00A404", 3),  # truncated header
        ("00A4040007A0000000031010000000", 4),  # trailing bytes after Le
        ("00A4040007A00000", 4),  # Lc too long for the data
        ("00A40400020102030405", 4),  # Lc too short for the data
        ("00A4040000AA", 5),  # extended length truncated
        ("00A4040000000011", 5),  # extended Lc 0 with data
        ("80CA9F360000000100", 5),  # extended Lc 0, then two bytes that would read as Le
        ("00A404000000050102", 5),  # extended Lc past the end
        ("00A40400000002010203", 5),  # extended: one stray byte
    ],
)
def test_malformed_commands(hex_apdu: str, offset: int) -> None:
    with pytest.raises(DecodeError) as info:
        CommandAPDU.parse(bytes.fromhex(hex_apdu))
    assert info.value.offset == offset
    assert str(info.value).endswith(f"at offset {offset}")


@pytest.mark.parametrize(
    "cmd",
    [
        CommandAPDU(0x100, 0, 0, 0),
        CommandAPDU(0, 0, -1, 0),
        CommandAPDU(0, 0, 0, 0, bytes(256)),
        CommandAPDU(0, 0, 0, 0, b"", 257),
        CommandAPDU(0, 0, 0, 0, b"", 0),
        CommandAPDU(0, 0, 0, 0, bytes(65536), None, True),
        CommandAPDU(0, 0, 0, 0, b"", 65537, True),
        CommandAPDU(0, 0, 0, 0, b"", 0, True),  # 0000 would be read back as 65536
        CommandAPDU(0, 0, 0, 0, b"\x01", 0, True),
        CommandAPDU(0, 0, 0, 0, b"", None, True),
    ],
)
def test_unencodable_commands(cmd: CommandAPDU) -> None:
    with pytest.raises(EncodeError):
        cmd.to_bytes()


_byte = st.integers(0, 255)


@st.composite
def commands(draw: st.DrawFn) -> CommandAPDU:
    extended = draw(st.booleans())
    max_data, max_le = (700, 65536) if extended else (255, 256)
    data = draw(st.binary(max_size=max_data))
    le = draw(st.none() | st.integers(1, max_le))
    if extended and not data and le is None:
        extended = False
    return CommandAPDU(draw(_byte), draw(_byte), draw(_byte), draw(_byte), data, le, extended)


@given(commands())
def test_parse_of_build_is_identity(cmd: CommandAPDU) -> None:
    assert CommandAPDU.parse(cmd.to_bytes()) == cmd


@given(st.binary(max_size=300))
def test_any_bytes_parse_or_raise_decode_error(raw: bytes) -> None:
    try:
        cmd = CommandAPDU.parse(raw)
    except DecodeError as exc:
        assert 0 <= exc.offset <= len(raw)
    else:
        assert cmd.to_bytes() == raw  # build(parse(x)) == x for every valid encoding


@st.composite
def near_commands(draw: st.DrawFn) -> bytes:
    """A header, length fields drawn apart from the data they count (short or extended Lc
    and Le, small or zero), and a little data: the encodings random bytes almost never
    reach, such as an extended Lc of 0."""
    header = draw(st.binary(min_size=4, max_size=4))
    extended = draw(st.booleans())
    width = 2 if extended else 1
    lc = draw(st.none() | st.integers(0, 3).map(lambda n: n.to_bytes(width, "big")))
    data = draw(st.binary(max_size=4))
    le = draw(st.none() | st.binary(min_size=width, max_size=width))
    fields = (b"\x00" if extended else b"") + (lc or b"") + data + (le or b"")
    return header + fields


@given(near_commands() | commands().map(CommandAPDU.to_bytes))
def test_every_command_that_parses_re_encodes_to_its_bytes(raw: bytes) -> None:
    """One encoding per command (ISO 7816-4 5.1): whatever parses builds back unchanged."""
    try:
        cmd = CommandAPDU.parse(raw)
    except DecodeError:
        return
    assert cmd.to_bytes() == raw


@given(st.binary(min_size=2, max_size=300))
def test_response_round_trip(raw: bytes) -> None:
    rsp = ResponseAPDU.parse(raw)
    assert rsp.to_bytes() == raw
    assert rsp.sw == rsp.sw1 << 8 | rsp.sw2
    assert rsp.data == raw[:-2]


@given(st.binary(max_size=300), st.integers(0, 0xFFFF))
def test_response_parse_of_build_is_identity(data: bytes, sw: int) -> None:
    """A response APDU (ISO 7816-4 5.1: data, then SW1 SW2) reads back as the data and status
    word it was built from."""
    rsp = ResponseAPDU(data, sw)
    assert ResponseAPDU.parse(rsp.to_bytes()) == rsp


@given(st.binary(max_size=1))
def test_a_response_shorter_than_its_status_word_is_a_decode_error(raw: bytes) -> None:
    """Fewer than the two SW bytes is no response (ISO 7816-4 5.1): DecodeError at its end."""
    with pytest.raises(DecodeError) as info:
        ResponseAPDU.parse(raw)
    assert info.value.offset == len(raw)


def test_response_fields() -> None:
    rsp = ResponseAPDU.parse(bytes.fromhex("6F009000"))
    assert (rsp.data, rsp.sw, rsp.sw1, rsp.sw2) == (b"\x6f\x00", 0x9000, 0x90, 0x00)


@pytest.mark.parametrize("raw", [b"", b"\x90"])
def test_response_too_short(raw: bytes) -> None:
    with pytest.raises(DecodeError, match="status word"):
        ResponseAPDU.parse(raw)


def test_response_sw_out_of_range() -> None:
    with pytest.raises(EncodeError):
        ResponseAPDU(b"", 0x10000).to_bytes()


@given(commands())
def test_hand_builder_equals_the_construct_format(cmd: CommandAPDU) -> None:
    assert cmd.to_bytes() == cmd.build_with_format()


def _parsed_or_error(parse: Callable[[bytes], object], raw: bytes) -> object:
    try:
        return parse(raw)
    except DecodeError as exc:
        return (exc.reason, exc.offset)


@given(commands().map(CommandAPDU.to_bytes) | st.binary(max_size=300))
def test_hand_parser_equals_the_construct_format(raw: bytes) -> None:
    want = _parsed_or_error(CommandAPDU.parse_with_format, raw)
    assert _parsed_or_error(CommandAPDU.parse, raw) == want
    # cast: CommandAPDU.parse is typed for bytes; a bytearray must parse alike
    assert _parsed_or_error(CommandAPDU.parse, cast(bytes, bytearray(raw))) == want


@given(st.binary(max_size=40))
def test_hand_response_split_equals_the_construct_format(raw: bytes) -> None:
    want = _parsed_or_error(ResponseAPDU.parse_with_format, raw)
    assert _parsed_or_error(ResponseAPDU.parse, raw) == want
