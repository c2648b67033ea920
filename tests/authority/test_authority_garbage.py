"""Any input, even signed by the right key, gives a result or a typed error, never a crash."""

from __future__ import annotations

import hashlib
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from authority import iso9796
from authority.authorization import DynamicData, open_authorization
from authority.errors import (
    AuthorizationError,
    AuthorizationReason,
    LicenseError,
    LicenseReason,
)
from authority.license import LicenseFields, open_license
from authority.rsa import RsaPrivateKey

SETTINGS = settings(max_examples=150, deadline=None)


def _signed(key: RsaPrivateKey, fmt: int, algorithm: int, middle: bytes) -> bytes:
    size = key.public.size
    body = (bytes([fmt, *middle[:1]]) + middle[1:]).ljust(size - 2, b"\x00")[: size - 2]
    body = body[:16] + bytes([algorithm]) + body[17:] if fmt == 0x04 else body
    body = body[:1] + bytes([algorithm]) + body[2:] if fmt == 0x05 else body
    return iso9796.sign(key, b"\x6a" + body + b"\xbc")


@SETTINGS
@given(
    raw=st.binary(max_size=140),
    algorithm=st.sampled_from([0x01, 0x02, 0x00, 0xFF]),
    middle=st.binary(min_size=1, max_size=126),
    remainder=st.binary(max_size=80),
    exponent=st.sampled_from([b"", b"\x03", b"\x01\x00\x01", b"\x00\x00\x03", b"\x05"]),
    signed=st.booleans(),
)
def test_license_garbage_gives_license_error(
    ca_key: RsaPrivateKey,
    raw: bytes,
    algorithm: int,
    middle: bytes,
    remainder: bytes,
    exponent: bytes,
    signed: bool,
) -> None:
    lic = _signed(ca_key, 0x04, algorithm, middle) if signed else raw
    try:
        fields = open_license(
            ca_key.public,
            lic,
            remainder,
            exponent,
            b"",
            account=b"\x62",
            today=date(2026, 1, 1),
            allow_sha1=True,
        )
    except LicenseError as exc:
        assert isinstance(exc.reason, LicenseReason)
    else:
        assert isinstance(fields, LicenseFields)


@SETTINGS
@given(
    raw=st.binary(max_size=140),
    algorithm=st.sampled_from([0x01, 0x02, 0x00, 0xFF]),
    middle=st.binary(min_size=1, max_size=126),
    signed=st.booleans(),
)
def test_authorization_garbage_gives_authorization_error(
    app_key: RsaPrivateKey, raw: bytes, algorithm: int, middle: bytes, signed: bool
) -> None:
    auth = _signed(app_key, 0x05, algorithm, middle) if signed else raw
    try:
        data = open_authorization(app_key.public, auth, b"", allow_sha1=True)
    except AuthorizationError as exc:
        assert isinstance(exc.reason, AuthorizationReason)
    else:
        assert isinstance(data, DynamicData)


@SETTINGS
@given(
    fields=st.binary(min_size=19, max_size=19),
    leftmost=st.binary(min_size=74, max_size=74),
    remainder=st.binary(max_size=80),
    exponent=st.sampled_from([b"", b"\x03", b"\x01\x00\x01", b"\x00\x00\x03", b"\x05"]),
)
def test_well_hashed_license_with_random_fields(
    ca_key: RsaPrivateKey, fields: bytes, leftmost: bytes, remainder: bytes, exponent: bytes
) -> None:
    """Past the hash check: key, exponent, account and expiry parsing stay typed."""
    body = b"\x04" + fields[:15] + b"\x02" + fields[16:] + leftmost
    digest = hashlib.sha256(body + remainder + exponent).digest()
    lic = iso9796.sign(ca_key, b"\x6a" + body + digest + b"\xbc")
    try:
        opened = open_license(
            ca_key.public,
            lic,
            remainder,
            exponent,
            b"",
            account=fields[:10],
            today=date(2000, 1, 1),
        )
    except LicenseError as exc:
        assert exc.reason is not LicenseReason.BAD_HASH
    else:
        assert opened.account == fields[:10]
