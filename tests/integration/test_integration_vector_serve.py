"""`hcepay vectors serve` as a terminal maker runs it: a process serving terminal-side vectors
to "Virtual PCD 00 01" through pcscd + vpcd, and a terminal paying them through pyscard.

The terminal is ours (reader.vectors.run_terminal: the payment flow with the vector's values
injected) or a raw one that departs from a vector."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from reader.checks import Verdict
from reader.pcsc import PcscTransport
from reader.vectors import load, run_terminal

ROOT = Path(__file__).resolve().parents[2]
PROFILES = ROOT / "vectors" / "profiles"
TERMINAL = ROOT / "vectors" / "terminal"
READER = "Virtual PCD 00 01"


@contextmanager
def _serving(*paths: Path) -> Iterator[subprocess.Popen[str]]:
    """`hcepay vectors serve PATHS --json` into "Virtual PCD 00 01", killed if still running
    when the block ends."""
    args = ["vectors", "serve", *map(str, paths), "--vpcd", "127.0.0.1:35964", "--json"]
    process = subprocess.Popen(
        [sys.executable, "-m", "reader.cli", *args, "--timeout", "30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def test_our_terminal_passes_served_vectors_and_reaches_their_verdicts(
    wait_card: Callable[[int, bool], None],
) -> None:
    names = ["terminal-approve", "terminal-license-revoked", "terminal-torn-recorded"]
    paths = [TERMINAL / f"{name}.json" for name in names]
    wait_card(1, False)
    verdicts: list[Verdict | None] = []
    with _serving(*paths) as process:
        for path in paths:
            wait_card(1, True)  # this vector's card is in the reader
            vector = load(path)
            run = run_terminal(vector, PROFILES, PcscTransport(READER))
            verdicts.append(run.verdict)
            assert vector.expect is not None
            assert (run.verdict, run.reason) == (vector.expect.verdict, vector.expect.reason)
            wait_card(1, False)  # the terminal reset the card: it leaves for the next one
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    report = json.loads(out)
    assert (report["passed"], report["failed"]) == (3, 0)
    assert [r["vector"] for r in report["results"]] == names
    assert [r["done"] for r in report["results"]] == [len(load(p).steps) for p in paths]
    assert verdicts == [Verdict.APPROVED, Verdict.REFUSED, Verdict.APPROVED]


def test_a_terminal_with_its_own_unpredictable_number_fails_where_it_departs(
    wait_card: Callable[[int, bool], None],
) -> None:
    vector = load(TERMINAL / "terminal-approve.json")
    gpo = vector.steps[2].command
    at = gpo.find(bytes.fromhex("1A2B3C4D"))
    assert gpo[1] == 0xA8 and at > 0
    wait_card(1, False)
    with _serving(TERMINAL / "terminal-approve.json") as process:
        wait_card(1, True)
        transport = PcscTransport(READER)
        transport.connect()
        try:
            answers = [transport.transmit(step.command) for step in vector.steps[:2]]
            answers.append(transport.transmit(gpo[:at] + bytes.fromhex("01020304") + gpo[at + 4 :]))
        finally:
            transport.disconnect()
        out, err = process.communicate(timeout=30)
    assert answers[:2] == [step.response.data for step in vector.steps[:2]]
    assert answers[2] == bytes.fromhex("6F00")
    assert process.returncode == 1, err
    [result] = json.loads(out)["results"]
    assert result["difference"]["problem"] == "command"
    assert (result["difference"]["step"], result["difference"]["offset"]) == (3, at)
    assert "FAIL: command differs at step 3" in err


def test_a_signal_stops_serving_and_says_what_was_not_served(
    wait_card: Callable[[int, bool], None],
) -> None:
    wait_card(1, False)
    with _serving(
        TERMINAL / "terminal-approve.json", TERMINAL / "terminal-decline.json"
    ) as process:
        wait_card(1, True)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert json.loads(out) == {"results": [], "passed": 0, "failed": 0}
    assert "interrupted (2 of 2 vector(s) not served)" in err
    wait_card(1, False)
