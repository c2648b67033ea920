"""`hcepay readers` and `hcepay pay --reader` when pcscd is not there: one line, exit 4.

pcsc-lite's client finds pcscd through PCSCLITE_CSOCK_NAME: pointing it at a socket that does
not exist is a machine where pcscd is not running, whatever this machine runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def hcepay(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PCSCLITE_CSOCK_NAME": str(tmp_path / "no-pcscd.comm")}
    env.pop("HCEPAY_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "reader.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [
        ["readers"],
        ["readers", "--json"],
        ["card", "send", "--reader", "Virtual PCD 00 00", "00A4040000"],
    ],
)
def test_without_pcscd(tmp_path: Path, args: list[str]) -> None:
    done = hcepay(tmp_path, *args, *(["--home", str(tmp_path)] if args[0] == "card" else []))
    assert done.returncode == 4, done.stderr
    assert done.stderr.splitlines() == ["hcepay: error: pcscd not running"]
    assert done.stdout == ""
