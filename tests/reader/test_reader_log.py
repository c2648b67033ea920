"""reader/log.py: durability settings, pending entries (PROTOCOL.md §9), replay refusal (§7
check 5) and the migration of version 1 and 2 logs to version 3."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import fields, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reader.checks import ReplayError, Verdict
from reader.flow import Outcome
from reader.log import (
    OUTCOME_REPLAY,
    SCHEMA_VERSION,
    LogError,
    TransactionLog,
    outcome_from_json,
    outcome_to_json,
)
from reader.recovery import PendingEntry
from reader.spool import Imported

ACCOUNT = "6200123456789012"
PADDED = bytes.fromhex(ACCOUNT + "FFFF")
NOW = datetime(2026, 11, 28, 12, 0, 0)
BASE = Outcome(
    Verdict.APPROVED,
    NOW,
    "TERM0001",
    "MERCHANT0000001",
    ACCOUNT,
    100,
    156,
    0,
    b"\x01\x02\x03\x04",
    0x40,
    1,
    1,
    b"a" * 128,
    b"l" * 128,
    b"r" * 20,
    b"\x03",
    b"1" * 40,
    b"c" * 29,
)

# The schema of versions 1 and 2 as earlier releases created it, kept here verbatim so that
# the migration is tested against what is on terminals, not against the module's own table.
V1_DDL = (
    """CREATE TABLE transactions (
        id INTEGER PRIMARY KEY, time TEXT NOT NULL, terminal_id TEXT NOT NULL,
        merchant_id TEXT NOT NULL, account TEXT NOT NULL, amount INTEGER NOT NULL,
        currency INTEGER NOT NULL, atc INTEGER NOT NULL, unpredictable_number BLOB NOT NULL,
        cid INTEGER NOT NULL, serial INTEGER NOT NULL, ca_index INTEGER NOT NULL,
        authorization BLOB NOT NULL, license BLOB NOT NULL, remainder BLOB NOT NULL,
        exponent BLOB NOT NULL, record1_value BLOB NOT NULL, cdol1_data BLOB NOT NULL,
        UNIQUE (account, atc))""",
    """CREATE TABLE pending (
        account BLOB NOT NULL, atc INTEGER NOT NULL, cdol1_data BLOB NOT NULL,
        created TEXT NOT NULL, PRIMARY KEY (account, atc))""",
)
V2_DDL = ("ALTER TABLE pending ADD COLUMN outcome TEXT",)
V3_DDL = (
    """CREATE TABLE pending_open (
        account BLOB NOT NULL, atc INTEGER NOT NULL, cdol1_data BLOB NOT NULL,
        created TEXT NOT NULL, PRIMARY KEY (account, atc)) WITHOUT ROWID""",
    """CREATE TABLE pending_closed (
        account BLOB NOT NULL, atc INTEGER NOT NULL, cdol1_data BLOB NOT NULL,
        created TEXT NOT NULL, outcome TEXT NOT NULL, PRIMARY KEY (account, atc)) WITHOUT ROWID""",
    "INSERT INTO pending_open SELECT account, atc, cdol1_data, created FROM pending "
    "WHERE outcome IS NULL",
    "INSERT INTO pending_closed SELECT account, atc, cdol1_data, created, outcome "
    "FROM pending WHERE outcome IS NOT NULL",
    "DROP TABLE pending",
)


def outcome(atc: int, amount: int = 100) -> Outcome:
    return replace(BASE, atc=atc, amount=amount, cdol1_data=atc.to_bytes(2, "big") * 10)


def entry(atc: int) -> PendingEntry:
    return PendingEntry(PADDED, atc, atc.to_bytes(2, "big") * 10)


def old_log(path: Path, version: int) -> None:
    """A version 1, 2 or 3 log with two rows, two closed (v2, v3) and one open pending entry
    (a version 3 log is a version 2 log that version 3's statements moved to its tables)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for statement in V1_DDL + (V2_DDL if version >= 2 else ()):
        db.execute(statement)
    for atc in (1, 2):
        o = outcome(atc, amount=atc * 100)
        db.execute(
            "INSERT INTO transactions (time, terminal_id, merchant_id, account, amount, "
            "currency, atc, unpredictable_number, cid, serial, ca_index, authorization, "
            "license, remainder, exponent, record1_value, cdol1_data) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                o.time.isoformat(),
                o.terminal_id,
                o.merchant_id,
                o.account,
                o.amount,
                o.currency,
                o.atc,
                o.unpredictable_number,
                o.cid,
                o.serial,
                o.ca_index,
                o.authorization,
                o.license,
                o.remainder,
                o.exponent,
                o.record1_value,
                o.cdol1_data,
            ),
        )
    if version >= 2:
        db.execute(
            "INSERT INTO pending VALUES (?, ?, ?, ?, 'recorded')",
            (PADDED, 2, entry(2).cdol1_data, NOW.isoformat()),
        )
        db.execute(
            "INSERT INTO pending VALUES (?, ?, ?, ?, 'not paid: no answer')",
            (PADDED, 4, entry(4).cdol1_data, (NOW + timedelta(seconds=2)).isoformat()),
        )
    db.execute(
        "INSERT INTO pending (account, atc, cdol1_data, created) VALUES (?, ?, ?, ?)",
        (PADDED, 3, entry(3).cdol1_data, (NOW + timedelta(seconds=1)).isoformat()),
    )
    for statement in V3_DDL if version == 3 else ():
        db.execute(statement)
    db.execute(f"PRAGMA user_version = {version:d}")
    db.close()


@pytest.fixture
def log(tmp_path: Path) -> Iterator[TransactionLog]:
    with TransactionLog(tmp_path / "terminal.db") as opened:
        yield opened


def test_durability_settings(log: TransactionLog) -> None:
    assert log._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert log._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert log.version == SCHEMA_VERSION == 4


def test_pending_entry_is_committed_when_written(log: TransactionLog) -> None:
    """PROTOCOL.md §9: the entry is in the database (not in an open transaction) before
    GENERATE AC is sent; another connection sees it."""
    log.write_pending(entry(7), NOW)
    assert not log._db.in_transaction
    with TransactionLog(log.path) as other:
        assert other.pending() == [entry(7)]


@pytest.mark.parametrize("version", [1, 2, 3])
def test_migration_keeps_rows_and_pending_entries(tmp_path: Path, version: int) -> None:
    path = tmp_path / "terminal.db"
    old_log(path, version)
    with TransactionLog(path) as log:
        assert log.version == SCHEMA_VERSION
        assert [(r.id, r.outcome) for r in log.rows()] == [
            (1, outcome(1, amount=100)),
            (2, outcome(2, amount=200)),
        ]
        assert log.pending() == [entry(3)]
        assert log.pending()[0].serial is None  # older entries name no checked serial
        shown = [(r.entry, r.outcome) for r in log.pending_rows()]
        if version >= 2:
            assert shown == [
                (entry(2), "recorded"),
                (entry(3), None),
                (entry(4), "not paid: no answer"),
            ]
        else:
            assert shown == [(entry(3), None)]
        tables = {r[0] for r in log._db.execute("SELECT name FROM sqlite_master")}
        assert "pending" not in tables
        with pytest.raises(ReplayError):
            log.record(outcome(2))  # UNIQUE (account, ATC) survived the migration
        log.record(outcome(3, amount=300))  # closes the migrated open entry
        assert log.pending() == []
    with TransactionLog(path) as again:  # a migrated log opens without migrating again
        assert again.count() == 3 and again.version == SCHEMA_VERSION


def test_a_pending_entry_keeps_the_serial_checked_before_it(log: TransactionLog) -> None:
    """PROTOCOL.md §9: the serial of the license checks 2-3 passed is stored with the entry
    (schema 4), open and once closed, so recovery trusts that license and no other."""
    checked = replace(entry(5), serial=0xABCDEF)
    log.write_pending(checked, NOW)
    log.write_pending(entry(6), NOW + timedelta(seconds=1))  # no serial: NULL
    assert log.pending() == [checked, entry(6)]
    log.close_pending(checked, "refused")
    assert [(r.entry, r.outcome) for r in log.pending_rows()] == [
        (checked, "refused"),
        (entry(6), None),
    ]
    still_open = replace(entry(7), serial=0x000001)
    log.write_pending(still_open, NOW + timedelta(seconds=2))
    assert [(r.entry, r.outcome) for r in log.pending_rows()][-1] == (still_open, None)
    log._db.execute("UPDATE pending_open SET serial = 'x' WHERE atc = 6")
    with pytest.raises(LogError, match="its serial 'x' is not an integer"):
        log.pending()


def test_open_entry_found_among_many_closed(log: TransactionLog) -> None:
    """A row recorded at its own contact removes its entry (the row stands for it); one
    recorded later (a torn payment proven at the next contact, P§9) keeps it, closed."""
    for atc in range(1, 401):
        log.write_pending(entry(atc), NOW + timedelta(seconds=atc))
        if atc != 123:
            log.record(outcome(atc), later=atc % 2 == 0)
    assert log.pending() == [entry(123)]
    shown = {r.entry.atc: r.outcome for r in log.pending_rows()}
    assert shown == {123: None} | {atc: "recorded" for atc in range(2, 401, 2)}
    assert log.count() == 399


def _steps(log: TransactionLog, call: Callable[[], object]) -> int:
    """How many SQLite VM instructions `call` runs (a size measure, no clock)."""
    steps = 0

    def tick() -> int:
        nonlocal steps
        steps += 1
        return 0

    log._db.set_progress_handler(tick, 1)
    try:
        call()
    finally:
        log._db.set_progress_handler(None, 1)
    return steps


def test_looking_for_open_entries_does_not_grow_with_the_history(log: TransactionLog) -> None:
    """The look-up at the start of every payment reads the open entries only."""
    log.write_pending(entry(1), NOW)
    log.record(outcome(1))
    log.write_pending(entry(2), NOW)
    small = _steps(log, log.pending)
    for atc in range(3, 503):
        log.write_pending(entry(atc), NOW)
        log.record(outcome(atc))
    assert log.pending() == [entry(2)]
    assert _steps(log, log.pending) == small


def test_query_plan_of_pending_reads_no_closed_entry(log: TransactionLog) -> None:
    seen: list[str] = []
    log._db.set_trace_callback(seen.append)
    log.pending()
    log._db.set_trace_callback(None)
    (sql,) = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    plan = " | ".join(
        str(r[3]) for r in log._db.execute(f"EXPLAIN QUERY PLAN {sql}".replace("?", "1"))
    )
    assert "pending_closed" not in plan and "transactions" not in plan, plan
    assert "pending_open" in plan, plan


def test_a_payment_imported_from_the_spool_keeps_its_entry_closed_as_recorded(
    log: TransactionLog,
) -> None:
    """A payment whose row the log could not take at its contact left its entry open; the
    import from the spool records it later, so its entry is kept, closed as "recorded"."""
    log.write_pending(entry(5), NOW)
    assert log.import_entry(outcome_to_json(outcome(5))) is Imported.INSERTED
    assert log.pending() == []
    assert [(r.entry, r.outcome) for r in log.pending_rows()] == [(entry(5), "recorded")]


def test_replay_refused_and_entry_closed(log: TransactionLog) -> None:
    log.write_pending(entry(5), NOW)
    first = log.record(outcome(5))
    log.write_pending(entry(5), NOW)  # reopened: a crash between the row and the close
    assert log.pending() == [entry(5)]
    assert [r.outcome for r in log.pending_rows()] == [None]
    with pytest.raises(ReplayError):
        log.record(outcome(5, amount=999))
    assert [(r.id, r.outcome.amount) for r in log.rows()] == [(first, 100)]
    assert log.pending() == []
    assert [(r.entry, r.outcome) for r in log.pending_rows()] == [(entry(5), "recorded")]


def test_a_replay_of_another_transaction_closes_its_entry_as_a_replay(
    log: TransactionLog,
) -> None:
    """Check 5: a second transaction under a recorded (account, ATC) (a card that reused its
    ATC) is refused, and its entry says so, not "recorded"."""
    log.write_pending(entry(5), NOW)
    log.record(outcome(5))
    other = PendingEntry(PADDED, 5, b"d" * 29)
    log.write_pending(other, NOW)
    with pytest.raises(ReplayError):
        log.record(replace(outcome(5), cdol1_data=other.cdol1_data, amount=999))
    assert log.pending() == [] and [r.outcome.amount for r in log.rows()] == [100]
    (row,) = log.pending_rows()
    assert (
        row.entry == other and row.outcome is not None and row.outcome.startswith("refused: replay")
    )


@pytest.mark.parametrize("stored", ["'x'", "1000000000000", "x'00'"])
def test_a_replay_of_a_row_edited_by_hand_is_refused_as_a_replay(
    log: TransactionLog, stored: str
) -> None:
    """A row whose CDOL1 data was edited by hand (text, an integer, other bytes) is still a
    row under its (account, ATC): a payment under it is a replay, its entry closed as one.
    It was a TypeError or a MemoryError: the payment spooled as not recorded, its entry left
    open, and every later contact of the card stopped on it."""
    log.record(outcome(5))
    log._db.execute(f"UPDATE transactions SET cdol1_data = {stored}")
    log.write_pending(entry(5), NOW)
    with pytest.raises(ReplayError):
        log.record(outcome(5))
    assert log.pending() == []
    (row,) = log.pending_rows()
    assert row.outcome == OUTCOME_REPLAY


def test_close_pending_keeps_the_outcome(log: TransactionLog) -> None:
    log.write_pending(entry(8), NOW)
    log.close_pending(entry(8), "not paid: no answer")
    log.close_pending(entry(8), "refused")  # closed already: nothing changes
    assert log.pending() == []
    assert [r.outcome for r in log.pending_rows()] == ["not paid: no answer"]


class FailingClose:
    """A connection whose writes to pending entries fail (disk full mid-transaction)."""

    def __init__(self, inner: sqlite3.Connection) -> None:
        self.inner = inner

    def execute(self, sql: str, *args: Sequence[object] | Mapping[str, object]) -> sqlite3.Cursor:
        if "pending" in sql and sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            raise sqlite3.OperationalError("database or disk is full")
        return self.inner.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_record_and_close_are_one_transaction(log: TransactionLog) -> None:
    """The row and the closing of its entry commit together or not at all."""
    log.write_pending(entry(9), NOW)
    real = log._db
    log._db = FailingClose(real)  # type: ignore[assignment]  # a stand-in for the connection
    with pytest.raises(LogError):
        log.record(outcome(9))
    log._db = real
    assert not real.in_transaction
    assert log.count() == 0 and log.pending() == [entry(9)]
    assert log.record(outcome(9)) == 1
    assert log.pending() == [] and log.count() == 1


def test_a_migration_that_fails_is_undone_and_refused(tmp_path: Path) -> None:
    """A migration is one transaction: when a statement of it fails (here version 4's second
    ALTER, a column added by hand already), the log is refused with LogError, and the
    statements before it are undone: the log stays at version 3, as it was."""
    path = tmp_path / "terminal.db"
    old_log(path, 3)
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE pending_closed ADD COLUMN serial INTEGER")
    with pytest.raises(LogError, match="duplicate column"):
        TransactionLog(path)
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3
        columns = [r[1] for r in db.execute("PRAGMA table_info(pending_open)")]
        assert "serial" not in columns
    finally:
        db.close()


def test_a_close_that_fails_is_undone_and_raised(log: TransactionLog) -> None:
    """close_pending is one transaction: when moving the entry fails, LogError is raised
    (the caller must not take the entry as closed) and the entry stays open, unchanged."""
    log.write_pending(entry(9), NOW)
    real = log._db
    log._db = FailingClose(real)  # type: ignore[assignment]  # a stand-in for the connection
    with pytest.raises(LogError, match="cannot close the pending entry"):
        log.close_pending(entry(9), "not paid: no answer")
    log._db = real
    assert not real.in_transaction
    assert log.pending() == [entry(9)]
    assert [(r.entry, r.outcome) for r in log.pending_rows()] == [(entry(9), None)]


def test_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "terminal.db"
    TransactionLog(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(LogError, match="schema version"):
        TransactionLog(path)


def test_a_newer_schema_version_is_refused_before_the_switch_to_wal(tmp_path: Path) -> None:
    """Another program's file that keeps its own version in `user_version` (Firefox's
    places.sqlite has 70 and more), in rollback mode: it was switched to WAL, a write to a
    file that is not a log, and then refused."""
    path = tmp_path / "terminal.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE other (x)")
        db.execute("PRAGMA user_version = 74")
    db.close()
    before = path.read_bytes()
    with pytest.raises(LogError, match="has schema version 74; this hcepay knows up to"):
        TransactionLog(path)
    assert path.read_bytes() == before


def _other_programs_file(path: Path, version: int) -> Path:
    """An SQLite file of another program: a table of its own, `version` in user_version."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE other (x)")
        db.execute(f"PRAGMA user_version = {version:d}")
    db.close()
    return path


@pytest.mark.parametrize("version", [-1, -4])
def test_a_negative_schema_version_is_refused_unchanged(tmp_path: Path, version: int) -> None:
    """No log has a negative `user_version`: its migrations were taken from the end of
    MIGRATIONS (version 0 ran version 4's), a log at -1 said "duplicate column name: serial",
    and another program's file at -4 was given the log's tables before a migration failed."""
    path = _other_programs_file(tmp_path / "terminal.db", version)
    before = path.read_bytes()
    with pytest.raises(
        LogError, match=f"not an hcepay transaction log \\(schema version {version}"
    ):
        TransactionLog(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION + 1))
def test_a_version_without_the_logs_table_is_refused_unchanged(
    tmp_path: Path, version: int
) -> None:
    """Another program's file that keeps a small version of its own in `user_version`: it
    was switched to WAL, then refused with SQLite's "no such table: pending" (versions 1 to
    3), or taken for a log (version 4), every read failing."""
    path = _other_programs_file(tmp_path / "terminal.db", version)
    before = path.read_bytes()
    with pytest.raises(LogError, match=r"not an hcepay transaction log .* no transactions table"):
        TransactionLog(path)
    assert path.read_bytes() == before


def test_another_programs_database_is_refused_unchanged(tmp_path: Path) -> None:
    """An SQLite file of other tables and no schema version (not a log) was switched to WAL
    and given the log's tables, even by the read-only `hcepay log`, which then showed no
    rows; one with a table named `transactions` gave SQLite's "table transactions already
    exists". Refused, the file left as it was."""
    path = tmp_path / "terminal.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE transactions (x)")
    before = path.read_bytes()
    with pytest.raises(LogError, match="not an hcepay transaction log"):
        TransactionLog(path)
    assert path.read_bytes() == before
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")  # an empty file is a new log, as SQLite takes it
    TransactionLog(empty).close()


def test_closed_log_raises_log_error(tmp_path: Path) -> None:
    log = TransactionLog(tmp_path / "terminal.db")
    log.close()
    with pytest.raises(LogError):
        log.pending()
    with pytest.raises(LogError):
        log.write_pending(entry(1), NOW)


def test_a_log_whose_pending_entries_cannot_be_read_raises_log_error(tmp_path: Path) -> None:
    """`hcepay log` lists every pending entry: a log that cannot be read (here closed) is
    a LogError saying so, as for every other read, not a bare sqlite3 or Python error."""
    log = TransactionLog(tmp_path / "terminal.db")
    log.close()
    with pytest.raises(LogError, match="cannot read the pending entries"):
        log.pending_rows()


def test_an_open_entry_written_again_is_the_newest(log: TransactionLog) -> None:
    """`write_pending` of an (account, ATC) already open replaces it (reader/log.py: writing
    an entry again reopens it): the entry recovery judges is the CDOL1 data and serial sent
    last, when it was sent, not the first (PROTOCOL.md §9)."""
    first = replace(entry(5), serial=1)
    log.write_pending(first, NOW)
    again = replace(first, cdol1_data=b"d" * 43, serial=2)
    log.write_pending(again, NOW + timedelta(minutes=1))
    assert log.pending() == [again]
    [row] = log.pending_rows()
    assert (row.entry, row.created, row.outcome) == (again, "2026-11-28T12:01:00", None)


def test_rows_lists_the_oldest_up_to_its_limit(log: TransactionLog) -> None:
    """`rows(limit)` (hcepay log's listing) gives the oldest `limit` rows, in order."""
    for atc in (3, 1, 2):
        log.record(replace(BASE, atc=atc))
    assert [r.outcome.atc for r in log.rows(2)] == [3, 1]
    assert [r.outcome.atc for r in log.rows()] == [3, 1, 2]


def test_open_entries_come_oldest_first_whatever_their_atc(log: TransactionLog) -> None:
    """`pending()` gives the open entries oldest first (by when they were written, then
    ATC), so that a bounded contact decides the oldest torn payments first (§9)."""
    log.write_pending(entry(9), NOW)
    log.write_pending(entry(3), NOW + timedelta(seconds=1))
    log.write_pending(entry(5), NOW)
    assert log.pending() == [entry(5), entry(9), entry(3)]


def _open_together(path: Path, barrier: Any, errors: Any) -> None:
    """Wait for the others, then open the log (a child process)."""
    barrier.wait()
    try:
        TransactionLog(path).close()
    except LogError as exc:
        errors.put(exc.reason)


def test_a_new_log_opened_by_many_processes_at_once_is_theirs(tmp_path: Path) -> None:
    """Processes opening one new log together: one makes its tables (and version 1, in one
    commit) while the others look whether it is another program's database. Read in two
    statements, that commit could land between them, and a real log was refused as 'not
    an hcepay transaction log' (exit 2 for a first `pay`)."""
    ctx = multiprocessing.get_context("fork")
    for round_ in range(6):
        path = tmp_path / f"round{round_}" / "terminal.db"
        path.parent.mkdir()
        barrier, errors = ctx.Barrier(12), ctx.Queue()
        procs = [
            ctx.Process(target=_open_together, args=(path, barrier, errors)) for _ in range(12)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=60)
        assert all(proc.exitcode == 0 for proc in procs)
        assert errors.empty(), errors.get()
        with TransactionLog(path) as log:
            assert log.version == SCHEMA_VERSION


# --- the JSON of an outcome (spool lines, `log --json`): outcome_to_json/outcome_from_json --

_times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.none()
)
_outcomes = st.builds(
    Outcome,
    st.sampled_from(Verdict),
    _times,
    st.text(max_size=10),
    st.text(max_size=16),
    st.text(alphabet="0123456789", min_size=1, max_size=19),
    st.integers(0, 10**12 - 1),
    st.integers(0, 9999),
    st.integers(0, 0xFFFF),
    st.binary(min_size=4, max_size=4),
    st.integers(0, 0xFF),
    st.integers(0, 0xFFFFFF),
    st.integers(0, 0xFF),
    st.binary(max_size=40),
    st.binary(max_size=40),
    st.binary(max_size=20),
    st.binary(min_size=1, max_size=3),
    st.binary(max_size=40),
    st.binary(max_size=40),
)
_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 2**40), st.text(max_size=12))


@given(_outcomes)
def test_outcome_json_round_trip(o: Outcome) -> None:
    """A spooled outcome (reader/spool.py, one JSON object a line) reads back as the payment
    the log could not take, field for field (PROTOCOL.md §7: what the log keeps)."""
    line = json.dumps(outcome_to_json(o))
    assert outcome_from_json(json.loads(line)) == o


@given(
    _outcomes,
    st.dictionaries(st.sampled_from([f.name for f in fields(Outcome)]), _scalars, max_size=2),
)
def test_any_entry_is_an_outcome_of_its_json_types_or_value_error(
    o: Outcome, changes: dict[str, str | int | None]
) -> None:
    """A spool line edited, torn or written by another version: its fields are read only as
    the JSON types outcome_to_json writes (text, an integer that is no boolean), else
    ValueError or KeyError. Text was taken from anything (null read as the text 'None', 42
    as '42', an integer as hex digits) and true as the integer 1."""
    entry: dict[str, str | int | None] = {**outcome_to_json(o), **changes}
    try:
        read = outcome_from_json(entry)
    except (ValueError, KeyError):
        return
    written = outcome_to_json(read)
    for name, value in entry.items():
        assert type(value) is type(written[name]), name
    assert outcome_from_json(written) == read
