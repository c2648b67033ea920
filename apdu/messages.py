"""The protocol's commands and templates (PROTOCOL.md §2-§4, §9): no other module assembles tags.

Each response template is a frozen dataclass with `build_x(m) -> bytes` and
`parse_x(data) -> m`; the discovery templates live in apdu/directory.py and are re-exported
here. A parser raises DecodeError, naming the tag, for a missing template, a missing
mandatory tag, a tag repeated anywhere in the template (PROTOCOL.md §7 check 1), a field of
the wrong size, or bytes after the template.
"""

from __future__ import annotations

from dataclasses import dataclass

from apdu import tlv
from apdu.command import CommandAPDU
from apdu.directory import (
    AID_SIZES,
    LABEL_SIZES,
    DirectoryEntry,
    DirectoryRecord,
    PpseFci,
    PseFci,
    build_directory_record,
    build_ppse_fci,
    build_pse_fci,
    parse_directory_record,
    parse_ppse_fci,
    parse_pse_fci,
)
from apdu.dol import DolEntry, build_dol, parse_dol
from apdu.errors import DecodeError, EncodeError
from apdu.sw import INS
from apdu.templates import byte_field, field, flat_fields, optional, template
from apdu.tlv import constructed, primitive, tag_hex

PPSE_NAME = b"2PAY.SYS.DDF01"
PSE_NAME = b"1PAY.SYS.DDF01"
CREDIT_AID = bytes.fromhex("F04843455041590001")
APP_LABEL = b"HCE CREDIT"
# PROTOCOL.md §3: the PDOL in the app's FCI and CDOL1 in record 1.
PDOL: tuple[DolEntry, ...] = (
    DolEntry(0x9F02, 6),
    DolEntry(0x5F2A, 2),
    DolEntry(0x9F37, 4),
    DolEntry(0x9F1A, 2),
    DolEntry(0x9A, 3),
    DolEntry(0x9F16, 15),
    DolEntry(0x9F1C, 8),
)
CDOL1: tuple[DolEntry, ...] = (
    DolEntry(0x9F02, 6),
    DolEntry(0x5F2A, 2),
    DolEntry(0x9A, 3),
    DolEntry(0x9F21, 3),
    DolEntry(0x9C, 1),
    DolEntry(0x9F37, 4),
    DolEntry(0x9F16, 15),
    DolEntry(0x9F1C, 8),
)
AIP = b"\x01\x00"
AFL = bytes.fromhex("08010301")
SFI = 1
TAG_AVAILABLE_CREDIT = 0xDF01
TAG_LAST_ANSWER = 0xDF02
TAG_LAST_CDOL1 = 0xDF03

CLA_ISO = 0x00
CLA_PROPRIETARY = 0x80
SELECT_BY_NAME = 0x04
GENERATE_AC_TC_CDA = 0x50  # P1: a TC with combined signature (PROTOCOL.md §3)
LE_MAX = 256


# --- commands (PROTOCOL.md §3) ---------------------------------------------------------


def select(name: bytes) -> CommandAPDU:
    """SELECT by DF name: 00 A4 04 00 Lc name 00."""
    return CommandAPDU(CLA_ISO, INS.SELECT, SELECT_BY_NAME, 0x00, bytes(name), LE_MAX)


def gpo(pdol_data: bytes) -> CommandAPDU:
    """GET PROCESSING OPTIONS: 80 A8 00 00 Lc 83 L data 00."""
    data = tlv.encode_primitive(0x83, pdol_data)  # = tlv.encode(primitive(0x83, pdol_data))
    return CommandAPDU(CLA_PROPRIETARY, INS.GET_PROCESSING_OPTIONS, 0x00, 0x00, data, LE_MAX)


def gpo_pdol_data(command_data: bytes) -> bytes:
    """The PDOL data inside a GPO command's 83 template; DecodeError otherwise."""
    item = tlv.decode_one(command_data)
    if item.tag != 0x83:
        raise DecodeError(f"command template 83 missing (found tag {tag_hex(item.tag)})", 0)
    return item.value


def read_record(record: int, sfi: int = SFI) -> CommandAPDU:
    """READ RECORD: 00 B2 rec (sfi<<3 | 4) 00 (ISO 7816-4 7.3.3)."""
    if not 1 <= record <= 0xFE:
        raise EncodeError(f"record number {record} outside 1..254")
    if not 1 <= sfi <= 30:
        raise EncodeError(f"SFI {sfi} outside 1..30")
    return CommandAPDU(CLA_ISO, INS.READ_RECORD, record, sfi << 3 | 4, b"", LE_MAX)


def generate_ac(cdol1_data: bytes) -> CommandAPDU:
    """GENERATE AC: 80 AE 50 00 Lc CDOL1 data 00."""
    return CommandAPDU(
        CLA_PROPRIETARY, INS.GENERATE_AC, GENERATE_AC_TC_CDA, 0x00, bytes(cdol1_data), LE_MAX
    )


def get_data(tag: int) -> CommandAPDU:
    """GET DATA: 80 CA tag-hi tag-lo 00."""
    if not 0 < tag <= 0xFFFF:
        raise EncodeError(f"GET DATA tag {tag:#x} is not a 1 or 2 byte tag")
    return CommandAPDU(CLA_PROPRIETARY, INS.GET_DATA, tag >> 8, tag & 0xFF, b"", LE_MAX)


def get_response(le: int) -> CommandAPDU:
    """GET RESPONSE: 00 C0 00 00 Le (Le 0 as in SW2 of 61 00 means 256)."""
    if not 0 <= le <= LE_MAX:
        raise EncodeError(f"GET RESPONSE Le {le} outside 0..256")
    return CommandAPDU(CLA_ISO, INS.GET_RESPONSE, 0x00, 0x00, b"", le or LE_MAX)


# --- the app (PROTOCOL.md §3, §4) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AppFci:
    """SELECT AID answer: 6F{84 AID, A5{50 label, 87 priority, 9F38 PDOL}}."""

    aid: bytes
    label: bytes
    priority: int
    pdol: bytes


def build_app_fci(m: AppFci) -> bytes:
    """Encode the app's FCI."""
    a5 = constructed(
        0xA5,
        primitive(0x50, m.label),
        primitive(0x87, byte_field(m.priority, "priority")),
        primitive(0x9F38, m.pdol),
    )
    return tlv.encode(constructed(0x6F, primitive(0x84, m.aid), a5))


def parse_app_fci(data: bytes) -> AppFci:
    """Decode the app's FCI; the PDOL must itself parse."""
    root = template(data, 0x6F)
    a5 = field(root, 0xA5)
    pdol = field(a5, 0x9F38).value
    parse_dol(pdol)
    return AppFci(
        field(root, 0x84, AID_SIZES).value,
        field(a5, 0x50, LABEL_SIZES).value,
        field(a5, 0x87, range(1, 2)).value[0],
        pdol,
    )


@dataclass(frozen=True, slots=True)
class GpoResponse:
    """GPO answer: 77{82 AIP, 94 AFL, 9F36 ATC}."""

    aip: bytes
    afl: bytes
    atc: int


def _atc(atc: int) -> bytes:
    if not 0 <= atc <= 0xFFFF:
        raise EncodeError(f"ATC {atc} outside 0..65535")
    return atc.to_bytes(2, "big")


def build_gpo_response(m: GpoResponse) -> bytes:
    """Encode the GPO answer (77{82, 94, 9F36}, its fields checked before any length)."""
    aip, afl, atc = bytes(m.aip), bytes(m.afl), _atc(m.atc)
    return tlv.encode_template(
        0x77,
        tlv.encode_primitive(0x82, aip),
        tlv.encode_primitive(0x94, afl),
        tlv.encode_primitive(0x9F36, atc),
    )


_GPO_SIZES = {0x82: range(2, 3), 0x94: range(4, 253), 0x9F36: range(2, 3)}


def parse_gpo_response(data: bytes) -> GpoResponse:
    """Decode the GPO answer; the AFL is a whole number of 4-byte entries."""
    flat = flat_fields(data, 0x77, _GPO_SIZES)
    if flat is not None and not len(flat[1][0x94]) % 4:
        v = flat[1]
        return GpoResponse(v[0x82], v[0x94], int.from_bytes(v[0x9F36], "big"))
    return _gpo_response_from_tree(data)


def _gpo_response_from_tree(data: bytes) -> GpoResponse:
    """parse_gpo_response through the TLV tree: every case, every error."""
    root = template(data, 0x77)
    afl = field(root, 0x94, range(4, 253)).value
    if len(afl) % 4:
        raise DecodeError(f"tag 94 has {len(afl)} bytes, not a multiple of 4", 0)
    return GpoResponse(
        field(root, 0x82, range(2, 3)).value,
        afl,
        int.from_bytes(field(root, 0x9F36, range(2, 3)).value, "big"),
    )


@dataclass(frozen=True, slots=True)
class Record1:
    """Record 1: 70{5A account, 5F24 expiry YYMMDD, 5F20 holder, 8C CDOL1, 8F CA index}."""

    account: bytes
    expiry: bytes
    holder: bytes
    cdol1: bytes
    ca_index: int


def build_record1(r: Record1) -> bytes:
    """Encode record 1 (the whole 70 template)."""
    if not 1 <= len(r.account) <= 10:
        raise EncodeError(f"account id of {len(r.account)} bytes, expected 1..10")
    if len(r.expiry) != 3:
        raise EncodeError(f"expiry of {len(r.expiry)} bytes, expected 3 (YYMMDD)")
    return tlv.encode(
        constructed(
            0x70,
            primitive(0x5A, r.account),
            primitive(0x5F24, r.expiry),
            primitive(0x5F20, r.holder),
            primitive(0x8C, r.cdol1),
            primitive(0x8F, byte_field(r.ca_index, "CA index")),
        )
    )


_RECORD1_SIZES = {
    0x5A: range(1, 11),
    0x5F24: range(3, 4),
    0x5F20: range(0x10000),
    0x8C: range(0x10000),
    0x8F: range(1, 2),
}


def parse_record1(data: bytes) -> tuple[Record1, bytes]:
    """Decode record 1: the record and the value inside 70 (what the license hash covers)."""
    flat = flat_fields(data, 0x70, _RECORD1_SIZES)
    if flat is not None:
        value, v = flat
        parse_dol(v[0x8C])
        return Record1(v[0x5A], v[0x5F24], v[0x5F20], v[0x8C], v[0x8F][0]), value
    return _record1_from_tree(data)


def _record1_from_tree(data: bytes) -> tuple[Record1, bytes]:
    """parse_record1 through the TLV tree: every case, every error."""
    root = template(data, 0x70)
    cdol1 = field(root, 0x8C).value
    parse_dol(cdol1)
    record = Record1(
        field(root, 0x5A, range(1, 11)).value,
        field(root, 0x5F24, range(3, 4)).value,
        field(root, 0x5F20).value,
        cdol1,
        field(root, 0x8F, range(1, 2)).value[0],
    )
    return record, root.value


@dataclass(frozen=True, slots=True)
class Record2:
    """Record 2: 70{9F46 APP public key license}."""

    license: bytes


def build_record2(r: Record2) -> bytes:
    """Encode record 2."""
    return tlv.encode(constructed(0x70, primitive(0x9F46, r.license)))


_RECORD2_SIZES = {0x9F46: range(1, 0x10000)}


def parse_record2(data: bytes) -> Record2:
    """Decode record 2."""
    flat = flat_fields(data, 0x70, _RECORD2_SIZES)
    if flat is not None:
        return Record2(flat[1][0x9F46])
    return _record2_from_tree(data)


def _record2_from_tree(data: bytes) -> Record2:
    """parse_record2 through the TLV tree: every case, every error."""
    return Record2(field(template(data, 0x70), 0x9F46, range(1, 0x10000)).value)


@dataclass(frozen=True, slots=True)
class Record3:
    """Record 3: 70{9F47 exponent, 9F48 remainder (absent when empty)}."""

    exponent: bytes
    remainder: bytes


def build_record3(r: Record3) -> bytes:
    """Encode record 3."""
    items = [primitive(0x9F47, r.exponent)]
    if r.remainder:
        items.append(primitive(0x9F48, r.remainder))
    return tlv.encode(constructed(0x70, *items))


_RECORD3_SIZES = {0x9F47: range(1, 4)}


def parse_record3(data: bytes) -> Record3:
    """Decode record 3."""
    flat = flat_fields(data, 0x70, _RECORD3_SIZES)
    if flat is not None:
        v = flat[1]
        return Record3(v[0x9F47], v.get(0x9F48, b""))
    return _record3_from_tree(data)


def _record3_from_tree(data: bytes) -> Record3:
    """parse_record3 through the TLV tree: every case, every error."""
    root = template(data, 0x70)
    remainder = optional(root, 0x9F48)
    return Record3(
        field(root, 0x9F47, range(1, 4)).value,
        remainder.value if remainder is not None else b"",
    )


@dataclass(frozen=True, slots=True)
class GenerateAcResponse:
    """GENERATE AC answer: 77{9F27 CID, 9F36 ATC, 9F4B authorization}."""

    cid: int
    atc: int
    authorization: bytes


def build_generate_ac_response(m: GenerateAcResponse) -> bytes:
    """Encode the GENERATE AC answer (77{9F27, 9F36, 9F4B}, its fields checked before any
    length)."""
    cid, atc, authorization = byte_field(m.cid, "CID"), _atc(m.atc), bytes(m.authorization)
    return tlv.encode_template(
        0x77,
        _CID_HEAD + cid,  # = tlv.encode_primitive(0x9F27, cid): its tag and length are constant
        _ATC_HEAD + atc,  # = tlv.encode_primitive(0x9F36, atc)
        tlv.encode_primitive(0x9F4B, authorization),
    )


_CID_HEAD = tlv.encode_primitive(0x9F27, b"\0")[:-1]  # 9F27 01
_ATC_HEAD = tlv.encode_primitive(0x9F36, b"\0\0")[:-2]  # 9F36 02


_GENERATE_AC_SIZES = {0x9F27: range(1, 2), 0x9F36: range(2, 3), 0x9F4B: range(1, 0x10000)}


def parse_generate_ac_response(data: bytes) -> GenerateAcResponse:
    """Decode the GENERATE AC answer."""
    flat = flat_fields(data, 0x77, _GENERATE_AC_SIZES)
    if flat is not None:
        v = flat[1]
        return GenerateAcResponse(v[0x9F27][0], int.from_bytes(v[0x9F36], "big"), v[0x9F4B])
    return _generate_ac_response_from_tree(data)


def _generate_ac_response_from_tree(data: bytes) -> GenerateAcResponse:
    """parse_generate_ac_response through the TLV tree: every case, every error."""
    root = template(data, 0x77)
    return GenerateAcResponse(
        field(root, 0x9F27, range(1, 2)).value[0],
        int.from_bytes(field(root, 0x9F36, range(2, 3)).value, "big"),
        field(root, 0x9F4B, range(1, 0x10000)).value,
    )


@dataclass(frozen=True, slots=True)
class LastAnswer:
    """GET DATA DF02: DF02{77{...} as sent, DF03 CDOL1 data} (PROTOCOL.md §9)."""

    answer: bytes
    cdol1_data: bytes


def build_last_answer(m: LastAnswer) -> bytes:
    """Encode the last GENERATE AC answer; `answer` must be a GENERATE AC template."""
    try:
        parse_generate_ac_response(m.answer)
    except DecodeError as exc:
        raise EncodeError(f"last answer is no GENERATE AC template: {exc}") from None
    answer = tlv.decode_one(m.answer)
    return tlv.encode(constructed(TAG_LAST_ANSWER, answer, primitive(TAG_LAST_CDOL1, m.cdol1_data)))


def parse_last_answer(data: bytes) -> LastAnswer:
    """Decode GET DATA DF02; the inner 77 must be a valid GENERATE AC answer."""
    root = template(data, TAG_LAST_ANSWER)
    answer = tlv.encode(field(root, 0x77))
    parse_generate_ac_response(answer)
    return LastAnswer(answer, field(root, TAG_LAST_CDOL1).value)


def pdol_bytes() -> bytes:
    """The PDOL as the app puts it in its FCI (PROTOCOL.md §3)."""
    return build_dol(PDOL)


def cdol1_bytes() -> bytes:
    """CDOL1 as record 1 holds it (PROTOCOL.md §3)."""
    return build_dol(CDOL1)


__all__ = [
    "AFL",
    "AIP",
    "APP_LABEL",
    "CDOL1",
    "CREDIT_AID",
    "PDOL",
    "PPSE_NAME",
    "PSE_NAME",
    "SFI",
    "TAG_AVAILABLE_CREDIT",
    "TAG_LAST_ANSWER",
    "TAG_LAST_CDOL1",
    "AppFci",
    "DirectoryEntry",
    "DirectoryRecord",
    "GenerateAcResponse",
    "GpoResponse",
    "LastAnswer",
    "PpseFci",
    "PseFci",
    "Record1",
    "Record2",
    "Record3",
    "build_app_fci",
    "build_directory_record",
    "build_generate_ac_response",
    "build_gpo_response",
    "build_last_answer",
    "build_ppse_fci",
    "build_pse_fci",
    "build_record1",
    "build_record2",
    "build_record3",
    "cdol1_bytes",
    "generate_ac",
    "get_data",
    "get_response",
    "gpo",
    "gpo_pdol_data",
    "parse_app_fci",
    "parse_directory_record",
    "parse_generate_ac_response",
    "parse_gpo_response",
    "parse_last_answer",
    "parse_ppse_fci",
    "parse_pse_fci",
    "parse_record1",
    "parse_record2",
    "parse_record3",
    "pdol_bytes",
    "read_record",
    "select",
]
