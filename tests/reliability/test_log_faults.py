"""The log cannot be written; the payment is spooled, exit 5, recovered once."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from applet.store import FileStateStore
from reader import spool
from reader.cli import app
from reader.cli_common import ExitCode
from reader.log import LogError, TransactionLog, log_path

ACCOUNT_FOLDER = "6200123456789012"


class FailingDb:
    """A connection wrapper whose writes to the transactions table fail (disk full)."""

    def __init__(self, inner: sqlite3.Connection) -> None:
        self.inner = inner

    def execute(self, sql: str, *args: Sequence[object] | Mapping[str, object]) -> sqlite3.Cursor:
        if sql.lstrip().upper().startswith("INSERT INTO TRANSACTIONS"):
            raise sqlite3.OperationalError("database or disk is full")
        return self.inner.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.fixture()
def failing_log(monkeypatch: pytest.MonkeyPatch) -> None:
    real_init = TransactionLog.__init__

    def init(self: TransactionLog, path: Path) -> None:
        real_init(self, path)
        self._db = FailingDb(self._db)  # type: ignore[assignment]

    monkeypatch.setattr(TransactionLog, "__init__", init)


def _pay(home: Path, amount: str = "12.34") -> Result:
    return CliRunner().invoke(app, ["pay", "--in-process", "--amount", amount, "--home", str(home)])


def _rows(home: Path) -> list[tuple[int, int]]:
    with TransactionLog(log_path(home)) as log:
        return [(r.outcome.atc, r.outcome.amount) for r in log.rows()]


def test_disk_full_gives_exit_5_and_a_spool(demo_home: Path, failing_log: None) -> None:
    result = _pay(demo_home)
    assert result.exit_code == ExitCode.NOT_RECORDED, result.output
    assert "spool" in result.output
    entries, bad = spool.read(spool.primary_path(log_path(demo_home)))
    assert bad == 0 and len(entries) == 1
    assert entries[0]["amount"] == 1234 and entries[0]["verdict"] == "approved"
    card = FileStateStore(demo_home / "cards" / ACCOUNT_FOLDER).load()
    assert card.used == 1234  # the card paid: the spool is all the terminal has of it


def test_log_recover_imports_once(demo_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:
        real_init = TransactionLog.__init__

        def init(self: TransactionLog, path: Path) -> None:
            real_init(self, path)
            self._db = FailingDb(self._db)  # type: ignore[assignment]

        m.setattr(TransactionLog, "__init__", init)
        assert _pay(demo_home).exit_code == ExitCode.NOT_RECORDED
    assert _rows(demo_home) == []
    runner = CliRunner()
    first = runner.invoke(app, ["log", "recover", "--home", str(demo_home)])
    assert first.exit_code == 0, first.output
    assert "1 imported" in first.output
    assert _rows(demo_home) == [(1, 1234)]
    second = runner.invoke(app, ["log", "recover", "--home", str(demo_home)])
    assert second.exit_code == 0 and "0 imported" in second.output
    assert _rows(demo_home) == [(1, 1234)]
    assert _pay(demo_home, "1.00").exit_code == ExitCode.OK  # the log works again
    assert _rows(demo_home) == [(1, 1234), (2, 100)]


def test_unopenable_log_refuses_before_paying(demo_home: Path) -> None:
    """A log that cannot even open: nothing is sent to the card, nothing is deducted."""
    log_path(demo_home).mkdir(parents=True)  # a folder where the database should be
    result = _pay(demo_home)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert FileStateStore(demo_home / "cards" / ACCOUNT_FOLDER).load().used == 0


def test_failing_pending_write_sends_no_generate_ac(
    demo_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PROTOCOL.md §9: no durable pending entry, no GENERATE AC, no deduction."""

    def fail(self: TransactionLog, *args: object) -> None:
        raise LogError("disk I/O error")

    monkeypatch.setattr(TransactionLog, "write_pending", fail)
    result = _pay(demo_home)
    assert result.exit_code != ExitCode.OK
    assert FileStateStore(demo_home / "cards" / ACCOUNT_FOLDER).load().used == 0
    assert not spool.primary_path(log_path(demo_home)).exists()
