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
    RecoveryError,
    RecoveryReason,
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
    kind=st.sampled_from(["raw", "signed", "signed plus n"]),
    raw=st.one_of(st.binary(min_size=128, max_size=128), st.binary(max_size=130)),
    header=st.sampled_from([0x6A, 0x6A, 0x6B, 0x00]),
    middle=st.binary(min_size=126, max_size=126),
    trailer=st.sampled_from([0xBC, 0xBC, 0xBD, 0xCC]),
)
def test_recovery_of_any_bytes_is_checked_data_or_recovery_error(
    ca_key: RsaPrivateKey, kind: str, raw: bytes, header: int, middle: bytes, trailer: int
) -> None:
    """Any input gives the N bytes S^e mod n from 6A to BC, or a typed RecoveryError
    (PROTOCOL.md §5): a value >= n is never reduced and accepted, nor a wrong header or
    trailer, however well signed."""
    pub = ca_key.public
    x = bytes([header]) + middle + bytes([trailer])
    signature = raw
    if kind != "raw":
        s = ca_key.private_op(int.from_bytes(x, "big")) + (pub.n if kind == "signed plus n" else 0)
        signature = s.to_bytes((s.bit_length() + 7) // 8, "big").rjust(pub.size, b"\x00")
    s = int.from_bytes(signature, "big")
    try:
        recovered = iso9796.recover(pub, signature)
    except RecoveryError as exc:
        assert isinstance(exc.reason, RecoveryReason)
        if len(signature) == pub.size and s < pub.n:
            assert exc.reason in (RecoveryReason.BAD_HEADER, RecoveryReason.BAD_TRAILER)
    else:
        assert len(signature) == pub.size and s < pub.n
        assert recovered == pow(s, pub.e, pub.n).to_bytes(pub.size, "big")
        assert recovered[0] == iso9796.HEADER and recovered[-1] == iso9796.TRAILER
        if kind == "signed":
            assert recovered == x


@SETTINGS
@given(middle=st.binary(min_size=126, max_size=126))
def test_recover_of_sign_is_the_recovered_data(ca_key: RsaPrivateKey, middle: bytes) -> None:
    """recover(sign(X)) == X for any X from 6A to BC (ISO/IEC 9796-2 scheme 1)."""
    x = b"\x6a" + middle + b"\xbc"
    assert iso9796.recover(ca_key.public, iso9796.sign(ca_key, x)) == x


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
