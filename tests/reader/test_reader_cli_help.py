"""Every command's --help: flags render as flags, and every example it shows runs (exit 0)."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from reader.cli import app
from reader.cli_pay import make_demo_home

REPO = Path(__file__).resolve().parents[2]
WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}
EXAMPLE_RE = re.compile(r"^`(hcepay [^`]*)`$", re.MULTILINE)
# examples that need pcscd, a reader or a card in one, or a terminal paying a served card:
# not run here (tests/integration runs these commands)
NEEDS_PCSC = ("--reader", "hcepay readers", "card serve", "vectors serve")


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


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    subcommands: dict[str, Any] = getattr(command, "commands", {})  # a group's
    for name, sub in subcommands.items():
        yield from _commands(sub, (*path, name))


def _examples() -> list[tuple[tuple[str, ...], str]]:
    """The examples of every command's help (its epilog, reader/cli_common.examples)."""
    found = []
    for path, command in _commands(typer.main.get_command(app)):
        for example in EXAMPLE_RE.findall(command.epilog or ""):
            assert example.split("#")[0].strip() in " ".join(_help(*path).split())
            found.append((path, example))
    return found


EXAMPLES = _examples()
RUNNABLE = [(path, e) for path, e in EXAMPLES if not any(needs in e for needs in NEEDS_PCSC)]


def test_the_help_shows_examples() -> None:
    assert len(EXAMPLES) >= 15 and len(RUNNABLE) >= 10
    assert any(example.startswith("hcepay decode --response") for _, example in EXAMPLES)


def test_every_command_has_an_example() -> None:
    """Each command (not only most) shows at least one example in its help."""
    root = typer.main.get_command(app)
    without = [
        " ".join(path)
        for path, command in _commands(root)
        if path
        and not getattr(command, "commands", None)
        and not EXAMPLE_RE.search(command.epilog or "")
    ]
    assert without == [], without


def _setup(tmp_path: Path, example: str) -> Path:
    """A home in which the example can run: empty for `authority init`, an authority
    without cards for `card issue`, else the demo home (authority, keys, one card)."""
    home = tmp_path / "home"
    runner = CliRunner()
    if example.startswith("hcepay authority init"):
        return home
    if example.startswith("hcepay card issue"):
        result = runner.invoke(app, ["authority", "init", "--bits", "1024", "--home", str(home)])
        assert result.exit_code == 0, result.output
        return home
    make_demo_home(home)
    return home


@pytest.mark.parametrize(("path", "example"), RUNNABLE, ids=[e for _, e in RUNNABLE])
def test_every_help_example_runs(
    path: tuple[str, ...], example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = shlex.split(example, comments=True)
    assert argv[0] == "hcepay" and set(path) <= set(argv), (path, example)
    home = _setup(tmp_path, example)
    if "--home" in argv:  # an example's own folder (/tmp/pos) becomes this test's
        argv[argv.index("--home") + 1] = str(home)
    (tmp_path / "vectors").symlink_to(REPO / "vectors")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HCEPAY_HOME", str(home))
    result = CliRunner().invoke(app, argv[1:])
    expected = 1 if "declined" in example.partition("#")[2] else 0  # as its comment says
    assert result.exit_code == expected, f"{example}: exit {result.exit_code}\n{result.output}"
    if "--response" in argv:  # the example's data is well-formed BER-TLV, shown as a tree
        result = CliRunner().invoke(app, [*argv[1:], "--json"])
        data = json.loads(result.output)["data"]
        assert not data or json.loads(result.output)["tlv"] is not None, result.output


@pytest.mark.parametrize(
    ("path", "says"),
    [
        (("pay",), "74 the result could not be printed"),
        (("log",), "is one line naming it, exit 2"),
        (("vectors", "replay"), "2 for a bad vector file"),
        (("vectors", "serve"), "check its verdict and its log against the expect line yourself"),
        (("authority", "revoke"), "The home and its terminal key store must exist"),
        ((), "2 for a usage error (one line on stderr, never a traceback), 70 for an internal"),
        (("demo",), "Exit 0 approved, 1 declined (an amount over the limit)"),
        (("decode",), "Exit 0 decoded, 1 not an APDU"),
        (("readers",), "4 when pcscd is not running"),
        (("card", "send"), "4 transport error (no card, the card lost)"),
        (("card", "serve"), "Exit 0 when stopped (Ctrl-C or SIGTERM)"),
        (("vectors", "record"), "Exit 0 when the vector is written, whatever the payment's"),
        (("authority", "show"), "With --json, one object: home, keys"),
    ],
)
def test_the_help_names_what_the_command_does(path: tuple[str, ...], says: str) -> None:
    """The exit codes and refusals README.md and docs/ give for a command are in its help."""
    assert says in " ".join(_help(*path).split())


def test_log_help_gives_the_shape_of_its_json() -> None:
    """`hcepay log -h` showed the log group's short help, not its command's docstring:
    the --json object (transactions, pending_entries, spooled) was in README only."""
    text = " ".join(_help("log").split())
    for field in ("transactions", "verify_reason", "pending_entries", "spooled", "exit 3"):
        assert field in text, field


@pytest.mark.parametrize(
    ("path", "option"),
    [
        (("pay",), "--amount"),
        (("demo",), "--amount"),
        (("card", "issue"), "--limit"),
        (("vectors", "record"), "--amount"),
        (("vectors", "record"), "--used"),
    ],
)
def test_every_amount_option_says_how_an_amount_is_written(
    path: tuple[str, ...], option: str
) -> None:
    """An amount is a decimal string in the currency's units ("Amount, e.g. 12.34." left
    the units, the decimals and the refused forms to guess)."""
    text = " ".join(_help(*path).split())
    said = (
        rf"{option} AMOUNT [^│]*a decimal string in the currency's units, at most 2 decimals "
        r"\(12\.34, 5, 0\.50\); no sign, no exponent\."
    )
    assert re.search(said, text), text


@pytest.mark.parametrize("path", [("pay",), ("card", "issue"), ("vectors", "record")])
def test_every_currency_option_says_what_the_code_is(path: tuple[str, ...]) -> None:
    text = " ".join(_help(*path).split())
    assert "--currency CODE Currency: an ISO 4217 numeric code, 0 to 999" in text, text


def test_every_group_has_an_example() -> None:
    """`hcepay`, `hcepay card -h`, `hcepay authority -h` and `hcepay vectors -h` showed
    no example: a user starting from a group had none to copy."""
    root = typer.main.get_command(app)
    groups = [path for path, command in _commands(root) if getattr(command, "commands", None)]
    assert {(), ("card",), ("authority",), ("vectors",), ("log",)} <= set(groups)
    without = [path for path in groups if not EXAMPLE_RE.search(_command(root, path).epilog or "")]
    assert without == [], without


def _command(root: Any, path: tuple[str, ...]) -> Any:
    command = root
    for name in path:
        command = command.commands[name]
    return command
