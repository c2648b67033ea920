"""Seed inputs for the fuzzers: the protocol's own commands and answers (PROTOCOL.md §3, §9).

The fuzz engine mutates these, so the targets start from well-formed messages and reach the
deep branches of each parser and of the applet's state table.
"""

from __future__ import annotations

from apdu import dol, messages
from apdu.directory import DirectoryEntry, PpseFci, build_ppse_fci


def _pdol_data() -> bytes:
    return dol.fill_dol(messages.PDOL, {0x9F02: bytes.fromhex("000000001234")})


def _cdol1_data() -> bytes:
    return dol.fill_dol(messages.CDOL1, {0x9F02: bytes.fromhex("000000001234")})


def command_seeds() -> list[bytes]:
    """The commands of one payment, as a terminal sends them (PROTOCOL.md §3)."""
    commands = [
        messages.select(messages.PPSE_NAME),
        messages.select(messages.PSE_NAME),
        messages.select(messages.CREDIT_AID),
        messages.gpo(_pdol_data()),
        messages.read_record(1),
        messages.read_record(2),
        messages.read_record(3),
        messages.generate_ac(_cdol1_data()),
        messages.get_data(0x9F36),
        messages.get_data(messages.TAG_AVAILABLE_CREDIT),
        messages.get_data(messages.TAG_LAST_ANSWER),
        messages.get_response(0x10),
    ]
    return [c.to_bytes() for c in commands]


def response_seeds() -> list[bytes]:
    """Well-formed card answers (data + 9000) for the codec and terminal targets."""
    gac = messages.build_generate_ac_response(
        messages.GenerateAcResponse(0x40, 1, bytes(range(128)))
    )
    answers = [
        build_ppse_fci(
            PpseFci(messages.PPSE_NAME, (DirectoryEntry(messages.CREDIT_AID, b"HCE CREDIT", 1),))
        ),
        messages.build_app_fci(
            messages.AppFci(messages.CREDIT_AID, b"HCE CREDIT", 1, messages.pdol_bytes())
        ),
        messages.build_gpo_response(messages.GpoResponse(messages.AIP, messages.AFL, 1)),
        gac,
        messages.build_last_answer(messages.LastAnswer(gac, _cdol1_data())),
        messages.pdol_bytes(),
        messages.cdol1_bytes(),
    ]
    return [a + b"\x90\x00" for a in answers] + answers
