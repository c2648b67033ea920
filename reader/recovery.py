"""Torn-transaction recovery, the terminal's side (PROTOCOL.md §9). Sans-IO.

Before GENERATE AC the terminal holds a pending entry (account, ATC, CDOL1 data). At the next
contact with that card, after SELECT AID, it sends GET DATA `DF02` and hands the answer to
`decide`: the transaction is recorded once when the card's last answer carries the pending
ATC and CDOL1 data and its authorization verifies, an approval or a decline alike (the
terminal records a decline as it records an approval, with CID 00: the log ends the same
whether or not the contact was torn); otherwise the entry is closed as not paid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Final

from apdu import messages
from apdu.dol import split_dol
from apdu.errors import DecodeError
from apdu.response import ResponseAPDU
from apdu.sw import SW
from authority.authorization import DynamicData, from_bcd, open_authorization
from authority.errors import AuthorizationError
from authority.rsa import RsaPublicKey
from reader.checks import Cid


class NotPaidReason(StrEnum):
    """Why a pending entry is closed as not paid (PROTOCOL.md §9)."""

    NO_ANSWER = "the card holds no last answer (6A88)"
    CARD_ERROR = "the card refused GET DATA DF02"
    MALFORMED = "the card's last answer is malformed"
    OTHER_TRANSACTION = "the card's last answer is for another transaction"
    NOT_VERIFIED = "the last answer's authorization does not verify"
    MISMATCH = "the authorization does not match the pending entry"


@dataclass(frozen=True)
class PendingEntry:
    """What the terminal wrote durably before GENERATE AC (PROTOCOL.md §9)."""

    account: bytes  # 5A value, 10 bytes cn F-padded (as in the authorization)
    atc: int  # the GPO's ATC
    cdol1_data: bytes  # exactly as sent in GENERATE AC
    # the serial of the license checks 2-3 passed before it (None: an entry of a log older
    # than schema 4); recovery trusts that license as it stood then, and only that one
    serial: int | None = None


@dataclass(frozen=True)
class SentWith:
    """When and by whom the torn GENERATE AC was sent: its CDOL1 data's `9A` `9F21` (the
    transaction's date and time), `9F1C` (terminal id) and `9F16` (merchant id)."""

    time: datetime
    terminal_id: str
    merchant_id: str


@dataclass(frozen=True)
class RecordOnce:
    """The torn transaction's answer is proven (approved, or declined with nothing
    deducted): record it now, once (the log's (account, ATC) key)."""

    pending: PendingEntry
    answer: messages.GenerateAcResponse
    dynamic: DynamicData
    sent: SentWith


# the reasons that say the terminal could not read the card's last answer at all: they
# prove nothing either way, so the flow keeps the entry open and refuses the contact before
# its GENERATE AC replaces the last answer (docs/protocol-choices.md)
UNREAD: Final = frozenset({NotPaidReason.CARD_ERROR, NotPaidReason.MALFORMED})


@dataclass(frozen=True)
class CloseNotPaid:
    """Close the pending entry: no payment was made, or none can be proven. When the last
    answer could not be read (`read` false), nothing is proven, and the flow keeps the entry
    open instead."""

    pending: PendingEntry
    reason: NotPaidReason
    detail: str = ""

    @property
    def read(self) -> bool:
        """Whether the card's last answer was read (a 6A88 counts: the card said it has none)."""
        return self.reason not in UNREAD


Decision = RecordOnce | CloseNotPaid


def sent_with(cdol1_data: bytes, near: date | None = None) -> SentWith:
    """When and by whom GENERATE AC was sent, from its CDOL1 data (PROTOCOL.md §3: `9A`,
    `9F21`, `9F1C`, `9F16`); ValueError, KeyError or DecodeError when it does not hold them.
    `near`: a date known to be within 50 years of the sending (see `year_of`)."""
    return _sent_with(split_dol(messages.CDOL1, cdol1_data), near)


def year_of(yy: int, near: date | None) -> int:
    """The year that `9A`'s two digits `yy` stand for: the one nearest to `near` (a row's
    stored time, today for a torn payment), the earlier one on a tie; with no `near`, EMV's
    window (00-49 is 20YY, 50-99 19YY). That window alone would read a payment of 2050 as
    one of 1950, and `hcepay log --verify` would then refuse every row from 2050 on."""
    if near is None:
        return (2000 if yy < 50 else 1900) + yy
    base = near.year - near.year % 100 + yy
    return min((base - 100, base, base + 100), key=lambda year: (abs(year - near.year), year))


def _sent_with(values: Mapping[int, bytes], near: date | None) -> SentWith:
    day, clock = values[0x9A].hex(), values[0x9F21].hex()  # n6: YYMMDD, HHMMSS
    year = year_of(int(day[:2]), near)
    return SentWith(
        datetime.strptime(f"{year:04d}{day[2:]}{clock}", "%Y%m%d%H%M%S"),
        values[0x9F1C].decode("ascii").rstrip(" "),
        values[0x9F16].decode("ascii").rstrip(" "),
    )


def _expected(pending: PendingEntry, near: date | None) -> tuple[int, int, bytes, SentWith]:
    """Amount, currency, unpredictable number and who sent it when, from the CDOL1 data
    (PROTOCOL.md §3); ValueError, KeyError or DecodeError when it does not hold them."""
    values = split_dol(messages.CDOL1, pending.cdol1_data)
    amount, currency = from_bcd(values[0x9F02]), from_bcd(values[0x5F2A])
    return amount, currency, values[0x9F37], _sent_with(values, near)


def decide(
    pending: PendingEntry,
    response: ResponseAPDU,
    app_key: RsaPublicKey,
    *,
    allow_sha1: bool = False,
    today: date | None = None,
) -> Decision:
    """Record once or close as not paid, from the card's answer to GET DATA DF02 (P§9):
    record when the ATC and CDOL1 data match the entry and the authorization verifies (its
    CID 40 or 00, as every recovered field, equal to what was sent and answered). `today`
    dates the torn GENERATE AC's two-digit year (`year_of`)."""
    if response.sw == SW.REFERENCED_DATA_NOT_FOUND:
        return CloseNotPaid(pending, NotPaidReason.NO_ANSWER)
    if response.sw != SW.OK:
        return CloseNotPaid(pending, NotPaidReason.CARD_ERROR, f"{response.sw:04X}")
    try:
        last = messages.parse_last_answer(response.data)
        answer = messages.parse_generate_ac_response(last.answer)
    except DecodeError as exc:
        return CloseNotPaid(pending, NotPaidReason.MALFORMED, str(exc))
    if answer.atc != pending.atc or last.cdol1_data != pending.cdol1_data:
        return CloseNotPaid(pending, NotPaidReason.OTHER_TRANSACTION, f"ATC {answer.atc}")
    try:
        dynamic = open_authorization(
            app_key, answer.authorization, pending.cdol1_data, allow_sha1=allow_sha1
        )
    except AuthorizationError as exc:
        return CloseNotPaid(pending, NotPaidReason.NOT_VERIFIED, exc.reason.value)
    try:
        amount, currency, unpredictable, sent = _expected(pending, today)
    except (DecodeError, ValueError, KeyError) as exc:
        return CloseNotPaid(pending, NotPaidReason.MISMATCH, f"pending CDOL1 data: {exc}")
    expected = (pending.atc, answer.cid, amount, currency, unpredictable, pending.account)
    got = (
        dynamic.atc,
        dynamic.cid,
        dynamic.amount,
        dynamic.currency,
        dynamic.unpredictable_number,
        dynamic.account,
    )
    if got != expected:
        return CloseNotPaid(pending, NotPaidReason.MISMATCH)
    if dynamic.cid not in (Cid.APPROVED, Cid.DECLINED):  # PROTOCOL.md §5.2: 40 or 00, nothing else
        return CloseNotPaid(pending, NotPaidReason.MISMATCH, f"CID {dynamic.cid:02X}")
    return RecordOnce(pending, answer, dynamic, sent)
