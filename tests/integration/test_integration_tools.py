"""Independent PC/SC clients see the served card: pcsc_scan, opensc-tool, scriptor."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest

TOOL_TIMEOUT = 20
PPSE = bytes.fromhex("325041592E5359532E4444463031")
PSE = bytes.fromhex("315041592E5359532E4444463031")
AID = bytes.fromhex("F04843455041590001")


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable = pytest.fail if os.environ.get("CI") else pytest.skip
        unavailable(f"{name} is not installed (apt-get install pcsc-tools opensc)")
    assert path is not None
    return path


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False)
    assert done.returncode == 0, f"{argv[0]} exited {done.returncode}: {done.stderr}"
    return done.stdout


def test_pcsc_scan_shows_the_atr(serve: Any, echo_card: Any) -> None:
    serve(echo_card)
    out = run(tool("pcsc_scan"), "-n", "-t", "1")
    section = out.split("Reader 0: Virtual PCD 00 00", 1)[1].split("Reader 1:", 1)[0]
    assert "Card inserted" in section
    assert "ATR: 3B 80 80 01 01" in section
