"""ISO/IEC 9796-2 scheme 1 with message recovery, as EMV uses it (PROTOCOL.md §5).

The signer builds the recovered data X (first byte 6A, last byte BC, as long as the modulus)
and computes X^d mod n; the verifier computes S^e mod n and checks the header and trailer.
What lies between (format, fields, hash) is the caller's (license.py, authorization.py).
"""

from __future__ import annotations

import hashlib
from enum import IntEnum
from typing import Final

from authority.errors import RecoveryError, RecoveryReason
from authority.rsa import RsaPrivateKey, RsaPublicKey

HEADER: Final = 0x6A
TRAILER: Final = 0xBC
PAD: Final = 0xBB
HASH_SHA1: Final = 0x01
HASH_SHA256: Final = 0x02


class HashAlgorithm(IntEnum):
    """Hash algorithm indicator (PROTOCOL.md §5)."""

    SHA1 = HASH_SHA1
    SHA256 = HASH_SHA256


HASH_LENGTHS: Final = {HashAlgorithm.SHA1: 20, HashAlgorithm.SHA256: 32}


def digest(algorithm: int, *parts: bytes) -> bytes:
    """The hash of the concatenated parts with the algorithm the indicator names."""
    if algorithm == HashAlgorithm.SHA256:
        h = hashlib.sha256()
    elif algorithm == HashAlgorithm.SHA1:
        h = hashlib.sha1()  # noqa: S324 (EMV legacy, accepted only where enabled)
    else:
        raise ValueError(f"unknown hash algorithm {algorithm:02X}")
    for part in parts:
        h.update(part)
    return h.digest()


def sign(key: RsaPrivateKey, recovered: bytes) -> bytes:
    """The signature X^d mod n of recovered data X (6A .. BC, as long as n) (PROTOCOL.md §5)."""
    size = key.public.size
    if len(recovered) != size:
        raise ValueError(f"recovered data of {len(recovered)} bytes for a {size}-byte key")
    if recovered[0] != HEADER or recovered[-1] != TRAILER:
        raise ValueError("recovered data must start with 6A and end with BC")
    x = int.from_bytes(recovered, "big")
    return key.private_op(x).to_bytes(size, "big")


def recover(key: RsaPublicKey, signature: bytes) -> bytes:
    """The recovered data S^e mod n, header and trailer checked (PROTOCOL.md §5, §7)."""
    size = key.size
    if len(signature) != size:
        raise RecoveryError(RecoveryReason.BAD_LENGTH)
    s = int.from_bytes(signature, "big")
    if s >= key.n:
        raise RecoveryError(RecoveryReason.OUT_OF_RANGE)
    recovered = key.public_op(s).to_bytes(size, "big")
    if recovered[0] != HEADER:
        raise RecoveryError(RecoveryReason.BAD_HEADER)
    if recovered[-1] != TRAILER:
        raise RecoveryError(RecoveryReason.BAD_TRAILER)
    return recovered
