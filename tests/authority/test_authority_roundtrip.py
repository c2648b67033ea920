"""Property: open(issue(x)) == x for licenses and authorizations (PROTOCOL.md §5.1, §5.2)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authority.authorization import DynamicData, open_authorization, sign_authorization
from authority.iso9796 import HASH_SHA1, HASH_SHA256
from authority.license import (
    LicenseFields,
    account_digits,
    account_from_digits,
    expiry_mmyy,
    issue_license,
    open_license,
)
from authority.rsa import RsaPrivateKey

Keys = Callable[[int, int], RsaPrivateKey]

SIZES = st.sampled_from(range(1024, 1985, 8))
EXPONENTS = st.sampled_from([3, 65537])
ALGORITHMS = st.sampled_from([HASH_SHA256, HASH_SHA1])
DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=19)
SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(
    ca_bits=SIZES,
    ca_e=EXPONENTS,
    app_bits=SIZES,
    app_e=EXPONENTS,
    digits=DIGITS,
    month=st.integers(1, 12),
    year=st.integers(2000, 2099),
    serial=st.integers(0, 0xFFFFFF),
    algorithm=ALGORITHMS,
    record1=st.binary(max_size=200),
)
def test_license_round_trip(
    key_cache: Keys,
    ca_bits: int,
    ca_e: int,
    app_bits: int,
    app_e: int,
    digits: str,
    month: int,
    year: int,
    serial: int,
    algorithm: int,
    record1: bytes,
) -> None:
    ca, app = key_cache(ca_bits, ca_e), key_cache(app_bits, app_e)
    account = account_from_digits(digits)
    assert account_digits(account) == digits
    fields = LicenseFields(account, expiry_mmyy(month, year), serial, algorithm, app.public)
    issued = issue_license(ca, fields, record1)
    assert len(issued.license) == ca.public.size
    opened = open_license(
        ca.public,
        issued.license,
        issued.remainder,
        issued.exponent,
        record1,
        account=account,
        today=date(year, month, 1),
        allow_sha1=True,
    )
    assert opened == fields


@SETTINGS
@given(
    bits=SIZES,
    e=EXPONENTS,
    atc=st.integers(0, 0xFFFF),
    cid=st.sampled_from([0x00, 0x40]),
    amount=st.integers(0, 10**12 - 1),
    currency=st.integers(0, 9999),
    un=st.binary(min_size=4, max_size=4),
    digits=DIGITS,
    cdol1=st.binary(max_size=64),
    algorithm=ALGORITHMS,
)
def test_authorization_round_trip(
    key_cache: Keys,
    bits: int,
    e: int,
    atc: int,
    cid: int,
    amount: int,
    currency: int,
    un: bytes,
    digits: str,
    cdol1: bytes,
    algorithm: int,
) -> None:
    app = key_cache(bits, e)
    dynamic = DynamicData(atc, cid, amount, currency, un, account_from_digits(digits))
    signed = sign_authorization(app, dynamic, cdol1, algorithm)
    assert len(signed) == app.public.size
    assert open_authorization(app.public, signed, cdol1, allow_sha1=True) == dynamic
