"""PC/SC return codes become the TransportError reasons users act on; reader names resolve."""

from __future__ import annotations

import pytest
from smartcard import scard

from reader import pcsc
from reader.pcsc import Hresult, PcscTransport, reason_for, resolve_reader
from reader.transport import TransportError

NAMES = ["Virtual PCD 00 00", "Virtual PCD 00 01"]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (Hresult.REMOVED_CARD, "card removed"),
        (Hresult.NOT_TRANSACTED, "card removed"),
        (Hresult.NO_SMARTCARD, "no card in reader"),
        (Hresult.SHARING_VIOLATION, "reader busy"),
        (Hresult.NO_SERVICE, "pcscd not running (start it: /usr/sbin/pcscd --foreground &)"),
        (Hresult.SERVICE_STOPPED, "pcscd not running (start it: /usr/sbin/pcscd --foreground &)"),
    ],
)
def test_reasons(code: int, reason: str) -> None:
    assert reason_for(code) == reason


def test_an_unlisted_code_keeps_its_number() -> None:
    assert reason_for(0x80100024).startswith("PC/SC error 80100024")


@pytest.mark.parametrize(
    ("reader", "name"),
    [
        ("Virtual PCD 00 01", "Virtual PCD 00 01"),
        (1, "Virtual PCD 00 01"),
        ("0", "Virtual PCD 00 00"),
    ],
)
def test_resolve_reader(reader: str | int, name: str) -> None:
    assert resolve_reader(reader, NAMES) == name


def test_one_reader_is_singular() -> None:
    with pytest.raises(TransportError) as caught:
        resolve_reader(1, NAMES[:1])
    assert caught.value.reason == "no reader number 1 (1 reader)"


@pytest.mark.parametrize(
    ("reader", "reason"),
    [
        ("Other", "no reader named 'Other'"),
        (2, "no reader number 2 (2 readers)"),
        ("-1", "no reader named '-1'"),
        ("", "no reader named ''"),
    ],
)
def test_unknown_readers(reader: str | int, reason: str) -> None:
    with pytest.raises(TransportError) as caught:
        resolve_reader(reader, NAMES)
    assert caught.value.reason == reason


class FakeScard:
    """pyscard's scard calls PcscTransport makes, answering as pcsc-lite 1.9.9 does once
    pcscd has died under a connected card (or, with `daemon_alive`, once the card left)."""

    def __init__(self, transmit_code: int, *, daemon_alive: bool) -> None:
        self.transmit_code = transmit_code
        self.daemon_alive = daemon_alive
        self.connected = False

    def SCardEstablishContext(self, scope: int) -> tuple[int, int]:
        return 0, 1

    def SCardConnect(self, *args: object) -> tuple[int, int, int]:
        return 0, 7, scard.SCARD_PROTOCOL_T1

    def SCardStatus(self, card: int) -> tuple[int, str, int, int, list[int]]:
        if not self.connected:
            self.connected = True
            return 0, NAMES[0], 0, scard.SCARD_PROTOCOL_T1, list(bytes.fromhex("3B80800101"))
        code = Hresult.REMOVED_CARD if self.daemon_alive else Hresult.NO_SERVICE
        return code, "", 0, 0, []

    def SCardTransmit(self, card: int, pci: object, command: list[int]) -> tuple[int, list[int]]:
        return self.transmit_code, list(bytes(300))  # pyscard hands back its whole buffer

    def SCardDisconnect(self, card: int, disposition: int) -> int:
        return Hresult.NO_SERVICE

    def SCardReleaseContext(self, context: int) -> int:
        return Hresult.NO_SERVICE


@pytest.mark.parametrize(
    ("transmit_code", "daemon_alive", "reason"),
    [
        (
            0x8010006A,
            False,
            "pcscd not running (start it: /usr/sbin/pcscd --foreground &)",
        ),  # SCARD_W_SECURITY_VIOLATION
        (Hresult.COMM_ERROR, False, "pcscd not running (start it: /usr/sbin/pcscd --foreground &)"),
        (Hresult.NO_SERVICE, False, "pcscd not running (start it: /usr/sbin/pcscd --foreground &)"),
        (Hresult.COMM_ERROR, True, "card removed"),
        (Hresult.REMOVED_CARD, True, "card removed"),
    ],
)
def test_a_transmit_that_pcscd_died_under_says_so(
    monkeypatch: pytest.MonkeyPatch, transmit_code: int, daemon_alive: bool, reason: str
) -> None:
    fake = FakeScard(transmit_code, daemon_alive=daemon_alive)
    for name in (
        "SCardEstablishContext",
        "SCardConnect",
        "SCardStatus",
        "SCardTransmit",
        "SCardDisconnect",
        "SCardReleaseContext",
    ):
        monkeypatch.setattr(pcsc.scard, name, getattr(fake, name))
    transport = PcscTransport(NAMES[0])
    assert transport.connect() == bytes.fromhex("3B80800101")
    with pytest.raises(TransportError) as caught:
        transport.transmit(bytes.fromhex("80AE50002B00"))
    assert caught.value.reason == reason
    transport.close()
