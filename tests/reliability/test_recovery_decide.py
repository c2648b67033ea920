"""PROTOCOL.md §9, the terminal's decision: record the torn payment once, or close it."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apdu import dol, messages
from apdu.response import ResponseAPDU
from authority.rsa import RsaPrivateKey, generate
from reader.recovery import (
    CloseNotPaid,
    NotPaidReason,
    RecordOnce,
    decide,
    sent_with,
)

if TYPE_CHECKING:
    from tests.reliability.conftest import LastAnswerMaker


def _ok(data: bytes) -> ResponseAPDU:
    return ResponseAPDU(data, 0x9000)


def test_approved_last_answer_is_recorded(
    make_last_answer: LastAnswerMaker, app_private: RsaPrivateKey
) -> None:
    pending, last = make_last_answer()
    decision = decide(pending, _ok(last), app_private.public)
    assert isinstance(decision, RecordOnce)
    assert decision.dynamic.amount == 1234
    assert decision.dynamic.atc == 7
    assert decision.answer.cid == 0x40


@pytest.mark.parametrize(("before", "after"), [(b"\x00", b""), (b"", b"\x00"), (b"\xff", b"\x00")])
def test_padding_around_the_last_answer_still_records(
    make_last_answer: LastAnswerMaker, app_private: RsaPrivateKey, before: bytes, after: bytes
) -> None:
    """P§1 padding around DF02 must not close as "not paid" a payment the card deducted."""
    pending, last = make_last_answer()
    decision = decide(pending, _ok(before + last + after), app_private.public)
    assert isinstance(decision, RecordOnce) and decision.dynamic.atc == 7


def test_no_answer_closes(make_last_answer: LastAnswerMaker, app_private: RsaPrivateKey) -> None:
    pending, _ = make_last_answer()
    decision = decide(pending, ResponseAPDU(b"", 0x6A88), app_private.public)
    assert decision == CloseNotPaid(pending, NotPaidReason.NO_ANSWER)
    assert decision.read  # the card said it holds none: the entry is closed


def test_card_error_closes(make_last_answer: LastAnswerMaker, app_private: RsaPrivateKey) -> None:
    pending, _ = make_last_answer()
    decision = decide(pending, ResponseAPDU(b"", 0x6985), app_private.public)
    assert isinstance(decision, CloseNotPaid)
    assert decision.reason is NotPaidReason.CARD_ERROR
    assert not decision.read  # nothing proven: the flow keeps the entry open


def test_a_verified_decline_is_recorded(
    make_last_answer: LastAnswerMaker, app_private: RsaPrivateKey
) -> None:
    """PROTOCOL.md §9 records what matches and verifies: a decline too (CID 00), as the
    terminal records an untorn decline."""
    pending, last = make_last_answer(cid=0x00)
    decision = decide(pending, _ok(last), app_private.public)
    assert isinstance(decision, RecordOnce)
    assert (decision.pending, decision.dynamic.cid, decision.answer.cid) == (pending, 0x00, 0x00)


@pytest.mark.parametrize("cid", [0x80, 0x41, 0x01])
def test_a_cid_neither_approved_nor_declined_is_no_decline(
    make_last_answer: LastAnswerMaker, app_private: RsaPrivateKey, cid: int
) -> None:
    """PROTOCOL.md §5.2 knows CID 40 and 00 only: another, even signed, is neither recorded
    nor taken for a decline."""
    pending, last = make_last_answer(cid=cid)
    decision = decide(pending, _ok(last), app_private.public)
    assert decision == CloseNotPaid(pending, NotPaidReason.MISMATCH, f"CID {cid:02X}")


def test_other_atc_closes(make_last_answer: LastAnswerMaker, app_private: RsaPrivateKey) -> None:
    pending, last = make_last_answer(atc=8)
    decision = decide(replace(pending, atc=7), _ok(last), app_private.public)
    assert isinstance(decision, CloseNotPaid)
    assert decision.reason is NotPaidReason.OTHER_TRANSACTION


def test_other_cdol1_closes(make_last_answer: LastAnswerMaker, app_private: RsaPrivateKey) -> None:
    pending, last = make_last_answer()
    other = replace(pending, cdol1_data=bytes(len(pending.cdol1_data)))
    decision = decide(other, _ok(last), app_private.public)
    assert isinstance(decision, CloseNotPaid)
    assert decision.reason is NotPaidReason.OTHER_TRANSACTION


def test_signed_amount_mismatch_closes(
    make_last_answer: LastAnswerMaker, app_private: RsaPrivateKey
) -> None:
    pending, last = make_last_answer(signed_amount=999)
    decision = decide(pending, _ok(last), app_private.public)
    assert isinstance(decision, CloseNotPaid)
    assert decision.reason is NotPaidReason.MISMATCH


def test_other_account_closes(
    make_last_answer: LastAnswerMaker, app_private: RsaPrivateKey
) -> None:
    pending, last = make_last_answer()
    other = replace(pending, account=bytes.fromhex("6200999999999999FFFF"))
    decision = decide(other, _ok(last), app_private.public)
    assert isinstance(decision, CloseNotPaid)
    assert decision.reason is NotPaidReason.MISMATCH


def test_wrong_key_does_not_verify(make_last_answer: LastAnswerMaker) -> None:
    pending, last = make_last_answer()
    stranger = generate(1024, 65537)
    decision = decide(pending, _ok(last), stranger.public)
    assert isinstance(decision, CloseNotPaid)
    assert decision.reason is NotPaidReason.NOT_VERIFIED


@settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=0, max_value=10_000), value=st.integers(1, 255))
def test_any_flipped_byte_never_records_a_wrong_payment(
    make_last_answer: LastAnswerMaker, app_private: RsaPrivateKey, position: int, value: int
) -> None:
    pending, last = make_last_answer()
    i = position % len(last)
    tampered = last[:i] + bytes([last[i] ^ value]) + last[i + 1 :]
    decision = decide(pending, _ok(tampered), app_private.public)
    if isinstance(decision, RecordOnce):  # only a flip that keeps the same verified payment
        assert decision.dynamic.amount == 1234 and decision.dynamic.atc == 7


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), sw=st.integers(0, 0xFFFF))
def test_garbage_gives_a_decision(
    make_last_answer: LastAnswerMaker, app_private: RsaPrivateKey, data: bytes, sw: int
) -> None:
    pending, _ = make_last_answer()
    decision = decide(pending, ResponseAPDU(data, sw), app_private.public)
    assert isinstance(decision, CloseNotPaid)


@pytest.mark.parametrize("cut", [1, 10, 50, 100])
def test_truncated_answer_is_malformed(
    make_last_answer: LastAnswerMaker, app_private: RsaPrivateKey, cut: int
) -> None:
    pending, last = make_last_answer()
    decision = decide(pending, _ok(last[:-cut]), app_private.public)
    assert isinstance(decision, CloseNotPaid)
    assert decision.reason is NotPaidReason.MALFORMED
    assert not decision.read


@pytest.mark.parametrize(("signed", "answered"), [(0x40, 0x00), (0x00, 0x40)])
def test_a_9f27_other_than_the_signed_cid_closes(
    make_last_answer: LastAnswerMaker, app_private: RsaPrivateKey, signed: int, answered: int
) -> None:
    """PROTOCOL.md §7 check 4, as §9 applies it: the last answer's `9F27` must be the CID
    its authorization signs; an answer whose 9F27 says otherwise proves nothing."""
    pending, last = make_last_answer(cid=signed)
    kept = messages.parse_last_answer(last)
    answer = messages.parse_generate_ac_response(kept.answer)
    forged = messages.build_generate_ac_response(replace(answer, cid=answered))
    data = messages.build_last_answer(messages.LastAnswer(forged, kept.cdol1_data))
    decision = decide(pending, _ok(data), app_private.public)
    assert decision == CloseNotPaid(pending, NotPaidReason.MISMATCH)


@pytest.mark.parametrize(
    ("yymmdd", "year"), [("000101", 2000), ("491231", 2049), ("500101", 1950), ("991231", 1999)]
)
def test_the_torn_payments_date_reads_yy_as_emv_does(yymmdd: str, year: int) -> None:
    """`9A` is YYMMDD (n6); EMV reads YY 00-49 as 20YY and 50-99 as 19YY, so the date that
    a torn payment is judged at (its license, its authority key) is the one it was sent on."""
    data = dol.fill_dol(
        messages.CDOL1,
        {0x9A: bytes.fromhex(yymmdd), 0x9F21: bytes.fromhex("235959"), 0x9F1C: b"TERM0001"},
    )
    sent = sent_with(data)
    assert (sent.time.year, sent.time.strftime("%m%d%H%M%S")) == (year, yymmdd[2:] + "235959")
    assert sent.terminal_id == "TERM0001"
