"""The spool: verified payments the log could not take are kept and imported."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reader.spool import (
    Imported,
    SpoolError,
    append,
    fallback_path,
    import_spool,
    last_resort_path,
    pending_count,
    primary_path,
    read,
)


def _entry(atc: int) -> dict[str, str | int | None]:
    return {"account": "6200123456789012FFFF", "atc": atc, "amount": 100 + atc, "cid": 64}


def test_append_goes_next_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "terminal.db"
    path = append(log, _entry(1))
    assert path == primary_path(log) == tmp_path / "terminal.db.spool"
    assert (path.stat().st_mode & 0o777) == 0o600
    append(log, _entry(2))
    assert read(path) == ([_entry(1), _entry(2)], 0)
    assert pending_count(log) == 2


def test_an_append_is_durable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A spooled payment may be the only copy of a decided payment: its
    line is fsynced once written, and the first append also fsyncs the folder, which makes
    the new file's name durable; later appends need only their own fsync."""
    real_fsync = os.fsync
    synced: list[tuple[str, int]] = []

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        synced.append(("folder" if stat.S_ISDIR(info.st_mode) else "file", info.st_size))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    log = tmp_path / "terminal.db"
    path = append(log, _entry(1))
    size = path.stat().st_size
    assert synced[0] == ("file", size) and [kind for kind, _ in synced] == ["file", "folder"]
    synced.clear()
    append(log, _entry(2))
    assert synced == [("file", path.stat().st_size)]


def test_an_entry_is_spooled_only_if_it_can_be_read_back(tmp_path: Path) -> None:
    """`read` takes lines of at most MAX_LINE bytes: a longer entry is a SpoolError when it
    is appended (the caller knows it was not kept), never a line that no import reads."""
    from reader.spool import MAX_LINE

    log = tmp_path / "terminal.db"
    fits = {"note": ""}
    fits["note"] = "x" * (MAX_LINE - len(json.dumps(fits, separators=(",", ":"))) - 1)
    path = append(log, fits)
    assert path.stat().st_size == MAX_LINE and read(path) == ([fits], 0)
    with pytest.raises(SpoolError, match=f"exceeds {MAX_LINE}"):
        append(log, {"note": fits["note"] + "x"})
    assert read(path) == ([fits], 0)
    with path.open("ab") as f:  # a longer line (not made by append) is not parsed: unreadable
        f.write(json.dumps({"note": fits["note"] + "xx"}, separators=(",", ":")).encode() + b"\n")
    assert read(path) == ([fits], 1)


def test_read_only_folder_uses_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    log = folder / "terminal.db"
    monkeypatch.setattr("reader.spool._append", _failing_for(primary_path(log)))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = append(log, _entry(3))
    assert path == fallback_path(log)
    assert path.is_relative_to(tmp_path / "state" / "hcepay")
    assert pending_count(log) == 1


def test_a_fallback_folder_others_can_write_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A spool folder other than the log's own that someone else made (or left open to
    others) is neither written nor read: the payment goes to the last resort."""
    folder = tmp_path / "ro"
    folder.mkdir()
    log = folder / "terminal.db"
    monkeypatch.setattr("reader.spool._append", _failing_for(primary_path(log)))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    planted = fallback_path(log)
    planted.parent.mkdir(parents=True)
    planted.parent.chmod(0o777)
    planted.write_text('{"account": "6200123456789012", "atc": 777}\n')
    assert append(log, _entry(3)) == last_resort_path(log)
    assert pending_count(log) == 1  # ATC 3; what lies in the open folder is no one's spool


@pytest.mark.parametrize("mode", [0o750, 0o705, 0o740])
def test_a_fallback_folder_others_can_read_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    """A spool holds account ids and amounts: a fallback folder is used only when no one
    else can read it either (mode 0700, reader/spool.py `_check_private`), not merely when
    no one else can write it."""
    folder = tmp_path / "ro"
    folder.mkdir()
    log = folder / "terminal.db"
    monkeypatch.setattr("reader.spool._append", _failing_for(primary_path(log)))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    fallback_path(log).parent.mkdir(parents=True)
    fallback_path(log).parent.chmod(mode)
    assert append(log, _entry(3)) == last_resort_path(log)
    assert not fallback_path(log).exists()


def test_a_relative_xdg_state_home_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """XDG Base Directory: a relative $XDG_STATE_HOME is invalid and ignored; the spool
    does not move with the current folder, it goes to ~/.local/state."""
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    log = tmp_path / "terminal.db"
    assert fallback_path(log).parent == tmp_path / "home" / ".local" / "state" / "hcepay" / "spool"


def test_a_state_folder_the_system_cannot_look_up_is_passed_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """$XDG_STATE_HOME with a name too long for the system: exists() raised "File name too
    long" from import_spool, and `hcepay log recover` was an internal error (exit 70). The
    spool next to the log is still imported; the fallback is passed over with a warning."""
    from typer.testing import CliRunner

    from reader.cli import app

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / ("s" * 300)))
    log = tmp_path / "terminal.db"
    append(log, _entry(1))
    seen: list[dict[str, str | int | None]] = []

    def insert(entry: dict[str, str | int | None]) -> Imported:
        seen.append(entry)
        return Imported.INSERTED

    report = import_spool(log, insert)
    assert (report.inserted, seen) == (1, [_entry(1)])
    assert "File name too long" in caplog.text
    home = tmp_path / "home"
    home.mkdir()
    result = CliRunner().invoke(app, ["log", "recover", "--home", str(home)])
    assert result.exit_code == 0 and "0 imported" in result.stdout, result.output


def test_a_log_path_not_in_utf8_has_a_fallback_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A home whose name is not UTF-8 (a byte FF, a str with a lone surrogate in Python):
    the fallback's name hashed str(path).encode(), which raised UnicodeEncodeError, so
    `hcepay log` and `log recover` were an internal error (exit 70) and a payment the log
    could not take had no spool. A UTF-8 path keeps the name it had."""
    import hashlib
    import subprocess
    import sys

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    plain = tmp_path / "home" / "terminal.db"
    old_key = hashlib.sha256(str(plain.resolve()).encode()).hexdigest()[:16]
    assert fallback_path(plain).name == f"{old_key}.spool"
    home = tmp_path / "bad\udcffhome"
    home.mkdir()
    log = home / "terminal.db"
    assert fallback_path(log) != fallback_path(plain)
    assert append(log, _entry(1)) == primary_path(log) and pending_count(log) == 1
    for argv in (["log"], ["log", "--json"], ["log", "recover"]):
        result = subprocess.run(  # the process's own stdout, as a user's (not CliRunner's)
            [sys.executable, "-m", "reader.entry", *argv, "--home", os.fsencode(home)],
            capture_output=True,
            cwd=Path(__file__).resolve().parents[2],
            timeout=60,
            check=False,
        )
        assert b"internal error" not in result.stderr, result
        assert result.returncode == (2 if argv[-1] == "recover" else 0), result  # 2: no keys


def test_a_relative_home_gives_the_last_resort(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no $XDG_STATE_HOME and a relative $HOME, there is no state folder that stays
    put: the fallback is the last resort (the system's temporary folder, per user)."""
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", "relative-home")
    log = tmp_path / "terminal.db"
    assert fallback_path(log) == last_resort_path(log)


def test_without_a_home_folder_the_spool_still_has_somewhere_to_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    log = folder / "terminal.db"
    monkeypatch.setattr("reader.spool._append", _failing_for(primary_path(log)))
    monkeypatch.delenv("XDG_STATE_HOME")

    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr("pathlib.Path.home", no_home)
    assert fallback_path(log) == last_resort_path(log)
    assert append(log, _entry(4)) == last_resort_path(log) and pending_count(log) == 1


def test_an_append_does_not_wait_for_ever_on_an_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import holds the spool while it writes the log (which may wait on a busy log): a
    payment's append waits APPEND_WAIT_S, then goes to the next spool."""
    from reader import spool

    monkeypatch.setattr(spool, "APPEND_WAIT_S", 0.1)
    log = tmp_path / "terminal.db"
    with spool._locked(primary_path(log)):
        assert append(log, _entry(5)) == fallback_path(log)
    assert pending_count(log) == 1


def test_lines_past_the_bound_are_imported_even_after_a_bad_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("reader.spool.MAX_ENTRIES", 3)
    log = tmp_path / "terminal.db"
    primary_path(log).write_text("x\ny\nz\n" + '{"atc": 6}\n')
    seen: list[object] = []

    def insert(entry: dict[str, str | int | None]) -> Imported:
        seen.append(entry["atc"])
        return Imported.INSERTED

    first = import_spool(log, insert)
    assert (first.bad_lines, first.remaining) == (3, 1)
    assert import_spool(log, insert).inserted == 1 and seen == [6]


def _failing_for(bad: Path) -> Callable[[Path, bytes], None]:
    from reader import spool

    real = spool._append

    def append_or_fail(path: Path, line: bytes) -> None:
        if path == bad:
            raise OSError(30, "Read-only file system")
        real(path, line)

    return append_or_fail


def test_nowhere_to_write_is_a_typed_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(path: Path, line: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("reader.spool._append", fail)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    with pytest.raises(SpoolError, match="No space left"):
        append(tmp_path / "terminal.db", _entry(1))


def test_import_inserts_once_and_clears(tmp_path: Path) -> None:
    log = tmp_path / "terminal.db"
    for atc in (1, 2, 3):
        append(log, _entry(atc))
    seen: set[int] = {2}

    def insert(entry: dict[str, str | int | None]) -> Imported:
        atc = entry["atc"]
        assert isinstance(atc, int)
        if atc in seen:
            return Imported.DUPLICATE
        seen.add(atc)
        return Imported.INSERTED

    report = import_spool(log, insert)
    assert (report.inserted, report.duplicates, report.remaining) == (2, 1, 0)
    assert not primary_path(log).exists()
    assert seen == {1, 2, 3}
    assert import_spool(log, insert).inserted == 0


def test_failed_import_keeps_the_entry(tmp_path: Path) -> None:
    log = tmp_path / "terminal.db"
    append(log, _entry(1))
    append(log, _entry(2))

    def insert(entry: dict[str, str | int | None]) -> Imported:
        if entry["atc"] == 2:
            raise OSError("disk full")
        return Imported.INSERTED

    report = import_spool(log, insert)
    assert (report.inserted, report.remaining) == (1, 1)
    assert read(primary_path(log))[0] == [_entry(2)]


def test_torn_last_line_is_counted_and_kept_aside(tmp_path: Path) -> None:
    log = tmp_path / "terminal.db"
    append(log, _entry(1))
    with primary_path(log).open("ab") as f:
        f.write(b'{"account":"62001')  # a crash in the middle of an append
    entries, bad = read(primary_path(log))
    assert (entries, bad) == ([_entry(1)], 1)
    report = import_spool(log, lambda e: Imported.INSERTED)
    assert (report.inserted, report.bad_lines) == (1, 1)
    assert b'{"account":"62001' in (tmp_path / "terminal.db.spool.bad").read_bytes()


def test_a_spool_of_unreadable_lines_only_is_kept_aside_once(tmp_path: Path) -> None:
    """With no entry left to import, the unreadable lines were kept in the spool: every
    `log recover` counted them again and appended another copy to `<spool>.bad`."""
    log = tmp_path / "terminal.db"
    primary_path(log).write_bytes(b'{"account":"62001\n')
    first = import_spool(log, lambda e: Imported.INSERTED)
    assert (first.inserted, first.remaining, first.bad_lines) == (0, 0, 1)
    assert not primary_path(log).exists()
    second = import_spool(log, lambda e: Imported.INSERTED)
    assert second.bad_lines == 0
    assert (tmp_path / "terminal.db.spool.bad").read_bytes() == b'{"account":"62001\n'


def test_a_line_cut_short_does_not_swallow_the_next_payment(tmp_path: Path) -> None:
    """A full disk (or a crash) left half a line: the next append starts a line of its own."""
    log = tmp_path / "terminal.db"
    append(log, _entry(1))
    with primary_path(log).open("ab") as spool:
        spool.write(b'{"account": "6200123456789012FFFF", "atc": 2, "amo')
    append(log, _entry(3))
    entries, bad = read(primary_path(log))
    assert [e["atc"] for e in entries] == [1, 3] and bad == 1


def test_a_payment_spooled_during_an_import_is_kept(tmp_path: Path) -> None:
    """`log recover` reads, imports, then rewrites the spool: an append in between waits for
    it (a shared lock), instead of being rewritten away."""
    import threading

    log = tmp_path / "terminal.db"
    append(log, _entry(1))
    late: list[threading.Thread] = []

    def insert(entry: dict[str, str | int | None]) -> Imported:
        thread = threading.Thread(target=append, args=(log, _entry(2)))
        thread.start()  # a payment of another terminal process, spooled right now
        late.append(thread)
        thread.join(timeout=0.3)  # it cannot finish while the import holds the spool
        assert thread.is_alive()
        return Imported.INSERTED

    assert import_spool(log, insert).inserted == 1
    late[0].join(timeout=5)
    assert [e["atc"] for e in read(primary_path(log))[0]] == [2]


def test_an_import_keeps_the_lines_past_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("reader.spool.MAX_ENTRIES", 3)
    log = tmp_path / "terminal.db"
    for atc in range(1, 6):
        append(log, _entry(atc))
    imported: list[object] = []

    def insert(entry: dict[str, str | int | None]) -> Imported:
        imported.append(entry["atc"])
        return Imported.INSERTED

    first = import_spool(log, insert)
    assert (first.inserted, first.remaining) == (3, 2) and imported == [1, 2, 3]
    assert import_spool(log, insert).inserted == 2 and imported == [1, 2, 3, 4, 5]
    assert not primary_path(log).exists()


def test_an_entry_with_a_value_of_another_type_is_unreadable(tmp_path: Path) -> None:
    """A spool entry is one flat JSON object of text, integers and nulls (SpoolValue); a
    line holding a list, an object or a number with a fraction is counted as unreadable,
    not handed to the log's writer."""
    path = tmp_path / "terminal.db.spool"
    path.write_text(
        '{"atc": [1]}\n{"atc": {"n": 1}}\n{"atc": 1.5}\n["atc", 1]\n{"atc": 1, "x": null}\n'
    )
    assert read(path) == ([{"atc": 1, "x": None}], 4)


def test_unreadable_lines_of_each_import_are_all_kept_aside(tmp_path: Path) -> None:
    """`<spool>.bad` is appended to, never replaced: the unreadable lines a later import
    sets aside do not take the place of those an earlier one kept (nothing may be lost)."""
    log = tmp_path / "terminal.db"
    primary_path(log).write_bytes(b"{torn\n")
    import_spool(log, lambda e: Imported.INSERTED)
    primary_path(log).write_bytes(b"{torn again\n")
    import_spool(log, lambda e: Imported.INSERTED)
    assert (tmp_path / "terminal.db.spool.bad").read_bytes() == b"{torn\n{torn again\n"


def test_a_spool_rewritten_by_an_import_stays_private(tmp_path: Path) -> None:
    """The entries an import could not take are written back with mode 0600, as `append`
    made the spool: it holds account ids and amounts."""
    log = tmp_path / "terminal.db"
    append(log, _entry(1))
    append(log, _entry(2))

    def insert(entry: dict[str, str | int | None]) -> Imported:
        if entry["atc"] == 2:
            raise OSError("the log is still read-only")
        return Imported.INSERTED

    report = import_spool(log, insert)
    assert (report.inserted, report.remaining) == (1, 1)
    assert read(primary_path(log)) == ([_entry(2)], 0)
    assert stat.S_IMODE(primary_path(log).stat().st_mode) == 0o600


def test_one_log_has_one_fallback_spool_however_it_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fallback spool is named after the log's resolved path: `log recover` run from
    another folder, or through a symbolic link, finds what `pay` spooled there."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    log = tmp_path / "real" / "terminal.db"
    monkeypatch.chdir(tmp_path)
    for other in (
        Path("real/terminal.db"),
        tmp_path / "link" / "terminal.db",
        tmp_path / "real" / ".." / "real" / "terminal.db",
    ):
        assert fallback_path(other) == fallback_path(log)
        assert last_resort_path(other) == last_resort_path(log)


# --- properties of the spool's lines: one JSON object a line, values text, integer or null --

_values = st.none() | st.integers(-(2**63), 2**63) | st.text(max_size=20)
_entries = st.dictionaries(st.text(max_size=12), _values, max_size=5)


@given(st.binary(max_size=80), st.lists(_entries, min_size=1, max_size=4))
def test_appended_entries_read_back_after_any_bytes(
    before: bytes, entries: list[dict[str, str | int | None]]
) -> None:
    """Entries appended to a spool that holds anything (a torn line, garbage) read back as
    they were, in order, after whatever that garbage reads as."""
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "terminal.db"
        primary_path(log).write_bytes(before)
        for entry in entries:
            assert append(log, entry) == primary_path(log)
        read_back, _ = read(primary_path(log))
    assert read_back[len(read_back) - len(entries) :] == entries


@given(
    st.lists(
        st.binary(max_size=30) | _entries.map(lambda e: json.dumps(e).encode()), max_size=6
    ).map(b"\n".join)
)
def test_any_spool_bytes_read_as_entries_and_a_count_of_bad_lines(raw: bytes) -> None:
    """A spool file of any bytes reads, never raising, as its lines that are JSON objects of
    text, integer or null values, and the count of the other (non-blank) lines."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "terminal.db.spool"
        path.write_bytes(raw)
        entries, bad = read(path)
    lines = [line for line in raw.splitlines() if line.strip()]
    assert len(entries) + bad == len(lines)
    for entry in entries:
        assert all(isinstance(v, str | int) or v is None for v in entry.values())
