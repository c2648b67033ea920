"""The payment authorization (`9F4B`): EMV signed dynamic data format 05 (PROTOCOL.md §5.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from authority import iso9796
from authority.errors import AuthorizationError, AuthorizationReason, RecoveryError
from authority.iso9796 import HASH_LENGTHS, HASH_SHA256, PAD, HashAlgorithm
from authority.rsa import RsaPrivateKey, RsaPublicKey

FORMAT: Final = 0x05
DYNAMIC_LENGTH: Final = 25
MAX_AMOUNT: Final = 999_999_999_999  # n12
_FIXED: Final = 1 + 1 + 1 + 1 + DYNAMIC_LENGTH  # header, format, hash alg, length, data
_PAD_BYTE: Final = bytes((PAD,))


def pad_size(app_size: int, hash_algorithm: int) -> int:
    """N_APP - 62 (SHA-256) or N_APP - 50 (SHA-1) bytes of BB (PROTOCOL.md §5.2)."""
    return app_size - _FIXED - HASH_LENGTHS[HashAlgorithm(hash_algorithm)] - 1


def bcd(value: int, length: int) -> bytes:
    """`value` as n (packed BCD, right-justified, leading zeros) of `length` bytes."""
    if not 0 <= value < 10 ** (2 * length):
        raise ValueError(f"{value} does not fit n{2 * length}")
    return bytes.fromhex(f"{value:0{2 * length}d}")


def from_bcd(data: bytes) -> int:
    """The value of an n field; ValueError for a nibble above 9."""
    text = data.hex()
    if not text.isdigit():
        raise ValueError("not packed BCD")
    return int(text)


@dataclass(frozen=True)
class DynamicData:
    """The 25 bytes of dynamic data an authorization signs (PROTOCOL.md §5.2)."""

    atc: int  # b2
    cid: int  # 40 approved, 00 declined
    amount: int  # minor units, n12
    currency: int  # ISO 4217 numeric, n4 (156 -> 0156)
    unpredictable_number: bytes  # 4
    account: bytes  # 10, cn F-padded

    def to_bytes(self) -> bytes:
        """ATC · CID · amount (n6) · currency (n2) · UN (4) · account (10)."""
        if not 0 <= self.atc <= 0xFFFF or not 0 <= self.cid <= 0xFF:
            raise ValueError("ATC must fit 2 bytes and CID 1 byte")
        if len(self.unpredictable_number) != 4 or len(self.account) != 10:
            raise ValueError("unpredictable number must be 4 bytes and account 10")
        return (
            self.atc.to_bytes(2, "big")
            + bytes([self.cid])
            + bcd(self.amount, 6)
            + bcd(self.currency, 2)
            + self.unpredictable_number
            + self.account
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> DynamicData:
        """Parse the 25 bytes; ValueError when malformed."""
        if len(data) != DYNAMIC_LENGTH:
            raise ValueError("dynamic data must be 25 bytes")
        return cls(
            atc=int.from_bytes(data[0:2], "big"),
            cid=data[2],
            amount=from_bcd(data[3:9]),
            currency=from_bcd(data[9:11]),
            unpredictable_number=data[11:15],
            account=data[15:25],
        )


def build_recovered(
    dynamic: DynamicData, app_size: int, cdol1_data: bytes, hash_algorithm: int
) -> bytes:
    """The recovered data X of an authorization, unsigned (PROTOCOL.md §5.2)."""
    data = dynamic.to_bytes()
    body = (
        bytes([FORMAT, hash_algorithm, DYNAMIC_LENGTH])
        + data
        + bytes([PAD]) * pad_size(app_size, hash_algorithm)
    )
    hashed = iso9796.digest(hash_algorithm, body, cdol1_data)
    return bytes([iso9796.HEADER]) + body + hashed + bytes([iso9796.TRAILER])


def sign_authorization(
    app: RsaPrivateKey,
    dynamic: DynamicData,
    cdol1_data: bytes,
    hash_algorithm: int = HASH_SHA256,
) -> bytes:
    """The card's signature over the dynamic data and the CDOL1 data (PROTOCOL.md §5.2)."""
    recovered = build_recovered(dynamic, app.public.size, cdol1_data, hash_algorithm)
    return iso9796.sign(app, recovered)


def open_authorization(
    app: RsaPublicKey,
    authorization: bytes,
    cdol1_data: bytes,
    *,
    allow_sha1: bool = False,
) -> DynamicData:
    """Recover and check an authorization; AuthorizationError says why (PROTOCOL.md §7 check 4).

    Comparing the fields with the transaction's is the terminal's job.
    """
    if len(authorization) != app.size:
        raise AuthorizationError(
            AuthorizationReason.BAD_LENGTH, f"{len(authorization)} bytes, want {app.size}"
        )
    try:
        x = iso9796.recover(app, authorization)
    except RecoveryError as exc:
        raise AuthorizationError(AuthorizationReason(exc.reason.value)) from None
    if x[1] != FORMAT:
        raise AuthorizationError(AuthorizationReason.BAD_FORMAT, f"{x[1]:02X}")
    algorithm = x[2]
    if algorithm == HashAlgorithm.SHA1 and not allow_sha1:
        raise AuthorizationError(AuthorizationReason.SHA1_NOT_ENABLED)
    if algorithm not in HASH_LENGTHS:
        raise AuthorizationError(AuthorizationReason.UNKNOWN_HASH_ALGORITHM, f"{algorithm:02X}")
    if x[3] != DYNAMIC_LENGTH:
        raise AuthorizationError(AuthorizationReason.BAD_DATA_LENGTH, f"{x[3]}")
    pad_end = _FIXED + pad_size(app.size, algorithm)
    expected = iso9796.digest(algorithm, x[1:pad_end], cdol1_data)
    if x[pad_end:-1] != expected:
        raise AuthorizationError(AuthorizationReason.BAD_HASH)
    if x[_FIXED:pad_end].lstrip(_PAD_BYTE):  # a byte other than BB
        raise AuthorizationError(AuthorizationReason.BAD_PAD)
    try:
        return DynamicData.from_bytes(x[4:_FIXED])
    except ValueError:
        raise AuthorizationError(AuthorizationReason.BAD_DYNAMIC_DATA) from None
