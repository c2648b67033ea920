"""DOLs (EMV Book 3 5.4; PROTOCOL.md §1, §3): parse, build, fill, split."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.dol import DolEntry, build_dol, fill_dol, fit, parse_dol, split_dol
from apdu.elements import ELEMENTS
from apdu.errors import DecodeError, EncodeError
from apdu.messages import CDOL1, PDOL

PDOL_HEX = "9F02065F2A029F37049F1A029A039F160F9F1C08"


def test_protocol_pdol_known_answer() -> None:
    assert parse_dol(bytes.fromhex(PDOL_HEX)) == PDOL
    assert build_dol(PDOL) == bytes.fromhex(PDOL_HEX)
    assert sum(e.length for e in CDOL1) == 42


def test_fill_pads_numeric_left_and_others_right() -> None:
    values = {
        0x9F02: bytes.fromhex("1234"),  # n: left-padded
        0x9F16: b"SHOP",  # ans: right-padded
        0x9A: bytes.fromhex("20261128"),  # n: truncated on the left
        0x9F1C: b"TERMINAL-0001",  # an: truncated on the right
    }
    data = fill_dol(PDOL, values)
    parts = split_dol(PDOL, data)
    assert parts[0x9F02] == bytes.fromhex("000000001234")
    assert parts[0x9F16] == b"SHOP" + bytes(11)
    assert parts[0x9A] == bytes.fromhex("261128")
    assert parts[0x9F1C] == b"TERMINAL"
    assert parts[0x9F37] == bytes(4)  # missing: zero-filled
    assert parts[0x5F2A] == bytes(2)


def test_compressed_numeric_is_padded_with_f() -> None:
    """EMV Book 3 5.4: a cn value (5A, the account) is padded on the right with F, truncated
    on the right; an n value is padded on the left with zeros."""
    assert fit(0x5A, bytes.fromhex("1234"), 5) == bytes.fromhex("1234FFFFFF")
    assert fit(0x5A, bytes.fromhex("123456"), 2) == bytes.fromhex("1234")
    assert fill_dol([DolEntry(0x5A, 4), DolEntry(0x9F02, 3)], {0x5A: b"\x62", 0x9F02: b"\x01"}) == (
        bytes.fromhex("62FFFFFF000001")
    )


def test_unknown_tag_is_binary() -> None:
    assert fit(0x9F7F, b"\x01\x02\x03", 2) == b"\x01\x02"
    assert fit(0x9F02, b"\x01", 0) == b""
    assert fill_dol([DolEntry(0xDF7F, 3)], {}) == bytes(3)


@pytest.mark.parametrize(
    ("hex_dol", "reason"),
    [
        ("9F", "tag runs past the end"),
        ("9F02", "length missing"),
        ("DF818181", "tag longer than 3 bytes"),
        ("9F020600", "byte 00 is no DOL tag"),
    ],
)
def test_malformed_dol(hex_dol: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        parse_dol(bytes.fromhex(hex_dol))


def test_a_tag_named_twice_is_two_entries_each_filled() -> None:
    """PROTOCOL.md §1: a DOL is a list of tag + length, and the terminal fills each entry;
    a tag named twice is read as two entries (a card's PDOL may do so), not refused."""
    twice = parse_dol(bytes.fromhex("9F02069F02039F3704"))
    assert twice == (DolEntry(0x9F02, 6), DolEntry(0x9F02, 3), DolEntry(0x9F37, 4))
    values = {0x9F02: bytes.fromhex("000000001234"), 0x9F37: bytes.fromhex("1A2B3C4D")}
    assert fill_dol(twice, values).hex().upper() == "000000001234" + "001234" + "1A2B3C4D"


def test_a_tag_of_first_byte_ff_is_no_dol_tag() -> None:
    """A DOL entry's tag may not begin with FF, as with 00 (ISO 7816-4 5.2.2.1): the DOL is
    refused at that byte, not read as a two-byte tag FF01 whose length is missing."""
    with pytest.raises(DecodeError, match="byte FF is no DOL tag at offset 3"):
        parse_dol(bytes.fromhex("9F0206FF01"))


def test_dol_entry_count_is_bounded() -> None:
    many = b"".join(bytes((0x9F, i, 1)) for i in range(0x70))
    with pytest.raises(DecodeError, match="longer than 64 entries"):
        parse_dol(many)


def test_a_dol_of_exactly_64_entries_is_read_and_65_are_not() -> None:
    """The bound is 64 entries, not 63: a DOL of 64 was refused, since the loop saw its end
    only on a 65th pass (found by a mutation audit)."""

    def entries(n: int) -> bytes:
        return b"".join(bytes((0x9F, i, 1)) for i in range(n))

    assert len(parse_dol(entries(64))) == 64
    with pytest.raises(DecodeError, match="longer than 64 entries at offset 192"):
        parse_dol(entries(65))


def test_split_refuses_wrong_length_and_repeats() -> None:
    with pytest.raises(DecodeError, match="41 bytes, the DOL asks for 42"):
        split_dol(CDOL1, bytes(41))
    with pytest.raises(DecodeError, match="repeated"):
        split_dol([DolEntry(0x9A, 1), DolEntry(0x9A, 1)], b"\x01\x02")


def test_split_data_of_the_wrong_length_is_refused_at_offset_0() -> None:
    """DOL data of the wrong length is wrong as a whole: the DecodeError points at its start."""
    with pytest.raises(DecodeError) as info:
        split_dol(CDOL1, bytes(43))
    assert info.value.offset == 0


def test_build_refuses_bad_entries() -> None:
    with pytest.raises(EncodeError):
        build_dol([DolEntry(0x9A, 256)])
    with pytest.raises(EncodeError):
        build_dol([DolEntry(0x1F, 1)])


_tags = st.sampled_from(sorted(t for t in ELEMENTS if t <= 0xFFFF and t not in (0x80,)))
_dols = st.lists(
    st.builds(DolEntry, _tags, st.integers(0, 255)), max_size=12, unique_by=lambda e: e.tag
)


@given(_dols)
def test_dol_round_trip(entries: list[DolEntry]) -> None:
    assert parse_dol(build_dol(entries)) == tuple(entries)


@given(_dols, st.data())
def test_fill_then_split(entries: list[DolEntry], data: st.DataObject) -> None:
    values = {e.tag: data.draw(st.binary(max_size=e.length)) for e in entries}
    filled = fill_dol(entries, values)
    assert len(filled) == sum(e.length for e in entries)
    parts = split_dol(entries, filled)
    for e in entries:
        v = values[e.tag]
        assert len(parts[e.tag]) == e.length
        kind = ELEMENTS[e.tag].format
        pad = (b"\xff" if kind == "cn" else b"\x00") * (e.length - len(v))
        assert parts[e.tag] == (pad + v if kind == "n" else v + pad)


@given(st.binary(max_size=100))
def test_any_bytes_parse_or_raise_decode_error(data: bytes) -> None:
    try:
        entries = parse_dol(data)
    except DecodeError:
        return
    assert build_dol(entries) == data
