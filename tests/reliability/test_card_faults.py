"""The card's state cannot be stored (a disk that fails its flush): the card answers 6F00,
the terminal gives one line and a typed exit code, and the next payment goes through."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from applet.store import FileStateStore
from reader.cli_common import ExitCode
from reader.log import TransactionLog, log_path

ACCOUNT_FOLDER = "6200123456789012"

# `hcepay ARGS` whose Nth fdatasync (the card's state.dat) fails; 0: none fails
FLUSH_FAILS = textwrap.dedent(
    """
    import errno, os, sys
    from reader.cli import main
    flush, calls, nth = os.fdatasync, [], int(sys.argv[1])
    def failing(fd):
        calls.append(fd)
        if len(calls) == nth:
            raise OSError(errno.EIO, "Input/output error")
        flush(fd)
    os.fdatasync = failing
    sys.argv = ["hcepay", *sys.argv[2:]]
    main()
    """
)


def _hcepay(home: Path, amount: str, failing_flush: int = 0) -> subprocess.CompletedProcess[str]:
    """`hcepay pay` in a process of its own (the card folder is locked for a process's life)."""
    args = ["pay", "--in-process", "--amount", amount, "--home", str(home)]
    return subprocess.run(
        [sys.executable, "-c", FLUSH_FAILS, str(failing_flush), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# the card's flushes: 1 on opening (its newest slot stored again), 2 GPO, 3 GENERATE AC
@pytest.mark.parametrize(("nth", "command"), [(2, "GET PROCESSING OPTIONS"), (3, "GENERATE AC")])
def test_a_card_that_cannot_store_its_state_is_one_line_not_a_traceback(
    demo_home: Path, nth: int, command: str
) -> None:
    assert _hcepay(demo_home, "1.00").returncode == ExitCode.OK  # state.dat made: flushes
    done = _hcepay(demo_home, "2.00", nth)
    assert done.returncode == ExitCode.REFUSED, done.stderr
    lines = done.stderr.splitlines()
    assert "Traceback" not in done.stderr
    assert any(f"{command} answered 6F00" in line for line in lines), done.stderr
    assert any("Input/output error" in line for line in lines), done.stderr
    assert len(lines) == 2, done.stderr  # the card's reason, the terminal's verdict
    assert _hcepay(demo_home, "3.00").returncode == ExitCode.OK
    with TransactionLog(log_path(demo_home)) as log:
        approved = sum(r.outcome.amount for r in log.rows() if r.outcome.approved)
    assert FileStateStore(demo_home / "cards" / ACCOUNT_FOLDER).load().used == approved


def test_a_card_whose_state_cannot_be_stored_on_opening_makes_no_payment(demo_home: Path) -> None:
    assert _hcepay(demo_home, "1.00").returncode == ExitCode.OK
    done = _hcepay(demo_home, "2.00", 1)
    assert done.returncode == ExitCode.USAGE, done.stderr
    (line,) = done.stderr.splitlines()
    assert "Input/output error" in line and "Traceback" not in line
    assert _hcepay(demo_home, "3.00").returncode == ExitCode.OK
    with TransactionLog(log_path(demo_home)) as log:
        assert [r.outcome.amount for r in log.rows()] == [100, 300]
