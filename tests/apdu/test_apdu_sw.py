"""The status word catalogue and INS names (ISO 7816-4 5.1.3, 5.6; PROTOCOL.md §6)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apdu.sw import INS, SW, describe, ins_name


@pytest.mark.parametrize(
    ("sw", "text"),
    [
        (0x9000, "9000 ok"),
        (0x6A83, "6A83 record not found"),
        (0x610C, "61 0C 12 bytes more"),
        (0x6100, "61 00 256 or more bytes more"),
        (0x6C08, "6C 08 wrong Le, 8 bytes available"),
        (0x6101, "61 01 1 byte more"),  # one: singular (it said "1 bytes")
        (0x6C01, "6C 01 wrong Le, 1 byte available"),
        (0x6C00, "6C 00 wrong Le, 256 bytes available"),
        (0x63C1, "63C1 verification failed, 1 try left"),
        (0x6985, "6985 conditions of use not satisfied"),
        (0x63C2, "63C2 verification failed, 2 tries left"),
        (0x6982, "6982 security status not satisfied"),
        (0x1234, "1234 unknown status"),
        (0x9001, "9001 unknown status"),
        (0x6200, "6200 warning, state unchanged (SW2 00)"),
        (0x6310, "6310 warning, state changed (SW2 10)"),
        (0x6A99, "6A99 wrong parameters P1-P2 (SW2 99)"),
        (0x6F12, "6F12 no precise diagnosis (SW2 12)"),
    ],
)
def test_describe(sw: int, text: str) -> None:
    assert describe(sw) == text


_SW1_CLASSES = {
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


@pytest.mark.parametrize(("sw1", "meaning"), sorted(_SW1_CLASSES.items()))
def test_describe_falls_back_on_the_class_of_sw1(sw1: int, meaning: str) -> None:
    """ISO 7816-4 5.1.3: a status word with no meaning of its own is described by what its
    SW1 says (SW2 7E has no meaning of its own in any of these classes)."""
    sw = sw1 << 8 | 0x7E
    assert describe(sw) == f"{sw:04X} {meaning} (SW2 7E)"


@given(sw2=st.integers(0, 0xFF), sw1=st.integers(0x80, 0xFF))
def test_describe_reads_all_eight_bits_of_sw1(sw1: int, sw2: int) -> None:
    """SW1 is a whole byte (ISO 7816-4 5.1.3): E1xx is not 61xx, ECxx not 6Cxx, EFxx not
    6Fxx. A status word is described under its own four hex digits."""
    sw = sw1 << 8 | sw2
    assert describe(sw).startswith(f"{sw:04X} ")
    assert "bytes more" not in describe(sw) and "wrong Le" not in describe(sw)


def test_every_protocol_sw_has_a_meaning() -> None:
    for sw in SW:
        assert "unknown" not in describe(sw)


def test_ins_names() -> None:
    assert ins_name(INS.GET_PROCESSING_OPTIONS) == "GET PROCESSING OPTIONS"
    assert ins_name(0xB2) == "READ RECORD"
    assert ins_name(0x84) == "GET CHALLENGE"
    assert ins_name(0x01) == "unknown INS"
