"""Usage errors that click finds (an unknown option or command, a missing or bad value) are
one line on stderr and exit 2, as every other hcepay error: not click's "Usage / Try /
Error" box of four lines or more."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reader.cli import app
from reader.cli_common import ExitCode

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["pay", "--amout", "1"],
            "hcepay: error: no such option: --amout (Possible options: --amount, --wait) "
            "(see 'hcepay pay -h')",
        ),
        (["pay"], "hcepay: error: missing option '--amount' (see 'hcepay pay -h')"),
        (
            ["pay", "--amount", "1", "--currency", "x"],
            "hcepay: error: invalid value for '--currency': 'x' is not a whole number in ASCII "
            "digits 0-9 (see 'hcepay pay -h')",
        ),
        (
            ["pay", "--amount", "1", "extra"],
            "hcepay: error: got unexpected extra argument(s) (extra) (see 'hcepay pay -h')",
        ),
        (["nosuch"], "hcepay: error: no such command 'nosuch' (see 'hcepay -h')"),
        (
            ["card", "issue", "--nosuch"],
            "hcepay: error: no such option: --nosuch (see 'hcepay card issue -h')",
        ),
        (  # click's parser gave no context: the hint named `hcepay -h`
            ["pay", "--amount"],
            "hcepay: error: option '--amount' requires an argument (see 'hcepay pay -h')",
        ),
        (
            ["log", "recover", "--home"],
            "hcepay: error: option '--home' requires an argument (see 'hcepay log recover -h')",
        ),
        (
            ["pay", "-v", "--amount", "1"],
            "hcepay: error: no such option: -v; -v goes before the command: hcepay -v pay ... "
            "(see 'hcepay pay -h')",
        ),
        (
            ["card", "send", "--verbose"],
            "hcepay: error: no such option: --verbose; --verbose goes before the command: "
            "hcepay --verbose card send ... (see 'hcepay card send -h')",
        ),
    ],
    ids=[
        "unknown-option",
        "missing-option",
        "bad-value",
        "extra-argument",
        "unknown-command",
        "subcommand",
        "missing-value",
        "missing-value-subcommand",
        "verbose-after-the-command",
        "verbose-after-a-subcommand",
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(args: list[str], line: str) -> None:
    result = CliRunner().invoke(app, args, env={"COLUMNS": "80"})
    assert result.exit_code == ExitCode.USAGE, result.output
    assert result.stderr.splitlines() == [line]
    assert result.stdout == ""


def test_hcepay_alone_prints_its_help_and_no_error_line() -> None:
    """`hcepay` with no command shows the help (click's no_args_is_help, exit 2), with no
    error line after it."""
    result = CliRunner().invoke(app, [], env={"COLUMNS": "80"})
    assert result.exit_code == ExitCode.USAGE
    assert "Usage: hcepay" in result.output
    assert "hcepay: error" not in result.output  # the help names exit 2 "a usage error"
    assert "Error" not in result.output and "Try 'hcepay" not in result.output  # click's box


def test_help_and_a_command_exit_as_before() -> None:
    """The group runs commands outside click's standalone mode: --help still exits 0, and a
    command's own exit code (typer.Exit) still comes through."""
    runner = CliRunner()
    assert runner.invoke(app, ["pay", "--help"], env={"COLUMNS": "80"}).exit_code == 0
    result = runner.invoke(app, ["decode", "--response", "9000"])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(app, ["pay", "--amount", "-1", "--in-process"])
    assert bad.exit_code == ExitCode.USAGE
    assert bad.stderr.splitlines() == ["hcepay: error: amount -1 is negative"]


def test_the_hcepay_command_says_a_usage_error_in_one_line() -> None:
    """The same through the installed console script, in its own process."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("hcepay")), "pay", "--amout", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == ExitCode.USAGE, done.stderr
    assert done.stderr.splitlines() == [
        "hcepay: error: no such option: --amout (Possible options: --amount, --wait) "
        "(see 'hcepay pay -h')"
    ]
    assert done.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["pay", "--amount", "1"],
        ["card", "send", "00A4040000"],
        ["vectors", "replay", "vectors/card"],
        ["vectors", "record", "--out", "v.json", "--amount", "1"],
    ],
    ids=["pay", "card-send", "vectors-replay", "vectors-record"],
)
def test_every_command_refuses_both_transports_in_the_same_words(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    both = ["--in-process", "--reader", "Virtual PCD 00 00"]
    result = CliRunner().invoke(app, [*args, *both], env={"HCEPAY_HOME": str(tmp_path / "h")})
    assert result.exit_code == ExitCode.USAGE, result.output
    assert result.stderr.splitlines() == [
        "hcepay: error: pick one of --in-process and --reader NAME"
    ]
