"""The authority package's errors: one family, each with a typed reason (PROTOCOL.md §5, §7).

Messages name what went wrong and never carry key material.
"""

from __future__ import annotations

from enum import StrEnum


class RecoveryReason(StrEnum):
    """Why an ISO/IEC 9796-2 scheme 1 recovery failed (PROTOCOL.md §5)."""

    BAD_LENGTH = "bad length"
    OUT_OF_RANGE = "signature not below the modulus"
    BAD_HEADER = "bad header"
    BAD_TRAILER = "bad trailer"


class LicenseReason(StrEnum):
    """Why an APP public key license was refused (PROTOCOL.md §5.1, §7 check 3)."""

    BAD_LENGTH = "bad length"
    OUT_OF_RANGE = "signature not below the modulus"
    BAD_HEADER = "bad header"
    BAD_TRAILER = "bad trailer"
    BAD_FORMAT = "bad format"
    UNKNOWN_HASH_ALGORITHM = "unknown hash algorithm"
    SHA1_NOT_ENABLED = "sha1 not enabled"
    BAD_HASH = "bad hash"
    UNKNOWN_KEY_ALGORITHM = "unknown key algorithm"
    BAD_APP_KEY = "bad APP key"
    BAD_EXPONENT = "bad APP exponent"
    BAD_REMAINDER = "bad APP key remainder"
    BAD_EXPIRY = "bad expiry"
    BAD_ACCOUNT = "bad account"
    ACCOUNT_MISMATCH = "account mismatch"
    EXPIRED = "expired"
    REVOKED = "revoked"


class AuthorizationReason(StrEnum):
    """Why a payment authorization was refused (PROTOCOL.md §5.2, §7 check 4)."""

    BAD_LENGTH = "bad length"
    OUT_OF_RANGE = "signature not below the modulus"
    BAD_HEADER = "bad header"
    BAD_TRAILER = "bad trailer"
    BAD_FORMAT = "bad format"
    UNKNOWN_HASH_ALGORITHM = "unknown hash algorithm"
    SHA1_NOT_ENABLED = "sha1 not enabled"
    BAD_DATA_LENGTH = "bad dynamic data length"
    BAD_HASH = "bad hash"
    BAD_PAD = "bad pad"
    BAD_DYNAMIC_DATA = "bad dynamic data"


class RecoveryError(ValueError):
    """ISO/IEC 9796-2 recovery refused the signature (PROTOCOL.md §5)."""

    def __init__(self, reason: RecoveryReason) -> None:
        super().__init__(str(reason))
        self.reason = reason


class LicenseError(ValueError):
    """An APP public key license was refused; `.reason` says why (PROTOCOL.md §5.1)."""

    def __init__(self, reason: LicenseReason, detail: str = "") -> None:
        super().__init__(f"license refused: {reason}" + (f" ({detail})" if detail else ""))
        self.reason = reason
        self.detail = detail


class AuthorizationError(ValueError):
    """A payment authorization was refused; `.reason` says why (PROTOCOL.md §5.2)."""

    def __init__(self, reason: AuthorizationReason, detail: str = "") -> None:
        super().__init__(f"authorization refused: {reason}" + (f" ({detail})" if detail else ""))
        self.reason = reason
        self.detail = detail


class InvalidKeyError(ValueError):
    """RSA key parameters outside PROTOCOL.md §5 (size, exponent, structure)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SigningFaultError(RuntimeError):
    """The private operation's result failed the public-key check (a fault); nothing leaves."""


class KeyFileError(Exception):
    """A key, key store or serials file cannot be used; the message says which and why."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
