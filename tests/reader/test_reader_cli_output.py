"""stdout that cannot be written (a full disk, a closed pipe): one line on stderr and exit 74;
what the command did stands (a payment made is in the log)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pytest

from reader.cli_common import ExitCode
from reader.cli_pay import make_demo_home
from reader.log import TransactionLog
from reader.recovery import PendingEntry

ROOT = Path(__file__).resolve().parents[2]
FULL = Path("/dev/full")


def _hcepay(args: list[str], **streams: object) -> subprocess.CompletedProcess[str]:
    """`hcepay ARGS` in a child process with the given stdout/stderr (text, bounded)."""
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "reader.entry", *args],
        **streams,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


@contextmanager
def _closed_pipe() -> Iterator[int]:
    """The write end of a pipe whose read end is closed (a reader that went away)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        yield write_end
    finally:
        os.close(write_end)


@pytest.mark.skipif(not FULL.exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_a_payment_whose_verdict_cannot_be_printed_is_recorded_and_exits_74(
    tmp_path: Path, json_flag: list[str]
) -> None:
    home = tmp_path / "home"
    make_demo_home(home)
    args = ["pay", "--home", str(home), "--amount", "1.00", *json_flag]
    with FULL.open("w") as full:
        done = _hcepay(args, stdout=full, stderr=subprocess.PIPE)
    assert done.returncode == ExitCode.OUTPUT_LOST.value == 74, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("hcepay: cannot write the output (No space left on device)")
    with TransactionLog(home / "terminal.db") as log:
        assert log.count() == 1


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_a_payment_whose_stdout_is_a_closed_pipe_is_recorded_and_exits_74(
    tmp_path: Path, json_flag: list[str]
) -> None:
    """A closed pipe is output that cannot be written, as a full disk: exit 74 and one line,
    not a silent exit 1 (the code of a decline) for an approved payment."""
    home = tmp_path / "home"
    make_demo_home(home)
    args = ["pay", "--home", str(home), "--amount", "1.00", *json_flag]
    with _closed_pipe() as closed:
        done = _hcepay(args, stdout=closed, stderr=subprocess.PIPE)
    assert done.returncode == ExitCode.OUTPUT_LOST, done.stderr
    (line,) = done.stderr.splitlines()
    assert line == (
        "hcepay: cannot write the output (Broken pipe); what the command did stands "
        "(a payment made is recorded: hcepay log)"
    )
    with TransactionLog(home / "terminal.db") as log:
        assert log.count() == 1


@pytest.mark.parametrize(
    ("args", "note"),
    [
        (["decode", "--response", "9000"], "what the command did stands"),
        (["demo"], "the demo's home was temporary: its payment is gone with it"),
    ],
    ids=["decode", "demo"],
)
def test_lost_output_says_what_stands_for_that_command(args: list[str], note: str) -> None:
    """The payment's note ("a payment made is recorded: hcepay log") was said after every
    command: after decode, which pays nothing, and after demo, whose home is gone."""
    with _closed_pipe() as closed:
        done = _hcepay(args, stdout=closed, stderr=subprocess.PIPE)
    assert done.returncode == ExitCode.OUTPUT_LOST, done.stderr
    assert done.stderr.splitlines() == [f"hcepay: cannot write the output (Broken pipe); {note}"]


def test_a_payment_whose_stdout_and_stderr_are_closed_pipes_still_exits_74(
    tmp_path: Path,
) -> None:
    """With stderr a closed pipe too, the line saying so cannot be written, but the exit code
    still says that the payment stands (74), not rich's 1 (the code of a decline)."""
    home = tmp_path / "home"
    make_demo_home(home)
    with _closed_pipe() as closed:
        done = _hcepay(["pay", "--home", str(home), "--amount", "1"], stdout=closed, stderr=closed)
    assert done.returncode == ExitCode.OUTPUT_LOST
    with TransactionLog(home / "terminal.db") as log:
        assert log.count() == 1


@pytest.mark.parametrize("args", [["--help"], ["pay", "-h"], ["log", "recover", "--help"]])
def test_help_into_a_closed_pipe_exits_74(args: list[str]) -> None:
    """Help is output as any other: click's silent exit 1 (a decline's code) was left."""
    with _closed_pipe() as closed:
        done = _hcepay(args, stdout=closed, stderr=subprocess.PIPE)
    assert done.returncode == ExitCode.OUTPUT_LOST, done.stderr
    assert done.stderr.splitlines() == [
        "hcepay: cannot write the output (Broken pipe); what the command did stands"
    ]


@pytest.mark.parametrize("args", [["pay", "--amout", "1"], ["nosuch"]])
def test_a_click_usage_error_whose_stderr_is_a_closed_pipe_keeps_exit_2(args: list[str]) -> None:
    with _closed_pipe() as closed:
        done = _hcepay(args, stderr=closed, stdout=subprocess.DEVNULL)
    assert done.returncode == ExitCode.USAGE


def test_a_usage_error_whose_stderr_is_a_closed_pipe_keeps_its_exit_code(
    tmp_path: Path,
) -> None:
    """A one-line error that cannot be written still exits with its own code (2 here)."""
    with _closed_pipe() as closed:
        args = ["vectors", "replay", str(tmp_path / "none")]
        done = _hcepay(args, stderr=closed, stdout=subprocess.DEVNULL)
    assert done.returncode == ExitCode.USAGE


def test_a_disk_error_inside_a_command_is_not_output_that_cannot_be_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every command runs inside click's frames: an EIO reading the vectors is an internal
    error (70), not 'cannot write the output' (74), which would say that all went well."""
    import errno

    from reader import cli
    from reader import vectors as vx

    def unreadable(*_: object) -> list[Path]:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(vx, "collect", unreadable)
    monkeypatch.setattr(sys, "argv", ["hcepay", "vectors", "replay"])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == ExitCode.INTERNAL
    assert "cannot write the output" not in capsys.readouterr().err


def test_a_log_printed_into_a_pipe_keeps_each_row_on_one_line(tmp_path: Path) -> None:
    """No terminal and no COLUMNS: rich's 80 columns folded the table's values
    ("accoun/t", "18:02:5/8"); a file or a pipe now gets each row whole. (The child's
    environment is given whole: pytest's own process environment holds COLUMNS=80.)"""
    home = tmp_path / "home"
    make_demo_home(home)
    paid = _hcepay(["pay", "--home", str(home), "--amount", "1.00"], capture_output=True)
    assert paid.returncode == 0, paid.stderr
    with TransactionLog(home / "terminal.db") as log:  # the entry a torn payment leaves open
        torn = PendingEntry(bytes.fromhex("6200123456789012FFFF"), 2, b"\x01" * 43, 1)
        log.write_pending(torn, datetime(2026, 11, 29, 18, 2, 58))
    env = {name: value for name, value in os.environ.items() if name != "COLUMNS"}
    shown = _hcepay(["log", "--verify", "--home", str(home)], capture_output=True, env=env)
    assert shown.returncode == 0, shown.stderr
    rows = [line for line in shown.stdout.splitlines() if "6200123456789012" in line]
    assert len(rows) == 2, shown.stdout  # the transaction, and the open pending entry
    assert "approved" in rows[0] and " ok " in rows[0] and "0001" in rows[0], shown.stdout
    assert "open" in rows[1] and "0002" in rows[1] and "18:02:58" in rows[1], shown.stdout
    assert max(len(line) for line in shown.stdout.splitlines()) > 80


def test_a_command_with_no_stdout_at_all_is_no_traceback() -> None:
    """stdout closed before hcepay starts (`>&-`): Python gives sys.stdout None, and the
    width chosen for files and pipes asked it isatty() at import (a traceback, exit 1)."""
    done = _hcepay(
        ["decode", "--response", "9000"], stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1)
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in (0, ExitCode.OUTPUT_LOST), done.stderr


def test_a_log_whose_reader_goes_away_after_its_first_line_exits_74(tmp_path: Path) -> None:
    """`hcepay log | head -1`: the table is printed a batch at a time, and the pipe closes
    after the first batch; each later print meets the closed pipe: one line on stderr and
    exit 74, not a traceback or rich's silent exit 1."""
    home = tmp_path / "home"
    make_demo_home(home)
    paid = _hcepay(["pay", "--home", str(home), "--amount", "1.00"], capture_output=True)
    assert paid.returncode == 0, paid.stderr
    with sqlite3.connect(home / "terminal.db") as db:  # row 1 again with other ATCs
        columns = [c[1] for c in db.execute("PRAGMA table_info(transactions)")][1:]
        copied = ", ".join("n.atc" if c == "atc" else c for c in columns)
        db.execute(
            f"INSERT INTO transactions ({', '.join(columns)}) "
            "WITH RECURSIVE n(atc) AS (SELECT 2 UNION ALL SELECT atc + 1 FROM n WHERE atc < 3000) "
            f"SELECT {copied} FROM transactions, n WHERE id = 1"
        )
    db.close()
    child = subprocess.Popen(
        [sys.executable, "-m", "reader.entry", "log", "--home", str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert child.stdout is not None and child.stderr is not None
    assert child.stdout.readline() == f"transactions in {home / 'terminal.db'}\n"
    child.stdout.close()  # 3000 rows, 300 kB: more than a pipe holds
    assert child.wait(timeout=120) == ExitCode.OUTPUT_LOST
    assert child.stderr.read().splitlines() == [
        "hcepay: cannot write the output (Broken pipe); what the command did stands"
    ]
    child.stderr.close()
