"""PROTOCOL.md §9 end to end at the card: an answer lost in the field is recovered once."""

from __future__ import annotations

from pathlib import Path

import pytest

from apdu import dol, messages
from apdu.response import ResponseAPDU
from applet import open_card
from applet.runtime import CardRuntime
from applet.store import FileStateStore, MemoryStateStore
from authority.keyfiles import load_public
from authority.license import account_from_digits
from reader.recovery import (
    CloseNotPaid,
    Decision,
    NotPaidReason,
    PendingEntry,
    RecordOnce,
    decide,
)

PROFILE = Path(__file__).resolve().parents[2] / "vectors" / "profiles" / "test-card-1"
ACCOUNT = account_from_digits("6200123456789012")


def _values(amount: int, un: bytes) -> dict[int, bytes]:
    return {
        0x9F02: bytes.fromhex(f"{amount:012d}"),
        0x5F2A: bytes.fromhex("0156"),
        0x9F37: un,
        0x9F1A: bytes.fromhex("0156"),
        0x9A: bytes.fromhex("261128"),
        0x9F21: bytes.fromhex("120000"),
        0x9F16: b"MERCHANT0000001",
        0x9F1C: b"TERM0001",
    }


def _exchange(card: CardRuntime, command: bytes) -> ResponseAPDU:
    """Send a command and fetch the rest of a long answer with GET RESPONSE (P§3), bounded."""
    response = ResponseAPDU.parse(card.process(command))
    data = response.data
    for _ in range(16):
        if response.sw1 != 0x61:
            return ResponseAPDU(data, response.sw)
        more = messages.get_response(response.sw2 or 256).to_bytes()
        response = ResponseAPDU.parse(card.process(more))
        data += response.data
    raise AssertionError("chaining did not end")


def _ok(card: CardRuntime, command: bytes) -> ResponseAPDU:
    response = _exchange(card, command)
    assert response.sw == 0x9000, f"{command.hex()} -> {response.sw:04X}"
    return response


def _torn_payment(card: CardRuntime, amount: int, un: bytes) -> PendingEntry:
    """SELECT, GPO, GENERATE AC; the terminal never sees the GENERATE AC answer."""
    card.power_on()
    _ok(card, messages.select(messages.CREDIT_AID).to_bytes())
    gpo = _ok(card, messages.gpo(dol.fill_dol(messages.PDOL, _values(amount, un))).to_bytes())
    atc = messages.parse_gpo_response(gpo.data).atc
    cdol1 = dol.fill_dol(messages.CDOL1, _values(amount, un))
    pending = PendingEntry(ACCOUNT, atc, cdol1)  # written durably before GENERATE AC
    card.process(messages.generate_ac(cdol1).to_bytes())  # the answer is lost in the field
    card.deactivate("field lost")
    return pending


def _next_contact(card: CardRuntime, pending: PendingEntry) -> Decision:
    card.power_on()
    _ok(card, messages.select(messages.CREDIT_AID).to_bytes())
    answer = _exchange(card, messages.get_data(messages.TAG_LAST_ANSWER).to_bytes())
    app_key = load_public(PROFILE / "app.pub.pem")
    return decide(pending, answer, app_key)


def test_torn_approval_is_recovered_from_a_restarted_card(tmp_path: Path) -> None:
    """The card process dies after the deduction; a new one on the same folder answers DF02."""
    import shutil

    folder = tmp_path / "card"
    shutil.copytree(PROFILE, folder)
    pending = _torn_payment(open_card(folder), 1234, b"\x01\x02\x03\x04")
    restarted = open_card(folder)
    decision = _next_contact(restarted, pending)
    assert isinstance(decision, RecordOnce)
    assert decision.dynamic.amount == 1234
    assert FileStateStore(folder).load().used == 1234


def test_declined_torn_payment_is_recorded_as_a_decline() -> None:
    store = MemoryStateStore()
    card = open_card(PROFILE, store)
    pending = _torn_payment(card, 100_001, b"\x05\x06\x07\x08")  # above the 100000 limit
    decision = _next_contact(card, pending)
    assert isinstance(decision, RecordOnce)
    assert (decision.dynamic.cid, decision.dynamic.amount) == (0x00, 100_001)
    assert store.state.used == 0  # nothing deducted


def test_a_later_payment_hides_the_torn_one() -> None:
    """DF02 holds the last answer only: a second payment makes the first one unrecoverable."""
    store = MemoryStateStore()
    card = open_card(PROFILE, store)
    first = _torn_payment(card, 500, b"\x11\x11\x11\x11")
    _torn_payment(card, 700, b"\x22\x22\x22\x22")
    decision = _next_contact(card, first)
    assert isinstance(decision, CloseNotPaid)
    assert decision.reason is NotPaidReason.OTHER_TRANSACTION


def test_fresh_card_has_no_last_answer() -> None:
    card = open_card(PROFILE, MemoryStateStore())
    decision = _next_contact(card, PendingEntry(ACCOUNT, 1, bytes(43)))
    assert isinstance(decision, CloseNotPaid)
    assert decision.reason is NotPaidReason.NO_ANSWER


@pytest.mark.parametrize("amount", [1, 99_999, 100_000])
def test_recovered_amount_is_the_deducted_amount(amount: int) -> None:
    store = MemoryStateStore()
    card = open_card(PROFILE, store)
    pending = _torn_payment(card, amount, b"\x0a\x0b\x0c\x0d")
    decision = _next_contact(card, pending)
    assert isinstance(decision, RecordOnce)
    assert decision.dynamic.amount == store.state.used == amount
