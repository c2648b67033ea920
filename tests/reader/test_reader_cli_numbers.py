"""Every number the command line takes (serials, --currency, --bits, --last, --atc, seconds,
the --vpcd port, --expiry) is ASCII digits 0-9 only: Python's int() and float() read "٣"
(an Arabic-Indic three) as 3, and " 3", "+3", "1_000", "1e3" or "inf" too."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from authority.keystore import load_keystore
from reader.cli import app
from reader.cli_common import MAX_DIGITS, seconds, whole_number

ARABIC_THREE = "\u0663"  # ٣


@pytest.mark.parametrize(
    ("args", "name", "path"),
    [
        (["authority", "revoke", ARABIC_THREE], "SERIAL", "authority revoke"),
        (["authority", "init", "--bits", "\u0661\u0660\u0662\u0664"], "--bits", "authority init"),
        (["authority", "init", "--exponent", ARABIC_THREE], "--exponent", "authority init"),
        (
            ["card", "issue", "--account", "1", "--limit", "1", "--currency", "+156"],
            "--currency",
            "card issue",
        ),
        (
            ["card", "issue", "--account", "1", "--limit", "1", "--bits", "1_024"],
            "--bits",
            "card issue",
        ),
        (["pay", "--amount", "1", "--currency", "\u0661\u0665\u0666"], "--currency", "pay"),
        (["pay", "--amount", "1", "--currency", " 156"], "--currency", "pay"),
        (["log", "--last", "\u0662"], "--last", "log"),
        (["log", "--last", "-3"], "--last", "log"),
        (["vectors", "record", "--out", "v.json", "--atc", "\u0661"], "--atc", "vectors record"),
        (
            ["vectors", "record", "--out", "v.json", "--currency", "٩٧٨"],
            "--currency",
            "vectors record",
        ),
    ],
)
def test_a_number_that_is_not_ascii_digits_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], name: str, path: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args, env={"HCEPAY_HOME": str(tmp_path / "home")})
    assert result.exit_code == 2, result.output
    given = args[args.index(name) + 1] if name.startswith("--") else args[-1]
    assert result.stderr.splitlines() == [
        f"hcepay: error: invalid value for '{name}': {given!r} is not a whole number in ASCII "
        f"digits 0-9 (see 'hcepay {path} -h')"
    ]
    assert not (tmp_path / "home").exists()  # refused before anything was made
    assert not (tmp_path / "v.json").exists()


def test_revoke_of_an_arabic_indic_digit_revokes_nothing(tmp_path: Path) -> None:
    home = ["--home", str(tmp_path)]
    runner = CliRunner()
    assert runner.invoke(app, ["authority", "init", "--bits", "1024", *home]).exit_code == 0
    result = runner.invoke(app, ["authority", "revoke", ARABIC_THREE, *home])
    assert result.exit_code == 2, result.output
    assert load_keystore(tmp_path).revoked == frozenset()  # not serial 3
    result = runner.invoke(app, ["authority", "revoke", "3", *home])
    assert (result.exit_code, result.stdout) == (0, "serial 3 revoked\n")
    assert load_keystore(tmp_path).revoked == frozenset({3})


@pytest.mark.parametrize("wait", [ARABIC_THREE, "1e1", "inf", "nan", "-1", " 3", ".5", "3_0"])
@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["pay", "--amount", "1", "--reader", "0"], "--wait"),
        (["card", "send", "00A4040000", "--reader", "0"], "--wait"),
        (["vectors", "replay", "--reader", "0"], "--wait"),
        (["vectors", "serve"], "--idle"),
        (["vectors", "serve"], "--timeout"),
    ],
)
def test_seconds_are_ascii_digits_with_a_decimal_part(
    tmp_path: Path, command: list[str], option: str, wait: str
) -> None:
    result = CliRunner().invoke(app, [*command, option, wait], env={"HCEPAY_HOME": str(tmp_path)})
    assert result.exit_code == 2, result.output
    assert (
        f"hcepay: error: invalid value for '{option}': {wait!r} is not a number of seconds "
        "like 30 or 0.5" in result.stderr
    )


def test_the_parsers_read_ascii_digits_and_pass_defaults_through() -> None:
    assert whole_number("0") == 0
    assert whole_number("016") == 16
    assert whole_number("9" * MAX_DIGITS) == 10**MAX_DIGITS - 1
    assert whole_number(156) == 156  # an option's default, as click passes it
    assert seconds("30") == 30.0
    assert seconds("0.5") == 0.5
    assert seconds(2.0) == 2.0
    for bad in ("", "3 ", "+3", "-3", "0x10", "\uff13", "\u00b2", "9" * (MAX_DIGITS + 1)):
        with pytest.raises(typer.BadParameter):
            whole_number(bad)
    for bad in ("", "1.", ".5", "1e3", "inf", "nan", "\u0663.5", "1" * (MAX_DIGITS + 1)):
        with pytest.raises(typer.BadParameter):
            seconds(bad)


@pytest.mark.parametrize("expiry", ["20\u0663\u0660-12", "2030-1\u0662", "2030-12\n"])
def test_card_issue_expiry_is_ascii_digits(tmp_path: Path, expiry: str) -> None:
    args = ["card", "issue", "--account", "1", "--limit", "1", "--expiry", expiry]
    result = CliRunner().invoke(app, [*args, "--home", str(tmp_path / "home")])
    assert result.exit_code == 2, result.output
    assert f"bad expiry {expiry!r}: expected YYYY-MM (2000-2099)" in result.stderr


def test_the_vpcd_port_is_ascii_digits() -> None:
    vpcd = "127.0.0.1:\u0663\u0665\u0669\u0666\u0663"  # was port 35963
    result = CliRunner().invoke(app, ["vectors", "serve", "--vpcd", vpcd, "--timeout", "1"])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"hcepay: error: bad vpcd address {vpcd!r}: expected HOST:PORT with a port 1-65535\n"
    )
