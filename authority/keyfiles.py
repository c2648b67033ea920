"""Key files (IO edge): PKCS#8 PEM private keys, 0600; SubjectPublicKeyInfo PEM public keys."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa as crypto_rsa

from authority.errors import InvalidKeyError, KeyFileError
from authority.home import read_problem, read_regular, write_atomic
from authority.rsa import (
    RsaPrivateKey,
    RsaPublicKey,
    from_cryptography,
    public_from_cryptography,
    public_to_cryptography,
)

MAX_KEY_FILE = 64 * 1024


def save_private(path: Path, key: RsaPrivateKey) -> None:
    """Write the private key as unencrypted PKCS#8 PEM with mode 0600."""
    pem = key.to_cryptography().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_atomic(path, pem, 0o600)


def save_public(path: Path, key: RsaPublicKey) -> None:
    """Write the public key as SubjectPublicKeyInfo PEM."""
    pem = public_to_cryptography(key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    write_atomic(path, pem, 0o644)


def _read(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_KEY_FILE:
            raise KeyFileError(str(path), "too large for a key file")
        return read_regular(path)
    except FileNotFoundError:
        raise KeyFileError(str(path), "no such file") from None
    except OSError as exc:
        raise KeyFileError(str(path), read_problem(exc)) from None


def load_private(path: Path, *, published_test_key: bool = False) -> RsaPrivateKey:
    """Read a PKCS#8 PEM private key; refuse one readable by group or others.

    `published_test_key=True` waives the mode check, for the published test keys of
    `vectors/profiles/` only.
    """
    try:
        st_mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(str(path), "no such file") from None
    except OSError as exc:
        raise KeyFileError(str(path), read_problem(exc)) from None
    if stat.S_ISDIR(st_mode):  # a folder's mode says nothing of a key
        raise KeyFileError(str(path), "is a folder, not a file")
    mode = stat.S_IMODE(st_mode)
    if mode & 0o077 and not published_test_key:
        raise KeyFileError(
            str(path),
            f"private key is readable by group or others (mode {mode:04o}); run: chmod 600 {path}",
        )
    data = _read(path)
    try:
        obj = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyFileError(str(path), "not an unencrypted PKCS#8 PEM private key") from None
    except UnsupportedAlgorithm:  # a key type or curve cryptography does not load
        raise KeyFileError(str(path), "not an RSA private key") from None
    if not isinstance(obj, crypto_rsa.RSAPrivateKey):
        raise KeyFileError(str(path), "not an RSA private key")
    try:
        return from_cryptography(obj)
    except InvalidKeyError as exc:
        raise KeyFileError(str(path), exc.reason) from None


def load_public(path: Path) -> RsaPublicKey:
    """Read a SubjectPublicKeyInfo PEM RSA public key."""
    data = _read(path)
    try:
        obj = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise KeyFileError(str(path), "not a SubjectPublicKeyInfo PEM public key") from None
    except UnsupportedAlgorithm:  # a key type or curve cryptography does not load
        raise KeyFileError(str(path), "not an RSA public key") from None
    if not isinstance(obj, crypto_rsa.RSAPublicKey):
        raise KeyFileError(str(path), "not an RSA public key")
    try:
        return public_from_cryptography(obj)
    except InvalidKeyError as exc:
        raise KeyFileError(str(path), exc.reason) from None
