"""The home folder and the paths inside it (docs/architecture.md "Home folder layout")."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Final

from authority.errors import KeyFileError

HOME_ENV: Final = "HCEPAY_HOME"
MAX_SERIAL: Final = 0xFFFFFF
LOCK_FILE: Final = ".home.lock"
LOCK_WAIT = 10.0  # seconds: a holder changes a few small files, then lets go
_LOCK_POLL: Final = 0.02


class HomeBusyError(KeyFileError):
    """Another process held the home's lock for longer than the wait."""

    def __init__(self, home: Path) -> None:
        super().__init__(str(home), "another hcepay is changing this home; try again")


def resolve_home(explicit: Path | None) -> Path:
    """The home folder: `--home`, else $HCEPAY_HOME, else ~/.hcepay."""
    if explicit is not None:
        return explicit.expanduser()
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".hcepay"


DAY_FORM: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # an authority key's expiry


def parse_day(text: str) -> date:
    """A day written YYYY-MM-DD, the one form hcepay takes for an authority key's expiry
    (`authority init --expires`, a vector's `authority_expires`); ValueError for any other
    form (date.fromisoformat also reads 20300101 and 2030-W01-1) or a day that does not
    exist."""
    if DAY_FORM.fullmatch(text) is None:
        raise ValueError(f"{text!r} is not YYYY-MM-DD")
    return date.fromisoformat(text)


def index_hex(index: int) -> str:
    """The `8F` index as two upper-case hex digits ("01")."""
    if not 0 <= index <= 0xFF:
        raise ValueError(f"authority key index {index} does not fit one byte")
    return f"{index:02X}"


def authority_dir(home: Path) -> Path:
    """<home>/authority: the authority's private keys and serials."""
    return home / "authority"


def ca_private_path(home: Path, index: int) -> Path:
    """<home>/authority/ca-IDX.pem (PKCS#8, 0600)."""
    return authority_dir(home) / f"ca-{index_hex(index)}.pem"


def ca_public_path(home: Path, index: int) -> Path:
    """<home>/authority/ca-IDX.pub.pem."""
    return authority_dir(home) / f"ca-{index_hex(index)}.pub.pem"


def serials_path(home: Path) -> Path:
    """<home>/authority/serials.json ({"next_serial": N})."""
    return authority_dir(home) / "serials.json"


def terminal_dir(home: Path) -> Path:
    """<home>/terminal: the terminal's key store."""
    return home / "terminal"


def cards_dir(home: Path) -> Path:
    """<home>/cards: one folder per issued card."""
    return home / "cards"


def os_problem(exc: OSError) -> str:
    """What an OSError says of its file in plain words ("PATH: is a folder, not a file"),
    for a one-line message: never Python's "[Errno 21] Is a directory: 'PATH'". An
    OSError subclass with its own message (CardInUseError) keeps it."""
    if type(exc).__str__ is not OSError.__str__ or exc.errno is None:
        return str(exc)
    if exc.filename is None:
        return exc.strerror or str(exc)
    path = Path(os.fsdecode(exc.filename))
    if exc.errno == errno.EISDIR:
        return f"{path}: is a folder, not a file"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):  # a file where a folder must be
        for part in (path, *path.parents):  # bounded by the path's depth
            if part.exists() and not part.is_dir():
                return f"{part}: is a file, not a folder"
    return f"{path}: {exc.strerror}"


def read_problem(exc: OSError) -> str:
    """Why a file could not be read, for a one-line message after its path: "is a folder,
    not a file", else "cannot read (<the system's reason>)"."""
    if exc.errno == errno.EISDIR:
        return "is a folder, not a file"
    return f"cannot read ({exc.strerror})"


def read_regular(path: Path) -> bytes:
    """The bytes of `path`, which must be a regular file: a FIFO put in its place would
    block the read forever (the command never ends), a device never end. OSError otherwise
    (IsADirectoryError for a folder, as read_bytes raises it)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):  # before fdopen, whose error names the fd, not the file
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as f:
        return f.read()


def write_all(fd: int, data: bytes, offset: int | None = None) -> None:
    """Every byte of `data` (a write may take fewer): at `offset` with pwrite, else at the
    file position (or the end, for O_APPEND); OSError when the system writes nothing."""
    view = memoryview(data)
    while view:  # bounded: each write takes at least one byte
        done = os.write(fd, view) if offset is None else os.pwrite(fd, view, offset)
        if done <= 0:
            raise OSError(f"short write ({len(data) - len(view)} of {len(data)} bytes)")
        view = view[done:]
        if offset is not None:
            offset += done


def fsync_folder(folder: Path) -> None:
    """Make the names in `folder` durable (a file it created, a rename into it)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a file whole or not at all, and durably (a temp file of its own in the same
    folder, every byte written, fsync, rename, fsync of the folder): after a power cut the
    file holds the old bytes or the new ones, and a rename that returned is kept (the serial
    counter never steps back, PROTOCOL.md §5.1). Each call has its own temp file, so that
    writers in other processes never truncate or rename each other's; no temp file is left
    behind, even when the write fails or is interrupted. Two writers of one file: the last
    rename wins, whole (a read-modify-write needs the home's lock, hold_home)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        try:
            os.fchmod(fd, mode)
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:  # also KeyboardInterrupt: no temp file is left behind
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_folder(path.parent)


class _Held:
    """This process's hold on one home: its lock file and how deep the holds nest."""

    def __init__(self) -> None:
        self.thread = threading.RLock()
        self.fd = -1
        self.depth = 0


_held: dict[Path, _Held] = {}
_held_guard = threading.Lock()


def _forget_holds_in_child() -> None:
    """A forked child does not hold its parent's locks: it closes its copies of the lock
    files (which leaves the parent's flock in place) and starts with no hold."""
    global _held, _held_guard
    for held in _held.values():
        if held.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(held.fd)
        held.fd = -1  # a hold the child leaves later must close nothing (its number is reused)
    _held, _held_guard = {}, threading.Lock()


os.register_at_fork(after_in_child=_forget_holds_in_child)


@contextlib.contextmanager
def hold_home(home: Path, wait: float | None = None) -> Iterator[None]:
    """Hold the home's lock: an exclusive `flock` on `<home>/.home.lock`, for one
    read-modify-write of the home's shared files (key store, revocation list, serial counter,
    authority keys). Waits at most `wait` seconds (default LOCK_WAIT), then HomeBusyError;
    OSError when the lock file cannot be made. Nests in one process; threads of one process
    take turns; a forked child holds nothing. Hold it for file changes, never a payment."""
    wait = LOCK_WAIT if wait is None else wait
    home.mkdir(parents=True, exist_ok=True)
    key = home.resolve()
    with _held_guard:
        held = _held.setdefault(key, _Held())
    deadline = time.monotonic() + wait
    if not held.thread.acquire(timeout=wait):
        raise HomeBusyError(home)
    try:
        if held.depth == 0:
            held.fd = _lock(key / LOCK_FILE, deadline, home)
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0 and held.fd >= 0:  # -1: a forked child's copy, closed at fork
                os.close(held.fd)  # closing the file lets go of its flock
                held.fd = -1
    finally:
        held.thread.release()


def _lock(path: Path, deadline: float, home: Path) -> int:
    """The lock file, open and flock'ed (polled until `deadline`)."""
    try:
        return flock_file(path, max(0.0, deadline - time.monotonic()))
    except BlockingIOError:
        raise HomeBusyError(home) from None


def flock_file(path: Path, wait_s: float | None = None) -> int:
    """`path` opened (made 0600 when missing) and flock'ed exclusively: its descriptor, whose
    closing lets go. Waits as long as it takes, or with `wait_s` polls that long at most and
    then raises BlockingIOError (0: one try). The one lock of the home, the spool and the
    card folder."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        if wait_s is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return fd
        deadline = time.monotonic() + wait_s
        while True:  # bounded by the deadline
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(_LOCK_POLL)
    except BaseException:
        os.close(fd)
        raise


def _read_next_serial(path: Path) -> int:
    """The serials file's next serial; KeyFileError says in plain words what is wrong."""
    if not path.exists():
        return 1
    try:
        text = read_regular(path).decode("utf-8")
    except UnicodeDecodeError:
        raise KeyFileError(str(path), "bad serials file: not UTF-8 text") from None
    except OSError as exc:
        raise KeyFileError(str(path), read_problem(exc)) from None
    try:
        raw = json.loads(text)
    except ValueError:
        raise KeyFileError(str(path), "bad serials file: not valid JSON") from None
    except RecursionError:  # json's decoder recurses once per level
        raise KeyFileError(str(path), "bad serials file: nested too deeply") from None
    if not isinstance(raw, dict) or "next_serial" not in raw:
        raise KeyFileError(str(path), 'bad serials file: must be {"next_serial": N}')
    value = raw["next_serial"]
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SERIAL + 1:
        raise KeyFileError(str(path), "next_serial must be an integer 1..16777216")
    return value


def _next_serial(home: Path) -> int:
    """The serials file's next serial; with no file (never made, or lost), the one after the
    highest serial of the cards issued in this home, so that a lost file repeats no serial
    of theirs (PROTOCOL.md §5.1: unique). A card whose card.json cannot be read is passed
    over: it says nothing of its serial."""
    path = serials_path(home)
    if path.exists():
        return _read_next_serial(path)
    highest = 0
    for card in sorted(cards_dir(home).glob("*/card.json"))[:MAX_SCANNED_CARDS]:
        try:
            serial = json.loads(card.read_text(encoding="utf-8")).get("serial")
        except (OSError, ValueError, AttributeError, RecursionError):  # nested too deeply
            continue
        if isinstance(serial, int) and not isinstance(serial, bool) and serial > highest:
            highest = min(serial, MAX_SERIAL)
    return highest + 1


MAX_SCANNED_CARDS = 100_000  # bound on the folders read when the serials file is lost


def peek_serial(home: Path) -> int:
    """The serial the next license will get (1 when none was issued)."""
    return _next_serial(home)


def allocate_serial(home: Path) -> int:
    """Take the next license serial and store its successor, under the home's lock
    (PROTOCOL.md §5.1: unique, also when processes issue at once). HomeBusyError when
    the lock cannot be had."""
    path = serials_path(home)
    with hold_home(home):
        serial = _next_serial(home)
        if serial > MAX_SERIAL:
            raise KeyFileError(str(path), "no license serials left (3 bytes)")
        write_atomic(path, (json.dumps({"next_serial": serial + 1}) + "\n").encode())
    return serial
