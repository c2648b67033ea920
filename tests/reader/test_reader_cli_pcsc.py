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
