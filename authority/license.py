"""The APP public key license (`9F46`): EMV certificate format 04 (PROTOCOL.md §5.1)."""

from __future__ import annotations

import calendar
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Final

from authority import iso9796
from authority.errors import InvalidKeyError, LicenseError, LicenseReason, RecoveryError
from authority.iso9796 import HASH_LENGTHS, PAD, HashAlgorithm
from authority.rsa import RsaPrivateKey, RsaPublicKey, check_exponent

FORMAT: Final = 0x04
KEY_ALGORITHM_RSA: Final = 0x01
ACCOUNT_LENGTH: Final = 10
MAX_SERIAL: Final = 0xFFFFFF
# header, format, account, expiry, serial, hash algorithm, key algorithm, key and exp lengths
_FIXED_BEFORE_KEY: Final = 1 + 1 + ACCOUNT_LENGTH + 2 + 3 + 1 + 1 + 1 + 1
_PAD_BYTE: Final = bytes((PAD,))


def leftmost_size(ca_size: int, hash_algorithm: int) -> int:
    """N_CA - 54 (SHA-256) or N_CA - 42 (SHA-1): room for the APP modulus (PROTOCOL.md §5.1)."""
    return ca_size - _FIXED_BEFORE_KEY - HASH_LENGTHS[HashAlgorithm(hash_algorithm)] - 1


def pad_account(value: bytes) -> bytes:
    """A `5A` value (cn, up to 10 bytes) padded with FF to the 10-byte field (PROTOCOL.md §1)."""
    if not 1 <= len(value) <= ACCOUNT_LENGTH:
        raise ValueError(f"account of {len(value)} bytes: must be 1 to {ACCOUNT_LENGTH}")
    return value + b"\xff" * (ACCOUNT_LENGTH - len(value))


def account_from_digits(digits: str) -> bytes:
    """The 10-byte cn account field from its digits (up to 19), F-padded (PROTOCOL.md §1)."""
    if not (1 <= len(digits) <= 2 * ACCOUNT_LENGTH - 1 and digits.isascii() and digits.isdigit()):
        raise ValueError("account must be 1 to 19 decimal digits")
    return bytes.fromhex(digits.ljust(2 * ACCOUNT_LENGTH, "F"))


def account_digits(account: bytes) -> str:
    """The digits of a cn account field (stops at the first F); ValueError if malformed."""
    text = account.hex().upper()
    digits = text.rstrip("F")
    if not digits or not digits.isdigit() or len(account) > ACCOUNT_LENGTH:
        raise ValueError("malformed cn account")
    return digits


def expiry_mmyy(month: int, year: int) -> bytes:
    """The MMYY n field for a month (PROTOCOL.md §5.1)."""
    if not (1 <= month <= 12 and 2000 <= year <= 2099):
        raise ValueError("expiry month must be 1..12 and year 2000..2099")
    return bytes.fromhex(f"{month:02d}{year % 100:02d}")


def expiry_last_day(expiry: bytes) -> date:
    """The last valid day of an MMYY expiry ("valid through the end of that month")."""
    text = expiry.hex()
    if len(expiry) != 2 or not text.isdigit() or not 1 <= int(text[:2]) <= 12:
        raise ValueError("malformed MMYY expiry")
    month, year = int(text[:2]), 2000 + int(text[2:])
    return date(year, month, calendar.monthrange(year, month)[1])


@dataclass(frozen=True)
class LicenseFields:
    """What a license certifies (PROTOCOL.md §5.1)."""

    account: bytes  # 10 bytes, cn F-padded
    expiry: bytes  # 2 bytes MMYY, n
    serial: int  # 0..FFFFFF
    hash_algorithm: int
    app_key: RsaPublicKey


@dataclass(frozen=True)
class IssuedLicense:
    """The three record values a license needs: `9F46`, `9F48` (maybe empty), `9F47`."""

    license: bytes
    remainder: bytes
    exponent: bytes


def _check_fields(fields: LicenseFields) -> None:
    if len(fields.account) != ACCOUNT_LENGTH:
        raise ValueError("account must be 10 bytes (cn, F-padded)")
    account_digits(fields.account)
    expiry_last_day(fields.expiry)
    if not 0 <= fields.serial <= MAX_SERIAL:
        raise ValueError("serial must fit 3 bytes")
    HashAlgorithm(fields.hash_algorithm)


def _split_modulus(modulus: bytes, room: int) -> tuple[bytes, bytes]:
    """Leftmost part (BB-padded to `room`) and remainder of the APP modulus."""
    if len(modulus) <= room:
        return modulus + bytes([PAD]) * (room - len(modulus)), b""
    return modulus[:room], modulus[room:]


def build_recovered(fields: LicenseFields, ca_size: int, record1_value: bytes) -> IssuedLicense:
    """The recovered data X of a license (unsigned, in `license`), remainder and exponent."""
    _check_fields(fields)
    room = leftmost_size(ca_size, fields.hash_algorithm)
    leftmost, remainder = _split_modulus(fields.app_key.modulus_bytes(), room)
    exponent = fields.app_key.exponent_bytes()
    body = (
        bytes([FORMAT])
        + fields.account
        + fields.expiry
        + fields.serial.to_bytes(3, "big")
        + bytes([fields.hash_algorithm, KEY_ALGORITHM_RSA, fields.app_key.size, len(exponent)])
        + leftmost
    )
    hashed = iso9796.digest(fields.hash_algorithm, body, remainder, exponent, record1_value)
    recovered = bytes([iso9796.HEADER]) + body + hashed + bytes([iso9796.TRAILER])
    return IssuedLicense(recovered, remainder, exponent)


def issue_license(ca: RsaPrivateKey, fields: LicenseFields, record1_value: bytes) -> IssuedLicense:
    """Sign an APP public key license with the authority key (PROTOCOL.md §5.1)."""
    built = build_recovered(fields, ca.public.size, record1_value)
    return IssuedLicense(iso9796.sign(ca, built.license), built.remainder, built.exponent)


def open_license(
    ca: RsaPublicKey,
    license: bytes,
    remainder: bytes,
    exponent: bytes,
    record1_value: bytes,
    *,
    account: bytes,
    today: date,
    revoked: Collection[int] = (),
    allow_sha1: bool = False,
) -> LicenseFields:
    """Recover and check a license; LicenseError says why it is refused (PROTOCOL.md §7 check 3).

    `account` is the `5A` value of record 1 (cn, F-padded here to 10 bytes if shorter).
    """
    if len(license) != ca.size:
        raise LicenseError(LicenseReason.BAD_LENGTH, f"{len(license)} bytes, want {ca.size}")
    try:
        x = iso9796.recover(ca, license)
    except RecoveryError as exc:
        raise LicenseError(LicenseReason(exc.reason.value)) from None
    if x[1] != FORMAT:
        raise LicenseError(LicenseReason.BAD_FORMAT, f"{x[1]:02X}")
    algorithm = x[17]
    if algorithm == HashAlgorithm.SHA1 and not allow_sha1:
        raise LicenseError(LicenseReason.SHA1_NOT_ENABLED)
    if algorithm not in HASH_LENGTHS:
        raise LicenseError(LicenseReason.UNKNOWN_HASH_ALGORITHM, f"{algorithm:02X}")
    hash_length = HASH_LENGTHS[HashAlgorithm(algorithm)]
    room = leftmost_size(ca.size, algorithm)
    body_end = _FIXED_BEFORE_KEY + room
    body = x[1:body_end]
    expected = iso9796.digest(algorithm, body, remainder, exponent, record1_value)
    if x[body_end : body_end + hash_length] != expected:
        raise LicenseError(LicenseReason.BAD_HASH)
    app_key = _app_key(x, room, remainder, exponent)
    licensed_account, expiry = x[2:12], x[12:14]
    try:
        account_digits(licensed_account)
    except ValueError:
        raise LicenseError(LicenseReason.BAD_ACCOUNT) from None
    try:
        wanted = pad_account(account)
    except ValueError:
        raise LicenseError(LicenseReason.ACCOUNT_MISMATCH, "bad 5A length") from None
    if licensed_account != wanted:
        raise LicenseError(LicenseReason.ACCOUNT_MISMATCH)
    try:
        last_day = expiry_last_day(expiry)
    except ValueError:
        raise LicenseError(LicenseReason.BAD_EXPIRY, expiry.hex().upper()) from None
    if today > last_day:
        raise LicenseError(LicenseReason.EXPIRED, f"valid through {last_day.isoformat()}")
    serial = int.from_bytes(x[14:17], "big")
    if serial in revoked:
        raise LicenseError(LicenseReason.REVOKED, f"serial {serial}")
    return LicenseFields(licensed_account, expiry, serial, algorithm, app_key)


def _app_key(x: bytes, room: int, remainder: bytes, exponent: bytes) -> RsaPublicKey:
    """The APP public key from a hash-checked license's fields (PROTOCOL.md §5.1)."""
    if x[18] != KEY_ALGORITHM_RSA:
        raise LicenseError(LicenseReason.UNKNOWN_KEY_ALGORITHM, f"{x[18]:02X}")
    app_size, exp_length = x[19], x[20]
    if exp_length not in (1, 3) or len(exponent) != exp_length:
        raise LicenseError(LicenseReason.BAD_EXPONENT)
    e = int.from_bytes(exponent, "big")
    try:  # the exponent's own reason, not the key's (PROTOCOL.md §5)
        check_exponent(e)
    except InvalidKeyError as exc:
        raise LicenseError(LicenseReason.BAD_EXPONENT, exc.reason) from None
    leftmost = x[_FIXED_BEFORE_KEY : _FIXED_BEFORE_KEY + room]
    if app_size <= room:
        if remainder or leftmost[app_size:].lstrip(_PAD_BYTE):  # a byte other than BB
            raise LicenseError(LicenseReason.BAD_REMAINDER)
        modulus = leftmost[:app_size]
    else:
        if len(remainder) != app_size - room:
            raise LicenseError(LicenseReason.BAD_REMAINDER)
        modulus = leftmost + remainder
    try:
        key = RsaPublicKey(int.from_bytes(modulus, "big"), e)
    except InvalidKeyError as exc:
        raise LicenseError(LicenseReason.BAD_APP_KEY, exc.reason) from None
    if key.size != app_size:
        raise LicenseError(LicenseReason.BAD_APP_KEY, "modulus has a leading zero byte")
    if key.exponent_bytes() != exponent:
        raise LicenseError(LicenseReason.BAD_EXPONENT)
    return key
