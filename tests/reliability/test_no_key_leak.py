"""docs/security.md: no private key in any repr, error message, trace or log; CSPRNG only."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from authority.errors import KeyFileError
from authority.keyfiles import load_private, save_private
from authority.rsa import RsaPrivateKey

ROOT = Path(__file__).resolve().parents[2]


def _secrets(key: RsaPrivateKey, pem: bytes) -> list[str]:
    """Texts that would betray the key: d, p, q in hex and decimal, and the PEM body lines."""
    numbers = key.to_cryptography().private_numbers()
    values = [numbers.d, numbers.p, numbers.q, numbers.dmp1, numbers.dmq1]
    texts = [f"{v:x}"[:24] for v in values] + [f"{v:X}"[:24] for v in values]
    texts += [str(v)[:24] for v in values]
    body = [ln for ln in pem.decode().splitlines() if ln and not ln.startswith("-----")]
    return texts + body[1:]  # the first body line is the PKCS#8 header, shared by all keys


def _assert_clean(text: str, secrets_: list[str]) -> None:
    for s in secrets_:
        assert s not in text, "private key material in output"


@pytest.fixture()
def key_file(tmp_path: Path, app_private: RsaPrivateKey) -> tuple[Path, list[str]]:
    path = tmp_path / "app.pem"
    save_private(path, app_private)
    return path, _secrets(app_private, path.read_bytes())


def test_repr_and_str_hide_the_key(
    app_private: RsaPrivateKey, key_file: tuple[Path, list[str]]
) -> None:
    _, secrets_ = key_file
    _assert_clean(repr(app_private) + str(app_private) + format(app_private), secrets_)


def test_key_file_errors_hide_the_key(key_file: tuple[Path, list[str]]) -> None:
    path, secrets_ = key_file
    pem = path.read_bytes()
    corruptions = [pem[: len(pem) // 2], pem.replace(b"M", b"N", 3), pem[:-40] + b"\n-----END"]
    for bad in corruptions:
        path.write_bytes(bad)
        path.chmod(0o600)
        with pytest.raises(KeyFileError) as info:
            load_private(path)
        _assert_clean(str(info.value) + repr(info.value), secrets_)
    path.write_bytes(pem)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600") as info:
        load_private(path)
    _assert_clean(str(info.value), secrets_)


def test_private_key_file_is_0600(key_file: tuple[Path, list[str]]) -> None:
    path, _ = key_file
    assert (path.stat().st_mode & 0o777) == 0o600
    pem = path.read_bytes()
    loaded = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(loaded, rsa.RSAPrivateKey)
    assert loaded.key_size == 1024


def test_the_decode_cli_on_a_key_file_hides_it(key_file: tuple[Path, list[str]]) -> None:
    """A user who feeds a key file to a command sees a one-line error, not the key."""
    path, secrets_ = key_file
    hcepay = Path(sys.executable).with_name("hcepay")
    pem = path.read_text()
    der = serialization.load_pem_private_key(pem.encode(), password=None).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    for text in (pem, der.hex()):
        done = subprocess.run(
            [str(hcepay), "decode", "--", text],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert done.returncode == 1, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
        _assert_clean(done.stdout + done.stderr, secrets_)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_package_draws_from_the_random_module() -> None:
    """Unpredictable numbers and blinding come from `secrets` (a CSPRNG), never `random`."""
    offenders = [
        str(p.relative_to(ROOT))
        for package in ("apdu", "applet", "authority", "reader")
        for p in sorted((ROOT / package).rglob("*.py"))
        if "random" in _imports(p)
    ]
    assert offenders == []
