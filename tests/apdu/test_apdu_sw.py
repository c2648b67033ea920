"""The status word catalogue and INS names (ISO 7816-4 5.1.3, 5.6; PROTOCOL.md §6)."""

from __future__ import annotations

import pytest

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


def test_every_protocol_sw_has_a_meaning() -> None:
    for sw in SW:
        assert "unknown" not in describe(sw)


def test_ins_names() -> None:
    assert ins_name(INS.GET_PROCESSING_OPTIONS) == "GET PROCESSING OPTIONS"
    assert ins_name(0xB2) == "READ RECORD"
    assert ins_name(0x84) == "GET CHALLENGE"
    assert ins_name(0x01) == "unknown INS"
