"""`hcepay readers` and `hcepay pay --reader` when pcscd is not there: one line, exit 4.

pcsc-lite's client finds pcscd through PCSCLITE_CSOCK_NAME: pointing it at a socket that does
not exist is a machine where pcscd is not running, whatever this machine runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reader.cli import app
from reader.cli_pay import make_demo_home


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
        ["pay", "--amount", "1.00", "--reader", "Virtual PCD 00 00"],
        ["pay", "--amount", "1.00", "--reader", "0"],
    ],
)
def test_without_pcscd(tmp_path: Path, args: list[str]) -> None:
    home = tmp_path / "home"
    make_demo_home(home)  # keys and a card: only the reader is missing
    done = hcepay(tmp_path, *args, *(["--home", str(home)] if args[0] != "readers" else []))
    assert done.returncode == 4, done.stderr
    said = (
        "transport error: pcscd not running (start it: /usr/sbin/pcscd --foreground &)"
        if args[0] == "pay"
        else "pcscd not running (start it: /usr/sbin/pcscd --foreground &)"
    )
    assert done.stderr.splitlines() == [f"hcepay: error: {said}"]
    assert done.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["readers"],
        ["pay", "--amount", "1.00", "--reader", "0", "--home", "HOME"],
        ["card", "send", "--reader", "0", "--home", "HOME", "00A4040000"],
        ["vectors", "replay", "--reader", "0", "VECTORS"],
        ["vectors", "record", "--out", "OUT", "--reader", "0"],
    ],
    ids=lambda args: " ".join(args[:2]),
)
def test_without_pyscard_every_command_says_so_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """pyscard that cannot be imported: `pay --reader` and `readers` said "internal error:
    ModuleNotFoundError" (exit 70), `card send` "PC/SC support is not available here" (exit
    4); every command now gives the latter."""
    import reader

    home = tmp_path / "home"
    make_demo_home(home)
    vectors = Path(__file__).resolve().parents[2] / "vectors" / "card"
    where = {"HOME": str(home), "VECTORS": str(vectors), "OUT": str(tmp_path / "v.json")}
    for name in ("smartcard", "smartcard.scard"):
        monkeypatch.setitem(sys.modules, name, None)  # None: `import` raises ImportError
    monkeypatch.delitem(sys.modules, "reader.pcsc", raising=False)
    monkeypatch.delattr(reader, "pcsc", raising=False)
    result = CliRunner().invoke(app, [where.get(a, a) for a in args])
    assert result.exit_code == 4, (result.output, result.exception)
    assert result.stderr.startswith("hcepay: error: PC/SC support is not available here ("), (
        result.stderr
    )
    assert result.stderr.count("\n") == 1


TWO = [
    ("Virtual PCD 00 00", None),
    ("Virtual PCD 00 01", bytes.fromhex("3B80800101")),
]
MUTE = ("ACS ACR122U PICC Interface 00 00", "mute")


def _readers(
    monkeypatch: pytest.MonkeyPatch,
    found: list[tuple[str, bytes | str | None]] | Exception,
    *args: str,
) -> tuple[int, str, str]:
    """`hcepay readers ARGS` over a pcscd that lists `found` (or fails with it)."""
    from reader import pcsc

    def listed() -> list[pcsc.ReaderInfo]:
        if isinstance(found, Exception):
            raise found
        return [
            pcsc.ReaderInfo(i, name, None, True)
            if atr == "mute"
            else pcsc.ReaderInfo(i, name, atr if isinstance(atr, bytes) else None)
            for i, (name, atr) in enumerate(found)
        ]

    monkeypatch.setattr(pcsc, "list_readers", listed)
    result = CliRunner().invoke(app, ["readers", *args], env={"COLUMNS": "300"})
    return result.exit_code, result.stdout, result.stderr


def test_readers_shows_each_reader_with_the_atr_of_its_card(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out, err = _readers(monkeypatch, [*TWO, MUTE])
    assert (code, err) == (0, "")
    rows = [line for line in out.splitlines() if " 00 0" in line]
    assert len(rows) == 3
    assert "0" in rows[0] and "(no card)" in rows[0]
    assert "1" in rows[1] and "3B 80 80 01 01" in rows[1]
    assert "2" in rows[2] and "(card not responding)" in rows[2]  # there, but mute


def test_readers_json_is_one_line_a_reader_an_object(monkeypatch: pytest.MonkeyPatch) -> None:
    """`--json`: one line, every reader with its index, its name, its card's ATR (hex,
    null for an empty reader) and whether that card is mute, in pcscd's order."""
    code, out, err = _readers(monkeypatch, [*TWO, MUTE], "--json")
    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    assert json.loads(out) == [
        {"index": 0, "name": "Virtual PCD 00 00", "atr": None, "mute": False},
        {"index": 1, "name": "Virtual PCD 00 01", "atr": "3B80800101", "mute": False},
        {"index": 2, "name": MUTE[0], "atr": None, "mute": True},
    ]


def test_no_reader_is_no_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """pcscd without readers: a listing of nothing (exit 0), said on stderr for a person,
    an empty JSON list for a program."""
    assert _readers(monkeypatch, []) == (0, "", "no PC/SC reader (is vsmartcard-vpcd installed?)\n")
    assert _readers(monkeypatch, [], "--json") == (0, "[]\n", "")


@pytest.mark.parametrize("args", [[], ["--json"]])
def test_a_pcsc_failure_of_readers_is_one_line_and_exit_4(
    monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    from reader.transport import TransportError

    code, out, err = _readers(monkeypatch, TransportError("reader unavailable"), *args)
    assert (code, out, err) == (4, "", "hcepay: error: reader unavailable\n")
