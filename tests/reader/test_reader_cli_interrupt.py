"""Ctrl-C: before GENERATE AC it stops the payment (exit 130, "no payment was made"); from
then on the verdict is printed and is the exit code; other commands say "interrupted"."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reader import entry, transport
from reader.checks import ReplayError
from reader.cli import app
from reader.cli_pay import make_demo_home
from reader.interrupt import PaymentGuard
from reader.log import LogError, TransactionLog
from reader.recovery import PendingEntry
from reader.transport import InProcessTransport

HCEPAY = Path(sys.executable).parent / "hcepay"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    make_demo_home(tmp_path / "home")
    return tmp_path / "home"


def _interrupting_at(ins: int) -> type[InProcessTransport]:
    class Interrupting(InProcessTransport):
        """The in-process card; Ctrl-C arrives as the command with this INS goes out."""

        def transmit(self, command: bytes) -> bytes:
            if len(command) > 1 and command[1] == ins:
                os.kill(os.getpid(), signal.SIGINT)
            return super().transmit(command)

    return Interrupting


def _log(home: Path) -> tuple[int, int]:
    with TransactionLog(home / "terminal.db") as log:
        return log.count(), len(log.pending())


def test_an_interrupt_at_generate_ac_still_prints_the_verdict(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "InProcessTransport", _interrupting_at(0xAE))
    handler = signal.getsignal(signal.SIGINT)
    result = CliRunner().invoke(app, ["pay", "--home", str(home), "--amount", "1.00"])
    assert result.exit_code == 0, result.output
    assert "verdict: APPROVED 1.00" in result.stdout
    assert "interrupted after GENERATE AC" in result.stderr
    assert _log(home) == (1, 0)
    # Not the hcepay process (no cli.main): the held guard hands the handler back at its end.
    assert signal.getsignal(signal.SIGINT) is handler


def test_an_interrupt_before_generate_ac_makes_no_payment(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "InProcessTransport", _interrupting_at(0xA8))  # at the GPO
    result = CliRunner().invoke(app, ["pay", "--home", str(home), "--amount", "1.00"])
    assert result.exit_code == 130, result.output
    assert result.stdout == ""
    assert result.stderr.strip() == "hcepay: interrupted (no payment was made)"
    assert _log(home) == (0, 0)


class _Finalized:
    """An object whose finalizer a Ctrl-C lands in: Python prints "Exception ignored in ..."
    and goes on, as when SIGINT arrives while the garbage collector runs a finalizer."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(1000):  # the handler runs in here; its KeyboardInterrupt is swallowed
            pass


def _swallowing_at(ins: int) -> type[InProcessTransport]:
    class Swallowing(InProcessTransport):
        """The in-process card; as the command with this INS goes out, a Ctrl-C lands in a
        finalizer and Python swallows it."""

        def transmit(self, command: bytes) -> bytes:
            if len(command) > 1 and command[1] == ins:
                _Finalized()  # dropped at once: its finalizer runs here
            return super().transmit(command)

    return Swallowing


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_interrupt_python_swallows_still_makes_no_payment(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen by a user: one early Ctrl-C went as "Exception ignored" and the payment was then
    approved, exit 0. The guard remembers it and stops the payment before GENERATE AC."""
    monkeypatch.setattr(transport, "InProcessTransport", _swallowing_at(0xA8))  # at the GPO
    result = CliRunner().invoke(app, ["pay", "--home", str(home), "--amount", "1.00"])
    assert result.exit_code == 130, result.output
    assert result.stdout == ""
    assert result.stderr.strip().endswith("hcepay: interrupted (no payment was made)")
    assert _log(home) == (0, 0)
    monkeypatch.undo()  # the card as it is: the interrupt was caught, this one is not stopped
    result = CliRunner().invoke(app, ["pay", "--home", str(home), "--amount", "1.00"])
    assert result.exit_code == 0, result.output


def test_the_demo_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "InProcessTransport", _interrupting_at(0xAE))
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0 and "verdict: APPROVED" in result.stdout, result.output


@pytest.mark.parametrize("ins", [0xA8, 0xAE])
def test_sigterm_ends_the_demo_and_removes_its_temporary_home(
    monkeypatch: pytest.MonkeyPatch, ins: int
) -> None:
    """A SIGTERM during the demo left its temporary home (an authority key among it) in the
    system's temporary folder: it now unwinds (exit 143), and the home is removed."""

    class Terminating(InProcessTransport):
        def transmit(self, command: bytes) -> bytes:
            if len(command) > 1 and command[1] == ins:
                os.kill(os.getpid(), signal.SIGTERM)
            return super().transmit(command)

    def not_unwound(_signum: int, _frame: types.FrameType | None) -> None:
        raise RuntimeError("SIGTERM reached the default handler (the test's stand-in)")

    monkeypatch.setattr(transport, "InProcessTransport", Terminating)
    before = signal.signal(signal.SIGTERM, not_unwound)  # the default would end pytest
    try:
        result = CliRunner().invoke(app, ["demo"])
        assert signal.getsignal(signal.SIGTERM) is not_unwound  # put back after the demo
    finally:
        signal.signal(signal.SIGTERM, before)
    assert result.exit_code == 143, result.output
    assert result.stderr.strip() == "hcepay: terminated"
    assert not list(Path(tempfile.gettempdir()).glob("hcepay-demo-*"))


class _CommitThenInterrupt:
    """A connection whose COMMIT succeeds and is then hit by Ctrl-C."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)

    def execute(self, sql: str, *args: Sequence[object] | Mapping[str, object]) -> sqlite3.Cursor:
        cursor = self.db.execute(sql, *args)
        if sql == "COMMIT":
            raise KeyboardInterrupt
        return cursor


def test_an_interrupt_after_closing_a_pending_entry_is_an_interrupt(tmp_path: Path) -> None:
    """Not "cannot close the pending entry: cannot rollback - no transaction is active"."""
    entry = PendingEntry(bytes.fromhex("6200123456789012FFFF"), 1, b"\x01")
    with TransactionLog(tmp_path / "terminal.db") as log:
        log.write_pending(entry, datetime(2026, 1, 1))
        real = log._db
        log._db = _CommitThenInterrupt(real)  # type: ignore[assignment]
        try:
            with pytest.raises(KeyboardInterrupt):
                log.close_pending(entry, "not paid")
        except LogError as exc:
            pytest.fail(f"LogError: {exc}")
        finally:
            log._db = real
        assert log.pending() == []  # it was closed: the COMMIT went through


def _interrupt(argv: list[str], after: float, tmp_path: Path) -> tuple[int, str]:
    env = {**os.environ, "HOME": str(tmp_path), "HCEPAY_HOME": str(tmp_path / "home")}
    with subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,  # held open: `card send -` waits for it
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        # as at a terminal, even when these tests run where SIGINT is ignored (a background job)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as process:
        time.sleep(after)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    return process.returncode, out + err


@pytest.mark.skipif(not HCEPAY.exists(), reason="the hcepay script is not installed")
@pytest.mark.parametrize("after", [0.15, 0.25, 0.35])
def test_an_interrupt_while_loading_is_one_line(tmp_path: Path, after: float) -> None:
    code, output = _interrupt([str(HCEPAY), "vectors", "replay"], after, tmp_path)
    assert code == 130, output
    assert "Traceback" not in output and output.strip().endswith("hcepay: interrupted")


@pytest.mark.skipif(not HCEPAY.exists(), reason="the hcepay script is not installed")
def test_an_interrupted_command_says_so(tmp_path: Path) -> None:
    """`card send -` waiting for its APDUs on stdin, stopped with Ctrl-C."""
    code, output = _interrupt([str(HCEPAY), "card", "send", "--in-process", "-"], 2.0, tmp_path)
    assert code == 130, output
    assert "Traceback" not in output and "hcepay: interrupted" in output


# --- the guard itself: an interrupt in a shielded write before GENERATE AC -----------------


def test_an_interrupt_in_a_failing_shielded_write_still_stops_the_payment() -> None:
    """The write's own error must not swallow the Ctrl-C: the payment would go on to
    GENERATE AC and be charged, then be said to have been interrupted after it."""
    guard = PaymentGuard()
    with pytest.raises(KeyboardInterrupt), guard.shield():
        guard._on_sigint(signal.SIGINT, None)  # Ctrl-C during the write...
        raise ReplayError("stored already")  # ...which then fails (settle swallows this)
    assert not guard.held and not guard.interrupted


def test_nested_shields_raise_at_the_outer_end_and_hold_checks_too() -> None:
    guard = PaymentGuard()
    with pytest.raises(KeyboardInterrupt), guard.shield():
        with guard.shield():
            guard._on_sigint(signal.SIGINT, None)
        assert not guard.held  # the inner end does not raise: the outer write goes on
    guard._shielded = 1  # an interrupt noted by a shield that has not ended...
    guard._on_sigint(signal.SIGINT, None)
    guard._shielded = 0
    with pytest.raises(KeyboardInterrupt):  # ...stops the payment at hold() at the latest
        guard.hold()
    assert not guard.held
    guard.hold()  # raised once: the next hold holds
    guard._on_sigint(signal.SIGINT, None)
    assert guard.held and guard.interrupted  # after hold: noted, the payment goes on


def test_interrupts_after_hold_are_announced_once(capsys: pytest.CaptureFixture[str]) -> None:
    """After GENERATE AC (hold), a Ctrl-C is noted and said once on stderr; more of them
    add nothing (the verdict follows)."""
    guard = PaymentGuard()
    guard.hold()
    for _ in range(3):
        guard._on_sigint(signal.SIGINT, None)
    assert guard.interrupted
    assert capsys.readouterr().err == (
        "hcepay: interrupt held: GENERATE AC is out, the verdict follows\n"
    )


class WrappedInterruptModule(types.ModuleType):
    """A module whose loading is cut by a Ctrl-C that Python 3.11 wraps in a RuntimeError
    (one landing in a dataclass field's __set_name__)."""

    def __getattr__(self, name: str) -> object:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("Error calling __set_name__") from exc


def test_an_interrupt_wrapped_while_loading_is_still_an_interrupt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Python 3.11 wraps a Ctrl-C that lands in a dataclass field's __set_name__ in a
    RuntimeError: the console script must still say "interrupted" and exit 130."""

    monkeypatch.setitem(sys.modules, "reader.cli", WrappedInterruptModule("reader.cli"))
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)  # entry.main sets its own
    before = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as exited:
            entry.main()
        assert exited.value.code == 130
        assert capsys.readouterr().err == "hcepay: interrupted\n"
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # a second one cuts nothing
        monkeypatch.setitem(sys.modules, "reader.cli", types.ModuleType("reader.cli"))
        with pytest.raises(ImportError):  # anything else is not an interrupt: it goes on
            entry.main()
    finally:
        signal.signal(signal.SIGINT, before)


def test_an_interrupt_wrapped_while_a_command_loads_is_still_an_interrupt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A command loads its libraries when it runs (`decode`: apdu.command): a Ctrl-C that
    Python 3.11 wraps in a RuntimeError there is "interrupted" and exit 130 too, not an
    internal error (70)."""
    from reader import cli

    monkeypatch.setitem(sys.modules, "apdu.command", WrappedInterruptModule("apdu.command"))
    monkeypatch.setattr(sys, "argv", ["hcepay", "decode", "00A4040000"])
    before = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as exited:
            cli.main()
    finally:
        signal.signal(signal.SIGINT, before)  # cli.main leaves it ignored: the process ends
    assert exited.value.code == 130
    assert capsys.readouterr().err == "hcepay: interrupted\n"


def test_an_interrupt_swallowed_while_loading_stops_the_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Ctrl-C that lands in a finalizer while the command line loads is swallowed by
    Python: the console script still stops before the command runs, in one line (no
    "Exception ignored in" traceback), exit 130."""
    monkeypatch.setattr(sys, "unraisablehook", sys.unraisablehook)  # entry.main sets its own
    ran: list[bool] = []

    class Loading(types.ModuleType):
        def __getattr__(self, name: str) -> object:
            _Finalized()  # the interrupt is swallowed here; loading goes on
            return lambda: ran.append(True)

    monkeypatch.setitem(sys.modules, "reader.cli", Loading("reader.cli"))
    before = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(SystemExit) as exited:
            entry.main()
    finally:
        signal.signal(signal.SIGINT, before)
        from reader import interrupt

        interrupt.interrupt_caught()
    assert exited.value.code == 130 and ran == []
    assert capsys.readouterr().err == "hcepay: interrupted\n"


# --- after the guard: a decided payment stays held to the process's end -------------------


def test_a_held_guard_leaves_sigint_ignored_in_the_hcepay_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In the console script (cli.main sets it), Ctrl-C after a held payment's guard ends
    (printing, flushing, exiting) is ignored; a guard that never held gives the handler back,
    and so does any guard where the process did not ask for it (tests, embedding)."""
    from reader import interrupt

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # known, not inherited
    previous = signal.default_int_handler
    try:
        with PaymentGuard() as guard:
            guard.hold()
        assert signal.getsignal(signal.SIGINT) is previous  # not asked: handed back
        monkeypatch.setattr(interrupt, "_hold_to_exit", threading.Event())
        interrupt.hold_decided_payments_to_exit()
        with PaymentGuard():
            pass  # no GENERATE AC went out: Ctrl-C stops the process as usual
        assert signal.getsignal(signal.SIGINT) is previous
        with PaymentGuard() as guard:
            guard.hold()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        signal.signal(signal.SIGINT, previous)
        interrupt.stop_holding_to_exit()  # cli.main's end: later guards in this process
        with PaymentGuard() as guard:
            guard.hold()
        assert signal.getsignal(signal.SIGINT) is previous
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.skipif(not HCEPAY.exists(), reason="the hcepay script is not installed")
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_an_interrupt_as_the_verdict_prints_changes_nothing(
    home: Path, tmp_path: Path, as_json: bool
) -> None:
    """Ctrl-C as soon as the verdict's first line is out: the whole result is printed, the
    exit is the verdict's (0), with no traceback (it was 130, a death by SIGINT that lost
    the second line, or a KeyboardInterrupt traceback at shutdown)."""
    args = [str(HCEPAY), "pay", "--home", str(home), "--amount", "1.00"]
    for attempt in range(3):
        with subprocess.Popen(
            [*args, *(["--json"] if as_json else [])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            assert process.stdout is not None and process.stderr is not None
            first = process.stdout.readline()
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)  # small outputs: the pipes cannot fill
            rest, err = process.stdout.read(), process.stderr.read()  # after readline's buffer
        assert process.returncode == 0, (attempt, first, rest, err)
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        if as_json:
            assert '"verdict": "approved"' in first
        else:
            assert first.startswith("verdict: APPROVED 1.00")
            assert rest.startswith("account "), rest
    assert _log(home) == (3, 0)


def test_a_second_ctrl_c_while_the_first_unwinds_does_nothing() -> None:
    """Seen in a stress run: two Ctrl-Cs 0 ms apart, the second raised in the first one's
    `except` and ended the run in a traceback. Within a second of an interrupt not yet
    caught, another does nothing; later, one not caught (swallowed) is raised again."""
    from reader import interrupt

    try:
        with pytest.raises(KeyboardInterrupt) as first:
            try:
                interrupt.raise_interrupt()
            finally:
                interrupt.raise_interrupt()  # lands while the first unwinds
        assert first.value.__context__ is None  # the first one, alone
        since = interrupt._uncaught_since[0]
        assert since is not None
        interrupt._uncaught_since[0] = since - interrupt.UNWINDING_S  # a second later, uncaught
        with pytest.raises(KeyboardInterrupt):
            interrupt.raise_interrupt()
        interrupt.interrupt_caught()
        with pytest.raises(KeyboardInterrupt):  # caught: the next Ctrl-C raises at once
            interrupt.raise_interrupt()
    finally:
        interrupt.interrupt_caught()
