"""Codec fuzz targets: random bytes give a value or `apdu.errors.DecodeError`, nothing else.

Each target takes the fuzzer's bytes, feeds every parser, and lets any exception other than
`DecodeError` escape (the fuzz engine reports it as a finding). A value that parses must
also encode back to bytes that parse to the same value (round trip), where the codec
promises it.
"""

from __future__ import annotations

from collections.abc import Callable

from apdu import dol, messages, tlv
from apdu.command import CommandAPDU
from apdu.directory import (
    parse_directory_record,
    parse_ppse_fci,
    parse_pse_fci,
)
from apdu.errors import DecodeError, EncodeError
from apdu.response import ResponseAPDU
from apdu.sw import describe

MAX_INPUT = 4096  # bound on one input (the bound rule, docs/architecture.md)


def _decodes(parse: Callable[[bytes], object], data: bytes) -> object | None:
    try:
        return parse(data)
    except DecodeError:
        return None


def fuzz_command(data: bytes) -> None:
    """CommandAPDU.parse: DecodeError or a value with build(parse(x)) == x (ISO 7816-4 5.1)."""
    data = data[:MAX_INPUT]
    command = _decodes(CommandAPDU.parse, data)
    if isinstance(command, CommandAPDU):
        assert command.to_bytes() == data, "command round trip"
        assert command.case in {"1", "2S", "3S", "4S", "2E", "3E", "4E"}


def fuzz_response(data: bytes) -> None:
    """ResponseAPDU.parse and describe(sw): a value or DecodeError."""
    data = data[:MAX_INPUT]
    response = _decodes(ResponseAPDU.parse, data)
    if isinstance(response, ResponseAPDU):
        assert response.to_bytes() == data, "response round trip"
        assert isinstance(describe(response.sw), str)


def fuzz_tlv(data: bytes) -> None:
    """BER-TLV decode/decode_one (ISO 7816-4 5.2): a tree or DecodeError; encode re-parses."""
    data = data[:MAX_INPUT]
    items = _decodes(tlv.decode, data)
    if isinstance(items, tuple):
        again = tlv.decode(tlv.encode(*items))
        assert again == items, "TLV round trip"
    one = _decodes(tlv.decode_one, data)
    if isinstance(one, tlv.Tlv):
        assert tlv.decode_one(tlv.encode(one)) == one


def fuzz_dol(data: bytes) -> None:
    """DOL parse/build/split (EMV Book 3 5.4): values or DecodeError."""
    data = data[:MAX_INPUT]
    entries = _decodes(dol.parse_dol, data)
    if isinstance(entries, tuple):
        assert dol.parse_dol(dol.build_dol(entries)) == entries, "DOL round trip"
    _decodes(lambda d: dol.split_dol(messages.CDOL1, d), data)
    _decodes(lambda d: dol.split_dol(messages.PDOL, d), data)


_TEMPLATE_PARSERS: tuple[Callable[[bytes], object], ...] = (
    messages.parse_app_fci,
    messages.parse_gpo_response,
    messages.parse_record1,
    messages.parse_record2,
    messages.parse_record3,
    messages.parse_generate_ac_response,
    messages.parse_last_answer,
    messages.gpo_pdol_data,
    parse_ppse_fci,
    parse_pse_fci,
    parse_directory_record,
)


def fuzz_messages(data: bytes) -> None:
    """The protocol's templates (PROTOCOL.md §3, §4, §9): each parser gives a value or DecodeError.

    A GENERATE AC answer and a DF02 answer that parse are built again and re-parsed.
    """
    data = data[:MAX_INPUT]
    for parse in _TEMPLATE_PARSERS:
        _decodes(parse, data)
    answer = _decodes(messages.parse_generate_ac_response, data)
    if isinstance(answer, messages.GenerateAcResponse):
        try:
            rebuilt = messages.build_generate_ac_response(answer)
        except EncodeError:
            return
        assert messages.parse_generate_ac_response(rebuilt) == answer
    last = _decodes(messages.parse_last_answer, data)
    if isinstance(last, messages.LastAnswer):
        assert messages.parse_last_answer(messages.build_last_answer(last)) == last
