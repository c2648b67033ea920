"""Fuzz finding F2 (fuzz/FINDINGS.md): a card's DOL asking for more bytes than a command
carries is refused with a typed error, not an EncodeError from deep inside."""

from __future__ import annotations

from collections.abc import Generator
from datetime import date, datetime
from pathlib import Path

import pytest

from apdu import messages
from apdu.command import CommandAPDU
from apdu.dol import DolEntry, build_dol
from apdu.response import ResponseAPDU
from applet import open_card
from applet.store import MemoryStateStore
from authority.keyfiles import load_public
from authority.keystore import AuthorityKey, KeyStore
from reader.checks import ResponseError, StatusError
from reader.flow import (
    MAX_EFFECTS,
    Effect,
    Env,
    Outcome,
    PaymentRequest,
    TerminalConfig,
    drive,
    payment,
)
from reader.recovery import PendingEntry
from reader.transport import ChainingTransport, InProcessTransport

PROFILE = Path(__file__).resolve().parents[2] / "vectors" / "profiles" / "test-card-1"


class GreedyPdol:
    """The real card, except that its FCI asks for a 192-byte merchant id (9F16 C0)."""

    name = "greedy"

    def __init__(self) -> None:
        self.inner = InProcessTransport(open_card(PROFILE, MemoryStateStore()))

    def connect(self) -> bytes:
        return self.inner.connect()

    def transmit(self, command: bytes) -> bytes:
        answer = self.inner.transmit(command)
        if command.startswith(messages.select(messages.CREDIT_AID).to_bytes()[:5]):
            pdol = build_dol([DolEntry(0x9F02, 6), DolEntry(0x9F16, 0xC0), DolEntry(0x9F1C, 0x50)])
            fci = messages.AppFci(messages.CREDIT_AID, b"HCE CREDIT", 1, pdol)
            return messages.build_app_fci(fci) + b"\x90\x00"
        return answer

    def disconnect(self) -> None:
        self.inner.disconnect()


def test_oversized_pdol_is_a_response_error() -> None:
    keys = KeyStore({1: AuthorityKey(1, load_public(PROFILE / "ca-01.pub.pem"), date(2099, 1, 1))})
    flow = payment(
        TerminalConfig("TERM0001", "MERCHANT0000001"),
        PaymentRequest(100),
        Env(datetime(2026, 11, 28, 12), b"\x01\x02\x03\x04"),
        keys,
    )
    transport = ChainingTransport(GreedyPdol())
    transport.connect()
    with pytest.raises(ResponseError, match="more than 252"):
        drive(flow, transport)


class SizedPdol(GreedyPdol):
    """The real card, except that its FCI asks for PDOL data of exactly `size` bytes."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def transmit(self, command: bytes) -> bytes:
        answer = self.inner.transmit(command)
        if command.startswith(messages.select(messages.CREDIT_AID).to_bytes()[:5]):
            pdol = build_dol([DolEntry(0x9F16, 0xC0), DolEntry(0x9F1C, self.size - 0xC0)])
            fci = messages.AppFci(messages.CREDIT_AID, b"HCE CREDIT", 1, pdol)
            return messages.build_app_fci(fci) + b"\x90\x00"
        return answer


def _flow() -> Generator[Effect, ResponseAPDU | None, Outcome]:
    keys = KeyStore({1: AuthorityKey(1, load_public(PROFILE / "ca-01.pub.pem"), date(2099, 1, 1))})
    return payment(
        TerminalConfig("TERM0001", "MERCHANT0000001"),
        PaymentRequest(100),
        Env(datetime(2026, 11, 28, 12), b"\x01\x02\x03\x04"),
        keys,
    )


def test_pdol_data_of_252_bytes_is_sent_253_refused() -> None:
    """The bound is exact: 83 81 L and 252 bytes of PDOL data fill a short command's 255
    (ISO 7816-4 5.1); the card may then refuse the GPO (here 6700: its PDOL is not that),
    but the terminal sent it. One byte more is check 1's ResponseError naming the DOL."""
    transport = ChainingTransport(SizedPdol(252))
    transport.connect()
    with pytest.raises(StatusError, match="GET PROCESSING OPTIONS answered 6700"):
        drive(_flow(), transport)
    transport = ChainingTransport(SizedPdol(253))
    transport.connect()
    with pytest.raises(ResponseError, match="the DOL asks for 253 bytes, more than 252"):
        drive(_flow(), transport)


def test_a_driver_that_answers_the_pending_entry_with_a_response_is_refused() -> None:
    """The flow's contract (reader/flow.py): a PendingEntry is written, never sent to the
    card, and the driver sends back None; a response there is a driver bug, refused before
    GENERATE AC goes out."""
    card = InProcessTransport(open_card(PROFILE, MemoryStateStore()))
    card.connect()
    flow = _flow()
    effect = next(flow)
    while not isinstance(effect, PendingEntry):
        assert isinstance(effect, CommandAPDU)
        effect = flow.send(ResponseAPDU.parse(card.transmit(effect.to_bytes())))
    with pytest.raises(ResponseError, match="answered a pending entry with a response"):
        flow.send(ResponseAPDU(b"", 0x9000))


@pytest.mark.parametrize(("currency", "ok"), [(999, True), (1000, False), (-1, False)])
def test_a_currency_is_an_iso_4217_numeric_code(currency: int, ok: bool) -> None:
    """`5F2A` carries an ISO 4217 numeric code, 3 digits (0..999), although n4 could hold
    more: a request in currency 1000 is refused when it is made."""
    if ok:
        assert PaymentRequest(100, currency).currency == currency
    else:
        with pytest.raises(ValueError, match="ISO 4217"):
            PaymentRequest(100, currency)


class CountingTransport:
    """Answers every command 9000 with no data, and counts them."""

    name = "counting"

    def __init__(self) -> None:
        self.sent = 0

    def connect(self) -> bytes:
        return b""

    def transmit(self, command: bytes) -> bytes:
        self.sent += 1
        return b"\x90\x00"

    def disconnect(self) -> None:
        pass


def test_a_flow_that_never_ends_is_stopped_and_closed() -> None:
    """drive() bounds a flow at MAX_EFFECTS effects: a runaway flow (a bug) is refused with
    a ResponseError after that many commands, and closed (its cleanup runs) before it."""
    closed: list[bool] = []

    def runaway() -> Generator[Effect, ResponseAPDU | None, Outcome]:
        try:
            while True:
                yield messages.select(messages.PPSE_NAME)
        finally:
            closed.append(True)

    transport = CountingTransport()
    flow = runaway()  # held here: only drive() closes it
    with pytest.raises(ResponseError, match=f"did not end within {MAX_EFFECTS} steps"):
        drive(flow, transport)
    assert transport.sent == MAX_EFFECTS
    assert closed == [True]


class ShortAnswer(CountingTransport):
    """Answers every command with one byte: shorter than a status word."""

    def transmit(self, command: bytes) -> bytes:
        self.sent += 1
        return b"\x90"


@pytest.mark.parametrize(
    ("command", "transport", "sent", "text"),
    [
        (CommandAPDU(0x00, 0xA4, 0x04, 0x00, b"\x01" * 256), CountingTransport(), 0, "no valid"),
        (messages.select(messages.PPSE_NAME), ShortAnswer(), 1, "shorter than a status word"),
    ],
    ids=["command that cannot be encoded", "answer shorter than a status word"],
)
def test_drive_refuses_what_cannot_be_sent_or_read_and_closes_the_flow(
    command: CommandAPDU, transport: CountingTransport, sent: int, text: str
) -> None:
    """A command the card's data made unencodable (256 data bytes in a short command) is
    never sent, and an answer of less than a status word is not parsed: each a ResponseError
    (check 1), with the flow closed (its cleanup runs) before it."""
    closed: list[bool] = []

    def one_command() -> Generator[Effect, ResponseAPDU | None, Outcome]:
        try:
            yield command
            raise AssertionError("the flow must not be sent a response")
        finally:
            closed.append(True)

    flow = one_command()  # held here: only drive() closes it
    with pytest.raises(ResponseError, match=text):
        drive(flow, transport)
    assert transport.sent == sent
    assert closed == [True]
