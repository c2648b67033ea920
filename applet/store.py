"""Durable card state (PROTOCOL.md §6, §9): commit() returns only once the state is stored.

FileStateStore keeps `<folder>/state.dat`: two fixed-size slots, written in turn, the way a
card's EEPROM transaction buffer works. A commit writes the next sequence number into the
slot that does *not* hold the current state, in place, and `fdatasync`s it: one flush, no
rename, no folder sync (the file's size and blocks never change after it is made). Each slot
ends with a SHA-256 over its header and payload, so a write torn by a kill or a power cut
fails its check and `load` takes the other slot, which holds the state before it. A kill at
any moment leaves the old or the new state, never a torn one. A commit whose write or flush
failed is written again, in its own slot, by the next commit: what a failed fdatasync did not
write may still be read back, and the other slot is the last state known to be stored. A
new process writes the newest slot again before its card answers (`settle`), for the same
reason: the process whose flush failed may have ended.

Slot layout (big-endian): magic `HCEPAYS2` (8) | sequence (8) | payload length (4) |
payload (the state's binary form, applet/state.py) | SHA-256 of all before it (32). The
magic's last digit is the payload's binary version: a slot `HCEPAYS1` (version 1, written
before answers were kept as their inputs) is read as well.
Slot `seq % 2` holds sequence `seq`. A folder with no `state.dat` but a `state.json` (the
state's JSON form, written by hand or by a tool) starts from that state; the first commit
makes `state.dat` and removes `state.json`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import stat
import struct
import sys
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from queue import SimpleQueue
from typing import Final, Protocol, TypeVar

from applet.errors import StateFileError
from applet.state import (
    BINARY_VERSION,
    MAX_STATE_TEXT,
    CardState,
    state_from_bytes,
    state_from_json,
    state_to_bytes,
)
from authority.home import flock_file, fsync_folder, read_problem, write_all, write_atomic

log = logging.getLogger(__name__)

STATE_FILE: Final = "state.dat"
SEED_FILE: Final = "state.json"  # an optional starting state, read when state.dat is absent
SLOT_SIZE: Final = 64 * 1024 + 1024  # a payload of MAX_STATE_TEXT and the slot's framing
SLOT_MAGIC: Final = b"HCEPAYS2"
SLOT_VERSIONS: Final = {b"HCEPAYS1": 1, SLOT_MAGIC: BINARY_VERSION}  # magic -> binary version
_HEADER: Final = struct.Struct(">8sQI")
_DIGEST_SIZE: Final = 32
_NO_SEQUENCE: Final = -1


def encode_slot(sequence: int, payload: bytes) -> bytes:
    """One slot's used bytes: header, payload, SHA-256 over both."""
    if len(payload) > MAX_STATE_TEXT:
        raise ValueError(f"card state of {len(payload)} bytes exceeds {MAX_STATE_TEXT}")
    head = _HEADER.pack(SLOT_MAGIC, sequence, len(payload)) + payload
    return head + hashlib.sha256(head).digest()


def decode_slot(slot: bytes) -> tuple[int, bytes, int] | None:
    """(sequence, payload, binary version) of a well-formed slot; None for a blank, torn or
    foreign one."""
    if len(slot) < _HEADER.size + _DIGEST_SIZE:
        return None
    magic, sequence, length = _HEADER.unpack_from(slot)
    end = _HEADER.size + length
    version = SLOT_VERSIONS.get(magic)
    if version is None or length > MAX_STATE_TEXT or end + _DIGEST_SIZE > len(slot):
        return None
    if hashlib.sha256(slot[:end]).digest() != slot[end : end + _DIGEST_SIZE]:
        return None
    return sequence, slot[_HEADER.size : end], version


def _intact_slots(raw: bytes) -> list[tuple[tuple[int, bytes, int], int]]:
    """The slots of state.dat's bytes that pass their check and sit where their sequence
    says: ((sequence, payload, version), offset) each."""
    found = []
    for index in (0, 1):
        slot = decode_slot(raw[index * SLOT_SIZE : (index + 1) * SLOT_SIZE])
        if slot is not None and slot[0] % 2 == index:
            found.append((slot, index * SLOT_SIZE))
    return found


class _Committer:
    """One thread that runs store commits while the caller signs. A bare queue, not an
    executor: a Future's condition costs about 80 us a round trip, the queue about 5 us."""

    def __init__(self) -> None:
        self._jobs: SimpleQueue[_Job] = SimpleQueue()
        threading.Thread(target=self._run, name="hcepay-commit", daemon=True).start()

    def _run(self) -> None:
        while True:  # a daemon: its caller always waits for the job it gave
            job, done, then = self._jobs.get()
            try:
                job()
            except BaseException as exc:  # handed to the caller, raised there
                done.put(exc)
                continue
            done.put(None)
            if then is not None:
                try:
                    then()
                except BaseException as exc:  # spare work: the commit stands, the thread lives
                    log.debug("work after a commit failed: %s", exc)

    def start(
        self, job: Callable[[], None], then: Callable[[], None] | None = None
    ) -> SimpleQueue[BaseException | None]:
        """Run `job` on the thread; the queue gets None, or what `job` raised. After a
        `job` that succeeded the thread runs `then` (work for later, made in the wait)."""
        done: SimpleQueue[BaseException | None] = SimpleQueue()
        self._jobs.put((job, done, then))
        return done


_Job = tuple[Callable[[], None], "SimpleQueue[BaseException | None]", Callable[[], None] | None]
_committer_lock = threading.Lock()
_committers: list[_Committer] = []  # at most one: this process's commit thread


def _committer() -> _Committer:
    """This process's commit thread, started when first needed."""
    with _committer_lock:
        if not _committers:
            _committers.append(_Committer())
        return _committers[0]


def _forget_committer_in_child() -> None:
    """A forked child has no commit thread (fork copies only the calling thread), and does
    not use the blindings that thread prepared for its parent's signatures."""
    global _committer_lock
    _committer_lock = threading.Lock()
    _committers.clear()
    rsa = sys.modules.get("authority.rsa")  # not loaded: no key, nothing prepared
    if rsa is not None:
        rsa.forget_prepared()


os.register_at_fork(after_in_child=_forget_committer_in_child)
SIGNING_TRIES: Final = 3  # a signature withheld by its fault check is made again (deterministic)


T = TypeVar("T")


class StateStore(Protocol):
    """Where a card keeps its state between power-offs."""

    def load(self) -> CardState:
        """The stored state (a fresh card's when none is stored yet)."""
        ...

    def commit(self, state: CardState) -> None:
        """Store `state` durably; return only when it is stored, raise otherwise."""
        ...

    def commit_while(
        self,
        state: CardState,
        work: Callable[[], T],
        before: CardState,
        then: Callable[[], None] | None = None,
    ) -> T:
        """Store `state` while `work()` runs; `work()`'s result once both are done. When
        `work()` raises, `before` (the state held until now) is what stays stored. A store
        that waits on the disk runs `then` (work for a later command) once `state` is
        stored, while `work()` may still run; others need not run it."""
        ...


class MemoryStateStore:
    """A store in memory (tests, vectors, profiles): `commits` counts the commits."""

    def __init__(self, state: CardState | None = None) -> None:
        self.state = state if state is not None else CardState()
        self.commits = 0

    def load(self) -> CardState:
        """The state last committed."""
        return self.state

    def commit(self, state: CardState) -> None:
        """Keep `state`."""
        self.state = state
        self.commits += 1

    def commit_while(
        self,
        state: CardState,
        work: Callable[[], T],
        before: CardState,
        then: Callable[[], None] | None = None,
    ) -> T:
        """`work()`, then keep `state` (nothing to overlap in memory: `then` is not run)."""
        result = work()
        self.commit(state)
        return result


class FileStateStore:
    """`<folder>/state.dat`: two slots written in turn, each commit one in-place fdatasync."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / STATE_FILE
        self.seed_path = folder / SEED_FILE
        self._sequence: int | None = None  # of the current state; None: read it first
        self._unflushed: int | None = None  # a commit whose flush failed: its sequence
        self._legacy = False  # a version 1 slot is still intact: overwrite it at the next commit

    def load(self) -> CardState:
        """The newest valid slot's state; state.json, or a fresh card, when there is no
        state.dat; StateFileError when state.dat has no valid slot or cannot be read."""
        try:
            with self.path.open("rb") as f:
                raw = f.read(2 * SLOT_SIZE)
        except FileNotFoundError:
            self._sequence = _NO_SEQUENCE
            return self._load_seed()
        except OSError as exc:
            raise StateFileError(str(self.path), read_problem(exc)) from None
        slots = [slot for slot, _ in _intact_slots(raw)]
        if not slots:
            raise StateFileError(str(self.path), "bad card state: no intact slot")
        self._legacy = any(slot[2] == 1 for slot in slots)
        sequence, payload, version = max(slots)
        try:
            state = state_from_bytes(payload, version)
        except ValueError as exc:
            raise StateFileError(str(self.path), f"bad card state: {exc}") from None
        self._sequence = sequence
        return state

    def settle(self) -> None:
        """Write the newest intact slot again, byte for byte, and flush it and the folder,
        before a new process answers from it: a commit whose flush failed in an earlier
        process may be in memory only (a failed fdatasync drops what it did not write, while
        reads still show it), and what the card answers must be stored (P§6, §9). The same
        bytes over themselves: a write torn by a power cut leaves a stored slot as it was."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return  # nothing stored yet: the first commit makes state.dat
        except IsADirectoryError:  # said as such, not as "[Errno 21] Is a directory"
            raise StateFileError(str(self.path), "is a folder, not a file") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO: pread's "Illegal seek"
                raise StateFileError(str(self.path), "not a regular file")
            raw = os.pread(fd, 2 * SLOT_SIZE, 0)
            intact = _intact_slots(raw)
            if not intact:
                return  # load() says why
            start = max(intact)[1]
            write_all(fd, raw[start : start + SLOT_SIZE], start)
            os.fdatasync(fd)
        finally:
            os.close(fd)
        fsync_folder(self.folder)  # state.dat's name may not be stored either (sequence 0)

    def _load_seed(self) -> CardState:
        try:
            with self.seed_path.open("rb") as f:
                raw = f.read(MAX_STATE_TEXT + 1)
        except FileNotFoundError:
            return CardState()
        except OSError as exc:
            raise StateFileError(str(self.seed_path), read_problem(exc)) from None
        try:
            return state_from_json(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise StateFileError(str(self.seed_path), "bad card state: not UTF-8 text") from None
        except ValueError as exc:
            raise StateFileError(str(self.seed_path), f"bad card state: {exc}") from None

    def commit(self, state: CardState) -> None:
        """Write the next slot in place and fdatasync it (or make state.dat, atomically)."""
        self._store_slot(*self._slot_for(state))
        self._retire_version_1(state)

    def _retire_version_1(self, state: CardState) -> None:
        """After the first commit over a version 1 state.dat, write the other slot too, so
        that an older hcepay finds no version 1 slot to roll back to (it refuses the file)."""
        if self._legacy:
            self._store_slot(*self._slot_for(state))
            self._legacy = False

    def _slot_for(self, state: CardState) -> tuple[int, bytes]:
        """(sequence, slot) of the commit that stores `state`: sequence 0 makes state.dat."""
        if self._sequence is None:
            self.load()
        current = self._sequence
        assert current is not None  # set by load()
        sequence = 0 if current == _NO_SEQUENCE else current + 1
        if sequence - 1 == self._unflushed:  # what load() read may be in memory only
            sequence -= 1
        return sequence, encode_slot(sequence, state_to_bytes(state))

    def _store_slot(self, sequence: int, slot: bytes) -> None:
        """Write and flush one slot. A commit whose write or flush failed leaves its slot
        unknown on disk (a failed fdatasync may drop the pages it did not write, while a read
        still shows them), so the next commit writes that slot again: the other one keeps
        the last state known to be stored. So is state.dat's making (sequence 0): a failed
        sync of its folder leaves a file whose name a power cut may take."""
        self._sequence = None  # unknown until this commit is known to be stored
        self._unflushed = sequence
        if sequence == 0:
            self._create(slot)
        else:
            fd = os.open(self.path, os.O_WRONLY)
            try:
                write_all(fd, slot, (sequence % 2) * SLOT_SIZE)
                os.fdatasync(fd)
            finally:
                os.close(fd)
        self._unflushed = None
        self._sequence = sequence

    def commit_while(
        self,
        state: CardState,
        work: Callable[[], T],
        before: CardState,
        then: Callable[[], None] | None = None,
    ) -> T:
        """Commit on the commit thread while `work()` runs on this one (a signature: its RSA
        releases the GIL, the flush waits in the kernel, so the two overlap). The commit
        thread then runs `then` (the next signature's blinding), while `work()` goes on.

        A `work()` that fails once the state is stored is tried again (SIGNING_TRIES in all:
        a signature is deterministic, and a fault check withholds a bad one); if it still
        fails, `before` is stored again. Only if that store fails too does the new state
        stay: a deduction whose answer DF02 still makes, as after a kill (PROTOCOL.md §9)."""
        slot = self._slot_for(state)  # made here: the commit thread only writes and flushes
        stored = _committer().start(partial(self._store_slot, *slot), then)
        try:
            result = work()
        except Exception:
            failed = stored.get()
            if failed is not None:
                raise failed from None  # nothing stored: the commit's error is the one to see
            for _ in range(SIGNING_TRIES - 1):
                try:
                    return work()
                except Exception as exc:
                    log.warning("signing again after its state was stored: %s", exc)
            self.commit(before)  # the new state was stored: put the old one back
            raise
        failed = stored.get()
        if failed is not None:
            raise failed
        self._retire_version_1(state)
        return result

    def _create(self, first_slot: bytes) -> None:
        """state.dat with slot 0 = `first_slot` and a blank slot 1, all blocks written (so
        that later in-place writes change no metadata): temp file, fsync, rename, folder
        fsync. Then the seed state.json, if any, is removed."""
        write_atomic(self.path, first_slot.ljust(2 * SLOT_SIZE, b"\0"), 0o600)
        self.seed_path.unlink(missing_ok=True)


LOCK_FILE: Final = ".lock"
_held_folders: dict[Path, int] = {}  # card folders this process serves: their locked fd
_held_lock = threading.Lock()


class CardInUseError(OSError):
    """Another process serves this card folder: two would each keep their own ATC and
    used credit, and the card would be cloned (PROTOCOL.md §6)."""

    def __init__(self, folder: Path, holder: str) -> None:
        super().__init__(errno.EBUSY, "card in use", str(folder))
        self.holder = holder

    def __str__(self) -> str:
        return f"{self.filename} is in use by another process (pid {self.holder}); stop it first"


def _holder(lock_file: Path) -> str:
    """The pid the holder of a card folder's lock wrote in it ("?" when unreadable)."""
    try:
        with lock_file.open("rb") as f:
            return f.read(32).decode("ascii", "replace").strip() or "?"
    except OSError:
        return "?"


def _release_held_folders_in_child() -> None:
    """A forked child does not serve its parent's cards: it closes the inherited lock
    descriptors (the parent's lock stays), so its own open_card is refused like any other
    process's, and the lock goes when the parent ends."""
    global _held_lock
    _held_lock = threading.Lock()
    for fd in _held_folders.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _held_folders.clear()


os.register_at_fork(after_in_child=_release_held_folders_in_child)


def hold_card_folder(folder: Path) -> None:
    """Serve `folder` from this process only: an exclusive `flock` on `<folder>/.lock`,
    held until the process ends. Taking it again in the same process is a no-op, so that a
    process may reopen its card after dropping it (a process holding two runtimes of one
    card at once serves it twice: that is the caller's to avoid). CardInUseError names the
    process that holds it."""
    key = folder.resolve()
    with _held_lock:
        if key in _held_folders:
            return
        try:
            fd = flock_file(key / LOCK_FILE, wait_s=0)
        except BlockingIOError:
            raise CardInUseError(key, _holder(key / LOCK_FILE)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _held_folders[key] = fd
