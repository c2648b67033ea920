"""Independent PC/SC clients see the served card: pcsc_scan, opensc-tool, scriptor."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from apdu import tlv

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


def test_pcsc_scan_shows_our_card(serve: Any, our_card: Any) -> None:
    serve(our_card, 1)
    out = run(tool("pcsc_scan"), "-n", "-t", "1")
    section = out.split("Reader 1: Virtual PCD 00 01", 1)[1]
    assert "ATR: 3B 80 80 01 01" in section


def test_opensc_tool_reads_our_ppse(serve: Any, our_card: Any) -> None:
    serve(our_card)
    select_ppse = "00A404000E" + PPSE.hex().upper() + "00"
    out = run(tool("opensc-tool"), "-c", "default", "-r", "0", "-s", select_ppse)
    assert "Received (SW1=0x90, SW2=0x00)" in out
    dump = "".join(line[:48] for line in out.split("SW2=0x00):", 1)[1].strip().splitlines())
    (fci,) = tlv.decode(bytes.fromhex(dump))
    assert fci.tag == 0x6F
    assert fci.children[0].tag == 0x84 and fci.children[0].value == PPSE
    assert AID.hex().upper() in dump.replace(" ", "")


PDOL_DATA = bytes.fromhex("0000000012340156112233440156261129") + b"MERCHANT0000001" + b"TERM0001"
READ_ONLY_SEQUENCE = [
    bytes.fromhex("00A404000E") + PSE + b"\x00",
    bytes.fromhex("00B2010C00"),
    bytes.fromhex("00A4040009") + AID + b"\x00",
    bytes.fromhex("80A800002A8328") + PDOL_DATA + b"\x00",
    bytes.fromhex("00B2010C00"),
    bytes.fromhex("00B2020C00"),
    bytes.fromhex("00B2030C00"),
]


def _scriptor_responses(out: str) -> list[bytes]:
    """The responses in scriptor's output: each starts at `< ` and runs to its ` : ` text."""
    responses = []
    for block in out.split("\n< ")[1:]:
        body = block.split(" : ", 1)[0]
        responses.append(bytes.fromhex("".join(body.split())))
    return responses


def test_scriptor_runs_the_read_only_sequence(
    serve: Any, our_card: Any, card_folder: Path, tmp_path: Path
) -> None:
    serve(our_card)
    script = tmp_path / "read.apdu"
    script.write_text("".join(apdu.hex(" ").upper() + "\n" for apdu in READ_ONLY_SEQUENCE))
    out = run(tool("scriptor"), "-r", "Virtual PCD 00 00", "-p", "T=1", str(script))
    responses = _scriptor_responses(out)
    assert len(responses) == len(READ_ONLY_SEQUENCE)
    assert all(r[-2:] == b"\x90\x00" for r in responses), out
    templates = [tlv.decode(r[:-2])[0].tag for r in responses]
    assert templates == [0x6F, 0x70, 0x6F, 0x77, 0x70, 0x70, 0x70]
    pse_dir = tlv.decode(responses[1][:-2])[0]
    assert pse_dir.children[0].children[0].value == AID  # 70{61{4F AID, ...}}
    license = tlv.decode(responses[5][:-2])[0].children[0]
    assert (license.tag, len(license.value)) == (0x9F46, 248)  # N_CA of the 1984-bit test authority
