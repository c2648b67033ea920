"""The spool: verified authorizations the log could not take.

When the transaction log cannot be written (read-only folder, disk full, a failing
connection), the terminal keeps the verified payment in a spool file next to the log,
`<log>.spool`, one JSON object a line, appended and fsynced. If that folder is not writable
either, the spool goes to the user's state folder (`$XDG_STATE_HOME/hcepay/spool`, else
`~/.local/state/hcepay/spool`). `hcepay log recover` imports the spool into the log: each
entry once (the log refuses a second (account, ATC)), only entries that re-verify, and the
entries that could not be imported stay in the spool.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from authority.home import (
    flock_file,
    fsync_folder,
    read_problem,
    read_regular,
    write_all,
    write_atomic,
)

log = logging.getLogger(__name__)

SpoolValue = str | int | None
SpoolEntry = Mapping[str, SpoolValue]

SPOOL_SUFFIX = ".spool"
MAX_ENTRIES = 100_000  # bound on one spool file (the bound rule, docs/architecture.md)
MAX_LINE = 64 * 1024


class SpoolError(Exception):
    """The spool could not be written or read; `.reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Imported(Enum):
    """What the log did with one spooled entry."""

    INSERTED = "inserted"
    DUPLICATE = "duplicate"  # (account, ATC) already in the log: nothing to do


@dataclass(frozen=True)
class ImportReport:
    """Counts of one `hcepay log recover` run."""

    inserted: int
    duplicates: int
    remaining: int
    bad_lines: int
    kept_aside: tuple[Path, ...] = ()  # the `.bad` files that keep the unreadable lines


def primary_path(log_path: Path) -> Path:
    """The spool next to the log: `<log>.spool`."""
    return log_path.with_name(log_path.name + SPOOL_SUFFIX)


def _key(log_path: Path) -> str:
    """The log's name in the fallback folder: a hash of its path's bytes as the system has
    them (os.fsencode; a path not in UTF-8, as str, could not be encoded: exit 70 from
    `hcepay log`, and no spool for a payment the log could not take)."""
    return hashlib.sha256(os.fsencode(log_path.resolve())).hexdigest()[:16]


def fallback_path(log_path: Path) -> Path:
    """The spool used when the log's folder is not writable: per user, per log, in the
    user's state folder ($XDG_STATE_HOME, else ~/.local/state), which a reboot keeps (the
    system's temporary folder may be memory, or emptied at boot). With no usable home
    folder (no HOME, no passwd entry), the last resort, `last_resort_path`."""
    state = os.environ.get("XDG_STATE_HOME", "")
    if os.path.isabs(state):
        base = Path(state)
    else:
        try:
            base = Path.home() / ".local" / "state"
        except RuntimeError:  # no HOME and no passwd entry (a container's bare uid)
            return last_resort_path(log_path)
        if not base.is_absolute():
            return last_resort_path(log_path)
    return base / "hcepay" / "spool" / f"{_key(log_path)}{SPOOL_SUFFIX}"


def last_resort_path(log_path: Path) -> Path:
    """The system's temporary folder, per user (where hcepay spooled before the state
    folder): written only when nothing else is, and always read, so nothing kept there is
    forgotten."""
    folder = Path(tempfile.gettempdir()) / f"hcepay-spool-{os.getuid()}"
    return folder / f"{_key(log_path)}{SPOOL_SUFFIX}"


def spool_paths(log_path: Path) -> tuple[Path, ...]:
    """Where a spool for this log may be, in the order they are tried (no path twice)."""
    paths = (primary_path(log_path), fallback_path(log_path), last_resort_path(log_path))
    return tuple(dict.fromkeys(paths))


def _check_private(path: Path, log_path: Path) -> None:
    """Use a folder other than the log's own only when it is a real folder of this user
    that no one else can read or write (OSError otherwise): what it holds is trusted as
    this user's."""
    if path == primary_path(log_path):
        return
    info = os.lstat(path.parent)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PermissionError(
            errno.EPERM, "not a private folder of this user (mode 0700)", str(path.parent)
        )


APPEND_WAIT_S = 2.0  # an append waits this long for a running import, then tries elsewhere


@contextmanager
def _locked(path: Path, wait_s: float | None = None) -> Iterator[None]:
    """Hold `<spool>.lock` (flock): an append and an import of the same spool never
    interleave, so an import cannot rewrite away a line appended while it ran. With
    `wait_s`, BlockingIOError (an OSError) once that long has passed."""
    try:
        fd = flock_file(path.with_name(path.name + ".lock"), wait_s)
    except BlockingIOError:
        raise BlockingIOError(errno.EWOULDBLOCK, "busy (hcepay log recover is running)") from None
    try:
        yield
    finally:
        os.close(fd)


def _append(path: Path, line: bytes) -> None:
    """Append one line durably: the line fsynced, and the file's name too when this makes it
    (else a power cut could take the only copy of an unrecorded payment). A last line cut
    short (a full disk, a crash) is ended first, so that it stays one unreadable line and
    does not swallow this one."""
    with _locked(path, APPEND_WAIT_S):
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                write_all(fd, b"\n")
            write_all(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_folder(path.parent)


def append(log_path: Path, entry: SpoolEntry) -> Path:
    """Keep one verified payment durably; returns the spool file it went to (SpoolError)."""
    line = json.dumps(dict(entry), sort_keys=True, separators=(",", ":")).encode() + b"\n"
    if len(line) > MAX_LINE:
        raise SpoolError(f"entry of {len(line)} bytes exceeds {MAX_LINE}")
    errors: list[str] = []
    for path in spool_paths(log_path):
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _check_private(path, log_path)
            _append(path, line)
        except OSError as exc:
            errors.append(f"{path}: {exc.strerror or exc}")
            continue
        return path
    raise SpoolError("; ".join(errors))


def read(path: Path, log_path: Path | None = None) -> tuple[list[dict[str, SpoolValue]], int]:
    """The entries of one spool file (its first MAX_ENTRIES lines) and the count of
    unreadable lines (SpoolError). With `log_path`, a fallback spool outside a private
    folder of this user is not read (a warning says so): anyone may make that folder, and
    nothing this user wrote is there."""
    entries, bad, _ = _read(path, log_path)
    return entries, bad


def _read(
    path: Path, log_path: Path | None
) -> tuple[list[dict[str, SpoolValue]], int, list[bytes]]:
    """`read`, and the lines after the first MAX_ENTRIES (kept as they are by an import)."""
    try:
        if log_path is not None:
            _check_private(path, log_path)
    except FileNotFoundError:
        return [], 0, []
    except OSError as exc:
        log.warning("spool %s not read: %s", path, exc.strerror or exc)
        return [], 0, []
    try:
        raw = read_regular(path)
    except FileNotFoundError:
        return [], 0, []
    except OSError as exc:
        raise SpoolError(f"{path}: {read_problem(exc)}") from None
    entries: list[dict[str, SpoolValue]] = []
    bad = 0
    lines = raw.splitlines()
    for line in lines[:MAX_ENTRIES]:
        if not line.strip():
            continue
        try:
            value = json.loads(line) if len(line) <= MAX_LINE else None
        except (ValueError, UnicodeDecodeError, RecursionError):  # nested too deeply
            value = None
        if isinstance(value, dict) and all(
            isinstance(v, str | int) or v is None for v in value.values()
        ):
            entries.append(value)
        else:
            bad += 1  # a torn last line after a crash mid-append
    return entries, bad, lines[MAX_ENTRIES:]


def present(path: Path) -> bool:
    """Whether a spool file is at `path`. One the system cannot look up (a name too long in
    $XDG_STATE_HOME) is not, with a warning, as `_read` passes over a folder it cannot use:
    exists() raised, an internal error of `hcepay log recover`."""
    try:
        return path.exists()
    except OSError as exc:
        log.warning("spool %s not read: %s", path, exc.strerror or exc)
        return False


def pending_count(log_path: Path) -> int:
    """How many spooled entries wait for `hcepay log recover`."""
    total = 0
    for path in spool_paths(log_path):
        total += len(read(path, log_path)[0])
    return total


def _rewrite(path: Path, entries: list[dict[str, SpoolValue]], rest: list[bytes]) -> None:
    """Replace the spool atomically with the entries still to import and the lines not read
    yet (or remove it when there are none)."""
    if not entries and not rest:
        path.unlink(missing_ok=True)
        return
    data = b"".join(
        json.dumps(e, sort_keys=True, separators=(",", ":")).encode() + b"\n" for e in entries
    ) + b"".join(line + b"\n" for line in rest)
    write_atomic(path, data, 0o600)


def _keep_unreadable(path: Path) -> Path:
    """Copy the spool aside as `<spool>.bad` before a rewrite drops its unreadable lines;
    the `.bad` file's path."""
    aside = path.with_name(path.name + ".bad")
    try:
        _append(aside, path.read_bytes())
    except OSError as exc:
        raise SpoolError(f"{path}: {exc.strerror or exc}") from None
    return aside


def import_spool(
    log_path: Path, insert: Callable[[dict[str, SpoolValue]], Imported]
) -> ImportReport:
    """Feed every spooled entry to `insert` (the log's writer); keep those that fail.

    `insert` raises on a log that still cannot be written: the entry stays spooled.
    """
    inserted = duplicates = remaining = bad_lines = 0
    kept_aside: list[Path] = []
    for path in spool_paths(log_path):
        if not present(path):
            continue
        with _locked(path):  # no append lands between the read and the rewrite
            entries, bad, rest = _read(path, log_path)
            bad_lines += bad
            if bad:
                kept_aside.append(_keep_unreadable(path))
            if not entries and not rest and not bad:
                continue
            keep: list[dict[str, SpoolValue]] = []
            for entry in entries:
                try:
                    outcome = insert(entry)
                except Exception:  # the log is still broken: the entry must not be lost
                    keep.append(entry)
                    continue
                if outcome is Imported.INSERTED:
                    inserted += 1
                else:
                    duplicates += 1
            remaining += len(keep) + len(rest)
            try:
                _rewrite(path, keep, rest)
            except OSError as exc:
                raise SpoolError(f"{path}: {exc.strerror or exc}") from None
    return ImportReport(inserted, duplicates, remaining, bad_lines, tuple(kept_aside))
