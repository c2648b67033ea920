"""Key files, the terminal's key store, the home folder and serials (docs/architecture.md)."""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import gmpy2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa as crypto_rsa
from hypothesis import given
from hypothesis import strategies as st

from authority.errors import KeyFileError
from authority.home import (
    allocate_serial,
    flock_file,
    index_hex,
    parse_day,
    peek_serial,
    resolve_home,
    serials_path,
)
from authority.keyfiles import load_private, load_public, save_private, save_public
from authority.keystore import (
    AuthorityKey,
    KeyStore,
    keystore_path,
    load_keystore,
    save_keystore,
)
from authority.rsa import RsaPrivateKey


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_key_round_trip_is_0600(tmp_path: Path, ca_key: RsaPrivateKey) -> None:
    path = tmp_path / "authority" / "ca-01.pem"
    save_private(path, ca_key)
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    loaded = load_private(path)
    assert loaded.public == ca_key.public
    assert loaded.private_op(42) == ca_key.private_op(42)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_private_key_readable_by_others_is_refused(
    tmp_path: Path, ca_key: RsaPrivateKey, mode: int
) -> None:
    path = tmp_path / "ca-01.pem"
    save_private(path, ca_key)
    os.chmod(path, mode)
    with pytest.raises(KeyFileError) as info:
        load_private(path)
    assert "readable by group or others" in str(info.value)
    assert f"chmod 600 {path}" in str(info.value)
    assert load_private(path, published_test_key=True).public == ca_key.public


def test_a_private_key_path_that_is_a_folder_is_not_a_file(tmp_path: Path) -> None:
    """Said as it is; a folder's 0755 was reported as a key readable by others (chmod 600)."""
    path = tmp_path / "ca-01.pem"
    path.mkdir()
    with pytest.raises(KeyFileError) as info:
        load_private(path)
    assert info.value.reason == "is a folder, not a file"  # as every other file of the home
    public = tmp_path / "ca-01.pub.pem"
    public.mkdir()
    with pytest.raises(KeyFileError) as info:
        load_public(public)
    assert info.value.reason == "is a folder, not a file"


def test_public_key_round_trip(tmp_path: Path, app_key: RsaPrivateKey) -> None:
    path = tmp_path / "app.pub.pem"
    save_public(path, app_key.public)
    assert path.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert load_public(path) == app_key.public


def test_bad_key_files(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.pem"
    with pytest.raises(KeyFileError, match="no such file"):
        load_private(missing)
    with pytest.raises(KeyFileError, match="no such file"):
        load_public(missing)
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"not a key")
    os.chmod(garbage, 0o600)
    with pytest.raises(KeyFileError, match="PKCS#8"):
        load_private(garbage)
    with pytest.raises(KeyFileError, match="SubjectPublicKeyInfo"):
        load_public(garbage)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_path = tmp_path / "ec.pem"
    ec_path.write_bytes(
        ec_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(ec_path, 0o600)
    with pytest.raises(KeyFileError, match="not an RSA private key"):
        load_private(ec_path)


def test_a_public_key_of_another_type_is_not_an_rsa_key(tmp_path: Path) -> None:
    """An authority's public key is RSA (PROTOCOL.md §5): an EC SubjectPublicKeyInfo PEM
    is a KeyFileError naming that, not a crash on its missing modulus."""
    path = tmp_path / "ec.pub.pem"
    path.write_bytes(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(KeyFileError, match="not an RSA public key"):
        load_public(path)


@pytest.mark.parametrize("private", [True, False])
def test_a_key_file_above_64_kib_is_not_read(
    tmp_path: Path, ca_key: RsaPrivateKey, private: bool
) -> None:
    """A key file is a few kilobytes: one above the 64 KiB bound (docs/architecture.md) is
    refused before it is read, even when it starts with a good key."""
    path = tmp_path / "big.pem"
    if private:
        save_private(path, ca_key)
    else:
        save_public(path, ca_key.public)
    with path.open("ab") as f:
        f.write(b"\n" * (64 * 1024))
    with pytest.raises(KeyFileError, match="too large for a key file"):
        load_private(path) if private else load_public(path)


# An EC key on secp112r1, a curve `cryptography` does not load (UnsupportedAlgorithm).
_SECP112R1_PRIVATE = b"""-----BEGIN PRIVATE KEY-----
ME4CAQAwEAYHKoZIzj0CAQYFK4EEAAYENzA1AgEBBA7aiSlK+RXN+bP86JAOYqEg
Ax4ABIJqyeWXdoRQC2rPKyw2exPxUuazh2khWddHuU0=
-----END PRIVATE KEY-----
"""
_SECP112R1_PUBLIC = b"""-----BEGIN PUBLIC KEY-----
MDIwEAYHKoZIzj0CAQYFK4EEAAYDHgAEgmrJ5Zd2hFALas8rLDZ7E/FS5rOHaSFZ
10e5TQ==
-----END PUBLIC KEY-----
"""


def test_key_of_an_unsupported_type_is_a_key_file_error(tmp_path: Path) -> None:
    """A key `cryptography` cannot load (an unsupported curve) is not an RSA key: one
    KeyFileError, not UnsupportedAlgorithm escaping as an internal error."""
    private, public = tmp_path / "ca-01.pem", tmp_path / "ca-01.pub.pem"
    private.write_bytes(_SECP112R1_PRIVATE)
    os.chmod(private, 0o600)
    public.write_bytes(_SECP112R1_PUBLIC)
    with pytest.raises(KeyFileError, match="not an RSA private key"):
        load_private(private)
    with pytest.raises(KeyFileError, match="not an RSA public key"):
        load_public(public)


def test_private_key_error_holds_no_key_material(tmp_path: Path, ca_key: RsaPrivateKey) -> None:
    path = tmp_path / "ca-01.pem"
    save_private(path, ca_key)
    pem = path.read_text()
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError) as info:
        load_private(path)
    body_line = pem.splitlines()[1]
    assert body_line not in str(info.value)


def test_keystore_round_trip(
    tmp_path: Path, ca_key: RsaPrivateKey, big_ca_key: RsaPrivateKey
) -> None:
    assert load_keystore(tmp_path) == KeyStore()
    store = (
        KeyStore()
        .with_key(AuthorityKey(1, ca_key.public, date(2031, 12, 31)))
        .with_key(AuthorityKey(0xA2, big_ca_key.public, date(2027, 1, 1)))
        .with_revoked(5)
        .with_revoked(0xFFFFFF)
    )
    save_keystore(tmp_path, store)
    doc = json.loads(keystore_path(tmp_path).read_text())
    assert doc == {
        "keys": {"01": {"expires": "2031-12-31"}, "A2": {"expires": "2027-01-01"}},
        "revoked": [5, 0xFFFFFF],
    }
    assert (tmp_path / "terminal" / "ca-A2.pub.pem").exists()
    loaded = load_keystore(tmp_path)
    assert loaded == store
    key = loaded.lookup(1)
    assert key is not None and key.key == ca_key.public
    assert key.usable(date(2031, 12, 31)) and not key.usable(date(2032, 1, 1))
    assert loaded.lookup(2) is None
    with pytest.raises(ValueError):
        store.with_revoked(1 << 24)


_stores = st.builds(
    lambda expiries, revoked: (expiries, frozenset(revoked)),
    st.dictionaries(st.integers(0, 255), st.dates(), max_size=4),
    st.sets(st.integers(0, 0xFFFFFF), max_size=6),
)


@given(_stores)
def test_keystore_round_trip_of_any_store(
    ca_key: RsaPrivateKey, store: tuple[dict[int, date], frozenset[int]]
) -> None:
    """keystore.json and its ca-IDX.pub.pem files (PROTOCOL.md §7 checks 2, 3) read back as
    the keys (any index 00..FF, any expiry) and revoked serials (0..FFFFFF) saved."""
    expiries, revoked = store
    saved = KeyStore({i: AuthorityKey(i, ca_key.public, d) for i, d in expiries.items()}, revoked)
    with tempfile.TemporaryDirectory() as home:
        save_keystore(Path(home), saved)
        written = keystore_path(Path(home)).read_bytes()
        assert load_keystore(Path(home)) == saved
        save_keystore(Path(home), load_keystore(Path(home)))
        assert keystore_path(Path(home)).read_bytes() == written


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 1 << 25) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)
_documents = st.one_of(
    _json,
    st.fixed_dictionaries(
        {},
        optional={
            "keys": st.dictionaries(
                st.sampled_from(["01", "0a", "0A", "A2", "1", "x1"]) | st.text(max_size=3),
                st.fixed_dictionaries({"expires": st.dates().map(date.isoformat) | _json}) | _json,
                max_size=3,
            ),
            "revoked": st.lists(st.integers(-1, 1 << 24) | _json, max_size=3) | _json,
        },
    ),
)


@given(_documents)
def test_any_keystore_json_is_a_store_or_key_file_error(ca_key: RsaPrivateKey, doc: Any) -> None:
    """Any JSON in keystore.json (its public keys on disk) is a key store or a KeyFileError;
    a store that loads holds only indexes 00..FF and serials 0..FFFFFF (PROTOCOL.md §7)."""
    with tempfile.TemporaryDirectory() as home:
        for index in (0x01, 0x0A, 0xA2):
            save_public(Path(home) / "terminal" / f"ca-{index_hex(index)}.pub.pem", ca_key.public)
        keystore_path(Path(home)).write_text(json.dumps(doc))
        try:
            loaded = load_keystore(Path(home))
        except KeyFileError:
            return
    assert all(0 <= i <= 0xFF and k.index == i for i, k in loaded.keys.items())
    assert all(0 <= s <= 0xFFFFFF for s in loaded.revoked)


@given(
    st.binary(max_size=200)
    | st.binary(max_size=150).map(lambda b: b"-----BEGIN PUBLIC KEY-----\n" + b)
)
def test_any_bytes_in_a_public_key_file_are_a_key_or_key_file_error(data: bytes) -> None:
    """A ca-IDX.pub.pem of any bytes is read as an RSA key or refused with a KeyFileError."""
    with tempfile.TemporaryDirectory() as home:
        path = Path(home) / "ca-01.pub.pem"
        path.write_bytes(data)
        with contextlib.suppress(KeyFileError):
            load_public(path)


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"keys": []}',
        '{"keys": {"1": {"expires": "2030-01-01"}}}',
        '{"keys": {"-1": {"expires": "2030-01-01"}}}',
        '{"keys": {"+1": {"expires": "2030-01-01"}}}',
        '{"keys": {" 1": {"expires": "2030-01-01"}}}',
        '{"keys": {"0x": {"expires": "2030-01-01"}}}',
        '{"keys": {"01": {"expires": "soon"}}}',
        '{"revoked": ["5"]}',
        '{"revoked": [16777216]}',
        '{"revoked": [true]}',
        '{"revoked": 5}',
        '{"revoked": {}}',
        '{"revoked": "5"}',
    ],
)
def test_malformed_keystore_is_refused(tmp_path: Path, content: str) -> None:
    path = keystore_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(KeyFileError, match="key store"):
        load_keystore(tmp_path)


def test_keystore_naming_one_index_twice_is_refused(tmp_path: Path) -> None:
    """ "0a" and "0A" are one key index (8F, PROTOCOL.md §4): a keystore.json holding both
    was read with the last one's expiry, silently; which one the terminal meant is not for
    it to guess, so the file is refused and both names are said."""
    keys = {"0a": {"expires": "2030-01-01"}, "0A": {"expires": "2099-12-31"}}
    path = keystore_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"keys": keys}))
    with pytest.raises(KeyFileError, match='key entries "0a" and "0A" name one index'):
        load_keystore(tmp_path)


def test_keystore_of_more_than_256_keys_is_refused(tmp_path: Path) -> None:
    """A key index is one byte (8F, PROTOCOL.md §4): the key store holds at most 256 keys,
    and a keystore.json naming more (an index twice, in both cases) is refused as a whole."""
    keys = {f"{i:02X}": {"expires": "2030-01-01"} for i in range(256)}
    keys["0a"] = {"expires": "2030-01-01"}
    path = keystore_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"keys": keys}))
    with pytest.raises(KeyFileError, match="at most 256 entries"):
        load_keystore(tmp_path)


def test_keystore_file_above_its_bound_is_not_read(tmp_path: Path) -> None:
    """keystore.json is bounded (4 MiB, docs/architecture.md): a larger file is refused before
    it is parsed, even when it is valid JSON."""
    path = keystore_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('{"revoked": [5]}' + " " * (4 * 1024 * 1024))
    with pytest.raises(KeyFileError, match="file too large"):
        load_keystore(tmp_path)


@pytest.mark.parametrize(("index", "text"), [(0, "00"), (0x0A, "0A"), (0xFF, "FF")])
def test_index_hex_is_one_upper_case_byte(index: int, text: str) -> None:
    """The `8F` index (PROTOCOL.md §7) names files as two upper-case hex digits."""
    assert index_hex(index) == text


@pytest.mark.parametrize("index", [-1, 0x100, 0x1FF])
def test_index_hex_refuses_what_is_not_one_byte(index: int) -> None:
    """An authority key index is one byte (8F, PROTOCOL.md §4): 256 has no file name."""
    with pytest.raises(ValueError, match="does not fit one byte"):
        index_hex(index)


def test_keystore_missing_public_key_is_refused(tmp_path: Path) -> None:
    path = keystore_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text('{"keys": {"01": {"expires": "2030-01-01"}}}')
    with pytest.raises(KeyFileError, match="no such file"):
        load_keystore(tmp_path)


def test_resolve_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HCEPAY_HOME", str(tmp_path / "env"))
    assert resolve_home(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_home(None) == tmp_path / "env"
    monkeypatch.delenv("HCEPAY_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert resolve_home(None) == tmp_path / "user" / ".hcepay"


def test_serials_are_unique_and_persist(tmp_path: Path) -> None:
    assert peek_serial(tmp_path) == 1
    assert [allocate_serial(tmp_path) for _ in range(3)] == [1, 2, 3]
    assert json.loads(serials_path(tmp_path).read_text()) == {"next_serial": 4}
    serials_path(tmp_path).write_text('{"next_serial": 16777216}')
    with pytest.raises(KeyFileError, match="no license serials left"):
        allocate_serial(tmp_path)
    serials_path(tmp_path).write_text("{}")
    with pytest.raises(KeyFileError, match="serials"):
        allocate_serial(tmp_path)


@pytest.mark.parametrize("value", ["true", "false", "1.0", '"2"', "null"])
def test_serials_file_with_a_non_integer_is_refused(tmp_path: Path, value: str) -> None:
    """JSON true is not serial 1: taken as one, it was issued and written to card.json as
    `"serial": true`, a card that could not be opened ('serial' must be int)."""
    serials_path(tmp_path).parent.mkdir(parents=True)
    serials_path(tmp_path).write_text(f'{{"next_serial": {value}}}')
    with pytest.raises(KeyFileError, match="next_serial must be an integer"):
        peek_serial(tmp_path)
    with pytest.raises(KeyFileError, match="next_serial must be an integer"):
        allocate_serial(tmp_path)
    assert json.loads(serials_path(tmp_path).read_text()) == {"next_serial": json.loads(value)}


@pytest.mark.parametrize("value", [0, -1, 16777217])
def test_serials_file_outside_the_serials_is_refused(tmp_path: Path, value: int) -> None:
    """License serials are 1..FFFFFF (3 bytes, PROTOCOL.md §5.1; 1 when none was issued):
    a serials file naming 0 or past 16777216 is refused, never a serial handed out."""
    serials_path(tmp_path).parent.mkdir(parents=True)
    serials_path(tmp_path).write_text(f'{{"next_serial": {value}}}')
    with pytest.raises(KeyFileError, match=r"next_serial must be an integer 1\.\.16777216"):
        allocate_serial(tmp_path)


@pytest.mark.parametrize("wait_s", [0.0, 0.2])
def test_flock_file_waits_as_long_as_it_is_told(tmp_path: Path, wait_s: float) -> None:
    """flock_file with `wait_s` polls that long at most, then BlockingIOError (0: one try):
    the spool's append and the home's lock rely on it to give up in time."""
    path = tmp_path / "x.lock"
    held = flock_file(path)
    try:
        started = time.monotonic()
        with pytest.raises(BlockingIOError):
            flock_file(path, wait_s)
        assert wait_s <= time.monotonic() - started < wait_s + 1.0
    finally:
        os.close(held)
    os.close(flock_file(path, wait_s))  # let go: taken at once


def test_write_atomic_writes_every_byte_and_syncs_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short write is finished, and the rename is made durable by an fsync of the folder
    (else a power cut could bring back the old serial counter, PROTOCOL.md §5.1)."""
    from authority import home

    real_write, real_fsync = os.write, os.fsync
    synced: list[str] = []

    def three_bytes(fd: int, data: bytes | memoryview) -> int:
        return real_write(fd, bytes(data[:3]))

    def fsync(fd: int) -> None:
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "write", three_bytes)
    monkeypatch.setattr(os, "fsync", fsync)
    home.write_atomic(tmp_path / "serials.json", b'{"01": 12345}\n')
    assert (tmp_path / "serials.json").read_bytes() == b'{"01": 12345}\n'
    assert synced == ["file", "folder"]


def test_write_all_at_an_offset_finishes_a_short_pwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """write_all with an offset (state.dat's slots) goes on after a short pwrite at the
    byte where it stopped: every byte lands in its place, none on top of another."""
    from authority import home

    real_pwrite = os.pwrite

    def three_bytes(fd: int, data: bytes | memoryview, offset: int) -> int:
        return real_pwrite(fd, bytes(data[:3]), offset)

    monkeypatch.setattr(os, "pwrite", three_bytes)
    path = tmp_path / "slots"
    path.write_bytes(b"." * 20)
    fd = os.open(path, os.O_RDWR)
    try:
        home.write_all(fd, b"0123456789", 5)
    finally:
        os.close(fd)
    assert path.read_bytes() == b".....0123456789....."


def test_write_atomic_temp_names_do_not_collide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writers of one file each get their own temp file in its folder: a second write
    started while the first is between its temp file and its rename (another process, in
    real life) neither truncates nor steals the first one's temp file."""
    from authority import home

    target = tmp_path / "terminal" / "keystore.json"
    real_replace = os.replace
    temps: list[Path] = []

    def replace_after_a_second_writer(src: str | Path, dst: str | Path) -> None:
        temps.append(Path(src))
        if len(temps) == 1:  # the first writer is about to rename: the second one runs now
            assert Path(src).read_bytes() == b"first\n"
            home.write_atomic(target, b"second\n", 0o600)
            assert Path(src).read_bytes() == b"first\n"
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_after_a_second_writer)
    home.write_atomic(target, b"first\n", 0o600)
    assert len(temps) == 2 and temps[0] != temps[1]
    assert all(t.parent == target.parent and t.name.startswith(".keystore.json") for t in temps)
    assert target.read_bytes() == b"first\n"  # the last rename wins, whole
    assert _mode(target) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["keystore.json"]


@pytest.mark.parametrize(
    ("failing", "error"),
    [
        ("write", OSError(28, "No space left on device")),
        ("fsync", OSError(5, "Input/output error")),
        ("replace", OSError(28, "No space left on device")),
        ("fsync", KeyboardInterrupt()),
    ],
)
def test_write_atomic_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str, error: BaseException
) -> None:
    """No temp file is left after a write, nor after a failed or interrupted one (which
    leaves the old file as it was)."""
    from authority import home

    target = tmp_path / "serials.json"
    home.write_atomic(target, b'{"next_serial": 7}\n')
    home.write_atomic(target, b'{"next_serial": 8}\n', 0o600)
    assert _mode(target) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["serials.json"]

    def broken(*args: object) -> None:
        raise error

    monkeypatch.setattr(os, failing, broken)
    with pytest.raises(type(error)):
        home.write_atomic(target, b'{"next_serial": 9}\n')
    monkeypatch.undo()
    assert target.read_bytes() == b'{"next_serial": 8}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["serials.json"]


def test_a_forked_child_leaving_a_hold_closes_nothing_of_its_own(tmp_path: Path) -> None:
    """The child's copy of the lock file is closed at fork; its number may be reused for
    another file, which leaving the parent's `with hold_home` in the child must not close."""
    from authority.home import hold_home

    read, write = os.pipe()
    with hold_home(tmp_path):
        pid = os.fork()
        if pid == 0:  # the child: a file that may take the lock file's old number
            os.close(read)
            kept = os.open(tmp_path / "other.db", os.O_RDWR | os.O_CREAT, 0o600)
    if pid == 0:
        try:
            os.fstat(kept)
            os.write(write, b"open")
        except OSError:
            os.write(write, b"closed")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read, "rb") as pipe:
        assert pipe.read() == b"open"


def test_os_problem_says_what_is_wrong_in_plain_words(tmp_path: Path) -> None:
    """A file where a folder must be, and the reverse, named as such: the messages were
    Python's "[Errno 21] Is a directory: '...'", "[Errno 20]", "[Errno 17] File exists"."""
    import errno
    import os

    from applet.store import CardInUseError
    from authority.home import os_problem

    (tmp_path / "file").write_text("")
    (tmp_path / "folder").mkdir()
    cases = [
        (OSError(errno.EISDIR, "Is a directory", str(tmp_path / "folder")), "folder: is a folder"),
        (
            OSError(errno.ENOTDIR, "Not a directory", str(tmp_path / "file" / "a" / "b")),
            "file: is a file",
        ),
        (
            OSError(errno.EEXIST, "File exists", str(tmp_path / "file")),
            "file: is a file, not a folder",
        ),
        (OSError(errno.EACCES, "Permission denied", str(tmp_path / "x")), "x: Permission denied"),
        (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
        (FileExistsError("card.json exists already"), "card.json exists already"),
        (CardInUseError(tmp_path, "42"), "in use by another process (pid 42)"),
    ]
    for exc, says in cases:
        text = os_problem(exc)
        assert says in text and "[Errno" not in text, (exc, text)
    with pytest.raises(IsADirectoryError) as info:
        os.open(tmp_path / "folder", os.O_RDWR)
    assert os_problem(info.value) == f"{tmp_path / 'folder'}: is a folder, not a file"


def test_key_formats_read_and_refused(tmp_path: Path, ca_key: RsaPrivateKey) -> None:
    """docs/protocol-choices.md "key files": PKCS#1 PEM is read as PKCS#8 is, to the same
    key; an encrypted, DER or OpenSSH private key is one KeyFileError naming the format."""
    crypto_key = ca_key.to_cryptography()
    pem, der = serialization.Encoding.PEM, serialization.Encoding.DER
    none = serialization.NoEncryption()
    private_forms = {
        "pkcs1": (pem, serialization.PrivateFormat.TraditionalOpenSSL, none),
        "encrypted": (
            pem,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        ),
        "der": (der, serialization.PrivateFormat.PKCS8, none),
        "openssh": (pem, serialization.PrivateFormat.OpenSSH, none),
    }
    for name, (encoding, form, encryption) in private_forms.items():
        path = tmp_path / f"{name}.pem"
        path.write_bytes(crypto_key.private_bytes(encoding, form, encryption))
        os.chmod(path, 0o600)
        if name == "pkcs1":
            assert path.read_bytes().startswith(b"-----BEGIN RSA PRIVATE KEY-----")
            assert load_private(path).public == ca_key.public
            continue
        with pytest.raises(KeyFileError) as info:
            load_private(path)
        assert info.value.reason == "not an unencrypted PKCS#8 PEM private key"
        assert "\n" not in str(info.value)
    public = tmp_path / "pkcs1.pub.pem"
    public.write_bytes(crypto_key.public_key().public_bytes(pem, serialization.PublicFormat.PKCS1))
    assert public.read_bytes().startswith(b"-----BEGIN RSA PUBLIC KEY-----")
    assert load_public(public) == ca_key.public


def test_a_key_file_of_unbalanced_primes_is_refused_in_one_line(tmp_path: Path) -> None:
    """A PKCS#8 file `cryptography` loads, whose 1024-bit modulus is a 256-bit prime times
    a 768-bit one, is a KeyFileError naming why (authority/rsa.py, FIPS 186-4 B.3.1)."""

    def prime(start: int) -> int:  # p = 2 mod 3, so that e = 3 is invertible
        p = int(gmpy2.next_prime(start))
        while p % 3 != 2:
            p = int(gmpy2.next_prime(p))
        return p

    p, q, e = prime(3 << 766), prime(3 << 254), 3
    d = pow(e, -1, (p - 1) * (q - 1))
    numbers = crypto_rsa.RSAPrivateNumbers(
        p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), crypto_rsa.RSAPublicNumbers(e, p * q)
    )
    path = tmp_path / "ca-01.pem"
    path.write_bytes(
        numbers.private_key().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(path, 0o600)
    with pytest.raises(KeyFileError) as info:
        load_private(path)
    assert info.value.reason == "prime factors of unequal sizes"


@given(st.dates())
def test_parse_day_reads_every_day_written_yyyy_mm_dd(day: date) -> None:
    assert parse_day(f"{day.year:04d}-{day.month:02d}-{day.day:02d}") == day


@pytest.mark.parametrize(
    "text", ["20311231", "2031-W01-1", "2031-02-30", "2031-1-01", " 2031-12-31", "٢٠٣١-12-31"]
)
def test_parse_day_refuses_other_forms_and_days_that_do_not_exist(text: str) -> None:
    """One form (an authority key's expiry): date.fromisoformat alone reads the first two."""
    with pytest.raises(ValueError):
        parse_day(text)
