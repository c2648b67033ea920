"""Two terminals writing one log at once; every row lands (busy timeout)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from applet.state import CardState
from applet.store import FileStateStore
from reader.log import TransactionLog, log_path

WRITER = textwrap.dedent(
    """
    import sys
    from dataclasses import replace
    from datetime import datetime
    from pathlib import Path
    from reader.log import TransactionLog
    from reader.flow import Outcome
    from reader.recovery import PendingEntry
    from reader.vectors import Verdict

    path, account, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    base = Outcome(Verdict.APPROVED, datetime(2026, 11, 28, 12), "TERM0001", "MERCHANT0000001",
                   account, 100, 156, 0, b"1234", 0x40, 1, 1, b"a" * 8, b"l", b"", b"\\x03",
                   b"r", b"c")
    padded = bytes.fromhex(account.ljust(20, "F"))
    for atc in range(1, count + 1):
        with TransactionLog(path) as log:  # a new process-like connection each time
            log.write_pending(PendingEntry(padded, atc, b"c"), datetime(2026, 11, 28, 12))
            log.record(replace(base, atc=atc, amount=atc))
    """
)


def test_two_writers_lose_no_row(tmp_path: Path) -> None:
    path = tmp_path / "terminal.db"
    TransactionLog(path).close()
    count = 60
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), account, str(count)])
        for account in ("6200123456789012", "6200999999999999")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    with TransactionLog(path) as log:
        rows = [r.outcome for r in log.rows()]
        assert log.pending() == []
    assert len(rows) == 2 * count
    for account in ("6200123456789012", "6200999999999999"):
        assert sorted(o.atc for o in rows if o.account == account) == list(range(1, count + 1))


def test_two_hcepay_pay_processes_both_land(demo_home: Path) -> None:
    """Two `hcepay pay` at once, two cards (same account, ATCs far apart): two rows."""
    cards = demo_home / "cards"
    shutil.copytree(cards / "6200123456789012", cards / "1111")
    FileStateStore(cards / "1111").commit(CardState(atc=1000))
    hcepay = Path(sys.executable).with_name("hcepay")
    procs = [
        subprocess.Popen(
            [
                str(hcepay),
                "pay",
                "--in-process",
                "--card",
                card,
                "--amount",
                amount,
                "--home",
                str(demo_home),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for card, amount in (("6200123456789012", "1.00"), ("1111", "2.00"))
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    with TransactionLog(log_path(demo_home)) as log:
        got = sorted((r.outcome.atc, r.outcome.amount) for r in log.rows())
    assert got == [(1, 100), (1001, 200)]


class BusyAtFirst:
    """A connection to a new log that another process opens at the same moment: SQLite
    refuses its switch to WAL at once ("database is locked", no busy wait), twice."""

    def __init__(self, inner: sqlite3.Connection) -> None:
        self.inner = inner
        self.refusals = 2

    def execute(self, sql: str, *args: Sequence[object] | Mapping[str, object]) -> sqlite3.Cursor:
        if sql == "PRAGMA journal_mode=WAL" and self.refusals:
            self.refusals -= 1
            busy = sqlite3.OperationalError("database is locked")
            busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
            raise busy
        return self.inner.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_a_new_log_opened_by_two_processes_at_once_waits_for_the_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two terminals (or a payment and `hcepay log`) opening a new terminal.db together:
    one of them was refused ("cannot use ...: database is locked", exit 2)."""
    connect = sqlite3.connect
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: BusyAtFirst(connect(*a, **k)))
    with TransactionLog(tmp_path / "terminal.db") as log:
        assert log.count() == 0
    assert connect(tmp_path / "terminal.db").execute("PRAGMA journal_mode").fetchone() == ("wal",)
