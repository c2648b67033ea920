"""The license and authorization formats checked against a second implementation.

`_license_x` and `_authorization_x` lay out the recovered data of PROTOCOL.md §5.1 and §5.2
with plain ints, nibbles and hashlib, and sign with Python's pow over a key `cryptography`
made: none of the project's layout, BCD, padding or RSA code. The project must sign the
same bytes and open what this side signed, for every allowed size (1024..1984 bits, step 8)
and both exponents; any one byte changed must be refused.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa as crypto_rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authority import iso9796
from authority.authorization import DynamicData, open_authorization, sign_authorization
from authority.errors import AuthorizationError, LicenseError
from authority.license import LicenseFields, issue_license, open_license
from authority.rsa import RsaPrivateKey, from_cryptography


@dataclass(frozen=True)
class Pair:
    """A key as plain ints (n, e, d), and the same key as the project holds it."""

    n: int
    e: int
    d: int
    ours: RsaPrivateKey

    @property
    def size(self) -> int:
        return (self.n.bit_length() + 7) // 8

    def sign(self, x: bytes) -> bytes:
        assert len(x) == self.size and int.from_bytes(x, "big") < self.n
        return pow(int.from_bytes(x, "big"), self.d, self.n).to_bytes(self.size, "big")

    def recover(self, s: bytes) -> bytes:
        return pow(int.from_bytes(s, "big"), self.e, self.n).to_bytes(self.size, "big")


_pairs: dict[tuple[int, int], Pair] = {}


def _pair(bits: int, e: int) -> Pair:
    if (bits, e) not in _pairs:
        key = crypto_rsa.generate_private_key(public_exponent=e, key_size=bits)
        numbers = key.private_numbers()
        n = numbers.public_numbers.n
        assert n.bit_length() == bits
        _pairs[bits, e] = Pair(n, e, numbers.d, from_cryptography(key))
    return _pairs[bits, e]


def _nibbles(text: str) -> bytes:
    """Hex-like digits 0-9 and F packed two a byte, high nibble first (PROTOCOL.md §1)."""
    values = [15 if c == "F" else ord(c) - ord("0") for c in text]
    assert len(values) % 2 == 0 and all(0 <= v <= 15 for v in values)
    return bytes(values[i] << 4 | values[i + 1] for i in range(0, len(values), 2))


def _n(value: int, length: int) -> bytes:
    """n: packed BCD, right-justified with leading zeros (PROTOCOL.md §1)."""
    digits = str(value)
    assert len(digits) <= 2 * length
    return _nibbles("0" * (2 * length - len(digits)) + digits)


def _cn(digits: str, length: int) -> bytes:
    """cn: packed BCD, left-justified, padded with F (PROTOCOL.md §1)."""
    return _nibbles(digits + "F" * (2 * length - len(digits)))


def _hash(algorithm: int, data: bytes) -> bytes:
    return hashlib.sha256(data).digest() if algorithm == 2 else hashlib.sha1(data).digest()


def _license_x(
    ca_size: int,
    app: Pair,
    digits: str,
    month: int,
    year: int,
    serial: int,
    algorithm: int,
    record1: bytes,
) -> tuple[bytes, bytes, bytes]:
    """(recovered data, 9F48, 9F47) of PROTOCOL.md §5.1, field by field."""
    hash_length = 32 if algorithm == 2 else 20
    room = ca_size - 54 if algorithm == 2 else ca_size - 42
    modulus = app.n.to_bytes(app.size, "big")
    exponent = bytes([3]) if app.e == 3 else bytes([1, 0, 1])
    leftmost = modulus[:room] + bytes([0xBB]) * max(0, room - len(modulus))
    remainder = modulus[room:]
    body = (
        bytes([0x04])
        + _cn(digits, 10)
        + _n(month, 1)
        + _n(year % 100, 1)
        + bytes([serial >> 16, serial >> 8 & 0xFF, serial & 0xFF])
        + bytes([algorithm, 0x01, app.size, len(exponent)])
        + leftmost
    )
    digest = _hash(algorithm, body + remainder + exponent + record1)
    assert len(digest) == hash_length
    x = bytes([0x6A]) + body + digest + bytes([0xBC])
    assert len(x) == ca_size
    return x, remainder, exponent


def _authorization_x(
    app_size: int,
    atc: int,
    cid: int,
    amount: int,
    currency: int,
    un: bytes,
    digits: str,
    algorithm: int,
    cdol1: bytes,
) -> bytes:
    """The recovered data of PROTOCOL.md §5.2, field by field."""
    dynamic = bytes([atc >> 8, atc & 0xFF, cid]) + _n(amount, 6) + _n(currency, 2) + un
    dynamic += _cn(digits, 10)
    assert len(dynamic) == 25
    pad = app_size - 62 if algorithm == 2 else app_size - 50
    body = bytes([0x05, algorithm, 25]) + dynamic + bytes([0xBB]) * pad
    x = bytes([0x6A]) + body + _hash(algorithm, body + cdol1) + bytes([0xBC])
    assert len(x) == app_size
    return x


SIZES = st.sampled_from(range(1024, 1985, 8))
EXPONENTS = st.sampled_from([3, 65537])
ALGORITHMS = st.sampled_from([1, 2])
DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=19)
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _flip(data: bytes, where: int, xor: int) -> bytes:
    changed = bytearray(data)
    changed[where % len(changed)] ^= xor
    return bytes(changed)


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
    record1=st.binary(max_size=120),
    where=st.integers(0, 1 << 16),
    xor=st.integers(1, 255),
    part=st.sampled_from(["license", "remainder", "exponent", "record1"]),
)
def test_license_equals_an_independent_layout(
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
    where: int,
    xor: int,
    part: str,
) -> None:
    """PROTOCOL.md §5.1: the project signs exactly the independent layout (scheme 1 is
    deterministic), opens what the independent side signed into the fields certified, and
    refuses the license once one byte of it, 9F48, 9F47 or record 1 has changed."""
    ca, app = _pair(ca_bits, ca_e), _pair(app_bits, app_e)
    x, remainder, exponent = _license_x(
        ca.size, app, digits, month, year, serial, algorithm, record1
    )
    signed = ca.sign(x)
    account = _cn(digits, 10)
    expiry = _n(month, 1) + _n(year % 100, 1)
    fields = LicenseFields(account, expiry, serial, algorithm, app.ours.public)
    issued = issue_license(ca.ours, fields, record1)
    assert (issued.license, issued.remainder, issued.exponent) == (signed, remainder, exponent)
    assert ca.recover(issued.license) == x
    five_a = _cn(digits, (len(digits) + 1) // 2)  # 5A as a card holds it, maybe shorter
    today = date(year, month, 1)
    opened = open_license(
        ca.ours.public,
        signed,
        remainder,
        exponent,
        record1,
        account=five_a,
        today=today,
        allow_sha1=True,
    )
    assert opened == fields
    assert (opened.app_key.n, opened.app_key.e) == (app.n, app.e)
    parts = {"license": signed, "remainder": remainder, "exponent": exponent, "record1": record1}
    if not parts[part]:
        return  # nothing to change (no remainder, or an empty record 1)
    parts[part] = _flip(parts[part], where, xor)
    with pytest.raises(LicenseError):
        open_license(
            ca.ours.public,
            parts["license"],
            parts["remainder"],
            parts["exponent"],
            parts["record1"],
            account=five_a,
            today=today,
            allow_sha1=True,
        )


@SETTINGS
@given(
    app_bits=SIZES,
    app_e=EXPONENTS,
    atc=st.integers(0, 0xFFFF),
    cid=st.sampled_from([0x00, 0x40]),
    amount=st.integers(0, 999_999_999_999),
    currency=st.integers(0, 9999),
    un=st.binary(min_size=4, max_size=4),
    digits=DIGITS,
    algorithm=ALGORITHMS,
    cdol1=st.binary(min_size=1, max_size=60),
    where=st.integers(0, 1 << 16),
    xor=st.integers(1, 255),
    in_cdol1=st.booleans(),
)
def test_authorization_equals_an_independent_layout(
    app_bits: int,
    app_e: int,
    atc: int,
    cid: int,
    amount: int,
    currency: int,
    un: bytes,
    digits: str,
    algorithm: int,
    cdol1: bytes,
    where: int,
    xor: int,
    in_cdol1: bool,
) -> None:
    """PROTOCOL.md §5.2: the project signs exactly the independent layout, opens what the
    independent side signed into the dynamic data signed, and refuses the authorization
    once one byte of it or of the CDOL1 data has changed."""
    app = _pair(app_bits, app_e)
    x = _authorization_x(app.size, atc, cid, amount, currency, un, digits, algorithm, cdol1)
    signed = app.sign(x)
    dynamic = DynamicData(atc, cid, amount, currency, un, _cn(digits, 10))
    assert sign_authorization(app.ours, dynamic, cdol1, algorithm) == signed
    opened = open_authorization(app.ours.public, signed, cdol1, allow_sha1=True)
    assert opened == dynamic
    args = (signed, _flip(cdol1, where, xor)) if in_cdol1 else (_flip(signed, where, xor), cdol1)
    with pytest.raises(AuthorizationError):
        open_authorization(app.ours.public, *args, allow_sha1=True)


@pytest.mark.parametrize("bits", [1024, 1032, 1976, 1984])
@pytest.mark.parametrize("e", [3, 65537])
def test_sign_and_recover_at_the_size_bounds(bits: int, e: int) -> None:
    """PROTOCOL.md §5's smallest and largest sizes, each with both exponents: the smallest
    and the largest recovered data the format allows (all 00 and all FF between 6A and BC)
    sign as textbook RSA and recover whole."""
    pair = _pair(bits, e)
    for middle in (0x00, 0xFF):
        x = bytes([0x6A]) + bytes([middle]) * (pair.size - 2) + bytes([0xBC])
        signed = iso9796.sign(pair.ours, x)
        assert signed == pair.sign(x)
        assert iso9796.recover(pair.ours.public, signed) == x


@pytest.mark.parametrize("bits", range(1024, 1985, 8))
def test_every_allowed_size_signs_and_opens_both_formats(bits: int) -> None:
    """PROTOCOL.md §5: every size from 1024 to 1984 bits in steps of 8 (each with one of the
    two exponents, in turn) certifies as the authority key, is certified as the APP key
    (with a remainder, or BB padding, as the sizes give), and signs an authorization; each
    equals the independent layout and opens to what was signed."""
    e = 3 if bits % 16 == 0 else 65537
    key, other = _pair(bits, e), _pair(1024 if bits > 1504 else 1984, 3)
    record1, day = bytes.fromhex("5A0862001234567890128F0101"), date(2030, 12, 31)
    for ca, app in ((key, other), (other, key)):
        x, remainder, exponent = _license_x(
            ca.size, app, "6200123456789012", 12, 2030, 7, 2, record1
        )
        fields = LicenseFields(
            _cn("6200123456789012", 10), bytes([0x12, 0x30]), 7, 2, app.ours.public
        )
        issued = issue_license(ca.ours, fields, record1)
        assert (issued.license, issued.remainder, issued.exponent) == (
            ca.sign(x),
            remainder,
            exponent,
        )
        opened = open_license(
            ca.ours.public,
            ca.sign(x),
            remainder,
            exponent,
            record1,
            account=bytes.fromhex("6200123456789012"),
            today=day,
        )
        assert opened == fields
    cdol1 = bytes(range(44))
    x = _authorization_x(
        key.size, 1, 0x40, 1234, 156, b"\x1a\x2b\x3c\x4d", "6200123456789012", 2, cdol1
    )
    dynamic = DynamicData(1, 0x40, 1234, 156, b"\x1a\x2b\x3c\x4d", _cn("6200123456789012", 10))
    assert sign_authorization(key.ours, dynamic, cdol1) == key.sign(x)
    assert open_authorization(key.ours.public, key.sign(x), cdol1) == dynamic
