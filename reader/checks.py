"""The terminal's checks, PROTOCOL.md §7, in order; each failure is a typed CheckError. Sans-IO.

1. every response ends in 9000 and its template parses (`ResponseError`, `StatusError`);
2. the authority key index is known and not expired (`AuthorityKeyError`);
3. the license opens with that key (`LicenseCheckError`, carrying the LicenseReason);
4. the authorization opens with the APP key and matches the transaction
   (`AuthorizationCheckError`, `AtcMismatchError`, `CidMismatchError`);
5. (account, ATC) is not in the log yet (`ReplayError`, raised by reader/log.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from enum import IntEnum, StrEnum
from functools import partial
from typing import TypeVar

from apdu.errors import DecodeError
from apdu.response import ResponseAPDU
from apdu.sw import SW, describe
from apdu.templates import tags_in
from apdu.tlv import tag_hex
from authority.authorization import DynamicData, open_authorization
from authority.errors import AuthorizationError, LicenseError, LicenseReason
from authority.keystore import AuthorityKey, KeyStore
from authority.license import LicenseFields, open_license, pad_account
from authority.rsa import RsaPublicKey

T = TypeVar("T")


class Verdict(StrEnum):
    """What the terminal decides about one payment (PROTOCOL.md §7)."""

    APPROVED = "approved"
    DECLINED = "declined"
    REFUSED = "refused"


class Check(IntEnum):
    """The numbered checks of PROTOCOL.md §7."""

    RESPONSE = 1
    AUTHORITY_KEY = 2
    LICENSE = 3
    AUTHORIZATION = 4
    REPLAY = 5


class Cid(IntEnum):
    """Cryptogram information data `9F27` (PROTOCOL.md §5.2)."""

    DECLINED = 0x00
    APPROVED = 0x40


def verdict_of(cid: int) -> Verdict:
    """The verdict a checked answer's CID gives: 40 approved, 00 declined (PROTOCOL.md §5.2:
    nothing else verifies)."""
    return Verdict.APPROVED if cid == Cid.APPROVED else Verdict.DECLINED


class CheckError(Exception):
    """A payment refused by a PROTOCOL.md §7 check; `.check` is its number, `.reason` why."""

    check: Check = Check.RESPONSE

    def __init__(self, reason: str) -> None:
        super().__init__(f"check {int(self.check)}: {reason}")
        self.reason = reason


class ResponseError(CheckError):
    """Check 1: a template is missing, malformed, repeats a tag, or a response is truncated."""

    check = Check.RESPONSE


class StatusError(ResponseError):
    """Check 1: a response did not end in 9000 (after chaining); `.sw` is what it ended in."""

    def __init__(self, step: str, sw: int, hint: str = "") -> None:
        super().__init__(f"{step} answered {describe(sw)}" + (f": {hint}" if hint else ""))
        self.sw = sw


class AuthorityKeyError(CheckError):
    """Check 2: the authority key index (`8F`) is unknown or its key has expired."""

    check = Check.AUTHORITY_KEY


class LicenseCheckError(CheckError):
    """Check 3: the license was refused; `.license_reason` is the authority's reason and
    `.license_length` the length of the license refused (None when not known)."""

    check = Check.LICENSE

    def __init__(
        self, reason: LicenseReason, detail: str = "", license_length: int | None = None
    ) -> None:
        super().__init__(f"license {reason}" + (f" ({detail})" if detail else ""))
        self.license_reason = reason
        self.license_length = license_length


class SerialMismatchError(CheckError):
    """Check 3, re-checking a stored row: the serial it keeps is not its license's
    (PROTOCOL.md §7: the log entry holds the license serial)."""

    check = Check.LICENSE


class AuthorizationCheckError(CheckError):
    """Check 4: the authorization did not open, or it does not match the transaction."""

    check = Check.AUTHORIZATION


class AtcMismatchError(AuthorizationCheckError):
    """Check 4: the ATC of GENERATE AC (or the signed one) differs from the GPO's."""


class CidMismatchError(AuthorizationCheckError):
    """Check 4: the signed CID differs from `9F27`, or `9F27` is neither approve nor decline."""


class ReplayError(CheckError):
    """Check 5: (account, ATC) is in the log already: a replayed authorization."""

    check = Check.REPLAY


def ok_data(step: str, response: ResponseAPDU) -> bytes:
    """The data of a response that ended in 9000 (check 1); StatusError otherwise."""
    if response.sw != SW.OK:
        raise StatusError(step, response.sw)
    return response.data


def parsed(step: str, parse: Callable[[bytes], T], data: bytes) -> T:
    """A template parsed with `parse`; ResponseError naming the step when it is malformed."""
    try:
        return parse(data)
    except (DecodeError, ValueError) as exc:
        raise ResponseError(f"{step}: {exc}") from None


_RECORD_TEMPLATE = 0x70  # READ RECORD's answer (PROTOCOL.md §3)


def records_unique(answers: Sequence[bytes]) -> None:
    """Check 1 across the records read: a tag in two records is refused (PROTOCOL.md §7 check 1,
    EMV Book 3 10.2), so that no record can add a second `5A`, `8F` or `9F47` that the
    license hash (over record 1 only) does not cover."""
    seen: dict[int, int] = {}
    for number, data in enumerate(answers, 1):
        step = f"READ RECORD {number}"
        for tag in parsed(step, partial(tags_in, tag=_RECORD_TEMPLATE), data):
            if tag in seen:
                raise ResponseError(
                    f"{step}: tag {tag_hex(tag)} repeated (record {seen[tag]} has it)"
                )
            seen[tag] = number


def authority_key(keys: KeyStore, index: int, today: date) -> AuthorityKey:
    """Check 2: the key of index `8F`, known and not expired."""
    key = keys.lookup(index)
    if key is None:
        raise AuthorityKeyError(f"unknown authority key index {index:02X}")
    if not key.usable(today):
        raise AuthorityKeyError(
            f"authority key {index:02X} expired (valid until {key.expires.isoformat()})"
        )
    return key


@dataclass(frozen=True)
class CardRecords:
    """What the license check needs from records 1 to 3 (PROTOCOL.md §4)."""

    account: bytes  # 5A as read
    record1_value: bytes
    license: bytes
    remainder: bytes
    exponent: bytes


def license_fields(
    ca: RsaPublicKey,
    records: CardRecords,
    *,
    today: date,
    revoked: frozenset[int],
    allow_sha1: bool,
) -> LicenseFields:
    """Check 3: open the license; LicenseCheckError with the authority's reason."""
    try:
        return open_license(
            ca,
            records.license,
            records.remainder,
            records.exponent,
            records.record1_value,
            account=records.account,
            today=today,
            revoked=revoked,
            allow_sha1=allow_sha1,
        )
    except LicenseError as exc:
        raise LicenseCheckError(exc.reason, exc.detail, len(records.license)) from None


@dataclass(frozen=True)
class Expected:
    """The transaction's values the authorization must carry (PROTOCOL.md §7 check 4)."""

    atc: int  # the GPO's
    amount: int
    currency: int
    unpredictable_number: bytes
    account: bytes  # 5A as read (padded here)


def authorization(
    app_key: RsaPublicKey,
    *,
    cid: int,
    atc: int,
    signature: bytes,
    cdol1_data: bytes,
    expected: Expected,
    allow_sha1: bool,
) -> DynamicData:
    """Check 4: `9F36` equals the GPO's, `9F4B` opens over the CDOL1 data sent, and its
    ATC, CID, amount, currency, unpredictable number and account equal the transaction's."""
    if atc != expected.atc:
        raise AtcMismatchError(f"GENERATE AC ATC {atc:04X}, GPO ATC {expected.atc:04X}")
    if cid not in (Cid.APPROVED, Cid.DECLINED):
        raise CidMismatchError(f"CID {cid:02X} is neither approved (40) nor declined (00)")
    try:
        dynamic = open_authorization(app_key, signature, cdol1_data, allow_sha1=allow_sha1)
    except AuthorizationError as exc:
        raise AuthorizationCheckError(f"authorization {exc.reason}") from None
    if dynamic.atc != expected.atc:
        raise AtcMismatchError(f"signed ATC {dynamic.atc:04X}, GPO ATC {expected.atc:04X}")
    if dynamic.cid != cid:
        raise CidMismatchError(f"signed CID {dynamic.cid:02X}, 9F27 {cid:02X}")
    mismatches = [
        name
        for name, got, want in (
            ("amount", dynamic.amount, expected.amount),
            ("currency", dynamic.currency, expected.currency),
            ("unpredictable number", dynamic.unpredictable_number, expected.unpredictable_number),
            ("account", dynamic.account, _padded(expected.account)),
        )
        if got != want
    ]
    if mismatches:
        verb = "differs" if len(mismatches) == 1 else "differ"
        raise AuthorizationCheckError(f"signed {', '.join(mismatches)} {verb}")
    return dynamic


def _padded(account: bytes) -> bytes:
    try:
        return pad_account(account)
    except ValueError:
        raise AuthorizationCheckError("account id of a bad length") from None


@dataclass(frozen=True)
class Recorded:
    """What `verify_recorded` needs from a log row (reader/log.py)."""

    account: bytes  # 5A, as read
    amount: int
    currency: int
    atc: int
    unpredictable_number: bytes
    cid: int
    ca_index: int
    serial: int
    authorization: bytes
    license: bytes
    remainder: bytes
    exponent: bytes
    record1_value: bytes
    cdol1_data: bytes
    day: date  # the transaction's date: the keys and the license were valid then


def verify_recorded(row: Recorded, keys: KeyStore, *, allow_sha1: bool = False) -> DynamicData:
    """Re-check a stored transaction with the authority's public key (checks 2-4).

    The key and the license are judged at the transaction's date; a revocation made later
    does not undo a signature that was valid then. The serial kept must be the license's.
    """
    ca = authority_key(keys, row.ca_index, row.day)
    records = CardRecords(row.account, row.record1_value, row.license, row.remainder, row.exponent)
    fields = license_fields(
        ca.key, records, today=row.day, revoked=frozenset(), allow_sha1=allow_sha1
    )
    if fields.serial != row.serial:
        raise SerialMismatchError(f"license serial {fields.serial}, the row says {row.serial}")
    expected = Expected(row.atc, row.amount, row.currency, row.unpredictable_number, row.account)
    return authorization(
        fields.app_key,
        cid=row.cid,
        atc=row.atc,
        signature=row.authorization,
        cdol1_data=row.cdol1_data,
        expected=expected,
        allow_sha1=allow_sha1,
    )
