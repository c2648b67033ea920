"""`hcepay decode`: fields, TLV tree, JSON, and a one-line error with exit 1."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from reader.cli import app
from reader.cli_common import hex_input

runner = CliRunner()
PPSE_RSP = (
    "6F31840E325041592E5359532E4444463031A51FBF0C1C611A4F09F04843455041590001"
    "500A484345204352454449548701019000"
)


def test_command_text() -> None:
    result = runner.invoke(app, ["decode", "00A4040007A000000003101000"])
    assert result.exit_code == 0
    assert "case 4S" in result.stdout
    assert "A4 SELECT" in result.stdout
    assert "Lc    7" in result.stdout and "Le    256" in result.stdout


def test_command_json_with_tlv() -> None:
    result = runner.invoke(app, ["decode", "--json", "80A80000048302313200"])
    assert result.exit_code == 0
    out = json.loads(result.stdout)
    assert out["kind"] == "command" and out["case"] == "4S" and out["cla"] == "80"
    assert out["ins_name"] == "GET PROCESSING OPTIONS" and out["lc"] == 4 and out["le"] == 256
    assert out["tlv"] == [{"tag": "83", "name": "Command Template", "value": "3132"}]


def test_response_tree() -> None:
    result = runner.invoke(app, ["decode", "--response", PPSE_RSP])
    assert result.exit_code == 0
    assert "9000 ok" in result.stdout
    assert "      BF0C FCI Issuer Discretionary Data" in result.stdout
    assert '50 Application Label: 48434520435245444954 "HCE CREDIT"' in result.stdout


def test_response_json() -> None:
    result = runner.invoke(app, ["decode", "--response", "--json", PPSE_RSP])
    out = json.loads(result.stdout)
    assert out["kind"] == "response" and out["sw"] == "9000"
    assert out["tlv"][0]["tag"] == "6F"
    assert out["tlv"][0]["children"][1]["children"][0]["tag"] == "BF0C"


def test_non_tlv_data_has_no_tree() -> None:
    result = runner.invoke(app, ["decode", "--json", "00A404000E325041592E5359532E444446303100"])
    out = json.loads(result.stdout)
    assert out["tlv"] is None and out["tlv_error"].startswith("value of tag ")


DEEP = "E113E111E10FE10DE10BE109E107E105E103E10101"  # nine templates, one deeper than 8


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ("6F05AABB", "value of tag 6F runs past the end (needs 5, has 2) at offset 2"),
        (DEEP, "templates nested deeper than 8 at tag E1 at offset 16"),
    ],
)
def test_data_not_shown_as_tlv_says_why(data: str, why: str) -> None:
    """A malformed or too deep answer was printed in hex with no TLV section and no word,
    and --json said "tlv": null with no reason."""
    text = runner.invoke(app, ["decode", "--response", data + "9000"])
    assert text.exit_code == 0
    assert text.stdout.splitlines()[-2:] == [f"data  {data}", f"TLV   not decoded: {why}"]
    out = json.loads(runner.invoke(app, ["decode", "--response", "--json", data + "9000"]).stdout)
    assert out["tlv"] is None and out["tlv_error"] == why


def test_counts_of_one_are_singular() -> None:
    """ "1 data bytes", "(1 bytes)": one byte is singular; more stay plural."""
    out = runner.invoke(app, ["decode", "--response", "E101009000"]).stdout
    assert "response: 3 data bytes" in out and "E1 unknown (1 byte)" in out, out
    out = runner.invoke(app, ["decode", "--response", "019000"]).stdout
    assert out.startswith("response: 1 data byte\n"), out
    err = runner.invoke(app, ["decode", "00A404000200"]).stderr
    assert "Lc 2 does not match the 1 byte after it" in err, err


def test_tlv_error_is_null_with_a_tree_or_no_data() -> None:
    for args in (["--response", PPSE_RSP], ["--response", "9000"], ["00B2010C00"]):
        out = json.loads(runner.invoke(app, ["decode", "--json", *args]).stdout)
        assert out["tlv_error"] is None, args
    text = runner.invoke(app, ["decode", "--response", PPSE_RSP]).stdout
    assert "not decoded" not in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["decode", "00A40400FF00"], "Lc 255 does not match the 1 byte after it at offset 4"),
        (["decode", "--response", "90"], "shorter than its 2-byte status word at offset 1"),
        (["decode", "zz"], "input is not hexadecimal ('z' at offset 0)"),  # 0-based, as
        (["decode", "00A4 04zz"], "input is not hexadecimal ('z' at offset 6)"),  # the above
        (["decode", "00A"], "input has an odd number of hex digits (3)"),
    ],
)
def test_malformed_exits_1(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_text_of_a_card_shows_no_control_character() -> None:
    """A card's text (here a label 50 and a holder 5F20) is shown with its control bytes as
    dots: printed raw, ESC [ 2 J or a newline from a hostile card reached the terminal."""
    result = runner.invoke(app, ["decode", "--response", "50051B5B324A075F200441420A439000"])
    assert result.exit_code == 0
    assert '".[2J."' in result.stdout and '"AB.C"' in result.stdout, result.stdout
    assert not any(ch in result.stdout for ch in "\x1b\x07\r"), result.stdout
    assert len(result.stdout.splitlines()) == 6  # response, SW, data, TLV:, 50, 5F20


def test_a_commands_data_that_is_no_tlv_is_no_error_in_the_text() -> None:
    """A SELECT's name or GENERATE AC's DOL data is not TLV, and not meant to be: the text
    says nothing of it (--json still gives the reason, for tools that want it)."""
    text = runner.invoke(app, ["decode", "00A4040009F0484345504159000100"]).stdout
    assert text.splitlines()[-1] == "data  F04843455041590001" and "TLV" not in text
    out = json.loads(
        runner.invoke(app, ["decode", "--json", "00A4040009F0484345504159000100"]).stdout
    )
    assert out["tlv"] is None and out["tlv_error"].startswith("value of tag F0 ")


@given(st.binary(max_size=64), st.booleans())
def test_hex_input_reads_what_hex_writes(data: bytes, upper: bool) -> None:
    text = data.hex().upper() if upper else data.hex()
    assert hex_input(text) == data


@given(st.text(max_size=20), st.sampled_from("gz- x+"), st.text("0123456789abcdef", max_size=6))
def test_hex_input_names_the_first_character_that_is_no_hex_digit(
    head: str, bad: str, tail: str
) -> None:
    head = "".join(c for c in head if c in "0123456789abcdefABCDEF")
    """The offset is 0-based, as a DecodeError's ("at offset 4"): the bad character is
    text[offset] (it was 1-based: `'z' at 1` where decode said `at offset 0`)."""
    with pytest.raises(ValueError, match=re.escape(f"({bad!r} at offset {len(head)})")):
        hex_input(head + bad + tail)
