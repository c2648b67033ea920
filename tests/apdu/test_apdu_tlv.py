"""BER-TLV (ISO 7816-4 5.2, EMV Book 3 Annex B): known answers, round trips, malformed input."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from apdu import tlv
from apdu.errors import DecodeError, EncodeError
from apdu.templates import tags_in
from apdu.tlv import Tlv, constructed, primitive, tag_hex

PPSE_FCI = bytes.fromhex(
    "6F31840E325041592E5359532E4444463031A51FBF0C1C611A4F09F04843455041590001"
    "500A48434520435245444954870101"
)


def test_ppse_tree() -> None:
    (fci,) = tlv.decode(PPSE_FCI)
    assert fci.tag == 0x6F and fci.constructed
    aid = fci.find(0x4F)
    assert aid is not None and aid.value == bytes.fromhex("F04843455041590001")
    bf0c = fci.find(0xBF0C)
    assert bf0c is not None and [c.tag for c in bf0c.children] == [0x61]
    assert fci.find(0x9F38) is None
    assert [t.tag for t in fci.find_all(0x61)] == [0x61]
    assert tlv.encode(fci) == PPSE_FCI


def test_long_lengths() -> None:
    for size, header in (
        (127, "9F467F"),
        (128, "9F468180"),
        (255, "9F4681FF"),
        (256, "9F46820100"),
    ):
        encoded = tlv.encode(primitive(0x9F46, bytes(size)))
        assert encoded[: len(header) // 2] == bytes.fromhex(header)
        assert tlv.decode_one(encoded).value == bytes(size)


def test_padding_is_skipped() -> None:
    items = tlv.decode(bytes.fromhex("00FF5A0112FF00009F360200010000"))
    assert [(t.tag, t.value) for t in items] == [(0x5A, b"\x12"), (0x9F36, b"\x00\x01")]


def test_padding_inside_template() -> None:
    item = tlv.decode_one(bytes.fromhex("7005005A0112FF"))
    assert [c.tag for c in item.children] == [0x5A]


def test_three_byte_tag() -> None:
    item = tlv.decode_one(bytes.fromhex("DF810A0101"))
    assert item.tag == 0xDF810A and item.value == b"\x01"


@pytest.mark.parametrize("raw", ["9F800101AA", "DF80000100", "7F8001 03 5A0100".replace(" ", "")])
def test_a_tag_whose_first_subsequent_byte_is_80_is_refused(raw: str) -> None:
    """ISO/IEC 7816-4 5.2.2.1 (BER, X.690 8.1.2.4.2 c): a three-byte tag's second byte has
    b7-b1 not all 0; two-byte tags below 1F (EMV's 9F02...) stay valid."""
    with pytest.raises(DecodeError, match="first subsequent byte is 80") as info:
        tlv.decode(bytes.fromhex(raw))
    assert info.value.offset == 0
    assert tlv.decode_one(bytes.fromhex("9F020100")).tag == 0x9F02


def test_find_all_depth_first() -> None:
    tree = constructed(
        0x70,
        constructed(0x61, primitive(0x4F, b"\x01" * 5)),
        constructed(0x61, primitive(0x4F, b"\x02" * 5)),
    )
    assert [t.value[0] for t in tree.find_all(0x4F)] == [1, 2]
    assert tree.find(0x61) == tree.children[0]


def test_df02_is_a_template_df01_df03_primitive() -> None:
    assert tlv.is_constructed(0xDF02)
    assert not tlv.is_constructed(0xDF01)
    assert not tlv.is_constructed(0xDF03)
    assert tlv.is_constructed(0xBF0C) and not tlv.is_constructed(0x9F46)


@pytest.mark.parametrize(
    ("hex_data", "reason", "offset"),
    [
        ("9F", "tag runs past the end", 0),
        ("5A", "length of tag 5A missing", 1),
        ("5A80", "indefinite length", 1),
        ("5A8301000000", "length form 83", 1),
        ("5A81", "length of tag 5A runs past the end", 1),
        ("5A8201", "length of tag 5A runs past the end", 1),
        ("5A0301", "value of tag 5A runs past the end", 2),
        ("9F460301", "value of tag 9F46 runs past the end", 3),
        ("7003" + "5A0501", "value of tag 5A runs past the end", 4),
        ("DF8181810100", "tag longer than 3 bytes", 0),
    ],
)
def test_malformed(hex_data: str, reason: str, offset: int) -> None:
    with pytest.raises(DecodeError) as info:
        tlv.decode(bytes.fromhex(hex_data))
    assert reason in info.value.reason
    assert info.value.offset == offset


def test_depth_is_bounded() -> None:
    data = b"\x5a\x00"
    for _ in range(20):
        data = bytes((0x70, len(data))) + data
    with pytest.raises(DecodeError, match="nested deeper than 8"):
        tlv.decode(data)
    assert tlv.decode(data, max_depth=30)[0].find(0x5A) is not None


def _nested(templates: int) -> bytes:
    data = b"\x5a\x00"
    for _ in range(templates):
        data = bytes((0x70, len(data))) + data
    return data


@pytest.mark.parametrize("max_depth", [1, 3, tlv.DEFAULT_MAX_DEPTH])
def test_depth_boundary_is_exact(max_depth: int) -> None:
    """max_depth templates, one inside the other, decode; one more is refused."""
    kwargs = {} if max_depth == tlv.DEFAULT_MAX_DEPTH else {"max_depth": max_depth}
    assert tlv.decode(_nested(max_depth), **kwargs)[0].find(0x5A) is not None
    assert tlv.decode_one(_nested(max_depth), **kwargs).find(0x5A) is not None
    with pytest.raises(DecodeError, match=f"nested deeper than {max_depth}"):
        tlv.decode(_nested(max_depth + 1), **kwargs)
    with pytest.raises(DecodeError, match=f"nested deeper than {max_depth}"):
        tlv.decode_one(_nested(max_depth + 1), **kwargs)


def test_decode_one_refuses_trailing_and_empty() -> None:
    with pytest.raises(DecodeError, match="1 trailing bytes after tag 5A") as info:
        tlv.decode_one(bytes.fromhex("5A011200"))
    assert info.value.offset == 3
    with pytest.raises(DecodeError, match="empty"):
        tlv.decode_one(b"")


@pytest.mark.parametrize(
    "tag", [0x1F, 0x9F80, 0x00, 0xFF, 0x9F8181, 0x01020304, -1, 0x5F9F, 0x9F8001, 0xDF8000]
)
def test_invalid_tags_refused(tag: int) -> None:
    with pytest.raises(EncodeError):
        tlv.tag_bytes(tag)


def test_builders_check_the_tag_kind() -> None:
    with pytest.raises(EncodeError, match="constructed"):
        primitive(0x70, b"")
    with pytest.raises(EncodeError, match="primitive"):
        constructed(0x5A)
    with pytest.raises(EncodeError, match="exceeds"):
        tlv.encode(Tlv(0x5A, bytes(0x10000)))


_one_byte_primitive = st.integers(1, 0x1E).map(lambda low: 0x40 | low)
_two_byte_tags = st.integers(0x00, 0x7F).map(lambda second: 0x9F00 | second)
_three_byte_tags = st.tuples(st.integers(0x81, 0xFF), st.integers(0, 0x7F)).map(
    lambda p: 0xDF0000 | p[0] << 8 | p[1]
)
_primitive_tags = (_one_byte_primitive | _two_byte_tags | _three_byte_tags).filter(
    lambda t: not tlv.is_constructed(t)
)
_template_tags = st.sampled_from([0x61, 0x6F, 0x70, 0x77, 0xA5, 0xBF0C, 0xDF02, 0xE1])


def _trees(max_leaves: int = 12) -> st.SearchStrategy[Tlv]:
    leaves = st.builds(primitive, _primitive_tags, st.binary(max_size=300))
    return st.recursive(
        leaves,
        lambda kids: st.builds(
            lambda tag, children: constructed(tag, *children),
            _template_tags,
            st.lists(kids, max_size=4),
        ),
        max_leaves=max_leaves,
    )


@given(st.lists(_trees(), max_size=4))
def test_decode_of_encode_is_identity(items: list[Tlv]) -> None:
    encoded = tlv.encode(*items)
    assert tlv.decode(encoded, max_depth=16) == tuple(items)
    assert tlv.encode(*tlv.decode(encoded, max_depth=16)) == encoded


@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    try:
        items = tlv.decode(data)
    except DecodeError as exc:
        assert 0 <= exc.offset <= len(data)
    else:
        assert all(isinstance(item, Tlv) for item in items)


@pytest.mark.parametrize("raw", ["0000", "FF0200", "00840100"])
def test_decode_one_refuses_padding_where_a_tag_starts(raw: str) -> None:
    with pytest.raises(DecodeError, match="padding byte"):
        tlv.decode_one(bytes.fromhex(raw))


@given(st.integers(0, tlv.MAX_LENGTH + 2))
@example(tlv.MAX_LENGTH + 1)
@example(0x80)
@example(0x100)
def test_hand_length_fields_equal_the_construct_formats(length: int) -> None:
    try:
        want = tlv._length_with_format(length)
    except EncodeError:
        with pytest.raises(EncodeError, match="exceeds"):
            tlv._length_bytes(length)
        return
    assert tlv._length_bytes(length) == want
    if length >= 0x80:
        assert tlv._length_with_format_parse(want) == length
        assert tlv.decode_one(bytes((0x5A,)) + want + bytes(length)).value == bytes(length)


def test_tag_bytes_memo_keeps_refusing_bad_tags() -> None:
    assert tlv.tag_bytes(0x9F36) == tlv.tag_bytes(0x9F36) == b"\x9f\x36"
    for _ in range(2):
        with pytest.raises(EncodeError):
            tlv.tag_bytes(0x9F80)


@pytest.mark.parametrize("form", ["83000003", "8400000003", "80"], ids=["83", "84", "80"])
def test_the_flat_fast_path_refuses_a_length_form_the_decoder_refuses(form: str) -> None:
    """PROTOCOL.md §1: lengths are short, 81 xx or 82 xx xx. A template whose own length
    has another form is not taken by the fast path (`flat_values` gives None), and the
    full decoder, and so `tags_in`, refuses it."""
    data = bytes.fromhex("70" + form + "5A0112")
    assert tlv.flat_values(data, 0x70) is None
    with pytest.raises(DecodeError):
        tags_in(data, 0x70)


@pytest.mark.parametrize(
    ("tag", "text"),
    [
        (0x03, "03"),
        (0x5A, "5A"),
        (0x9F36, "9F36"),
        (0xBF0C, "BF0C"),
        (0xDF8101, "DF8101"),
        (0, "00"),
    ],
)
def test_a_tag_is_named_by_its_bytes(tag: int, text: str) -> None:
    """Messages name a tag as EMV writes it, by its bytes: 03, not 3."""
    assert tag_hex(tag) == text


def test_a_one_digit_tag_is_two_digits_in_a_decode_error() -> None:
    with pytest.raises(DecodeError, match=r"value of tag 03 runs past the end"):
        tlv.decode(bytes.fromhex("0302"))


@given(st.integers(min_value=0, max_value=0xFFFFFF))
def test_tag_hex_is_an_even_number_of_digits_that_reads_back(tag: int) -> None:
    text = tag_hex(tag)
    assert len(text) % 2 == 0 and int(text, 16) == tag and len(text) <= 6
