"""Transports: chaining (61xx, 6Cxx with the data kept, bounded), tracing, in-process."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from apdu import messages as m
from apdu.command import CommandAPDU
from applet.runtime import CardRuntime
from reader.transport import (
    ChainingTransport,
    InProcessTransport,
    TracingTransport,
    TransportError,
)

SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")


class Scripted:
    """A transport answering from a list, keeping the commands it got."""

    name = "scripted"

    def __init__(self, answers: list[bytes]) -> None:
        self.answers = list(answers)
        self.sent: list[bytes] = []

    def connect(self) -> bytes:
        return b"\x3b\x00"

    def transmit(self, command: bytes) -> bytes:
        self.sent.append(command)
        if not self.answers:
            return b"\x61\x10"  # a card that never stops chaining
        return self.answers.pop(0)

    def disconnect(self) -> None:
        pass


def test_get_response_chaining_joins_the_parts() -> None:
    inner = Scripted([b"AB\x61\x02", b"CD\x61\x01", b"E\x90\x00"])
    out = ChainingTransport(inner).transmit(SELECT_PPSE)
    assert out == b"ABCDE\x90\x00"
    assert inner.sent[1:] == [bytes.fromhex("00C0000002"), bytes.fromhex("00C0000001")]


def test_wrong_le_repeats_the_command_with_its_data() -> None:
    command = CommandAPDU(0x80, 0xAE, 0x50, 0x00, b"\x01\x02\x03", 0x10).to_bytes()
    inner = Scripted([b"\x6c\x20", b"x" * 0x20 + b"\x90\x00"])
    out = ChainingTransport(inner).transmit(command)
    assert out == b"x" * 0x20 + b"\x90\x00"
    again = CommandAPDU.parse(inner.sent[1])
    assert again.data == b"\x01\x02\x03" and again.le == 0x20 and again.ins == 0xAE


def test_chaining_is_bounded() -> None:
    with pytest.raises(TransportError) as caught:
        ChainingTransport(Scripted([]), max_rounds=5).transmit(SELECT_PPSE)
    assert "5 GET RESPONSE rounds" in caught.value.reason


def test_repeated_wrong_le_is_a_transport_error() -> None:
    """ISO 7816-4 5.3.4: the command is repeated once, with the Le the card named; a card
    that answers that repeat with 6Cxx again is at fault."""
    inner = Scripted([b"\x6c\x10"] * 5)
    with pytest.raises(TransportError):
        ChainingTransport(inner).transmit(SELECT_PPSE)
    assert len(inner.sent) == 2


def test_short_response_passes_up_unchanged() -> None:
    assert ChainingTransport(Scripted([b"\x90"])).transmit(SELECT_PPSE) == b"\x90"


def test_tracing_records_pairs_in_order(make_card: Callable[[], CardRuntime]) -> None:
    tracer = TracingTransport(InProcessTransport(make_card()))
    tracer.connect()
    response = tracer.transmit(SELECT_PPSE)
    assert response.endswith(b"\x90\x00")
    assert tracer.steps == [(SELECT_PPSE, response)]


def test_in_process_needs_connect(make_card: Callable[[], CardRuntime]) -> None:
    transport = InProcessTransport(make_card())
    with pytest.raises(TransportError):
        transport.transmit(SELECT_PPSE)
    transport.connect()
    assert transport.transmit(SELECT_PPSE)[-2:] == b"\x90\x00"
    transport.disconnect()
    with pytest.raises(TransportError):
        transport.transmit(SELECT_PPSE)


def test_wrong_le_00_repeats_the_command_with_le_256() -> None:
    """ISO 7816-4 5.3.4: `6C00` names Le 256 (encoded `00`), not "no Le": the command is
    repeated with its data and Le 256."""
    command = CommandAPDU(0x80, 0xAE, 0x50, 0x00, b"\x01\x02\x03", 0x10).to_bytes()
    inner = Scripted([b"\x6c\x00", b"x" * 256 + b"\x90\x00"])
    assert ChainingTransport(inner).transmit(command) == b"x" * 256 + b"\x90\x00"
    again = CommandAPDU.parse(inner.sent[1])
    assert again.le == 256 and again.data == b"\x01\x02\x03"
    assert inner.sent[1] == command[:-1] + b"\x00"


def test_tracing_keeps_at_most_max_steps(make_card: Callable[[], CardRuntime]) -> None:
    """A trace (PROTOCOL.md §8) is bounded (`max_steps` pairs); the exchange goes on past it."""
    tracer = TracingTransport(InProcessTransport(make_card()), max_steps=2)
    tracer.connect()
    for _ in range(3):
        assert tracer.transmit(SELECT_PPSE).endswith(b"\x90\x00")
    assert len(tracer.steps) == 2


def test_in_process_disconnect_takes_the_card_back_to_idle(
    make_card: Callable[[], CardRuntime],
) -> None:
    """Field off (PROTOCOL.md §6): disconnecting the in-process card deactivates it, so its
    session (the selected application) is gone even before the next power-on."""
    card = make_card()
    transport = InProcessTransport(card)
    transport.connect()
    idle = card.state
    assert transport.transmit(m.select(m.CREDIT_AID).to_bytes())[-2:] == b"\x90\x00"
    assert card.state != idle
    transport.disconnect()
    assert card.state == idle


class Chained:
    """A card whose response needs `rounds` GET RESPONSE rounds: 4 bytes a part, `61 04`
    until the last part, which ends `90 00`."""

    name = "chained"

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self.sent: list[bytes] = []

    def connect(self) -> bytes:
        return b"\x3b\x00"

    def transmit(self, command: bytes) -> bytes:
        self.sent.append(command)
        last = len(self.sent) - 1 == self.rounds
        return b"abcd" + (b"\x90\x00" if last else b"\x61\x04")

    def disconnect(self) -> None:
        pass


@pytest.mark.parametrize("rounds", [0, 1, 63, 64])
def test_up_to_64_get_response_rounds_are_followed(rounds: int) -> None:
    """PROTOCOL.md §3 and docs/protocol-choices.md: a response is fetched with at most 64
    GET RESPONSE rounds; a card needing exactly 64 is answered in full (the 64th round's
    answer was sent for, then thrown away as "exceeded")."""
    inner = Chained(rounds)
    assert ChainingTransport(inner).transmit(SELECT_PPSE) == b"abcd" * (rounds + 1) + b"\x90\x00"
    assert len(inner.sent) == rounds + 1


def test_a_65th_get_response_round_is_never_sent() -> None:
    """The bound of 64 GET RESPONSE rounds (docs/protocol-choices.md): a card still
    answering `61xx` to the 64th is a TransportError, and no 65th GET RESPONSE goes out."""
    inner = Chained(65)
    with pytest.raises(TransportError, match="exceeded 64 GET RESPONSE rounds"):
        ChainingTransport(inner).transmit(SELECT_PPSE)
    assert len(inner.sent) == 1 + 64


def test_a_chained_response_holds_at_most_65536_data_bytes() -> None:
    """ISO 7816-4 5.1: a response holds at most 65536 data bytes (Ne of an extended Le), so
    chaining joins at most that many, status word excluded; one byte more is a
    TransportError, whether it comes in a middle part or in the last."""
    most = Scripted([b"x" * 65000 + b"\x61\x00", b"y" * 536 + b"\x90\x00"])
    assert len(ChainingTransport(most).transmit(SELECT_PPSE)) == 65536 + 2
    for answers in (
        [b"x" * 65000 + b"\x61\x00", b"y" * 537 + b"\x90\x00"],
        [b"x" * 65000 + b"\x61\x00", b"y" * 537 + b"\x61\x00"],
    ):
        inner = Scripted(answers)
        with pytest.raises(TransportError, match="longer than 65536 bytes"):
            ChainingTransport(inner).transmit(SELECT_PPSE)
        assert len(inner.sent) == 2  # no GET RESPONSE after the bound was passed


def test_a_short_answer_to_get_response_is_passed_up_as_it_is() -> None:
    """A response shorter than a status word is passed up unchanged, for the flow to refuse
    (PROTOCOL.md §7 check 1), also as the answer to a GET RESPONSE: it is not joined to the
    parts before it, where its byte would be read as half of a status word."""
    inner = Scripted([b"AB\x61\x02", b"\x90"])
    assert ChainingTransport(inner).transmit(SELECT_PPSE) == b"\x90"
    assert ChainingTransport(Scripted([b"AB\x61\x02", b""])).transmit(SELECT_PPSE) == b""


def test_a_chained_response_of_exactly_65536_bytes_ending_in_a_bare_status_word() -> None:
    """The bound counts data only: parts joining exactly 65536 bytes, the last `61xx` part
    full, then a GET RESPONSE answered with a status word alone, are the whole response:
    the data joined and that status word (not the status word alone)."""
    inner = Scripted([b"x" * 65000 + b"\x61\x00", b"y" * 536 + b"\x61\x00", b"\x90\x00"])
    out = ChainingTransport(inner).transmit(SELECT_PPSE)
    assert out == b"x" * 65000 + b"y" * 536 + b"\x90\x00"
    assert len(inner.sent) == 3


def test_wrong_le_to_a_command_that_cannot_be_repeated_is_a_transport_error() -> None:
    """A `6Cxx` answer to a command that does not parse (so cannot be sent again with
    Le = xx) is one TransportError naming why, and nothing more is sent."""
    inner = Scripted([b"\x6c\x10"])
    with pytest.raises(TransportError, match="cannot repeat the command with Le 16"):
        ChainingTransport(inner).transmit(b"\x00\xa4\x04")
    assert inner.sent == [b"\x00\xa4\x04"]


def test_61_00_is_followed_by_get_response_for_256_bytes() -> None:
    """`61 00`: 256 bytes or more wait (PROTOCOL.md §3); the GET RESPONSE asks for them with
    Le `00` (256), not for none."""
    inner = Scripted([b"A" * 256 + b"\x61\x00", b"B" * 256 + b"\x90\x00"])
    out = ChainingTransport(inner).transmit(SELECT_PPSE)
    assert out == b"A" * 256 + b"B" * 256 + b"\x90\x00"
    assert inner.sent[1] == bytes.fromhex("00C0000000")


def test_a_get_response_answered_6cxx_is_sent_again_with_that_le() -> None:
    """A card that wants another Le for the next part answers GET RESPONSE `6Cxx`: the
    GET RESPONSE goes again with Le = xx, and the part joins the others (ISO 7816-4 5.6);
    a `6Cxx` is never passed up joined to data."""
    inner = Scripted([b"AB\x61\x10", b"\x6c\x08", b"CDEFGHIJ\x90\x00"])
    assert ChainingTransport(inner).transmit(SELECT_PPSE) == b"ABCDEFGHIJ\x90\x00"
    assert inner.sent[1:] == [bytes.fromhex("00C0000010"), bytes.fromhex("00C0000008")]


def test_a_get_response_answered_6cxx_twice_is_a_transport_error() -> None:
    inner = Scripted([b"AB\x61\x10", b"\x6c\x08", b"\x6c\x04"])
    with pytest.raises(TransportError, match=r"keeps answering 6Cxx \(wrong Le\) to GET RESPONSE"):
        ChainingTransport(inner).transmit(SELECT_PPSE)
    assert len(inner.sent) == 3


@pytest.mark.parametrize(
    ("cla", "get_response_cla"),
    [
        (0x00, 0x00),  # PROTOCOL.md §3: SELECT, READ RECORD
        (0x80, 0x00),  # PROTOCOL.md §3: GPO, GENERATE AC, GET DATA
        (0x01, 0x01),  # logical channel 1
        (0x0C, 0x0C),  # secure messaging, kept: the same class
        (0x10, 0x00),  # the last command of a chain: GET RESPONSE is no chained command
        (0x83, 0x03),  # proprietary class on channel 3
        (0x45, 0x45),  # further interindustry class: channel 9
        (0xC5, 0x45),  # proprietary class on channel 9
        (0xFF, 0x00),  # a reader's own command (PC/SC part 3)
    ],
)
def test_get_response_goes_out_in_the_class_of_the_command(cla: int, get_response_cla: int) -> None:
    """ISO 7816-4 5.6: GET RESPONSE follows `61xx` "with the same CLA"; a GET RESPONSE on
    another logical channel than the command's would fetch nothing (or another response)."""
    inner = Scripted([b"AB\x61\x02", b"CD\x90\x00"])
    command = bytes([cla]) + bytes.fromhex("B2010C00")
    assert ChainingTransport(inner).transmit(command) == b"ABCD\x90\x00"
    assert inner.sent[1] == bytes([get_response_cla]) + bytes.fromhex("C0000002")


@pytest.mark.parametrize(
    ("last", "whole"),
    [
        (b"CD\x62\x82", b"ABCD\x62\x82"),  # a warning keeps its data
        (b"\x63\xc1", b"AB\x63\xc1"),
        (b"\x6f\x00", b"\x6f\x00"),  # an error: the rest is lost, no data with it
        (b"\x69\x85", b"\x69\x85"),
        (b"\x64\x00", b"\x64\x00"),
    ],
)
def test_the_last_status_word_ends_the_joined_response(last: bytes, whole: bytes) -> None:
    """The joined response ends with the status word of the last answer. A warning (`62xx`,
    `63xx`) comes with data; an error (`64xx` to `6Fxx`) comes with none (ISO 7816-4 5.6),
    so a GET RESPONSE that fails passes up the card's error alone, never an error joined to
    the part before it."""
    inner = Scripted([b"AB\x61\x02", last])
    assert ChainingTransport(inner).transmit(SELECT_PPSE) == whole


@pytest.mark.parametrize(
    ("command", "repeat"),
    [
        ("00B2010C", "00B2010C05"),  # case 1: repeated as case 2, Le = xx
        ("80CA9F3600", "80CA9F3605"),  # case 2
        ("80A80000028300", "80A8000002830005"),  # case 3: repeated as case 4, data kept
    ],
)
def test_wrong_le_repeats_every_case_with_the_le_named(command: str, repeat: str) -> None:
    """`6Cxx`: "the same command may be reissued using SW2 as short Le field" (ISO 7816-4
    5.6), whatever its case; a case 1 or 3 command gains the Le field."""
    inner = Scripted([b"\x6c\x05", b"12345\x90\x00"])
    assert ChainingTransport(inner).transmit(bytes.fromhex(command)) == b"12345\x90\x00"
    assert inner.sent[1] == bytes.fromhex(repeat)
