"""`hcepay -v`: one `C <hex> R <hex>` line a (command, response) pair for every command that
talks to a card (reader/transport.py LoggingTransport), none without -v; no hex is made
while logging is off."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reader.cli_pay import make_demo_home
from reader.transport import LoggingTransport, TransportError

ROOT = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^INFO reader\.transport: C ([0-9A-F]+) R ([0-9A-F]+)$")
SELECT_PPSE = "00A404000E325041592E5359532E444446303100"


def _hcepay(*args: str) -> subprocess.CompletedProcess[str]:
    """`hcepay ARGS` in a child process: the root logging setup is the real one."""
    return subprocess.run(
        [sys.executable, "-m", "reader.entry", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def _pairs(stderr: str) -> list[tuple[str, str]]:
    return [(m[1], m[2]) for line in stderr.splitlines() if (m := LINE.match(line))]


@pytest.mark.parametrize("flag", ["-v", "-vv"])
def test_demo_logs_every_pair_of_its_trace(tmp_path: Path, flag: str) -> None:
    """The lines are the raw exchange, GET RESPONSE included: the trace's steps, in order."""
    trace = tmp_path / "t.json"
    done = _hcepay(flag, "demo", "--trace", str(trace))
    assert done.returncode == 0, done.stderr
    steps = [(s["c"], s["r"]) for s in json.loads(trace.read_text())["steps"]]
    assert len(steps) >= 8 and _pairs(done.stderr) == steps


def test_pay_logs_its_pairs_with_v_and_nothing_without(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_demo_home(home)
    quiet = _hcepay("pay", "--home", str(home), "--amount", "1.00")
    assert quiet.returncode == 0 and quiet.stderr == ""
    trace = tmp_path / "t.json"
    done = _hcepay("-v", "pay", "--home", str(home), "--amount", "1.00", "--trace", str(trace))
    assert done.returncode == 0, done.stderr
    steps = [(s["c"], s["r"]) for s in json.loads(trace.read_text())["steps"]]
    assert _pairs(done.stderr) == steps


def test_the_readme_quotes_the_line_as_it_is_logged(tmp_path: Path) -> None:
    """README.md said -v logs `C <command> R <response>`; the line starts with the level and
    the logger's name. The quoted form, with hex for its two fields, is a logged line."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quoted = re.search(r"`hcepay -v COMMAND` logs.*?\(`([^`]+)`", readme, re.DOTALL)
    assert quoted is not None
    home = tmp_path / "home"
    make_demo_home(home)
    done = _hcepay("-v", "card", "send", "--home", str(home), "--in-process", "80CA9F3600")
    (logged,) = [line for line in done.stderr.splitlines() if LINE.match(line)]
    form = quoted[1].replace("<command>", "80CA9F3600").replace("<response>", done.stdout.strip())
    assert form == logged


def test_card_send_logs_each_command(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_demo_home(home)
    args = ("card", "send", "--home", str(home), "--in-process", SELECT_PPSE, "80CA9F3600")
    done = _hcepay("-v", *args)
    assert done.returncode == 0, done.stderr
    responses = done.stdout.split()
    assert _pairs(done.stderr) == list(zip([SELECT_PPSE, "80CA9F3600"], responses, strict=True))
    assert _pairs(_hcepay(*args).stderr) == []


def test_vector_replay_and_record_log_their_pairs(tmp_path: Path) -> None:
    vector = ROOT / "vectors" / "card" / "card-approve-basic.json"
    done = _hcepay("-v", "vectors", "replay", str(vector), "--in-process")
    assert done.returncode == 0, done.stderr
    steps = [(s["c"], s["r"]) for s in json.loads(vector.read_text())["steps"]]
    assert [c for c, _ in _pairs(done.stderr)] == [c for c, _ in steps]
    out = tmp_path / "v.json"
    done = _hcepay("-v", "vectors", "record", "--out", str(out), "--amount", "1.00")
    assert done.returncode == 0, done.stderr
    recorded = [(s["c"], s["r"]) for s in json.loads(out.read_text())["steps"]]
    assert _pairs(done.stderr) == recorded


class _Inner:
    name = "stub"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def connect(self) -> bytes:
        return b""

    def transmit(self, command: bytes) -> bytes:
        if self.fail:
            raise TransportError("card removed")
        return b"\x90\x00"

    def disconnect(self) -> None:
        pass


class _CountedHex(bytes):
    """A command that counts how often it is made hex."""

    made = 0

    def hex(self, *args: object) -> str:
        type(self).made += 1
        return super().hex()


def test_logging_off_makes_no_hex(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="reader.transport")
    _CountedHex.made = 0
    assert LoggingTransport(_Inner()).transmit(_CountedHex(b"\x00\xca\x9f\x36\x00")) == b"\x90\x00"
    assert _CountedHex.made == 0 and caplog.records == []
    caplog.set_level(logging.INFO, logger="reader.transport")
    LoggingTransport(_Inner()).transmit(_CountedHex(b"\x00\xca\x9f\x36\x00"))
    assert _CountedHex.made == 1
    assert [r.getMessage() for r in caplog.records] == ["C 00CA9F3600 R 9000"]


def test_a_command_without_answer_is_logged_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="reader.transport")
    with pytest.raises(TransportError):
        LoggingTransport(_Inner(fail=True)).transmit(b"\x00\xca\x9f\x36\x00")
    assert [r.getMessage() for r in caplog.records] == ["C 00CA9F3600 R none (card removed)"]
