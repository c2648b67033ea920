"""The protocol's commands and templates (PROTOCOL.md §3, §4, §9)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu import messages as m
from apdu import tlv
from apdu.errors import DecodeError, EncodeError
from apdu.templates import byte_field, tags_in, template
from apdu.tlv import constructed, primitive

PPSE_FCI_HEX = (
    "6F31840E325041592E5359532E4444463031A51FBF0C1C611A4F09F04843455041590001"
    "500A48434520435245444954870101"
)


def test_command_known_answers() -> None:
    assert m.select(m.PPSE_NAME).to_bytes().hex().upper() == (
        "00A404000E325041592E5359532E444446303100"
    )
    assert m.select(m.CREDIT_AID).to_bytes().hex().upper() == "00A4040009F0484345504159000100"
    assert m.read_record(1).to_bytes().hex().upper() == "00B2010C00"
    assert m.read_record(2, sfi=2).to_bytes().hex().upper() == "00B2021400"
    assert m.gpo(b"\x01\x02").to_bytes().hex().upper() == "80A8000004830201020" + "0"
    assert m.generate_ac(bytes(42)).to_bytes()[:5].hex().upper() == "80AE50002A"
    assert m.get_data(0x9F36).to_bytes().hex().upper() == "80CA9F3600"
    assert m.get_data(m.TAG_LAST_ANSWER).to_bytes().hex().upper() == "80CADF0200"
    assert m.get_response(0x0C).to_bytes().hex().upper() == "00C000000C"
    assert m.get_response(0).to_bytes().hex().upper() == "00C0000000"


def test_gpo_pdol_data() -> None:
    assert m.gpo_pdol_data(m.gpo(b"\xaa\xbb").data) == b"\xaa\xbb"
    with pytest.raises(DecodeError, match="template 83 missing"):
        m.gpo_pdol_data(bytes.fromhex("8402AABB"))
    with pytest.raises(DecodeError, match="trailing"):
        m.gpo_pdol_data(bytes.fromhex("8301AABB"))


@pytest.mark.parametrize(
    "call",
    [
        lambda: m.read_record(0),
        lambda: m.read_record(1, sfi=31),
        lambda: m.get_data(0x10000),
        lambda: m.get_response(257),
    ],
)
def test_command_arguments_checked(call: Callable[[], object]) -> None:
    with pytest.raises(EncodeError):
        call()


def test_ppse_known_answer() -> None:
    fci = m.PpseFci(m.PPSE_NAME, (m.DirectoryEntry(m.CREDIT_AID, m.APP_LABEL, 1),))
    assert m.build_ppse_fci(fci).hex().upper() == PPSE_FCI_HEX
    assert m.parse_ppse_fci(bytes.fromhex(PPSE_FCI_HEX)) == fci


def test_record1_value_is_inside_70() -> None:
    r = m.Record1(bytes.fromhex("6200123456789012"), b"\x30\x12\x31", b"A/B", m.cdol1_bytes(), 1)
    data = m.build_record1(r)
    parsed, value = m.parse_record1(data)
    assert parsed == r
    assert data == b"\x70" + bytes((len(value),)) + value


def test_record3_remainder_absent_when_empty() -> None:
    data = m.build_record3(m.Record3(b"\x03", b""))
    assert data == bytes.fromhex("70049F470103")
    assert m.parse_record3(data) == m.Record3(b"\x03", b"")


def test_last_answer_known_answer() -> None:
    answer = m.build_generate_ac_response(m.GenerateAcResponse(0x40, 5, b"\x01\x02"))
    assert answer == bytes.fromhex("770E9F2701409F360200059F4B020102")
    data = m.build_last_answer(m.LastAnswer(answer, b"\xcc" * 3))
    assert data == bytes.fromhex("DF0216") + answer + bytes.fromhex("DF0303CCCCCC")
    assert m.parse_last_answer(data) == m.LastAnswer(answer, b"\xcc" * 3)
    with pytest.raises(EncodeError, match="no GENERATE AC template"):
        m.build_last_answer(m.LastAnswer(b"\x70\x00", b""))


# --- malformed templates (built with the TLV layer, so each row breaks one thing) -------

P, C = tlv.primitive, tlv.constructed


def _enc(item: tlv.Tlv) -> bytes:
    return tlv.encode(item)


def _gpo(*extra: tlv.Tlv, aip: bytes = m.AIP, afl: bytes = m.AFL) -> bytes:
    return _enc(C(0x77, P(0x82, aip), P(0x94, afl), P(0x9F36, b"\x00\x01"), *extra))


def _entry(*extra: tlv.Tlv) -> tlv.Tlv:
    return C(0x61, P(0x4F, m.CREDIT_AID), P(0x50, m.APP_LABEL), P(0x87, b"\x01"), *extra)


def _ppse(*entries: tlv.Tlv) -> bytes:
    return _enc(C(0x6F, P(0x84, m.PPSE_NAME), C(0xA5, C(0xBF0C, *entries))))


def _app_fci(pdol: bytes) -> bytes:
    a5 = C(0xA5, P(0x50, m.APP_LABEL), P(0x87, b"\x01"), P(0x9F38, pdol))
    return _enc(C(0x6F, P(0x84, m.CREDIT_AID), a5))


_GAC = m.build_generate_ac_response(m.GenerateAcResponse(0x40, 1, b"\x01"))

MALFORMED: list[tuple[Callable[[bytes], Any], bytes, str]] = [
    (m.parse_gpo_response, bytes.fromhex("7000"), "template 77 missing"),
    (
        m.parse_gpo_response,
        _enc(C(0x77, P(0x82, m.AIP), P(0x94, m.AFL))),
        "mandatory tag 9F36 missing from template 77",
    ),
    (m.parse_gpo_response, _gpo() + b"\x5a\x00", "one template 77 expected, found 2"),
    (m.parse_gpo_response, b"\x00\xff", "one template 77 expected, found 0"),
    (m.parse_gpo_response, _gpo()[:-1], "value of tag 77 runs past the end"),
    (m.parse_gpo_response, _gpo(P(0x9F36, b"\x00\x02")), "tag 9F36 repeated in template 77"),
    (
        m.parse_gpo_response,
        _gpo(C(0x70, P(0x82, m.AIP))),
        "tag 82 repeated in template 77",  # repeated anywhere, even nested
    ),
    (m.parse_gpo_response, _gpo(afl=m.AFL + b"\x01"), "not a multiple of 4"),
    (m.parse_gpo_response, _gpo(aip=b"\x01"), "tag 82 has 1 bytes"),
    (m.parse_ppse_fci, _enc(C(0x6F, P(0x84, m.PPSE_NAME))), "tag A5 missing"),
    (m.parse_ppse_fci, _ppse(), "mandatory tag 61 missing"),
    (m.parse_ppse_fci, _ppse(_entry(P(0x87, b"\x02"))), "tag 87 repeated in template 61"),
    (m.parse_ppse_fci, _ppse(*[_entry()] * 17), "more than 16 directory entries"),
    (
        m.parse_pse_fci,
        _enc(C(0x6F, P(0x84, m.PSE_NAME), C(0xA5, P(0x88, b"\x1f")))),
        "outside 1..30",
    ),
    (m.parse_directory_record, bytes.fromhex("7000"), "mandatory tag 61 missing"),
    (m.parse_app_fci, _app_fci(bytes.fromhex("9F02")), "length missing"),
    (m.parse_record2, bytes.fromhex("70035A0112"), "mandatory tag 9F46 missing"),
    (m.parse_record3, bytes.fromhex("70049F480101"), "mandatory tag 9F47 missing"),
    (m.parse_generate_ac_response, bytes.fromhex("77049F270140"), "tag 9F36 missing"),
    (
        m.parse_last_answer,
        _enc(C(m.TAG_LAST_ANSWER, P(m.TAG_LAST_CDOL1, b"\xcc"))),
        "mandatory tag 77 missing",
    ),
    (
        m.parse_last_answer,
        _enc(C(m.TAG_LAST_ANSWER, tlv.decode_one(_GAC))),
        "mandatory tag DF03 missing",
    ),
]


@pytest.mark.parametrize("before", [b"", b"\x00", b"\xff\x00"])
@pytest.mark.parametrize("after", [b"", b"\x00", b"\x00\xff\xff"])
def test_padding_around_a_template_is_skipped(before: bytes, after: bytes) -> None:
    """P§1: BER-TLV as ISO/IEC 7816-4 5.2 and EMV Book 3 Annex B: 00 (and FF) may come
    before, between or after the data objects; a reader skips them."""
    assert m.parse_gpo_response(before + _gpo() + after) == m.parse_gpo_response(_gpo())


@pytest.mark.parametrize(("parse", "data", "reason"), MALFORMED)
def test_malformed_templates(parse: Callable[[bytes], Any], data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        parse(data)


# --- round trips -----------------------------------------------------------------------

_aids = st.binary(min_size=5, max_size=16)
_labels = st.binary(max_size=16)
_entries = st.builds(m.DirectoryEntry, _aids, _labels, st.integers(0, 255))
_entry_tuples = st.lists(_entries, min_size=1, max_size=4).map(tuple)


@given(st.binary(max_size=16), _entry_tuples)
def test_ppse_round_trip(name: bytes, entries: tuple[m.DirectoryEntry, ...]) -> None:
    fci = m.PpseFci(name, entries)
    data = m.build_ppse_fci(fci)
    assert m.parse_ppse_fci(data) == fci
    assert m.build_ppse_fci(m.parse_ppse_fci(data)) == data


@given(st.binary(max_size=16), st.integers(1, 30), _entry_tuples)
def test_pse_round_trips(name: bytes, sfi: int, entries: tuple[m.DirectoryEntry, ...]) -> None:
    assert m.parse_pse_fci(m.build_pse_fci(m.PseFci(name, sfi))) == m.PseFci(name, sfi)
    record = m.DirectoryRecord(entries)
    assert m.parse_directory_record(m.build_directory_record(record)) == record


@given(_aids, _labels, st.integers(0, 255))
def test_app_fci_round_trip(aid: bytes, label: bytes, priority: int) -> None:
    fci = m.AppFci(aid, label, priority, m.pdol_bytes())
    assert m.parse_app_fci(m.build_app_fci(fci)) == fci


@given(st.binary(min_size=2, max_size=2), st.integers(1, 8), st.integers(0, 0xFFFF))
def test_gpo_round_trip(aip: bytes, afl_entries: int, atc: int) -> None:
    rsp = m.GpoResponse(aip, m.AFL * afl_entries, atc)
    assert m.parse_gpo_response(m.build_gpo_response(rsp)) == rsp


@given(
    st.binary(min_size=1, max_size=10),
    st.binary(min_size=3, max_size=3),
    st.binary(max_size=26),
    st.integers(0, 255),
    st.binary(min_size=1, max_size=300),
    st.binary(min_size=1, max_size=3),
    st.binary(max_size=200),
)
def test_records_round_trip(
    account: bytes,
    expiry: bytes,
    holder: bytes,
    ca_index: int,
    license_: bytes,
    exponent: bytes,
    remainder: bytes,
) -> None:
    r1 = m.Record1(account, expiry, holder, m.cdol1_bytes(), ca_index)
    assert m.parse_record1(m.build_record1(r1))[0] == r1
    assert m.parse_record2(m.build_record2(m.Record2(license_))) == m.Record2(license_)
    r3 = m.Record3(exponent, remainder)
    assert m.parse_record3(m.build_record3(r3)) == r3


@given(st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(min_size=1, max_size=300))
def test_generate_ac_and_last_answer_round_trip(cid: int, atc: int, auth: bytes) -> None:
    rsp = m.GenerateAcResponse(cid, atc, auth)
    answer = m.build_generate_ac_response(rsp)
    assert m.parse_generate_ac_response(answer) == rsp
    last = m.LastAnswer(answer, bytes(42))
    assert m.parse_last_answer(m.build_last_answer(last)) == last


@pytest.mark.parametrize(
    "build",
    [
        lambda: m.build_record1(m.Record1(bytes(11), b"\x30\x12\x31", b"", b"", 1)),
        lambda: m.build_record1(m.Record1(bytes(8), b"\x30\x12", b"", b"", 1)),
        lambda: m.build_record1(m.Record1(bytes(8), b"\x30\x12\x31", b"", b"", 256)),
        lambda: m.build_gpo_response(m.GpoResponse(m.AIP, m.AFL, 0x10000)),
        lambda: m.build_pse_fci(m.PseFci(m.PSE_NAME, 0)),
        lambda: m.build_ppse_fci(m.PpseFci(m.PPSE_NAME, (m.DirectoryEntry(b"\x01", b"", 1),))),
        lambda: m.build_app_fci(m.AppFci(m.CREDIT_AID, m.APP_LABEL, 300, b"")),
    ],
)
def test_builders_refuse_bad_fields(build: Callable[[], bytes]) -> None:
    with pytest.raises(EncodeError):
        build()


@given(st.binary(max_size=120))
def test_parsers_raise_only_decode_error(data: bytes) -> None:
    parsers: list[Callable[[bytes], object]] = [
        m.parse_ppse_fci,
        m.parse_pse_fci,
        m.parse_directory_record,
        m.parse_app_fci,
        m.parse_gpo_response,
        m.parse_record1,
        m.parse_record2,
        m.parse_record3,
        m.parse_generate_ac_response,
        m.parse_last_answer,
        m.gpo_pdol_data,
        tlv.decode_one,
    ]
    for parse in parsers:
        with contextlib.suppress(DecodeError):
            parse(data)


# --- fast paths: the flat-template parsers and the tree-free builders --------------------

_FLAT_PARSERS: list[tuple[Callable[[bytes], object], Callable[[bytes], object]]] = [
    (m.parse_gpo_response, m._gpo_response_from_tree),
    (m.parse_record1, m._record1_from_tree),
    (m.parse_record2, m._record2_from_tree),
    (m.parse_record3, m._record3_from_tree),
    (m.parse_generate_ac_response, m._generate_ac_response_from_tree),
]


def _outcome(parse: Callable[[bytes], object], data: bytes) -> object:
    try:
        return parse(data)
    except DecodeError as exc:
        return ("DecodeError", exc.reason, exc.offset)


_byte = st.integers(0, 255)


def _valid_templates() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.builds(
            lambda aip, n, atc: m.build_gpo_response(m.GpoResponse(aip, m.AFL * n, atc)),
            st.binary(min_size=2, max_size=2),
            st.integers(1, 8),
            st.integers(0, 0xFFFF),
        ),
        st.builds(
            lambda acct, holder, idx: m.build_record1(
                m.Record1(acct, b"\x30\x12\x31", holder, m.cdol1_bytes(), idx)
            ),
            st.binary(min_size=1, max_size=10),
            st.binary(max_size=140),
            st.integers(0, 255),
        ),
        st.binary(min_size=1, max_size=300).map(lambda lic: m.build_record2(m.Record2(lic))),
        st.builds(
            lambda e, r: m.build_record3(m.Record3(e, r)),
            st.binary(min_size=1, max_size=3),
            st.binary(max_size=140),
        ),
        st.builds(
            lambda cid, atc, auth: m.build_generate_ac_response(
                m.GenerateAcResponse(cid, atc, auth)
            ),
            st.integers(0, 255),
            st.integers(0, 0xFFFF),
            st.binary(min_size=1, max_size=300),
        ),
    )


@st.composite
def _mutated_templates(draw: st.DrawFn) -> bytes:
    """A valid template, then maybe one change: a byte replaced, cut short, a byte
    inserted (padding, a stray tag byte), or a piece of it repeated."""
    data = bytearray(draw(_valid_templates()))
    kind = draw(st.sampled_from(["none", "replace", "cut", "insert", "repeat"]))
    at = draw(st.integers(0, len(data) - 1))
    if kind == "replace":
        data[at] = draw(st.sampled_from([0x00, 0xFF, 0x20, 0x81, 0x82, 0x9F, 0x70]) | _byte)
    elif kind == "cut":
        del data[at:]
    elif kind == "insert":
        data.insert(at, draw(st.sampled_from([0x00, 0xFF, 0x5A, 0x9F, 0x81]) | _byte))
    elif kind == "repeat":
        end = draw(st.integers(at, len(data)))
        data[at:at] = data[at:end]
    return bytes(data)


@given(_mutated_templates() | st.binary(max_size=60))
def test_flat_parsers_equal_the_tree_parsers(data: bytes) -> None:
    for fast, tree in _FLAT_PARSERS:
        assert _outcome(fast, data) == _outcome(tree, data)
        # cast: the parsers are typed for bytes; a bytearray must parse alike
        assert _outcome(fast, cast(bytes, bytearray(data))) == _outcome(tree, data)


def _tree_tags(data: bytes, tag: int) -> object:
    """The tags `template` accepts in `data`, found through the tree (or its DecodeError)."""
    try:
        node = template(data, tag)
    except DecodeError as exc:
        return ("DecodeError", exc.reason)
    tags: list[int] = []
    stack = list(node.children)
    while stack:
        child = stack.pop()
        tags.append(child.tag)
        stack.extend(child.children)
    return sorted(tags)


@given(_mutated_templates() | st.binary(max_size=60))
def test_tags_in_names_what_the_template_holds_or_raises_decode_error(data: bytes) -> None:
    """records_unique (PROTOCOL.md §7 check 1) reads a record's tags with `tags_in`: the
    fast path and the tree agree, and any bytes give the tags or a DecodeError only."""
    for tag in (0x70, 0x77):
        try:
            got: object = sorted(tags_in(data, tag))
        except DecodeError as exc:
            got = ("DecodeError", exc.reason)
        assert got == _tree_tags(data, tag)


def test_flat_values_refuses_what_is_not_a_flat_template() -> None:
    assert tlv.flat_values(bytes.fromhex("5A0112"), 0x5A) is None  # primitive
    assert tlv.flat_values(bytes.fromhex("7F0100"), 0x7F) is None  # a two-byte tag starts
    assert tlv.flat_values(bytes.fromhex("7083"), 0x70) is None  # length form 83
    assert tlv.flat_values(bytes.fromhex("7004DF020100"), 0x70) is None  # DF02 is a template
    assert tlv.flat_values(bytes.fromhex("70815A0112"), 0x70) is None  # lengths disagree
    assert tlv.flat_values(bytes.fromhex("70045A8301FF"), 0x70) is None  # length form 83
    assert tlv.flat_values(bytes.fromhex("70035A8101"), 0x70) is None  # value missing
    assert tlv.flat_values(bytes.fromhex("70055A8201000A"), 0x70) is None
    assert tlv.flat_values(bytes.fromhex("70065A810112FF"), 0x70) is None  # padding
    assert tlv.flat_values(bytes.fromhex("70055A8201"), 0x70) is None
    assert tlv.flat_values(bytes.fromhex("7005" + "5A8101129F"), 0x70) is None
    assert tlv.flat_values(bytes.fromhex("7006" + "5A8101129F36"), 0x70) is None
    assert tlv.flat_values(bytes.fromhex("7081065A81011201FF"), 0x70) is None
    assert tlv.flat_values(bytes.fromhex("7004DF810100"), 0x70) is None  # a three-byte tag
    assert tlv.flat_values(bytes.fromhex("70045A005A00"), 0x70) is None  # 5A twice
    assert tlv.flat_values(bytes.fromhex("70035A8201"), 0x70) is None  # length cut short
    assert tlv.flat_values(bytes.fromhex("7002"), 0x70) is None  # root value missing
    assert tlv.flat_values(bytes.fromhex("70820003") + bytes.fromhex("5A0112"), 0x70) == (
        bytes.fromhex("5A0112"),
        {0x5A: b"\x12"},
    )
    got = tlv.flat_values(bytes.fromhex("7081065A8101129C00"), 0x70)
    assert got == (bytes.fromhex("5A8101129C00"), {0x5A: b"\x12", 0x9C: b""})


@given(
    _byte | st.integers(-2, 300),
    st.integers(-2, 0x10001),
    st.binary(max_size=300) | st.just(bytes(0x10000)),
    st.binary(max_size=4),
)
def test_tree_free_builders_equal_the_tree(cid: int, atc: int, blob: bytes, aip: bytes) -> None:
    def tree_gac() -> bytes:
        return tlv.encode(
            constructed(
                0x77,
                primitive(0x9F27, byte_field(cid, "CID")),
                primitive(0x9F36, m._atc(atc)),
                primitive(0x9F4B, blob),
            )
        )

    def tree_gpo() -> bytes:
        return tlv.encode(
            constructed(
                0x77, primitive(0x82, aip), primitive(0x94, blob), primitive(0x9F36, m._atc(atc))
            )
        )

    def built(build: Callable[[], bytes]) -> object:
        try:
            return build()
        except EncodeError as exc:
            return ("EncodeError", str(exc))

    gac = m.GenerateAcResponse(cid, atc, blob)
    assert built(lambda: m.build_generate_ac_response(gac)) == built(tree_gac)
    gpo = m.GpoResponse(aip, blob, atc)
    assert built(lambda: m.build_gpo_response(gpo)) == built(tree_gpo)


@given(st.binary(max_size=300))
def test_gpo_command_data_equals_the_tree(pdol_data: bytes) -> None:
    assert m.gpo(pdol_data).data == tlv.encode(primitive(0x83, pdol_data))


def test_tree_free_encoders_check_the_tag_kind() -> None:
    with pytest.raises(EncodeError, match="constructed"):
        tlv.encode_primitive(0x70, b"")
    with pytest.raises(EncodeError, match="primitive"):
        tlv.encode_template(0x5A)
