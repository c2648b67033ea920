"""The APP public key license, laid out by hand from PROTOCOL.md §5.1."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authority import iso9796
from authority.errors import LicenseError, LicenseReason
from authority.iso9796 import HASH_SHA1, HASH_SHA256
from authority.license import (
    LicenseFields,
    account_digits,
    account_from_digits,
    expiry_last_day,
    expiry_mmyy,
    issue_license,
    open_license,
    pad_account,
)
from authority.rsa import RsaPrivateKey, RsaPublicKey, generate

Sign = Callable[[RsaPrivateKey, int], int]

ACCOUNT_5A = bytes.fromhex("6200123456789012")
ACCOUNT = bytes.fromhex("6200123456789012FFFF")
EXPIRY = bytes.fromhex("1230")  # December 2030
SERIAL = 7
# the value of record 1, as a card would hold it (P§4): 5A, 5F24, 5F20, 8C, 8F
RECORD1 = bytes.fromhex(
    "5A086200123456789012"
    "5F2403301231"
    "5F200D544553542F43415244204F4E45"
    "8C159F02065F2A029A039F21039C019F37049F160F9F1C08"
    "8F0101"
)
TODAY = date(2026, 11, 29)


def _hand_built(ca_size: int, app: RsaPublicKey, algorithm: int) -> tuple[bytes, bytes, bytes]:
    """(recovered data, remainder, exponent) written field by field from the §5.1 table."""
    hash_length = {HASH_SHA1: 20, HASH_SHA256: 32}[algorithm]
    room = ca_size - (54 if algorithm == HASH_SHA256 else 42)
    modulus = app.n.to_bytes(app.size, "big")
    exponent = b"\x03" if app.e == 3 else b"\x01\x00\x01"
    if app.size <= room:
        leftmost, remainder = modulus + b"\xbb" * (room - app.size), b""
    else:
        leftmost, remainder = modulus[:room], modulus[room:]
    fields = (
        b"\x04"  # format
        + ACCOUNT  # credit account id, cn, F-padded to 10
        + EXPIRY  # MMYY
        + SERIAL.to_bytes(3, "big")  # serial
        + bytes([algorithm])  # hash algorithm
        + b"\x01"  # APP key algorithm: RSA
        + bytes([app.size])  # APP key length
        + bytes([len(exponent)])  # APP exponent length
        + leftmost
    )
    h = hashlib.new("sha256" if algorithm == HASH_SHA256 else "sha1")
    h.update(fields + remainder + exponent + RECORD1)
    digest = h.digest()
    assert len(digest) == hash_length
    recovered = b"\x6a" + fields + digest + b"\xbc"
    assert len(recovered) == ca_size
    return recovered, remainder, exponent


def _fields(app: RsaPublicKey, algorithm: int = HASH_SHA256) -> LicenseFields:
    return LicenseFields(ACCOUNT, EXPIRY, SERIAL, algorithm, app)


def _open(ca: RsaPublicKey, lic: bytes, rem: bytes, exp: bytes, **kw: object) -> LicenseFields:
    args: dict[str, object] = {"account": ACCOUNT_5A, "today": TODAY}
    args.update(kw)
    return open_license(ca, lic, rem, exp, RECORD1, **args)  # type: ignore[arg-type]


def _reason(ca: RsaPublicKey, lic: bytes, rem: bytes, exp: bytes, **kw: object) -> LicenseReason:
    with pytest.raises(LicenseError) as info:
        _open(ca, lic, rem, exp, **kw)
    return info.value.reason


@pytest.mark.parametrize("algorithm", [HASH_SHA256, HASH_SHA1])
def test_known_answer_with_remainder(
    ca_key: RsaPrivateKey, app_key: RsaPrivateKey, textbook_sign: Sign, algorithm: int
) -> None:
    recovered, remainder, exponent = _hand_built(128, app_key.public, algorithm)
    assert len(remainder) == 128 - (128 - (54 if algorithm == HASH_SHA256 else 42))
    hand_signed = textbook_sign(ca_key, int.from_bytes(recovered, "big")).to_bytes(128, "big")
    issued = issue_license(ca_key, _fields(app_key.public, algorithm), RECORD1)
    assert issued.license == hand_signed
    assert (issued.remainder, issued.exponent) == (remainder, exponent)
    assert exponent == b"\x01\x00\x01"
    opened = _open(ca_key.public, hand_signed, remainder, exponent, allow_sha1=True)
    assert opened == _fields(app_key.public, algorithm)
    assert iso9796.recover(ca_key.public, hand_signed) == recovered


def test_known_answer_with_bb_padding(
    big_ca_key: RsaPrivateKey, app_key: RsaPrivateKey, textbook_sign: Sign
) -> None:
    recovered, remainder, exponent = _hand_built(248, app_key.public, HASH_SHA256)
    assert remainder == b""
    assert recovered[21 + 128 : 21 + 194] == b"\xbb" * 66
    hand_signed = textbook_sign(big_ca_key, int.from_bytes(recovered, "big")).to_bytes(248, "big")
    issued = issue_license(big_ca_key, _fields(app_key.public), RECORD1)
    assert issued.license == hand_signed
    assert _open(big_ca_key.public, hand_signed, b"", exponent) == _fields(app_key.public)


def test_app_key_of_exponent_3(ca_key: RsaPrivateKey, big_ca_key: RsaPrivateKey) -> None:
    issued = issue_license(big_ca_key, _fields(ca_key.public), RECORD1)
    assert issued.exponent == b"\x03"
    opened = _open(big_ca_key.public, issued.license, issued.remainder, issued.exponent)
    assert opened.app_key == ca_key.public


def test_every_single_byte_change_is_refused(ca_key: RsaPrivateKey, app_key: RsaPrivateKey) -> None:
    issued = issue_license(ca_key, _fields(app_key.public), RECORD1)
    lic = issued.license
    for i in range(len(lic)):
        changed = lic[:i] + bytes([lic[i] ^ 0x01]) + lic[i + 1 :]
        with pytest.raises(LicenseError):
            _open(ca_key.public, changed, issued.remainder, issued.exponent)
    rem = issued.remainder
    for i in range(len(rem)):
        changed = rem[:i] + bytes([rem[i] ^ 0x01]) + rem[i + 1 :]
        assert _reason(ca_key.public, lic, changed, issued.exponent) is LicenseReason.BAD_HASH


def test_record1_change_is_refused(ca_key: RsaPrivateKey, app_key: RsaPrivateKey) -> None:
    issued = issue_license(ca_key, _fields(app_key.public), RECORD1)
    with pytest.raises(LicenseError) as info:
        open_license(
            ca_key.public,
            issued.license,
            issued.remainder,
            issued.exponent,
            RECORD1[:-1] + b"\x02",
            account=ACCOUNT_5A,
            today=TODAY,
        )
    assert info.value.reason is LicenseReason.BAD_HASH


def test_wrong_authority_key_is_refused(
    ca_key: RsaPrivateKey, app_key: RsaPrivateKey, big_ca_key: RsaPrivateKey
) -> None:
    issued = issue_license(ca_key, _fields(app_key.public), RECORD1)
    other = app_key.public  # another 1024-bit key
    reason = _reason(other, issued.license, issued.remainder, issued.exponent)
    assert reason in {
        LicenseReason.BAD_HEADER,
        LicenseReason.BAD_TRAILER,
        LicenseReason.OUT_OF_RANGE,
    }
    wrong_size = _reason(big_ca_key.public, issued.license, issued.remainder, issued.exponent)
    assert wrong_size is LicenseReason.BAD_LENGTH


def test_policy_refusals_each_with_its_reason(
    ca_key: RsaPrivateKey, app_key: RsaPrivateKey
) -> None:
    issued = issue_license(ca_key, _fields(app_key.public), RECORD1)
    args = (ca_key.public, issued.license, issued.remainder, issued.exponent)
    assert _open(*args, today=date(2030, 12, 31)).serial == SERIAL  # last valid day
    assert _reason(*args, today=date(2031, 1, 1)) is LicenseReason.EXPIRED
    assert _reason(*args, revoked={SERIAL}) is LicenseReason.REVOKED
    assert _open(*args, revoked={SERIAL + 1}).serial == SERIAL
    assert (
        _reason(*args, account=bytes.fromhex("6200123456789013")) is LicenseReason.ACCOUNT_MISMATCH
    )
    assert _open(*args, account=ACCOUNT).account == ACCOUNT  # already padded to 10


def test_sha1_only_in_legacy_mode(ca_key: RsaPrivateKey, app_key: RsaPrivateKey) -> None:
    issued = issue_license(ca_key, _fields(app_key.public, HASH_SHA1), RECORD1)
    args = (ca_key.public, issued.license, issued.remainder, issued.exponent)
    assert _reason(*args) is LicenseReason.SHA1_NOT_ENABLED
    assert _open(*args, allow_sha1=True).hash_algorithm == HASH_SHA1


def _sign_edited(
    ca_key: RsaPrivateKey, app: RsaPublicKey, offset: int, value: int
) -> tuple[bytes, bytes, bytes]:
    recovered, remainder, exponent = _hand_built(128, app, HASH_SHA256)
    edited = recovered[:offset] + bytes([value]) + recovered[offset + 1 :]
    return iso9796.sign(ca_key, edited), remainder, exponent


@pytest.mark.parametrize(
    ("offset", "value", "reason"),
    [
        (1, 0x05, LicenseReason.BAD_FORMAT),
        (17, 0x03, LicenseReason.UNKNOWN_HASH_ALGORITHM),
    ],
)
def test_signed_but_malformed_is_refused(
    ca_key: RsaPrivateKey, app_key: RsaPrivateKey, offset: int, value: int, reason: LicenseReason
) -> None:
    lic, rem, exp = _sign_edited(ca_key, app_key.public, offset, value)
    assert _reason(ca_key.public, lic, rem, exp) is reason


def _sign_rehashed(
    ca_key: RsaPrivateKey, app: RsaPublicKey, offset: int, value: bytes
) -> tuple[bytes, bytes, bytes]:
    """A license whose field at `offset` of the recovered data is `value`, with its hash
    made again over the edited fields: signed and hash-correct, so only the field checks
    can refuse it."""
    recovered, remainder, exponent = _hand_built(128, app, HASH_SHA256)
    body_end = 128 - 33  # the SHA-256 hash and BC close the recovered data
    fields = recovered[1:offset] + value + recovered[offset + len(value) : body_end]
    digest = hashlib.sha256(fields + remainder + exponent + RECORD1).digest()
    return iso9796.sign(ca_key, b"\x6a" + fields + digest + b"\xbc"), remainder, exponent


@pytest.mark.parametrize(
    ("offset", "value", "reason"),
    [
        (18, b"\x02", LicenseReason.UNKNOWN_KEY_ALGORITHM),  # APP key algorithm not RSA
        (18, b"\x00", LicenseReason.UNKNOWN_KEY_ALGORITHM),
        (2, bytes.fromhex("620012345678901AFFFF"), LicenseReason.BAD_ACCOUNT),  # not cn
        (2, bytes.fromhex("F200123456789012FFFF"), LicenseReason.BAD_ACCOUNT),
        (2, bytes.fromhex("6200123456789012FF0F"), LicenseReason.BAD_ACCOUNT),
    ],
    ids=["key algorithm 02", "key algorithm 00", "account A", "account F first", "F then 0"],
)
def test_signed_hash_correct_but_bad_field_is_refused(
    ca_key: RsaPrivateKey, app_key: RsaPrivateKey, offset: int, value: bytes, reason: LicenseReason
) -> None:
    lic, rem, exp = _sign_rehashed(ca_key, app_key.public, offset, value)
    assert _reason(ca_key.public, lic, rem, exp) is reason
    recovered = _hand_built(128, app_key.public, HASH_SHA256)[0]
    same = _sign_rehashed(ca_key, app_key.public, offset, recovered[offset : offset + len(value)])
    assert _open(ca_key.public, *same).app_key == app_key.public  # the helper itself is sound


def test_bad_hash_in_a_well_signed_license(ca_key: RsaPrivateKey, app_key: RsaPrivateKey) -> None:
    lic, rem, exp = _sign_edited(ca_key, app_key.public, 100, 0x00)  # inside the hash
    assert _reason(ca_key.public, lic, rem, exp) is LicenseReason.BAD_HASH


def test_issue_refuses_bad_fields(ca_key: RsaPrivateKey, app_key: RsaPrivateKey) -> None:
    bad = [
        LicenseFields(ACCOUNT[:9], EXPIRY, 1, HASH_SHA256, app_key.public),
        LicenseFields(ACCOUNT, bytes.fromhex("1330"), 1, HASH_SHA256, app_key.public),
        LicenseFields(ACCOUNT, EXPIRY, 1 << 24, HASH_SHA256, app_key.public),
        LicenseFields(ACCOUNT, EXPIRY, 1, 0x03, app_key.public),
    ]
    for fields in bad:
        with pytest.raises(ValueError):
            issue_license(ca_key, fields, RECORD1)


def test_field_helpers() -> None:
    assert account_from_digits("6200123456789012") == ACCOUNT
    assert account_from_digits("1234567890123456789") == bytes.fromhex("1234567890123456789F")
    assert expiry_mmyy(12, 2030) == EXPIRY
    for digits in ("", "12a4", "1" * 20):
        with pytest.raises(ValueError):
            account_from_digits(digits)


@pytest.mark.parametrize("pad_offset", [0, 33, 65])
def test_a_pad_byte_other_than_bb_is_refused(
    big_ca_key: RsaPrivateKey, app_key: RsaPrivateKey, pad_offset: int
) -> None:
    recovered, remainder, exponent = _hand_built(248, app_key.public, HASH_SHA256)
    fields = bytearray(recovered[1:215])  # format .. leftmost: 20 + 194 bytes
    fields[20 + 128 + pad_offset] = 0xBA  # one byte of the 66 BB after the APP modulus
    digest = hashlib.sha256(bytes(fields) + remainder + exponent + RECORD1).digest()
    lic = iso9796.sign(big_ca_key, b"\x6a" + bytes(fields) + digest + b"\xbc")
    assert _reason(big_ca_key.public, lic, remainder, exponent) is LicenseReason.BAD_REMAINDER
    good = iso9796.sign(big_ca_key, recovered)
    assert _open(big_ca_key.public, good, remainder, exponent).app_key == app_key.public


def _sign_key_fields(
    ca: RsaPrivateKey,
    size: int,
    modulus: bytes,
    exponent: bytes,
    exponent_length: int | None = None,
) -> tuple[bytes, bytes]:
    """A 248-byte license (SHA-256, no remainder) whose APP key length byte is `size`, its
    exponent length byte `exponent_length` (by default `len(exponent)`), its leftmost part
    `modulus` padded with BB: signed and hash-correct, so only the APP key checks can refuse
    it. (license, 9F47)"""
    room = 248 - 54
    length = len(exponent) if exponent_length is None else exponent_length
    fields = (
        b"\x04"
        + ACCOUNT
        + EXPIRY
        + SERIAL.to_bytes(3, "big")
        + bytes([HASH_SHA256, 0x01, size, length])
        + modulus
        + b"\xbb" * (room - len(modulus))
    )
    digest = hashlib.sha256(fields + exponent + RECORD1).digest()
    return iso9796.sign(ca, b"\x6a" + fields + digest + b"\xbc"), exponent


def test_an_exponent_not_written_in_its_one_form_is_refused(big_ca_key: RsaPrivateKey) -> None:
    """PROTOCOL.md §5.1: exponent 3 is `03` (length 1), 65537 `010001` (length 3); a signed
    license writing 3 as `000003` (length 3) does not yield the APP key: BAD_EXPONENT."""
    app = generate(1024, 3).public
    lic, exp = _sign_key_fields(big_ca_key, app.size, app.modulus_bytes(), b"\x00\x00\x03")
    assert _reason(big_ca_key.public, lic, b"", exp) is LicenseReason.BAD_EXPONENT
    lic, exp = _sign_key_fields(big_ca_key, app.size, app.modulus_bytes(), b"\x03")
    assert _open(big_ca_key.public, lic, b"", exp).app_key == app  # the helper is sound


def test_an_app_key_length_counting_a_leading_zero_is_refused(
    big_ca_key: RsaPrivateKey, app_key: RsaPrivateKey
) -> None:
    """PROTOCOL.md §5.1: the APP key length is N_APP, the modulus's own size; a license
    whose length byte counts a leading 00 before the modulus is BAD_APP_KEY."""
    app = app_key.public
    modulus = b"\x00" + app.modulus_bytes()
    lic, exp = _sign_key_fields(big_ca_key, app.size + 1, modulus, app.exponent_bytes())
    with pytest.raises(LicenseError) as info:
        _open(big_ca_key.public, lic, b"", exp)
    assert info.value.reason is LicenseReason.BAD_APP_KEY
    assert info.value.detail == "modulus has a leading zero byte"


@pytest.mark.parametrize("account", [b"", bytes(11)], ids=["empty", "11 bytes"])
def test_a_5a_of_no_or_too_many_bytes_is_no_account(
    ca_key: RsaPrivateKey, app_key: RsaPrivateKey, account: bytes
) -> None:
    """PROTOCOL.md §4: `5A` is cn of 1 to 10 bytes; one of 0 or 11 bytes is not padded to
    an account field, and a license opened against it is ACCOUNT_MISMATCH naming why."""
    with pytest.raises(ValueError, match="must be 1 to 10"):
        pad_account(account)
    issued = issue_license(ca_key, _fields(app_key.public), RECORD1)
    with pytest.raises(LicenseError) as info:
        _open(ca_key.public, issued.license, issued.remainder, issued.exponent, account=account)
    assert (info.value.reason, info.value.detail) == (
        LicenseReason.ACCOUNT_MISMATCH,
        "bad 5A length",
    )


@pytest.mark.parametrize("offset", [-33, -2], ids=["first hash byte", "last hash byte"])
def test_a_signed_license_hash_wrong_in_one_byte_is_refused(
    big_ca_key: RsaPrivateKey, app_key: RsaPrivateKey, offset: int
) -> None:
    """PROTOCOL.md §5.1, §7 check 3: the whole hash is checked, to its first and last byte;
    a validly signed license whose hash differs in one of them is BAD_HASH."""
    recovered, remainder, exponent = _hand_built(248, app_key.public, HASH_SHA256)
    x = bytearray(recovered)
    x[offset] ^= 0x01
    lic = iso9796.sign(big_ca_key, bytes(x))
    assert _reason(big_ca_key.public, lic, remainder, exponent) is LicenseReason.BAD_HASH


def test_a_remainder_longer_than_the_app_key_needs_is_refused(
    ca_key: RsaPrivateKey, app_key: RsaPrivateKey
) -> None:
    """PROTOCOL.md §5.1: `9F48` holds exactly the N_APP - leftmost bytes of the modulus;
    a signed, hash-correct license over a remainder of one byte more is BAD_REMAINDER."""
    recovered, remainder, exponent = _hand_built(128, app_key.public, HASH_SHA256)
    assert remainder  # a 128-byte APP key does not fit a 128-byte license's leftmost part
    fields, longer = recovered[1:-33], remainder + b"\x00"
    digest = hashlib.sha256(fields + longer + exponent + RECORD1).digest()
    lic = iso9796.sign(ca_key, b"\x6a" + fields + digest + b"\xbc")
    assert _reason(ca_key.public, lic, longer, exponent) is LicenseReason.BAD_REMAINDER


@pytest.mark.parametrize("exponent_length", [1, 2], ids=["length 1", "length 2"])
def test_an_exponent_length_byte_other_than_9f47s_length_is_refused(
    big_ca_key: RsaPrivateKey, app_key: RsaPrivateKey, exponent_length: int
) -> None:
    """PROTOCOL.md §5.1: the APP exponent length is 1 or 3 and is `9F47`'s length; a signed,
    hash-correct license whose length byte says 1 (or 2) over a `9F47` of `010001` is
    BAD_EXPONENT, though the exponent itself is written in its one form."""
    app = app_key.public
    modulus, exponent = app.modulus_bytes(), app.exponent_bytes()
    assert exponent == b"\x01\x00\x01"
    lic, exp = _sign_key_fields(big_ca_key, app.size, modulus, exponent, exponent_length)
    assert _reason(big_ca_key.public, lic, b"", exp) is LicenseReason.BAD_EXPONENT
    lic, exp = _sign_key_fields(big_ca_key, app.size, modulus, exponent, 3)
    assert _open(big_ca_key.public, lic, b"", exp).app_key == app  # the helper is sound


@pytest.mark.parametrize("expiry", ["1330", "0030", "1A30"])
def test_a_signed_license_of_a_malformed_expiry_is_refused(
    ca_key: RsaPrivateKey, app_key: RsaPrivateKey, expiry: str
) -> None:
    """PROTOCOL.md §5.1: the expiry is MMYY, n, month 01 to 12; a signed, hash-correct
    license whose expiry is no such month is BAD_EXPIRY, naming the two bytes."""
    lic, rem, exp = _sign_rehashed(ca_key, app_key.public, 12, bytes.fromhex(expiry))
    with pytest.raises(LicenseError) as info:
        _open(ca_key.public, lic, rem, exp)
    assert (info.value.reason, info.value.detail) == (LicenseReason.BAD_EXPIRY, expiry)


# --- properties of the cn account and the MMYY expiry (PROTOCOL.md §1, §5.1) -------------


@given(st.text(alphabet="0123456789", min_size=1, max_size=19))
def test_account_digits_round_trip(digits: str) -> None:
    """cn (P§1): the digits, F-padded to 10 bytes, read back as the same digits."""
    account = account_from_digits(digits)
    assert len(account) == 10
    assert account_digits(account) == digits


@given(st.binary(max_size=12))
def test_account_digits_of_any_bytes_is_canonical_or_value_error(data: bytes) -> None:
    """Any bytes are a cn account (padding it gives the field the digits write) or a ValueError."""
    try:
        digits = account_digits(data)
    except ValueError:
        return
    assert 1 <= len(digits) <= 20 and digits.isdigit()
    assert data.hex().upper().startswith(digits)
    if len(digits) <= 19:  # a 20-digit cn is read, but no 5A of ours is written with one
        assert account_from_digits(digits) == pad_account(data)


@given(st.integers(1, 12), st.integers(2000, 2099))
def test_expiry_round_trip(month: int, year: int) -> None:
    """MMYY (P§5.1): the expiry written for a month is valid through that month's last day."""
    last = expiry_last_day(expiry_mmyy(month, year))
    assert (last.month, last.year) == (month, year)
    assert (last + timedelta(days=1)).day == 1


@given(st.binary(max_size=3))
def test_expiry_of_any_bytes_is_canonical_or_value_error(data: bytes) -> None:
    """Any bytes are an MMYY expiry (written back to the same bytes) or a ValueError."""
    try:
        last = expiry_last_day(data)
    except ValueError:
        return
    assert expiry_mmyy(last.month, last.year) == data


@pytest.mark.parametrize("exponent", ["01", "05", "000011", "010003"])
def test_a_signed_exponent_other_than_3_or_65537_is_bad_exponent(
    big_ca_key: RsaPrivateKey, exponent: str
) -> None:
    """PROTOCOL.md §5: the APP exponent is 3 or 65537; a signed, hash-correct license over a
    `9F47` of another value, its length byte right, is BAD_EXPONENT (the exponent's own
    reason), not BAD_APP_KEY."""
    app = generate(1024, 3).public
    value = bytes.fromhex(exponent)
    lic, exp = _sign_key_fields(big_ca_key, app.size, app.modulus_bytes(), value)
    with pytest.raises(LicenseError) as info:
        _open(big_ca_key.public, lic, b"", exp)
    assert info.value.reason is LicenseReason.BAD_EXPONENT
    lic, exp = _sign_key_fields(big_ca_key, app.size, app.modulus_bytes(), b"\x03")
    assert _open(big_ca_key.public, lic, b"", exp).app_key == app  # the helper is sound
