"""The data element table (PROTOCOL.md §1-§4): names and formats of every protocol tag."""

from __future__ import annotations

import pytest

from apdu.elements import ELEMENTS, format_of, name_of
from apdu.messages import CDOL1, PDOL

PROTOCOL_TAGS = [
    *(0x6F, 0x84, 0xA5, 0xBF0C, 0x61, 0x4F, 0x50, 0x87, 0x88, 0x70, 0x9F38, 0x77, 0x82),
    *(0x94, 0x9F36, 0x83, 0x5A, 0x5F24, 0x5F20, 0x8C, 0x8F, 0x9F46, 0x9F47, 0x9F48),
    *(0x9F27, 0x9F4B, 0xDF01, 0xDF02, 0xDF03),
]


@pytest.mark.parametrize("tag", [*PROTOCOL_TAGS, *(e.tag for e in PDOL + CDOL1)])
def test_every_protocol_tag_is_named(tag: int) -> None:
    assert tag in ELEMENTS
    assert name_of(tag) != "unknown"
    assert format_of(tag) in {"n", "cn", "b", "an", "ans"}


def test_formats() -> None:
    assert format_of(0x9F02) == "n"
    assert format_of(0x5A) == "cn"
    assert format_of(0x9F1C) == "an"
    assert (name_of(0x9F7F), format_of(0x9F7F)) == ("unknown", "b")
