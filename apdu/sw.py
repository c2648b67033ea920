"""Status words and instruction codes: one catalogue (ISO 7816-4 5.1.3, 5.6; PROTOCOL.md §6)."""

from __future__ import annotations

from enum import IntEnum


class SW(IntEnum):
    """The status words the protocol uses (PROTOCOL.md §6)."""

    OK = 0x9000
    WRONG_LENGTH = 0x6700
    CONDITIONS_NOT_SATISFIED = 0x6985
    WRONG_DATA = 0x6A80
    FILE_NOT_FOUND = 0x6A82
    RECORD_NOT_FOUND = 0x6A83
    INCORRECT_P1P2 = 0x6A86
    REFERENCED_DATA_NOT_FOUND = 0x6A88
    INS_NOT_SUPPORTED = 0x6D00
    CLA_NOT_SUPPORTED = 0x6E00
    UNKNOWN = 0x6F00


SW1_MORE_DATA = 0x61
SW1_WRONG_LE = 0x6C

_MEANINGS: dict[int, str] = {
    SW.OK: "ok",
    SW.WRONG_LENGTH: "wrong length",
    SW.CONDITIONS_NOT_SATISFIED: "conditions of use not satisfied",
    SW.WRONG_DATA: "incorrect data",
    SW.FILE_NOT_FOUND: "file or application not found",
    SW.RECORD_NOT_FOUND: "record not found",
    SW.INCORRECT_P1P2: "incorrect P1-P2",
    SW.REFERENCED_DATA_NOT_FOUND: "referenced data not found",
    SW.INS_NOT_SUPPORTED: "instruction not supported",
    SW.CLA_NOT_SUPPORTED: "class not supported",
    SW.UNKNOWN: "no precise diagnosis",
    # Other ISO 7816-4 5.6 values a generic terminal may meet.
    0x6281: "part of returned data may be corrupted",
    0x6282: "end of file or record reached before Le bytes",
    0x6283: "selected file deactivated",
    0x6300: "verification failed",
    0x6581: "memory failure",
    0x6800: "functions in CLA not supported",
    0x6881: "logical channel not supported",
    0x6882: "secure messaging not supported",
    0x6981: "command incompatible with file structure",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6984: "reference data not usable",
    0x6986: "command not allowed (no current EF)",
    0x6A81: "function not supported",
    0x6A84: "not enough memory space in the file",
    0x6A87: "Nc inconsistent with P1-P2",
    0x6B00: "wrong parameters P1-P2",
}

# What SW1 alone says of a status word with no meaning of its own (ISO 7816-4 5.1.3).
_SW1_CLASSES: dict[int, str] = {
    0x62: "warning, state unchanged",
    0x63: "warning, state changed",
    0x64: "execution error, state unchanged",
    0x65: "execution error, state changed",
    0x66: "security-related error",
    0x67: "wrong length",
    0x68: "functions in CLA not supported",
    0x69: "command not allowed",
    0x6A: "wrong parameters P1-P2",
    0x6B: "wrong parameters P1-P2",
    0x6D: "instruction not supported",
    0x6E: "class not supported",
    0x6F: "no precise diagnosis",
}


def describe(sw: int) -> str:
    """A one-line meaning: "6A83 record not found", "61 0C 12 bytes more" (ISO 7816-4 5.1.3)."""
    sw1, sw2 = (sw >> 8) & 0xFF, sw & 0xFF
    if sw1 == SW1_MORE_DATA:
        more = "256 or more bytes" if sw2 == 0 else f"{sw2} byte{'s' if sw2 != 1 else ''}"
        return f"61 {sw2:02X} {more} more"
    if sw1 == SW1_WRONG_LE:
        return f"6C {sw2:02X} wrong Le, {sw2 or 256} byte{'s' if sw2 != 1 else ''} available"
    meaning = _MEANINGS.get(sw & 0xFFFF)
    if meaning is None and sw1 == 0x63 and sw2 & 0xF0 == 0xC0:
        tries = sw2 & 0x0F
        meaning = f"verification failed, {tries} {'try' if tries == 1 else 'tries'} left"
    if meaning is None and sw1 in _SW1_CLASSES:
        meaning = f"{_SW1_CLASSES[sw1]} (SW2 {sw2:02X})"
    return f"{sw & 0xFFFF:04X} {meaning or 'unknown status'}"


class INS(IntEnum):
    """The instructions the protocol uses (PROTOCOL.md §3)."""

    SELECT = 0xA4
    READ_RECORD = 0xB2
    GET_PROCESSING_OPTIONS = 0xA8
    GENERATE_AC = 0xAE
    GET_RESPONSE = 0xC0
    GET_DATA = 0xCA


_INS_NAMES: dict[int, str] = {
    INS.SELECT: "SELECT",
    INS.READ_RECORD: "READ RECORD",
    INS.GET_PROCESSING_OPTIONS: "GET PROCESSING OPTIONS",
    INS.GENERATE_AC: "GENERATE AC",
    INS.GET_RESPONSE: "GET RESPONSE",
    INS.GET_DATA: "GET DATA",
    0x20: "VERIFY",
    0x82: "EXTERNAL AUTHENTICATE",
    0x84: "GET CHALLENGE",
    0x88: "INTERNAL AUTHENTICATE",
    0xB0: "READ BINARY",
    0xD6: "UPDATE BINARY",
    0xDC: "UPDATE RECORD",
    0xE2: "APPEND RECORD",
}


def ins_name(ins: int) -> str:
    """The instruction's name ("SELECT"), or "unknown INS"."""
    return _INS_NAMES.get(ins, "unknown INS")
