"""The home folder as every command with --home takes it (docs/architecture.md layout)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from reader.cli import app

HOME_COMMANDS = [
    ["pay", "--amount", "1.00"],
    ["pay", "--amount", "1.00", "--reader", "0"],
    ["log"],
    ["log", "--verify"],
    ["log", "recover"],
    ["authority", "init", "--bits", "1024"],
    ["authority", "revoke", "3"],
    ["authority", "show"],
    ["authority", "show", "--json"],
    ["card", "issue", "--account", "6200123456789012", "--limit", "1.00", "--bits", "1024"],
    ["card", "send", "--in-process", "00A4040000"],
    ["card", "serve"],
]


@pytest.mark.parametrize("argv", HOME_COMMANDS, ids=" ".join)
def test_a_home_that_is_a_file_is_refused_alike_by_every_command(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only `authority init` said so: pay said "holds no authority key", log "Not a
    directory", and authority show exited 0 with "no authority key yet"."""
    home = tmp_path / "home"
    home.write_text("x\n")
    expected = f"hcepay: error: the home {home} is a file, not a folder\n"
    result = CliRunner().invoke(app, [*argv, "--home", str(home)])
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", expected), result.output
    monkeypatch.setenv("HCEPAY_HOME", str(home))  # the same from the environment
    result = CliRunner().invoke(app, argv)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", expected), result.output
    assert home.read_text() == "x\n"


def test_the_default_home_that_is_a_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HCEPAY_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".hcepay").write_text("")
    result = CliRunner().invoke(app, ["authority", "show"])
    assert result.exit_code == 2, result.output
    assert (
        result.stderr == f"hcepay: error: the home {tmp_path / '.hcepay'} is a file, not a folder\n"
    )
