"""PROTOCOL.md §9 end to end: the card deducts, the answer is lost, the next payment records
the torn one exactly once; `hcepay log` shows the pending entry and its outcome."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from applet import open_card
from applet.store import FileStateStore
from authority.keystore import load_keystore
from reader.cli import app
from reader.cli_pay import terminal_config
from reader.flow import Env, Paid, PaymentRequest, pay
from reader.log import TransactionLog, log_path
from reader.transport import ChainingTransport, InProcessTransport, TransportError

CARD = "6200123456789012"
GENERATE_AC = 0xAE


class DropAnswer:
    """The card processes GENERATE AC, then the field is lost before its answer arrives."""

    name = "drop"

    def __init__(self, inner: InProcessTransport) -> None:
        self.inner = inner

    def connect(self) -> bytes:
        return self.inner.connect()

    def transmit(self, command: bytes) -> bytes:
        answer = self.inner.transmit(command)
        if len(command) > 1 and command[1] == GENERATE_AC:
            raise TransportError("card removed")
        return answer

    def disconnect(self) -> None:
        self.inner.disconnect()


def _pay(home: Path, amount: int, un: bytes, *, drop: bool = False) -> Paid:
    card = InProcessTransport(open_card(home / "cards" / CARD))
    transport = ChainingTransport(DropAnswer(card) if drop else card)
    env = Env(datetime(2026, 11, 28, 12, 0, 0), un)
    with TransactionLog(log_path(home)) as log:
        return pay(
            transport,
            terminal_config(home),
            PaymentRequest(amount),
            env,
            load_keystore(home),
            log,
        )


def _log(home: Path) -> tuple[list[tuple[int, int]], int]:
    with TransactionLog(log_path(home)) as log:
        rows = [(r.outcome.atc, r.outcome.amount) for r in log.rows()]
        return rows, len(log.pending())


def _used(home: Path) -> int:
    return FileStateStore(home / "cards" / CARD).load().used


def test_torn_payment_is_recorded_once_at_the_next_contact(demo_home: Path) -> None:
    with pytest.raises(TransportError):
        _pay(demo_home, 1234, b"\x01\x01\x01\x01", drop=True)
    assert _used(demo_home) == 1234  # the card paid
    assert _log(demo_home) == ([], 1)  # the terminal holds a pending entry only

    paid = _pay(demo_home, 500, b"\x02\x02\x02\x02")
    assert [o.atc for o in paid.recovered] == [1]
    assert paid.outcome.approved and paid.outcome.atc == 2
    assert _log(demo_home) == ([(1, 1234), (2, 500)], 0)

    again = _pay(demo_home, 100, b"\x03\x03\x03\x03")
    assert again.recovered == ()
    rows, pending = _log(demo_home)
    assert rows == [(1, 1234), (2, 500), (3, 100)] and pending == 0
    assert _used(demo_home) == sum(amount for _, amount in rows)


def test_torn_decline_is_recorded_as_a_decline(demo_home: Path) -> None:
    with pytest.raises(TransportError):
        _pay(demo_home, 100_001, b"\x04\x04\x04\x04", drop=True)  # over the limit
    paid = _pay(demo_home, 100, b"\x05\x05\x05\x05")
    assert [(o.atc, o.approved) for o in paid.recovered] == [(1, False)]
    assert _log(demo_home) == ([(1, 100_001), (2, 100)], 0)
    assert _used(demo_home) == 100  # the decline deducted nothing
    result = CliRunner().invoke(app, ["log", "--home", str(demo_home)])
    assert result.exit_code == 0, result.output
    assert "declined" in result.output and "not paid" not in result.output


def test_log_shows_each_entry_and_its_outcome(demo_home: Path) -> None:
    with pytest.raises(TransportError):
        _pay(demo_home, 700, b"\x06\x06\x06\x06", drop=True)
    runner = CliRunner()
    shown = runner.invoke(app, ["log", "--home", str(demo_home)])
    assert shown.exit_code == 0 and " open " in shown.output
    _pay(demo_home, 100, b"\x07\x07\x07\x07")
    shown = runner.invoke(app, ["log", "--home", str(demo_home)])
    assert " recorded " in shown.output and " open " not in shown.output


def test_terminal_crash_after_recording_does_not_count_twice(demo_home: Path) -> None:
    """The row is in the log but the pending entry was reopened (a crash in between)."""
    paid = _pay(demo_home, 300, b"\x08\x08\x08\x08")
    with TransactionLog(log_path(demo_home)) as log:
        from reader.recovery import PendingEntry

        padded = bytes.fromhex(CARD + "FFFF")
        log.write_pending(
            PendingEntry(padded, paid.outcome.atc, paid.outcome.cdol1_data),
            datetime(2026, 11, 28),
        )
    again = _pay(demo_home, 200, b"\x09\x09\x09\x09")
    assert again.recovered == ()  # recorded already: closed, not counted twice
    assert _log(demo_home) == ([(1, 300), (2, 200)], 0)
