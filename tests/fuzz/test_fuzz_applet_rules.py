"""The applet fuzz invariants catch what they promise to (PROTOCOL.md §6), on fake cards."""

from __future__ import annotations

import pytest

from fuzz.applet_rules import (
    GENUINE,
    VECTORS,
    Harness,
    InvariantError,
    check_sequence,
    encode_input,
    split_input,
    sw_allowed,
    vector_seeds,
)


class FakeCard:
    """A card whose answer and state change are chosen by the test."""

    def __init__(self, answer: bytes, changes: bool) -> None:
        self.answer = answer
        self.changes = changes
        self.counter = 0

    def harness(self) -> Harness:
        return Harness(self.process, lambda: b"\x3b\x80\x80\x01\x01", self.state)

    def process(self, command: bytes) -> bytes:
        if self.changes:
            self.counter += 1
        return self.answer

    def state(self) -> bytes:
        return self.counter.to_bytes(4, "big")


def test_status_words_of_section_6() -> None:
    for sw in (0x9000, 0x6112, 0x6C10, 0x6700, 0x6A80, 0x6A82, 0x6A83, 0x6A86, 0x6985):
        assert sw_allowed(sw)
    for sw in (0x6F00, 0x6A81, 0x6B00, 0x9001, 0x0000):
        assert not sw_allowed(sw)


def test_a_good_card_passes() -> None:
    check_sequence(FakeCard(b"\x6a\x80", changes=False).harness(), GENUINE)
    check_sequence(FakeCard(b"\x77\x00\x90\x00", changes=True).harness(), GENUINE)


@pytest.mark.parametrize(
    ("answer", "changes", "match"),
    [
        (b"\x6f\x00", False, "status word 6F00"),
        (b"\x90", False, "no status word"),
        (b"\x6a\x80", True, "state changed on 6A80"),
        (b"\x6c\x10", True, "state changed on 6C10"),
    ],
)
def test_a_bad_card_is_caught(answer: bytes, changes: bool, match: str) -> None:
    with pytest.raises(InvariantError, match=match):
        check_sequence(FakeCard(answer, changes).harness(), GENUINE[:3])


def test_split_input_prefix_and_genuine_splices() -> None:
    assert split_input(b"") == []
    assert split_input(b"\x02") == [GENUINE[2], GENUINE[3]]
    assert split_input(b"\x00\xf4") == [GENUINE[4]]
    raw = b"\x00\x05" + bytes(range(5)) + b"\xf3"
    assert split_input(raw) == [bytes(range(5)), GENUINE[3]]
    assert split_input(encode_input(1, [b"\x00\xa4", b"\x80\xca"])) == [
        GENUINE[2],
        b"\x00\xa4",
        b"\x80\xca",
    ]
    assert len(split_input(b"\x04" + b"\xf1" * 500)) <= 22


def test_vector_commands_are_seeds() -> None:
    seeds_ = vector_seeds(VECTORS)
    assert len(seeds_) == len(list(VECTORS.glob("*.json"))) > 0
    first = split_input(seeds_[0])
    assert first and first[0][:2] == b"\x00\xa4"
