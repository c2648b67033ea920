"""The payment authorization, laid out by hand from PROTOCOL.md §5.2."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authority import iso9796
from authority.authorization import (
    DynamicData,
    bcd,
    from_bcd,
    open_authorization,
    sign_authorization,
)
from authority.errors import AuthorizationError, AuthorizationReason
from authority.iso9796 import HASH_SHA1, HASH_SHA256
from authority.rsa import RsaPrivateKey, RsaPublicKey

Sign = Callable[[RsaPrivateKey, int], int]

ACCOUNT = bytes.fromhex("6200123456789012FFFF")
UN = bytes.fromhex("1A2B3C4D")
# CDOL1 data as a terminal sends it (P§3): amount, currency, date, time, type, UN, ids
CDOL1_DATA = bytes.fromhex("000000001234015626112812000000") + UN + b"MERCHANT0000001" + b"TERM0001"
DYNAMIC = DynamicData(
    atc=1, cid=0x40, amount=1234, currency=156, unpredictable_number=UN, account=ACCOUNT
)


def _hand_built(app_size: int, algorithm: int) -> bytes:
    """The recovered data of DYNAMIC, field by field from the §5.2 table."""
    dynamic = (
        bytes.fromhex("0001")  # ATC
        + bytes.fromhex("40")  # CID: approved
        + bytes.fromhex("000000001234")  # amount authorised, n12
        + bytes.fromhex("0156")  # currency, n4
        + UN  # unpredictable number
        + ACCOUNT  # credit account id, cn
    )
    assert len(dynamic) == 25
    pad = b"\xbb" * (app_size - (62 if algorithm == HASH_SHA256 else 50))
    fields = b"\x05" + bytes([algorithm]) + bytes([25]) + dynamic + pad
    name = "sha256" if algorithm == HASH_SHA256 else "sha1"
    digest = hashlib.new(name, fields + CDOL1_DATA).digest()
    recovered = b"\x6a" + fields + digest + b"\xbc"
    assert len(recovered) == app_size
    return recovered


def _reason(app: RsaPublicKey, auth: bytes, cdol1: bytes = CDOL1_DATA, **kw: bool) -> str:
    with pytest.raises(AuthorizationError) as info:
        open_authorization(app, auth, cdol1, **kw)
    return info.value.reason


@pytest.mark.parametrize("algorithm", [HASH_SHA256, HASH_SHA1])
def test_known_answer(app_key: RsaPrivateKey, textbook_sign: Sign, algorithm: int) -> None:
    recovered = _hand_built(128, algorithm)
    hand_signed = textbook_sign(app_key, int.from_bytes(recovered, "big")).to_bytes(128, "big")
    assert sign_authorization(app_key, DYNAMIC, CDOL1_DATA, algorithm) == hand_signed
    assert open_authorization(app_key.public, hand_signed, CDOL1_DATA, allow_sha1=True) == DYNAMIC


def test_known_answer_declined_with_a_1984_bit_key(
    big_ca_key: RsaPrivateKey, textbook_sign: Sign
) -> None:
    declined = DynamicData(0xFFFE, 0x00, 999_999_999_999, 9999, UN, ACCOUNT)
    signed = sign_authorization(big_ca_key, declined, CDOL1_DATA)
    recovered = iso9796.recover(big_ca_key.public, signed)
    assert recovered[4:29] == bytes.fromhex("FFFE009999999999999999") + UN + ACCOUNT
    assert recovered[29 : 248 - 33] == b"\xbb" * (248 - 62)
    assert textbook_sign(big_ca_key, int.from_bytes(recovered, "big")) == int.from_bytes(
        signed, "big"
    )
    assert open_authorization(big_ca_key.public, signed, CDOL1_DATA) == declined


def test_every_single_byte_change_is_refused(app_key: RsaPrivateKey) -> None:
    auth = sign_authorization(app_key, DYNAMIC, CDOL1_DATA)
    for i in range(len(auth)):
        changed = auth[:i] + bytes([auth[i] ^ 0x01]) + auth[i + 1 :]
        with pytest.raises(AuthorizationError):
            open_authorization(app_key.public, changed, CDOL1_DATA)


def test_every_cdol1_change_is_refused(app_key: RsaPrivateKey) -> None:
    auth = sign_authorization(app_key, DYNAMIC, CDOL1_DATA)
    for i in range(len(CDOL1_DATA)):
        changed = CDOL1_DATA[:i] + bytes([CDOL1_DATA[i] ^ 0x01]) + CDOL1_DATA[i + 1 :]
        assert _reason(app_key.public, auth, changed) is AuthorizationReason.BAD_HASH


def test_wrong_key_and_length(app_key: RsaPrivateKey, ca_key: RsaPrivateKey) -> None:
    auth = sign_authorization(app_key, DYNAMIC, CDOL1_DATA)
    assert _reason(ca_key.public, auth) in {
        AuthorizationReason.BAD_HEADER,
        AuthorizationReason.BAD_TRAILER,
        AuthorizationReason.OUT_OF_RANGE,
    }
    assert _reason(app_key.public, auth[:-1]) is AuthorizationReason.BAD_LENGTH


def test_a_genuine_signature_with_its_leading_zero_stripped_is_refused_for_its_length(
    app_key: RsaPrivateKey,
) -> None:
    """9F4B is exactly N_APP bytes (PROTOCOL.md §5.2): a genuine signature whose value starts
    with 00 (ATC 295 gives one) is refused as 127 bytes, though as a number it is the same."""
    dynamic = DynamicData(295, 0x40, 1234, 156, UN, ACCOUNT)
    auth = sign_authorization(app_key, dynamic, CDOL1_DATA)
    assert auth[0] == 0 and open_authorization(app_key.public, auth, CDOL1_DATA) == dynamic
    for wrong in (auth[1:], auth + b"\x00", b"\x00" + auth):
        with pytest.raises(AuthorizationError) as info:
            open_authorization(app_key.public, wrong, CDOL1_DATA)
        assert info.value.reason is AuthorizationReason.BAD_LENGTH
        assert info.value.detail == f"{len(wrong)} bytes, want 128"


def test_sha1_only_in_legacy_mode(app_key: RsaPrivateKey) -> None:
    auth = sign_authorization(app_key, DYNAMIC, CDOL1_DATA, HASH_SHA1)
    assert _reason(app_key.public, auth) is AuthorizationReason.SHA1_NOT_ENABLED
    assert open_authorization(app_key.public, auth, CDOL1_DATA, allow_sha1=True) == DYNAMIC


def _signed_edit(app_key: RsaPrivateKey, offset: int, value: int, rehash: bool) -> bytes:
    x = bytearray(_hand_built(128, HASH_SHA256))
    x[offset] = value
    if rehash:
        x[-33:-1] = hashlib.sha256(bytes(x[1:-33]) + CDOL1_DATA).digest()
    return iso9796.sign(app_key, bytes(x))


@pytest.mark.parametrize(
    ("offset", "value", "rehash", "reason"),
    [
        (1, 0x04, False, AuthorizationReason.BAD_FORMAT),
        (2, 0x07, False, AuthorizationReason.UNKNOWN_HASH_ALGORITHM),
        (3, 24, False, AuthorizationReason.BAD_DATA_LENGTH),
        (50, 0x00, False, AuthorizationReason.BAD_HASH),
        (40, 0xBA, True, AuthorizationReason.BAD_PAD),
        (7, 0x0A, True, AuthorizationReason.BAD_DYNAMIC_DATA),  # amount nibble above 9
    ],
)
def test_signed_but_malformed_is_refused(
    app_key: RsaPrivateKey, offset: int, value: int, rehash: bool, reason: AuthorizationReason
) -> None:
    assert _reason(app_key.public, _signed_edit(app_key, offset, value, rehash)) is reason


@pytest.mark.parametrize(
    "dynamic",
    [
        DynamicData(0x10000, 0x40, 1, 156, UN, ACCOUNT),
        DynamicData(1, 0x40, 10**12, 156, UN, ACCOUNT),
        DynamicData(1, 0x40, 1, 10000, UN, ACCOUNT),
        DynamicData(1, 0x40, 1, 156, UN[:3], ACCOUNT),
        DynamicData(1, 0x40, -1, 156, UN, ACCOUNT),
    ],
)
def test_sign_refuses_data_that_does_not_fit(app_key: RsaPrivateKey, dynamic: DynamicData) -> None:
    with pytest.raises(ValueError):
        sign_authorization(app_key, dynamic, CDOL1_DATA)


@pytest.mark.parametrize("offset", [-33, -2], ids=["first hash byte", "last hash byte"])
def test_a_signed_hash_wrong_in_one_byte_is_refused(app_key: RsaPrivateKey, offset: int) -> None:
    """PROTOCOL.md §5.2, §7 check 4: the whole hash is checked, to its first and last byte;
    a validly signed authorization whose hash differs in one of them is BAD_HASH."""
    x = bytearray(_hand_built(128, HASH_SHA256))
    x[offset] ^= 0x01
    auth = iso9796.sign(app_key, bytes(x))
    assert _reason(app_key.public, auth) is AuthorizationReason.BAD_HASH


def test_dynamic_data_takes_every_atc_and_cid_that_fits_its_bytes() -> None:
    """PROTOCOL.md §5.2: the ATC is b2 and the CID b1; FFFF and FF are written as they are
    and read back (the terminal, not the layout, refuses a CID other than 40 or 00)."""
    top = DynamicData(0xFFFF, 0xFF, 1, 156, UN, ACCOUNT)
    data = top.to_bytes()
    assert data[:3] == bytes.fromhex("FFFFFF")
    assert DynamicData.from_bytes(data) == top


@pytest.mark.parametrize(
    "dynamic",
    [
        DynamicData(1, 0x40, 1, 156, UN[:3], ACCOUNT),
        DynamicData(1, 0x40, 1, 156, UN + b"\x00", ACCOUNT),
        DynamicData(1, 0x40, 1, 156, UN, ACCOUNT[:9]),
        DynamicData(1, 0x40, 1, 156, UN, ACCOUNT + b"\xff"),
    ],
    ids=["UN of 3", "UN of 5", "account of 9", "account of 11"],
)
def test_dynamic_data_of_a_wrong_field_size_is_not_written(dynamic: DynamicData) -> None:
    """PROTOCOL.md §5.2: the unpredictable number is 4 bytes and the account 10, each on its
    own: one of them the wrong size is refused, the other being right."""
    with pytest.raises(ValueError, match="must be 4 bytes and account 10"):
        dynamic.to_bytes()


@pytest.mark.parametrize("length", [0, 24, 26])
def test_dynamic_data_of_other_than_25_bytes_is_not_read(length: int) -> None:
    """PROTOCOL.md §5.2: the dynamic data is exactly 25 bytes; fewer or more is refused,
    not read as fields cut short or with a byte left over."""
    data = DYNAMIC.to_bytes()
    with pytest.raises(ValueError, match="must be 25 bytes"):
        DynamicData.from_bytes((data + b"\x00")[:length])


# --- properties of the n field and the 25 bytes of dynamic data (PROTOCOL.md §1, §5.2) ---


@given(
    st.integers(1, 8).flatmap(lambda n: st.tuples(st.integers(0, 10 ** (2 * n) - 1), st.just(n)))
)
def test_bcd_round_trip(value_length: tuple[int, int]) -> None:
    """n (packed BCD, right-justified, leading zeros, P§1) reads back the value it wrote."""
    value, length = value_length
    field = bcd(value, length)
    assert len(field) == length
    assert from_bcd(field) == value


@given(st.binary(max_size=12))
def test_from_bcd_of_any_bytes_is_canonical_or_value_error(data: bytes) -> None:
    """Any bytes are an n field (written back to the same bytes) or a ValueError."""
    try:
        value = from_bcd(data)
    except ValueError:
        assert not data or any(b >> 4 > 9 or b & 0x0F > 9 for b in data)
        return
    assert bcd(value, len(data)) == data


_dynamic = st.builds(
    DynamicData,
    atc=st.integers(0, 0xFFFF),
    cid=st.integers(0, 0xFF),
    amount=st.integers(0, 10**12 - 1),
    currency=st.integers(0, 9999),
    unpredictable_number=st.binary(min_size=4, max_size=4),
    account=st.binary(min_size=10, max_size=10),
)


@given(_dynamic)
def test_dynamic_data_round_trip(dynamic: DynamicData) -> None:
    """The 25 bytes of dynamic data (P§5.2) parse back to the fields they were built from."""
    data = dynamic.to_bytes()
    assert len(data) == 25
    assert DynamicData.from_bytes(data) == dynamic


@given(st.one_of(st.binary(max_size=30), st.binary(min_size=25, max_size=25)))
def test_dynamic_data_of_any_bytes_is_canonical_or_value_error(data: bytes) -> None:
    """Any bytes are dynamic data that build back to the same 25 bytes, or a ValueError."""
    try:
        dynamic = DynamicData.from_bytes(data)
    except ValueError:
        return
    assert dynamic.to_bytes() == data
