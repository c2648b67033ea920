"""The reason a refused license or authorization gets is its first failing check, in the
order docs/protocol-choices.md gives ("order within checks 3 and 4").

Each test signs recovered data with any set of faults at once (the hash made again over the
faulty fields, so that the checks after the hash are reached), and expects the reason of
the earliest fault in that order.
"""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authority.authorization import open_authorization
from authority.errors import (
    AuthorizationError,
    AuthorizationReason,
    LicenseError,
    LicenseReason,
)
from authority.license import open_license
from authority.rsa import RsaPrivateKey

LICENSE_ORDER = [
    LicenseReason.BAD_HEADER,
    LicenseReason.BAD_TRAILER,
    LicenseReason.BAD_FORMAT,
    LicenseReason.UNKNOWN_HASH_ALGORITHM,
    LicenseReason.BAD_HASH,
    LicenseReason.UNKNOWN_KEY_ALGORITHM,
    LicenseReason.BAD_EXPONENT,
    LicenseReason.BAD_REMAINDER,
    LicenseReason.BAD_ACCOUNT,
    LicenseReason.ACCOUNT_MISMATCH,
    LicenseReason.BAD_EXPIRY,
    LicenseReason.EXPIRED,
    LicenseReason.REVOKED,
]
AUTHORIZATION_ORDER = [
    AuthorizationReason.BAD_HEADER,
    AuthorizationReason.BAD_TRAILER,
    AuthorizationReason.BAD_FORMAT,
    AuthorizationReason.UNKNOWN_HASH_ALGORITHM,
    AuthorizationReason.BAD_DATA_LENGTH,
    AuthorizationReason.BAD_HASH,
    AuthorizationReason.BAD_PAD,
    AuthorizationReason.BAD_DYNAMIC_DATA,
]
RECORD1 = bytes.fromhex("5A0862001234567890128F0101")
FIVE_A = bytes.fromhex("6200123456789012")
SERIAL = 7


def _signed(key: RsaPrivateKey, x: bytes) -> bytes:
    """x^d mod n for any x below n (header and trailer need not be 6A and BC)."""
    size = key.public.size
    return key.private_op(int.from_bytes(x, "big")).to_bytes(size, "big")


def _license_reason(
    ca_key: RsaPrivateKey, app_key: RsaPrivateKey, faults: set[LicenseReason]
) -> LicenseReason:
    """The reason a 128-byte license over a 128-byte APP key (74 bytes in the license, 54
    in 9F48) with `faults` is refused for."""
    r = LicenseReason
    modulus = app_key.public.modulus_bytes()
    room = 128 - 54
    exponent = b"\x05" if r.BAD_EXPONENT in faults else b"\x01\x00\x01"
    remainder = modulus[room:] + (b"\x00" if r.BAD_REMAINDER in faults else b"")
    account = bytes.fromhex(
        "620012345678901AFFFF" if r.BAD_ACCOUNT in faults else "6200123456789012FFFF"
    )
    body = (
        bytes([0x05 if r.BAD_FORMAT in faults else 0x04])
        + account
        + bytes.fromhex("1330" if r.BAD_EXPIRY in faults else "1230")
        + SERIAL.to_bytes(3, "big")
        + bytes([0x03 if r.UNKNOWN_HASH_ALGORITHM in faults else 0x02])
        + bytes([0x02 if r.UNKNOWN_KEY_ALGORITHM in faults else 0x01])
        + bytes([128, len(exponent)])
        + modulus[:room]
    )
    digest = bytearray(hashlib.sha256(body + remainder + exponent + RECORD1).digest())
    if r.BAD_HASH in faults:
        digest[5] ^= 0x40
    header = 0x6B if r.BAD_HEADER in faults else 0x6A
    trailer = 0xBD if r.BAD_TRAILER in faults else 0xBC
    x = bytes([header]) + body + bytes(digest) + bytes([trailer])
    five_a = bytes.fromhex("6200123456789013") if r.ACCOUNT_MISMATCH in faults else FIVE_A
    today = date(2031, 1, 1) if r.EXPIRED in faults else date(2030, 12, 31)
    revoked = {SERIAL} if r.REVOKED in faults else set()
    try:
        open_license(
            ca_key.public,
            _signed(ca_key, x),
            remainder,
            exponent,
            RECORD1,
            account=five_a,
            today=today,
            revoked=revoked,
        )
    except LicenseError as exc:
        return exc.reason
    raise AssertionError(f"license with {sorted(faults)} accepted")


@pytest.mark.parametrize("fault", LICENSE_ORDER)
def test_each_license_fault_alone_has_its_reason(
    ca_key: RsaPrivateKey, app_key: RsaPrivateKey, fault: LicenseReason
) -> None:
    """PROTOCOL.md §5.1, §7 check 3: each fault is caught, with its own reason."""
    assert _license_reason(ca_key, app_key, {fault}) is fault


def test_a_license_without_faults_opens(ca_key: RsaPrivateKey, app_key: RsaPrivateKey) -> None:
    """The faultless license of `_license_reason` opens: the helper itself is sound."""
    with pytest.raises(AssertionError, match="accepted"):
        _license_reason(ca_key, app_key, set())


@settings(max_examples=150, deadline=None)
@given(faults=st.sets(st.sampled_from(LICENSE_ORDER), min_size=2))
def test_a_license_is_refused_for_its_first_fault(
    ca_key: RsaPrivateKey, app_key: RsaPrivateKey, faults: set[LicenseReason]
) -> None:
    """PROTOCOL.md §7 check 3: with several faults, the earliest one's reason."""
    assert _license_reason(ca_key, app_key, faults) is min(faults, key=LICENSE_ORDER.index)


def _authorization_reason(
    app_key: RsaPrivateKey, faults: set[AuthorizationReason]
) -> AuthorizationReason:
    """The reason a 128-byte authorization with `faults` is refused for."""
    r = AuthorizationReason
    cdol1 = bytes(range(44))
    amount = "00000000123A" if r.BAD_DYNAMIC_DATA in faults else "000000001234"
    dynamic = bytes.fromhex("000140" + amount + "01561A2B3C4D6200123456789012FFFF")
    pad = bytearray(b"\xbb" * (128 - 62))
    if r.BAD_PAD in faults:
        pad[-1] = 0xBA
    body = (
        bytes([0x06 if r.BAD_FORMAT in faults else 0x05])
        + bytes([0x03 if r.UNKNOWN_HASH_ALGORITHM in faults else 0x02])
        + bytes([24 if r.BAD_DATA_LENGTH in faults else 25])
        + dynamic
        + bytes(pad)
    )
    digest = bytearray(hashlib.sha256(body + cdol1).digest())
    if r.BAD_HASH in faults:
        digest[-1] ^= 0x01
    header = 0x2A if r.BAD_HEADER in faults else 0x6A
    trailer = 0x3C if r.BAD_TRAILER in faults else 0xBC
    x = bytes([header]) + body + bytes(digest) + bytes([trailer])
    try:
        open_authorization(app_key.public, _signed(app_key, x), cdol1)
    except AuthorizationError as exc:
        return exc.reason
    raise AssertionError(f"authorization with {sorted(faults)} accepted")


@pytest.mark.parametrize("fault", AUTHORIZATION_ORDER)
def test_each_authorization_fault_alone_has_its_reason(
    app_key: RsaPrivateKey, fault: AuthorizationReason
) -> None:
    """PROTOCOL.md §5.2, §7 check 4: each fault is caught, with its own reason."""
    assert _authorization_reason(app_key, {fault}) is fault


def test_an_authorization_without_faults_opens(app_key: RsaPrivateKey) -> None:
    """The faultless authorization of `_authorization_reason` opens: the helper is sound."""
    with pytest.raises(AssertionError, match="accepted"):
        _authorization_reason(app_key, set())


@settings(max_examples=100, deadline=None)
@given(faults=st.sets(st.sampled_from(AUTHORIZATION_ORDER), min_size=2))
def test_an_authorization_is_refused_for_its_first_fault(
    app_key: RsaPrivateKey, faults: set[AuthorizationReason]
) -> None:
    """PROTOCOL.md §7 check 4: with several faults, the earliest one's reason."""
    expected = min(faults, key=AUTHORIZATION_ORDER.index)
    assert _authorization_reason(app_key, faults) is expected
