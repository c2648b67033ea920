"""`hcepay card serve` as a user runs it: a process serving the home's card until a signal."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from applet.store import FileStateStore
from reader.pcsc import PcscTransport

SELECT_PPSE = bytes.fromhex("00A404000E325041592E5359532E444446303100")
SELECT_AID = bytes.fromhex("00A4040009F0484345504159000100")
GPO = bytes.fromhex(
    "80A800002A8328000000001234015611223344015626112"
    "94D45524348414E54303030303030315445524D3030303100"
)


def hcepay(*args: str) -> list[str]:
    return [sys.executable, "-m", "reader.cli", *args]


@pytest.fixture
def served_process(
    home: Path, wait_card: Callable[[int, bool], None]
) -> Iterator[subprocess.Popen[str]]:
    """`hcepay -v card serve --vpcd 127.0.0.1:35964` on the home's card, until the test ends."""
    wait_card(1, False)
    process = subprocess.Popen(
        hcepay("-v", "card", "serve", "--home", str(home), "--vpcd", "127.0.0.1:35964"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_card(1, True)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
        wait_card(1, False)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_answers_then_stops_cleanly_on_a_signal(
    served_process: subprocess.Popen[str], card_folder: Path, sig: signal.Signals
) -> None:
    transport = PcscTransport("Virtual PCD 00 01")
    transport.connect()
    try:
        assert transport.transmit(SELECT_PPSE)[-2:] == b"\x90\x00"
        assert transport.transmit(SELECT_AID)[-2:] == b"\x90\x00"
        gpo = transport.transmit(GPO)
    finally:
        transport.disconnect()
    assert gpo[-2:] == b"\x90\x00" and gpo[-7:-2] == bytes.fromhex("9F36020001")
    served_process.send_signal(sig)
    _, err = served_process.communicate(timeout=10)
    assert served_process.returncode == 0, err
    apdu_lines = [line for line in err.splitlines() if "applet.vpcd: C " in line]
    assert len(apdu_lines) == 3
    assert apdu_lines[2].split(" C ")[1].startswith(GPO.hex().upper())
    assert "stopped: 3 APDUs served" in err
    state = FileStateStore(card_folder).load()
    assert (state.atc, state.used) == (1, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vpcd", "127.0.0.1:0"], "bad vpcd address"),
        (["--card", "4111"], "no card 4111"),
    ],
)
def test_serve_refuses_bad_options_in_one_line(home: Path, args: list[str], message: str) -> None:
    done = subprocess.run(
        hcepay("card", "serve", "--home", str(home), *args),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr


def test_serve_without_a_card(tmp_path: Path) -> None:
    done = subprocess.run(
        hcepay("card", "serve", "--home", str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "no card in" in done.stderr
