"""What a command line loads: help loads none of the payment's libraries.

`hcepay` starts once per payment, so its help and every command load only what they run
(bench/startup.py times it); these tests check which modules a fresh process holds.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from authority import rsa
from reader import cli_authority
from reader.cli_pay import make_demo_home

HEAVY = ("construct", "cryptography", "gmpy2", "smartcard", "sqlite3")
# the `hcepay` console script's entry point, then the names of the modules loaded, as the
# last line of stderr (stdout is the command's own)
RUNNER = """
import json, sys
from reader.entry import main
try:
    main()
finally:
    print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def _loaded(*args: str) -> tuple[int, str, set[str]]:
    """Run `hcepay ARGS` in a fresh Python: its exit code, stdout, and the modules it
    loaded: each by its full name and each package by its top-level name."""
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, *args], capture_output=True, text=True, timeout=60
    )
    modules: list[str] = json.loads(done.stderr.strip().splitlines()[-1])
    return done.returncode, done.stdout, {*modules, *(name.split(".")[0] for name in modules)}


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["pay", "--help"],
        ["log", "--help"],
        ["card", "--help"],
        ["card", "send", "--help"],
        ["authority", "init", "--help"],
        ["vectors", "--help"],
        ["readers", "--help"],
    ],
    ids=" ".join,
)
def test_help_loads_no_payment_library(args: list[str]) -> None:
    code, out, modules = _loaded(*args)
    assert code == 0
    assert "Usage:" in out
    assert modules.isdisjoint(HEAVY), sorted(modules.intersection(HEAVY))


def test_a_command_loads_what_it_runs() -> None:
    """The check sees what a command loads: `decode` parses with construct, and needs no
    key, log or reader."""
    code, out, modules = _loaded("decode", "00A404000E325041592E5359532E444446303100")
    assert code == 0
    assert "SELECT" in out
    assert "construct" in modules
    assert modules.isdisjoint({"cryptography", "gmpy2", "smartcard", "sqlite3"})


def test_a_payment_in_process_loads_no_reader_support(tmp_path: Path) -> None:
    """`pay --in-process` loads the payment's libraries but not pyscard, the vectors or the
    log's table."""
    home = tmp_path / "home"
    make_demo_home(home)
    code, out, modules = _loaded("pay", "--in-process", "--amount", "1.00", "--home", str(home))
    assert code == 0
    assert "verdict: APPROVED 1.00" in out
    assert {"construct", "cryptography", "gmpy2", "sqlite3", "reader.flow"} <= modules
    assert modules.isdisjoint({"smartcard", "reader.pcsc", "reader.vectors", "rich.table"})


def test_authority_init_defaults_are_the_keys_defaults() -> None:
    """`authority init` writes out authority/rsa.py's defaults so that its help need not load
    that module; they must stay the same numbers."""
    assert (cli_authority.DEFAULT_BITS, cli_authority.DEFAULT_EXPONENT) == (
        rsa.DEFAULT_BITS,
        rsa.DEFAULT_EXPONENT,
    )
