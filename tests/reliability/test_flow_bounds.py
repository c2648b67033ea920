"""Fuzz finding F2 (fuzz/FINDINGS.md): a card's DOL asking for more bytes than a command
carries is refused with a typed error, not an EncodeError from deep inside."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from apdu import messages
from apdu.dol import DolEntry, build_dol
from applet import open_card
from applet.store import MemoryStateStore
from authority.keyfiles import load_public
from authority.keystore import AuthorityKey, KeyStore
from reader.checks import ResponseError
from reader.flow import Env, PaymentRequest, TerminalConfig, drive, payment
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
