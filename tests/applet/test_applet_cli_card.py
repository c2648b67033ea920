"""`hcepay card issue` and `hcepay card send --in-process` (reader/cli_card.py)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reader.cli import app

ACCOUNT = "6200123456789012"
SELECT_AID = "00A4040009F0484345504159000100"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("home")
    runner = CliRunner()
    result = runner.invoke(app, ["authority", "init", "--home", str(folder), "--bits", "1024"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "card",
            "issue",
            "--home",
            str(folder),
            "--account",
            ACCOUNT,
            "--limit",
            "1000.00",
            "--expiry",
            "2030-12",
            "--bits",
            "1024",
            "--holder",
            "TEST/HOLDER",
        ],
    )
    assert result.exit_code == 0, result.output
    return folder


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_issue_writes_card_and_takes_a_serial(home: Path) -> None:
    card = json.loads((home / "cards" / ACCOUNT / "card.json").read_text(encoding="utf-8"))
    assert (card["account"], card["limit"], card["expiry"]) == (ACCOUNT, 100_000, "301231")
    assert card["serial"] == 1 and card["holder"] == "TEST/HOLDER"
    serials = json.loads((home / "authority" / "serials.json").read_text(encoding="utf-8"))
    assert serials == {"next_serial": 2}


def test_a_lost_serials_file_repeats_no_serial_of_the_homes_cards(tmp_path: Path) -> None:
    """authority/serials.json lost: card issue started again at serial 1, and two licenses
    of one authority key had the same serial (PROTOCOL.md §5.1: unique). It goes on after
    the highest serial of the cards in the home."""
    home = str(tmp_path)
    assert run("authority", "init", "--home", home, "--bits", "1024")[0] == 0
    issue = ["card", "issue", "--home", home, "--limit", "1", "--bits", "1024"]
    for account in ("6200000000000001", "6200000000000002"):
        assert run(*issue, "--account", account)[0] == 0
    (tmp_path / "authority" / "serials.json").unlink()
    assert run(*issue, "--account", "6200000000000003")[0] == 0
    serials = [
        json.loads((tmp_path / "cards" / f"620000000000000{n}" / "card.json").read_text())["serial"]
        for n in (1, 2, 3)
    ]
    assert serials == [1, 2, 3]
    assert json.loads((tmp_path / "authority" / "serials.json").read_text()) == {"next_serial": 4}


def test_issue_refuses_an_existing_card_and_bad_input(home: Path) -> None:
    base = ["card", "issue", "--home", str(home), "--bits", "1024"]
    code, _, err = run(*base, "--account", ACCOUNT, "--limit", "1")
    assert code == 2 and "exists already" in err
    code, _, err = run(*base, "--account", "12ab", "--limit", "1")
    assert code == 2 and "bad account" in err
    code, _, err = run(*base, "--account", "1", "--limit", "1.001")
    assert code == 2 and "more than 2 decimals" in err
    code, _, err = run(*base, "--account", "1", "--limit", "1", "--expiry", "2030-13")
    assert code == 2 and "bad expiry" in err
    for holder in ("AB\nCD", "AB\x1b[2J", "AB\tCD"):  # 5F20 is ans: printable characters
        code, _, err = run(*base, "--account", "1", "--limit", "1", "--holder", holder)
        assert code == 2 and "--holder" in err, (holder, err)
    assert not (home / "cards" / "1").exists()


def test_issue_refuses_an_expiry_already_past(tmp_path: Path) -> None:
    """`--expiry 2020-01` issued a card that every payment then refused ("license expired"),
    as `authority init --expires` refuses a past date. The current month is valid through
    its last day, so it is issued."""
    assert run("authority", "init", "--home", str(tmp_path), "--bits", "1024")[0] == 0
    base = ["card", "issue", "--home", str(tmp_path), "--bits", "1024", "--limit", "1"]
    last_month = (date.today().replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    for past in ("2020-01", last_month):
        code, out, err = run(*base, "--account", "1", "--expiry", past)
        assert (code, out, err) == (2, "", f"hcepay: error: --expiry {past}: already past\n")
    assert not (tmp_path / "cards" / "1").exists()
    code, out, err = run(*base, "--account", "2", "--expiry", date.today().strftime("%Y-%m"))
    assert code == 0 and "issued card 2" in out, err


def test_send_in_process_keeps_state_between_runs(home: Path) -> None:
    gpo = "80A800002A8328" + "0000000001000156010203040156261128" + "20" * 23 + "00"
    code, out, _ = run("card", "send", "--home", str(home), "--in-process", SELECT_AID, gpo)
    assert code == 0
    assert out.splitlines()[1] == "770F820201009404080103019F3602000190" + "00"
    code, out, _ = run(
        "card",
        "send",
        "--home",
        str(home),
        "--in-process",
        "-",
        stdin=f"{SELECT_AID}\n# the ATC\n\n80CA9F3600\n",
    )
    assert code == 0 and out.splitlines()[1] == "9F3602000190" + "00"


def test_send_json_lists_each_exchange(home: Path) -> None:
    code, out, _ = run("card", "send", "--home", str(home), "--in-process", "--json", SELECT_AID)
    (exchange,) = json.loads(out)
    assert code == 0 and exchange["command"] == SELECT_AID.upper() and exchange["sw"] == "9000"
    assert exchange["response"].startswith("6F") and exchange["response"].endswith("9000")


def test_send_json_with_decode_has_each_response_decoded(home: Path) -> None:
    """--decode was ignored with --json: each item has `decoded`, what `hcepay decode
    --response --json` prints of its response; without --decode, no `decoded`."""
    send = ["card", "send", "--home", str(home), "--in-process", "--json"]
    code, out, _ = run(*send, "--decode", "80CA9F3600")
    (exchange,) = json.loads(out)
    assert code == 0 and len(out.splitlines()) == 1
    decoded = run("decode", "--response", "--json", exchange["response"])[1]
    assert exchange["decoded"] == json.loads(decoded)
    assert exchange["decoded"]["tlv"][0]["name"] == "Application Transaction Counter (ATC)"
    code, out, _ = run(*send, "80CA9F3600")
    assert code == 0 and "decoded" not in json.loads(out)[0]


def test_send_decodes_and_refuses_bad_hex(home: Path) -> None:
    code, out, _ = run(
        "card", "send", "--home", str(home), "--in-process", "--decode", "80CA9F3600"
    )
    assert code == 0 and "Application Transaction Counter" in out
    code, _, err = run("card", "send", "--home", str(home), "--in-process", "80CAZZ")
    assert code == 2 and "not hexadecimal" in err
    code, _, err = run("card", "send", "--home", str(home), "80CA9F3600")
    assert code == 2 and "--in-process" in err
    code, _, err = run(
        "card", "send", "--home", str(home), "--in-process", "--card", "99", "80CA9F3600"
    )
    assert code == 2 and "no card" in err


def test_send_refuses_a_card_with_a_reader(home: Path) -> None:
    """--card was quietly ignored with --reader; `pay` refuses the pair, and so does send."""
    args = ("--reader", "0", "--card", ACCOUNT, "80CA9F3600")
    code, out, err = run("card", "send", "--home", str(home), *args)
    assert code == 2 and out == "", err
    (line,) = err.splitlines()
    assert line.startswith("hcepay: error: --card picks the home's card") and "--reader" in line


def test_send_names_the_line_or_argument_of_a_bad_apdu(home: Path) -> None:
    """The stdin error said "APDU 5" for the first APDU, on line 5 (comments and blank
    lines hold none): it names the line (the argument for arguments)."""
    base = ("card", "send", "--home", str(home), "--in-process")
    code, _, err = run(*base, "-", stdin=f"# select\n\n{SELECT_AID}\n\nzz\n")
    assert code == 2 and err == "hcepay: error: line 5 is not hexadecimal ('z' at offset 0): 'zz'\n"
    code, _, err = run(*base, SELECT_AID, "# a comment", "GG")
    assert (
        code == 2
        and err == "hcepay: error: argument 3 is not hexadecimal ('G' at offset 0): 'GG'\n"
    )
    code, _, err = run(*base, "-", stdin=f"\n{'00' * 70000}\n")
    assert code == 2 and err.startswith("hcepay: error: line 2 is longer than ")


@pytest.mark.parametrize(
    "limit",
    [
        "10000000000000000000000000000",
        "1e27",
        "1E+999999999",
        "١٠٠٠",
        "1e3",
        "1_000",
        "+5",
        "-0",
        "1000000000000.00",
        "NaN",
    ],
)
def test_issue_limit_is_read_like_pay_amount(home: Path, limit: str) -> None:
    """--limit takes what `pay --amount` takes (n12 of minor units), a usage error else."""
    code, out, err = run(
        "card", "issue", "--home", str(home), "--bits", "1024", "--account", "77", "--limit", limit
    )
    assert code == 2, out + err
    assert err.startswith("hcepay: error: --limit") and "internal error" not in err
    assert not (home / "cards" / "77").exists()


def test_ca_index_is_two_hex_digits_like_authority_init(tmp_path: Path) -> None:
    """`authority init --index 10` makes key 0x10 (ca-10.pem); `card issue --ca-index 10`
    signs with that key, and both refuse 00, one digit or three."""
    home = str(tmp_path)
    code, _, err = run("authority", "init", "--home", home, "--bits", "1024", "--index", "10")
    assert code == 0, err
    base = ["card", "issue", "--home", home, "--bits", "1024", "--limit", "1"]
    code, _, err = run(*base, "--account", "11", "--ca-index", "10")
    assert code == 0, err
    card = json.loads((tmp_path / "cards" / "11" / "card.json").read_text(encoding="utf-8"))
    assert card["ca_index"] == 0x10
    for bad in ("00", "0", "1", "100", "G1", "+1"):
        code, _, err = run(*base, "--account", "12", "--ca-index", bad)
        assert code == 2 and "two hex digits, 01 to FF" in err, (bad, err)
        code, _, err = run("authority", "init", "--home", home, "--bits", "1024", "--index", bad)
        assert code == 2 and "two hex digits, 01 to FF" in err, (bad, err)
    code, _, err = run(*base, "--account", "12", "--ca-index", "16")  # hex, as its file says
    assert code == 2 and "ca-16.pem" in err


def test_issue_asks_for_authority_init_only_when_the_key_is_missing(tmp_path: Path) -> None:
    """A missing authority key: run `authority init` (with its --index). A key that is there
    but unusable (group-readable, damaged) is named with its own fix: `authority init` would
    refuse it, and with --force replace the key every issued license is signed with."""
    home = str(tmp_path)
    base = ["card", "issue", "--home", home, "--bits", "1024", "--limit", "1", "--account", "5"]
    code, _, err = run(*base, "--ca-index", "02")
    assert code == 2 and "run `hcepay authority init --index 02` first" in err, err
    code, _, err = run("authority", "init", "--home", home, "--bits", "1024")
    assert code == 0, err
    key = tmp_path / "authority" / "ca-01.pem"
    key.chmod(0o644)
    code, _, err = run(*base)
    assert code == 2 and "chmod 600" in err and "authority init" not in err, err
    key.chmod(0o600)
    key.write_text("not a key\n", encoding="utf-8")
    code, _, err = run(*base)
    assert code == 2 and "PKCS#8" in err and "authority init" not in err, err


def test_key_index_options_say_how_they_are_written() -> None:
    for command in (["card", "issue"], ["authority", "init"]):
        result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
        assert "two hex digits, 01 to FF" in result.output, result.output


@pytest.mark.parametrize(
    ("currency", "said"),
    [("1000", "0..999"), ("9999", "0..999"), ("-1", "not a whole number in ASCII digits 0-9")],
)
def test_issue_currency_is_three_digits_like_pay(home: Path, currency: str, said: str) -> None:
    code, _, err = run(
        "card", "issue", "--home", str(home), "--bits", "1024", "--account", "78",
        "--limit", "1", "--currency", currency,
    )  # fmt: skip
    assert code == 2 and said in err, err


@pytest.mark.parametrize("vpcd", ["127.0.0.1:35963:1", "no such host.invalid:35963"])
def test_serve_refuses_an_address_it_cannot_use(home: Path, vpcd: str) -> None:
    code, _, err = run("card", "serve", "--home", str(home), "--vpcd", vpcd)
    assert code == 2 and err.startswith("hcepay: error: --vpcd"), err


def test_a_damaged_app_key_is_named_once(home: Path, tmp_path: Path) -> None:
    """The error names the key file once, then why (the path was said twice)."""
    import shutil

    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    key = copy / "cards" / ACCOUNT / "app.pem"
    key.write_text("not a key\n", encoding="utf-8")
    code, _, err = run("card", "send", "--in-process", "--home", str(copy), SELECT_AID)
    assert code == 2 and err.count(str(key)) == 1 and "PKCS#8" in err, err
