"""PC/SC return codes become the TransportError reasons users act on; reader names resolve."""

from __future__ import annotations

import pytest

from reader.pcsc import Hresult, reason_for, resolve_reader
from reader.transport import TransportError

NAMES = ["Virtual PCD 00 00", "Virtual PCD 00 01"]


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (Hresult.REMOVED_CARD, "card removed"),
        (Hresult.NOT_TRANSACTED, "card removed"),
        (Hresult.NO_SMARTCARD, "no card in reader"),
        (Hresult.SHARING_VIOLATION, "reader busy"),
        (Hresult.NO_SERVICE, "pcscd not running"),
        (Hresult.SERVICE_STOPPED, "pcscd not running"),
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


@pytest.mark.parametrize(
    ("reader", "reason"),
    [
        ("Other", "no reader named Other"),
        (2, "no reader number 2 (2 readers)"),
        ("-1", "no reader named -1"),
    ],
)
def test_unknown_readers(reader: str | int, reason: str) -> None:
    with pytest.raises(TransportError) as caught:
        resolve_reader(reader, NAMES)
    assert caught.value.reason == reason
