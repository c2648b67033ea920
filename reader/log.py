"""The terminal's transaction log: SQLite at <home>/terminal.db (PROTOCOL.md §7, §9).

WAL journal, `synchronous=FULL` (each commit is on disk when it returns), a schema version in
`user_version` with one migration per version. `UNIQUE(account, atc)`: a second row for the
same (account, ATC) is refused with ReplayError (check 5). Each row keeps what §7 lists plus
the license, remainder, exponent, record 1 value and CDOL1 data, so `verify` can re-open the
license and the authorization later with the authority's public key.

Pending entries (PROTOCOL.md §9), since schema version 3: an entry written before GENERATE AC
(since version 4 with the serial of the license checked before it) lives in `pending_open`
(only the transactions in flight or torn, so the look-up at the start of every payment stays
small). Recording a payment's row at its own contact removes its entry in the same
transaction: the row stands for it. An entry settled later (a torn transaction at the card's
next contact, PROTOCOL.md §9; a payment imported from the spool), or closed without a row,
moves instead to `pending_closed` with its outcome ("recorded", "refused", "not paid: <why>"),
so `hcepay log` shows what became of each torn transaction. Both tables
are WITHOUT ROWID, keyed by (account, ATC): a payment's two commits (its two WAL fsyncs)
write one page for the pending entry, then three (the row, its (account, ATC) index, the
entry removed from `pending_open`).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import Final

from reader.checks import ReplayError, Verdict, verdict_of
from reader.flow import Outcome
from reader.recovery import PendingEntry
from reader.spool import Imported

LOG_FILE: Final = "terminal.db"
SCHEMA_VERSION: Final = 4
MAX_ROWS: Final = 1_000_000  # bound on one listing
BUSY_TIMEOUT_S: Final = 10.0
_BUSY_POLL_S: Final = 0.01

# One entry per version: the statements that take a log from version N-1 to N.
MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE transactions (
            id INTEGER PRIMARY KEY,
            time TEXT NOT NULL,
            terminal_id TEXT NOT NULL,
            merchant_id TEXT NOT NULL,
            account TEXT NOT NULL,
            amount INTEGER NOT NULL,
            currency INTEGER NOT NULL,
            atc INTEGER NOT NULL,
            unpredictable_number BLOB NOT NULL,
            cid INTEGER NOT NULL,
            serial INTEGER NOT NULL,
            ca_index INTEGER NOT NULL,
            authorization BLOB NOT NULL,
            license BLOB NOT NULL,
            remainder BLOB NOT NULL,
            exponent BLOB NOT NULL,
            record1_value BLOB NOT NULL,
            cdol1_data BLOB NOT NULL,
            UNIQUE (account, atc)
        )""",
        """CREATE TABLE pending (
            account BLOB NOT NULL,
            atc INTEGER NOT NULL,
            cdol1_data BLOB NOT NULL,
            created TEXT NOT NULL,
            PRIMARY KEY (account, atc)
        )""",
    ),
    ("ALTER TABLE pending ADD COLUMN outcome TEXT",),  # NULL while the entry is open
    (
        """CREATE TABLE pending_open (
            account BLOB NOT NULL,
            atc INTEGER NOT NULL,
            cdol1_data BLOB NOT NULL,
            created TEXT NOT NULL,
            PRIMARY KEY (account, atc)
        ) WITHOUT ROWID""",
        """CREATE TABLE pending_closed (
            account BLOB NOT NULL,
            atc INTEGER NOT NULL,
            cdol1_data BLOB NOT NULL,
            created TEXT NOT NULL,
            outcome TEXT NOT NULL,
            PRIMARY KEY (account, atc)
        ) WITHOUT ROWID""",
        "INSERT INTO pending_open SELECT account, atc, cdol1_data, created FROM pending "
        "WHERE outcome IS NULL",
        "INSERT INTO pending_closed SELECT account, atc, cdol1_data, created, outcome "
        "FROM pending WHERE outcome IS NOT NULL",
        "DROP TABLE pending",
    ),
    (  # the license serial checked before GENERATE AC (NULL for older entries), PROTOCOL.md §9
        "ALTER TABLE pending_open ADD COLUMN serial INTEGER",
        "ALTER TABLE pending_closed ADD COLUMN serial INTEGER",
    ),
)
OUTCOME_RECORDED: Final = "recorded"
OUTCOME_REPLAY: Final = "refused: replay (its account and ATC are in the log already)"


class LogError(Exception):
    """The log cannot be opened or written; `.reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class PendingRow:
    """A pending entry and what became of it (None while open), PROTOCOL.md §9."""

    entry: PendingEntry
    created: str
    outcome: str | None


@dataclass(frozen=True)
class LogRow:
    """One recorded transaction: its row id and what the terminal decided and checked."""

    id: int
    outcome: Outcome


_COLUMNS: Final = tuple(f.name for f in fields(Outcome) if f.name != "verdict")
# Column names are this module's constants (Outcome's fields), never input.
_INSERT: Final = (
    f"INSERT INTO transactions ({', '.join(_COLUMNS)}) "  # noqa: S608
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)
_SELECT: Final = f"SELECT id, {', '.join(_COLUMNS)} FROM transactions ORDER BY id LIMIT ?"  # noqa: S608
_NEWEST: Final = _SELECT.replace("ORDER BY id", "ORDER BY id DESC")
_SELECT_LAST: Final = f"SELECT * FROM ({_NEWEST}) ORDER BY id"  # noqa: S608
_VALUES: Final = attrgetter(*_COLUMNS)
_TIME: Final = _COLUMNS.index("time")
_WRITE_PENDING: Final = (
    "INSERT OR REPLACE INTO pending_open (account, atc, cdol1_data, created, serial) "
    "VALUES (?, ?, ?, ?, ?)"
)
_CLOSE_PENDING: Final = (
    "INSERT OR REPLACE INTO pending_closed (account, atc, cdol1_data, created, outcome, serial) "
    "SELECT account, atc, cdol1_data, created, ?, serial FROM pending_open "
    "WHERE account = ? AND atc = ?"
)
_VERSION_AND_TABLES: Final = (
    "SELECT (SELECT user_version FROM pragma_user_version), EXISTS (SELECT 1 FROM sqlite_master), "
    "EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'transactions')"
)
_SELECT_CDOL1: Final = "SELECT cdol1_data FROM transactions WHERE account = ? AND atc = ?"
_DELETE_OPEN: Final = "DELETE FROM pending_open WHERE account = ? AND atc = ?"
# an entry closed as not paid whose payment is recorded later (from the spool): recorded
_MARK_RECORDED: Final = (
    "UPDATE pending_closed SET outcome = ? WHERE account = ? AND atc = ? AND cdol1_data = ?"
)
_SELECT_OPEN: Final = (
    "SELECT account, atc, cdol1_data, serial FROM pending_open ORDER BY created, atc LIMIT ?"
)
# An entry written again after it was closed (PROTOCOL.md §9 crash case) shows as open.
_SELECT_ALL_PENDING: Final = (
    "SELECT account, atc, cdol1_data, created, NULL, serial FROM pending_open "
    "UNION ALL "
    "SELECT account, atc, cdol1_data, created, outcome, serial FROM pending_closed AS c "
    "WHERE NOT EXISTS (SELECT 1 FROM pending_open AS o "
    "WHERE o.account = c.account AND o.atc = c.atc) "
    "ORDER BY 4, 2 LIMIT ?"
)


def log_path(home: Path) -> Path:
    """<home>/terminal.db."""
    return home / LOG_FILE


def outcome_to_json(outcome: Outcome) -> dict[str, str | int]:
    """The outcome as a flat JSON object (hex for bytes, ISO 8601 for the time)."""
    out: dict[str, str | int] = {}
    for key, value in asdict(outcome).items():
        if isinstance(value, bytes):
            out[key] = value.hex().upper()
        elif isinstance(value, datetime):
            out[key] = value.isoformat()
        else:
            out[key] = str(value) if key == "verdict" else value
    return out


_TYPES: Final[dict[object, type]] = {
    "int": int,
    "bytes": bytes,
    "str": str,
    int: int,
    bytes: bytes,
    str: str,
}
# each field's type (the annotations are strings): what a row or a spooled entry holds
_COLUMN_TYPES: Final = {f.name: _TYPES.get(f.type) for f in fields(Outcome)}


def outcome_from_json(obj: Mapping[str, str | int | None]) -> Outcome:
    """The inverse of `outcome_to_json`; ValueError (or KeyError) when malformed. A field is
    read only as the JSON type `outcome_to_json` writes: an integer (no boolean), else text."""
    values: dict[str, object] = {}
    for f in fields(Outcome):
        raw = obj[f.name]
        if _COLUMN_TYPES[f.name] is int:
            if not isinstance(raw, int) or isinstance(raw, bool):
                raise ValueError(f"{f.name} must be an integer")
            values[f.name] = raw
        elif not isinstance(raw, str):
            raise ValueError(f"{f.name} must be text")
        elif f.name == "verdict":
            values[f.name] = Verdict(raw)
        elif f.name == "time":
            values[f.name] = datetime.fromisoformat(raw)
        elif _COLUMN_TYPES[f.name] is bytes:
            values[f.name] = bytes.fromhex(raw)
        else:
            values[f.name] = raw
    return Outcome(**values)  # type: ignore[arg-type]


class TransactionLog:
    """The SQLite transaction log (one connection; close it, or use it as a context)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if path.is_dir():  # SQLite says only "unable to open database file"
            raise LogError(f"{path}: is a folder, not a file")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise LogError(_unopened(path, exc) or f"cannot open {path}: {exc}") from None
        try:
            self._check_ours()
            self._use_wal()
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.Error as exc:
            self._db.close()
            raise LogError(_unopened(path, exc) or f"cannot use {path}: {exc}") from None
        except LogError:
            self._db.close()
            raise

    def _check_ours(self) -> None:
        """Refuse, before any write, an SQLite database that is not a log: no schema version
        and tables of its own (another program's file), a negative version, a version newer
        than this hcepay's, or a version and no transactions table. Such a file had the log's
        tables added, or was switched to WAL (even by the read-only `hcepay log`) and then
        refused or taken for a log. One statement, so one snapshot: read apart, another
        process's first migration (tables and version 1, one commit) could land between the
        reads and a new log was refused."""
        version, has_tables, has_log = self._db.execute(_VERSION_AND_TABLES).fetchone()
        if version < 0:  # no log has one; MIGRATIONS[version - 1] would count from the end
            raise LogError(f"{self.path}: not an hcepay transaction log (schema version {version})")
        self._check_known(version)  # before the switch to WAL (another program's version)
        if version == 0 and has_tables:
            raise LogError(f"{self.path}: not an hcepay transaction log (tables of its own)")
        if version > 0 and not has_log:  # every version has it: another program's version
            raise LogError(
                f"{self.path}: not an hcepay transaction log (schema version {version}, "
                "no transactions table)"
            )

    def _use_wal(self) -> None:
        """Switch to WAL. A new log's switch needs its exclusive lock, and SQLite answers
        "database is locked" at once, without its busy wait, to a process that asks while
        another one opens the new log too: it is asked again until the busy timeout."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:  # bounded by the deadline
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                busy = getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() > deadline:
                    raise
            time.sleep(_BUSY_POLL_S)

    def __enter__(self) -> TransactionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    @property
    def version(self) -> int:
        """The schema version stored in `user_version`."""
        row = self._db.execute("PRAGMA user_version").fetchone()
        return int(row[0])

    def _check_known(self, version: int) -> None:
        """LogError for a schema version newer than this hcepay's (a newer hcepay's log, or
        another program's file that keeps its own version in `user_version`)."""
        if version > SCHEMA_VERSION:
            raise LogError(
                f"{self.path} has schema version {version}; this hcepay knows up to "
                f"{SCHEMA_VERSION}"
            )

    def _migrate(self) -> None:
        """Bring the schema to SCHEMA_VERSION, one version per transaction."""
        current = self.version
        self._check_known(current)
        for version in range(current + 1, SCHEMA_VERSION + 1):
            self._db.execute("BEGIN IMMEDIATE")
            if self.version >= version:  # another process migrated while we waited
                self._db.execute("COMMIT")
                continue
            try:
                for statement in MIGRATIONS[version - 1]:
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {version:d}")
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    def write_pending(self, pending: PendingEntry, now: datetime) -> None:
        """Store the pending entry durably before GENERATE AC (PROTOCOL.md §9): one
        statement in autocommit mode is one transaction, on disk when it returns
        (`synchronous=FULL`). Writing an entry again reopens it."""
        try:
            entry = (pending.account, pending.atc, pending.cdol1_data, now.isoformat())
            self._db.execute(_WRITE_PENDING, (*entry, pending.serial))
        except sqlite3.Error as exc:
            why = _unopened(self.path, exc) or f"cannot write the pending entry: {exc}"
            raise LogError(why) from None

    def close_pending(self, pending: PendingEntry, outcome: str = "refused") -> None:
        """Close an open pending entry (a refusal, or a decision of PROTOCOL.md §9) in one
        durable transaction; nothing happens when it is not open."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._close(pending.account, pending.atc, outcome)
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise
        except sqlite3.Error as exc:
            raise LogError(f"cannot close the pending entry: {exc}") from None

    def _rollback(self) -> None:
        """Undo the open transaction, if there is one: an interrupt (Ctrl-C) may come
        just after COMMIT, with nothing left to undo; it then goes on as it came (it was
        "cannot rollback - no transaction is active", a LogError that hid it)."""
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _close(self, account: bytes, atc: int, outcome: str) -> bool:
        """Move the open entry (account, ATC) to `pending_closed`, inside a transaction;
        whether there was one."""
        moved = self._db.execute(_CLOSE_PENDING, (outcome, account, atc))
        if moved.rowcount:
            self._remove(account, atc)
        return bool(moved.rowcount)

    def _remove(self, account: bytes, atc: int) -> None:
        """Remove the open entry (account, ATC), inside a transaction."""
        self._db.execute(_DELETE_OPEN, (account, atc))

    def pending(self) -> list[PendingEntry]:
        """The open pending entries (torn transactions waiting for the card), oldest first.

        Reads `pending_open` only: its size is the number of open entries, not the history.
        """
        try:
            rows = self._db.execute(_SELECT_OPEN, (MAX_ROWS,)).fetchall()
        except sqlite3.Error as exc:
            raise LogError(f"cannot read the pending entries: {exc}") from None
        return [_entry(a, t, c, n) for a, t, c, n in rows]

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Every read inside sees one state of the log (one read transaction, WAL): `hcepay
        log --json` reads the rows twice, to check them, then to print them."""
        try:
            self._db.execute("BEGIN")
        except sqlite3.Error as exc:
            raise LogError(f"cannot read the log: {exc}") from None
        try:
            yield
        finally:
            if self._db.in_transaction:  # it only read: ending it changes nothing
                with suppress(sqlite3.Error):  # a damaged log's error is the one raised above
                    self._db.execute("ROLLBACK")

    def pending_rows(self, limit: int = MAX_ROWS) -> list[PendingRow]:
        """Every pending entry, open or closed, with its outcome (for `hcepay log`)."""
        try:
            rows = self._db.execute(_SELECT_ALL_PENDING, (min(limit, MAX_ROWS),)).fetchall()
        except sqlite3.Error as exc:
            raise LogError(f"cannot read the pending entries: {exc}") from None
        out = []
        for a, t, c, w, o, n in rows:
            if not isinstance(w, str) or not isinstance(o, str | None):
                raise LogError(f"{_unreadable(a, t)}: its time or outcome is not text")
            out.append(PendingRow(_entry(a, t, c, n), w, o))
        return out

    def record(self, outcome: Outcome, *, later: bool = False) -> int:
        """Store a checked transaction and close its pending entry, in one durable commit:
        the entry is removed (the row stands for it), or, for a payment recorded after its
        own contact (`later`: a torn payment proven at the next one, PROTOCOL.md §9, or one
        imported from the spool), moved to `pending_closed` as "recorded".

        ReplayError when (account, ATC) is stored already (PROTOCOL.md §7 check 5): nothing
        is stored, and the pending entry for that (account, ATC) is closed, as "recorded"
        when the stored row is this same transaction (its CDOL1 data), else as a replay.
        """
        values = list(_VALUES(outcome))
        values[_TIME] = outcome.time.isoformat()
        padded = bytes.fromhex(outcome.account.ljust(20, "F"))
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cursor = self._db.execute(_INSERT, values)
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                stored = self._db.execute(_SELECT_CDOL1, (outcome.account, outcome.atc)).fetchone()
                # as stored: a row edited by hand may hold text (bytes() raised TypeError) or
                # a large integer (bytes(n) is n zero bytes: MemoryError), and the replay was
                # spooled as not recorded, its entry left open, at every later contact
                same = stored is not None and stored[0] == outcome.cdol1_data
                self.close_pending(
                    PendingEntry(padded, outcome.atc, outcome.cdol1_data),
                    OUTCOME_RECORDED if same else OUTCOME_REPLAY,
                )
                raise ReplayError(
                    f"account {outcome.account} ATC {outcome.atc:04X} is in the log already"
                ) from None
            if not later:
                self._remove(padded, outcome.atc)
            elif not self._close(padded, outcome.atc, OUTCOME_RECORDED):
                # closed already (as not paid: the card paid elsewhere before it came back)
                # while its row waited in the spool: the entry's outcome follows the row
                marked = (OUTCOME_RECORDED, padded, outcome.atc, outcome.cdol1_data)
                self._db.execute(_MARK_RECORDED, marked)
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise LogError(f"cannot record the transaction: {exc}") from None
        row_id = cursor.lastrowid
        if row_id is None:
            raise LogError("the log returned no row id")
        return row_id

    def import_entry(self, entry: Mapping[str, str | int | None]) -> Imported:
        """Record one spooled outcome (reader/spool.py): INSERTED, or DUPLICATE when its
        (account, ATC) is stored already. ValueError/KeyError for a malformed entry."""
        try:
            self.record(outcome_from_json(entry), later=True)
        except ReplayError:
            return Imported.DUPLICATE
        return Imported.INSERTED

    def count(self) -> int:
        """How many transactions are recorded; LogError when the log cannot be read (a
        damaged index: the rows read through the table, the count through the index)."""
        try:
            return int(self._db.execute("SELECT COUNT(*) FROM transactions").fetchone()[0])
        except sqlite3.Error as exc:
            raise LogError(f"cannot count the transactions: {exc}") from None

    def rows(self, limit: int = MAX_ROWS, *, last: bool = False) -> Iterator[LogRow]:
        """The recorded transactions, oldest first: the first `limit`, or with `last` the
        last `limit`; LogError naming the first row that cannot be read back: a column not
        of its type, a time not as written (a log edited by hand or damaged; `hcepay log
        --verify` re-checks every other column against the signatures)."""
        query = _SELECT_LAST if last else _SELECT
        try:
            for row in self._db.execute(query, (min(limit, MAX_ROWS),)):
                yield LogRow(int(row[0]), _outcome(row))
        except sqlite3.Error as exc:
            raise LogError(f"cannot read the transactions: {exc}") from None


def _unopened(path: Path, exc: Exception) -> str | None:
    """Why the log at `path` cannot be opened or written, in the file system's words, or
    None: SQLite says only "unable to open database file" or "attempt to write a readonly
    database". Even `hcepay log`, which only reads, needs the folder writable: a WAL log
    is read through its `-wal` and `-shm` files, made beside it; `pay` writes its pending
    entry before GENERATE AC (PROTOCOL.md §9), so a log it cannot write stops it before."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code not in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM):
        return None
    folder = path.parent
    read_only = "is on a read-only file system" if _read_only_fs(folder) else ""
    if not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"{path}: its folder {folder} {read_only or 'is not writable'}, and the log "
            f"writes {path.name}-wal and {path.name}-shm beside it (make the folder "
            "writable by this user, or give another --home)"
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        can = "writable" if os.access(path, os.R_OK) else "readable"
        why = read_only or f"is not {can} by this user"
        return f"{path}: {why} (the log is read and written: make it both for this user)"
    return None


def _read_only_fs(folder: Path) -> bool:
    """Whether `folder` is on a file system mounted read-only."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _entry(account: object, atc: object, cdol1_data: object, serial: object) -> PendingEntry:
    """A pending entry as read back; LogError when a column is not of the type the log
    writes (a log edited by hand or damaged)."""
    if not isinstance(account, bytes) or not isinstance(cdol1_data, bytes):
        raise LogError(f"{_unreadable(account, atc)}: its account or CDOL1 data is no blob")
    if type(atc) is not int:
        raise LogError(f"{_unreadable(account, atc)}: its ATC is not an integer")
    if serial is not None and type(serial) is not int:
        raise LogError(f"{_unreadable(account, atc)}: its serial {serial!r} is not an integer")
    return PendingEntry(account, atc, cdol1_data, serial)


def _unreadable(account: object, atc: object) -> str:
    """The start of the error for a pending entry that cannot be read, naming it by its key
    (account, ATC) as `hcepay log` shows them, or as stored when not of their type: a log
    edited by hand is mended by hand, and the entries have no id to find this one by."""

    def cut(text: str) -> str:
        return text if len(text) <= 40 else text[:39] + "…"  # a hand-edited value: any size

    name = account.hex().upper().rstrip("F") if isinstance(account, bytes) else repr(account)
    number = f"{atc:04X}" if type(atc) is int else repr(atc)
    return f"a pending entry cannot be read (account {cut(name)}, ATC {cut(number)})"


def _outcome(row: tuple[object, ...]) -> Outcome:
    """A row of `_SELECT` as an Outcome; LogError when a column is not of the type the log
    writes, or its time not the ISO 8601 text `record` writes (a changed byte that still
    parses, such as the date-time separator, would verify)."""
    values = dict(zip(_COLUMNS, row[1:], strict=True))
    try:
        for key, value in values.items():
            if isinstance(value, memoryview):
                values[key] = value = bytes(value)
            want = _COLUMN_TYPES[key]
            if want is not None and type(value) is not want:
                raise TypeError(f"{key} is {type(value).__name__}, not {want.__name__}")
        text = values["time"]
        if not isinstance(text, str):
            raise TypeError(f"time is {type(text).__name__}, not text")
        values["time"] = time = datetime.fromisoformat(text)
        if time.isoformat() != text:
            raise ValueError(f"time {text!r} is not as the log writes it ({time.isoformat()})")
        return Outcome(verdict=verdict_of(int(str(values["cid"]))), **values)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise LogError(f"row {row[0]} cannot be read: {exc}") from None
