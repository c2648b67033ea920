"""Every command's --help: flags render as flags, and every example it shows runs (exit 0)."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from reader.cli import app

REPO = Path(__file__).resolve().parents[2]
WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}
EXAMPLE_RE = re.compile(r"^`(hcepay [^`]*)`$", re.MULTILINE)
# examples that need pcscd, a reader or a card in one: not run here (tests/integration)
NEEDS_PCSC = ("--reader", "hcepay readers", "card serve")


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def test_flags_render_without_a_value() -> None:
    text = _help("pay")
    assert re.search(r"--json\s+Print the result as JSON", text), text
    assert re.search(r"--in-process\s+Pay with", text), text
    assert "<bool>" not in text
    root = _help()
    assert re.search(r"--verbose\s+-v\s+Log more", root), root
    assert "<int>" not in root.split("Commands")[0]
