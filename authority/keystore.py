"""The terminal's credit authority keys and revoked license serials (PROTOCOL.md §7).

On disk (IO edge): <home>/terminal/keystore.json
`{"keys": {"01": {"expires": "2031-12-31"}}, "revoked": [5]}` and one
<home>/terminal/ca-IDX.pub.pem per key.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any, Final

from authority.errors import KeyFileError
from authority.home import index_hex, read_problem, read_regular, terminal_dir, write_atomic
from authority.keyfiles import load_public, save_public
from authority.rsa import RsaPublicKey

MAX_KEYS: Final = 256
MAX_REVOKED: Final = 100_000
_INDEX_NAME: Final = re.compile("[0-9A-Fa-f]{2}")  # a key index (8F) in keystore.json
MAX_STORE_FILE: Final = 4 * 1024 * 1024
MAX_SERIAL: Final = 0xFFFFFF


@dataclass(frozen=True)
class AuthorityKey:
    """One authority public key as the terminal holds it: index (`8F`), key, expiry."""

    index: int
    key: RsaPublicKey
    expires: date

    def usable(self, today: date) -> bool:
        """Not expired: valid through its expiry day (PROTOCOL.md §7 check 2)."""
        return today <= self.expires


@dataclass(frozen=True)
class KeyStore:
    """The terminal's authority keys by index and its revoked license serials."""

    keys: Mapping[int, AuthorityKey] = field(default_factory=dict)
    revoked: frozenset[int] = frozenset()

    def lookup(self, index: int) -> AuthorityKey | None:
        """The key with that `8F` index, or None."""
        return self.keys.get(index)

    def with_key(self, key: AuthorityKey) -> KeyStore:
        """A new store holding `key` (replacing any key of that index)."""
        return replace(self, keys={**self.keys, key.index: key})

    def with_revoked(self, serial: int) -> KeyStore:
        """A new store where `serial` is revoked."""
        if not 0 <= serial <= MAX_SERIAL:
            raise ValueError("a license serial fits 3 bytes (0..16777215)")
        return replace(self, revoked=self.revoked | {serial})


def keystore_path(home: Path) -> Path:
    """<home>/terminal/keystore.json."""
    return terminal_dir(home) / "keystore.json"


def terminal_key_path(home: Path, index: int) -> Path:
    """<home>/terminal/ca-IDX.pub.pem: the terminal's copy of an authority public key."""
    return terminal_dir(home) / f"ca-{index_hex(index)}.pub.pem"


def _bad(path: Path, why: str) -> KeyFileError:
    return KeyFileError(str(path), f"bad key store: {why}")


def _parse(path: Path, raw: Any) -> tuple[dict[int, date], frozenset[int]]:
    if not isinstance(raw, dict):
        raise _bad(path, "not a JSON object")
    keys_raw = raw.get("keys", {})
    revoked_raw = raw.get("revoked", [])
    if not isinstance(keys_raw, dict) or len(keys_raw) > MAX_KEYS:
        raise _bad(path, '"keys" must be an object of at most 256 entries')
    if not isinstance(revoked_raw, list) or len(revoked_raw) > MAX_REVOKED:
        raise _bad(path, f'"revoked" must be a list of at most {MAX_REVOKED} serials')
    expiries: dict[int, date] = {}
    names: dict[int, str] = {}
    for name, entry in keys_raw.items():
        try:
            if _INDEX_NAME.fullmatch(name) is None or not isinstance(entry, dict):
                raise ValueError  # two hex digits, no sign, no space (int() takes both)
            index = int(name, 16)
            expiries[index] = date.fromisoformat(entry["expires"])
        except (ValueError, KeyError, TypeError):
            raise _bad(path, f'key entry "{name}"') from None
        if index in names:  # "0a" and "0A": which expiry the terminal holds is not to guess
            raise _bad(path, f'key entries "{names[index]}" and "{name}" name one index')
        names[index] = name
    revoked: set[int] = set()
    for serial in revoked_raw:
        if not isinstance(serial, int) or isinstance(serial, bool) or not 0 <= serial <= MAX_SERIAL:
            raise _bad(path, "a revoked serial must be an integer 0..16777215")
        revoked.add(serial)
    return expiries, frozenset(revoked)


def load_keystore(home: Path) -> KeyStore:
    """The terminal's key store from the home folder; empty when there is none yet."""
    path = keystore_path(home)
    folder = terminal_dir(home)
    if folder.exists() and not folder.is_dir():  # else: "no key", and a write "File exists"
        raise KeyFileError(str(folder), "is a file, not a folder")
    if not path.exists():
        return KeyStore()
    try:
        if path.stat().st_size > MAX_STORE_FILE:
            raise _bad(path, "file too large")
        raw = json.loads(read_regular(path).decode("utf-8"))
    except OSError as exc:
        raise KeyFileError(str(path), read_problem(exc)) from None
    except UnicodeDecodeError:
        raise _bad(path, "not UTF-8 text") from None
    except RecursionError:  # json's decoder recurses once per level
        raise _bad(path, "nested too deeply") from None
    except ValueError:
        raise _bad(path, "not valid JSON") from None
    expiries, revoked = _parse(path, raw)
    keys = {
        index: AuthorityKey(index, load_public(terminal_key_path(home, index)), expires)
        for index, expires in expiries.items()
    }
    return KeyStore(keys, revoked)


def save_keystore(home: Path, ks: KeyStore) -> None:
    """Write the key store: each public key first, then keystore.json (atomic)."""
    for index, key in sorted(ks.keys.items()):
        save_public(terminal_key_path(home, index), key.key)
    doc = {
        "keys": {
            index_hex(i): {"expires": k.expires.isoformat()} for i, k in sorted(ks.keys.items())
        },
        "revoked": sorted(ks.revoked),
    }
    write_atomic(keystore_path(home), (json.dumps(doc, indent=2) + "\n").encode())
