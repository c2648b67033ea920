"""`hcepay pay` and `hcepay log` in a home folder; amounts; the log's schema and replay key."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import sqlite3
import stat
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.box import HEAVY_HEAD
from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from apdu.command import CommandAPDU
from apdu.dol import split_dol
from apdu.messages import PDOL, gpo_pdol_data
from reader.cli import app
from reader.cli_common import ExitCode, Failure, format_amount, stdout
from reader.cli_pay import (
    AmountError,
    make_demo_home,
    parse_amount,
    terminal_config,
)
from reader.log import SCHEMA_VERSION, LogError, TransactionLog, outcome_to_json
from reader.log_table import row_text


@pytest.fixture
def home(tmp_path: Path) -> Path:
    make_demo_home(tmp_path / "home")
    return tmp_path / "home"


def _pay(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["pay", "--home", str(home), "--in-process", "--json", *args])
    return result.exit_code, result.output


def _small_keys_home(tmp_path: Path) -> Path:
    """A home of 1024-bit keys (quick to make): its authority key 01 and one card."""
    home = tmp_path / "home"
    for argv in (
        ["authority", "init", "--bits", "1024"],
        ["card", "issue", "--account", "6200123456789012", "--limit", "10", "--bits", "1024"],
    ):
        assert CliRunner().invoke(app, [*argv, "--home", str(home)]).exit_code == 0
    return home


def test_pay_approve_decline_and_log_verify(home: Path) -> None:
    code, out = _pay(home, "--amount", "12.34")
    assert code == 0 and json.loads(out)["verdict"] == "approved"
    assert json.loads(out)["row_id"] == 1 and json.loads(out)["atc"] == 1
    code, out = _pay(home, "--amount", "999999.99")
    assert code == 1 and json.loads(out)["verdict"] == "declined"
    result = CliRunner().invoke(app, ["log", "--home", str(home), "--json", "--verify"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["transactions"]
    assert [r["verified"] for r in rows] == [True, True]
    assert [r["cid"] for r in rows] == [0x40, 0x00]


def test_log_verify_names_a_tampered_row(home: Path) -> None:
    assert _pay(home, "--amount", "1.00")[0] == 0
    assert _pay(home, "--amount", "2.00")[0] == 0
    with sqlite3.connect(home / "terminal.db") as db:
        db.execute("UPDATE transactions SET amount = 999 WHERE id = 2")
    result = CliRunner().invoke(app, ["log", "--home", str(home), "--verify", "--json"])
    assert result.exit_code == 3
    rows = json.loads(result.output)["transactions"]
    assert rows[0]["verified"] and not rows[1]["verified"]
    assert "amount" in rows[1]["verify_reason"]


def test_a_trace_that_cannot_be_written_stops_before_paying(home: Path) -> None:
    for bad in (home / "missing" / "t.json", home):
        code, _ = _pay(home, "--amount", "1.00", "--trace", str(bad))
        assert code == 2
    with TransactionLog(home / "terminal.db") as log:
        assert log.count() == 0 and log.pending() == []
    code, out = _pay(home, "--amount", "1.00", "--trace", str(home / "t.json"))
    out = out.removeprefix(f"trace written to {home / 't.json'}\n")  # stderr, before stdout
    assert code == 0 and json.loads(out)["atc"] == 1  # the refused runs touched no card
    assert json.loads((home / "t.json").read_text())["steps"]


def test_a_trace_is_never_renamed_over_a_device_or_a_pipe(home: Path) -> None:
    """`--trace /dev/null` run as root replaced the device with a regular file holding the
    trace (the trace is written to a temp file and renamed into place), and exited 0; a
    named pipe likewise. Refused before paying, the pipe left as it was."""
    pipe = home.parent / "pipe"
    os.mkfifo(pipe)
    code, out = _pay(home, "--amount", "1.00", "--trace", str(pipe))
    assert code == 2 and f"--trace {pipe}: not a regular file" in out, out
    assert stat.S_ISFIFO(pipe.stat().st_mode)
    with TransactionLog(home / "terminal.db") as log:
        assert log.count() == 0 and log.pending() == []


def test_a_trace_never_replaces_the_homes_own_files(home: Path) -> None:
    """`--trace terminal.db` replaced the whole transaction log with the trace (every
    recorded payment lost); a key, a card or the key store likewise. Refused before paying;
    a new file in the home is still a trace like any other."""
    assert _pay(home, "--amount", "1.00")[0] == 0
    card = next((home / "cards").iterdir())
    for own in (
        home / "terminal.db",
        home / "terminal.db.spool",
        home / "terminal" / "keystore.json",
        home / "authority" / "ca-01.pem",
        card / "card.json",
        card / "state.dat",
    ):
        code, out = _pay(home, "--amount", "2.00", "--trace", str(own))
        assert code == 2 and "--trace" in out and "home" in out, (own, out)
    with TransactionLog(home / "terminal.db") as log:
        assert log.count() == 1 and log.pending() == []
    code, out = _pay(home, "--amount", "2.00", "--trace", str(home / "last.json"))
    out = out.removeprefix(f"trace written to {home / 'last.json'}\n")  # stderr, before stdout
    assert code == 0 and json.loads(out)["atc"] == 2  # the refused runs touched no card


def test_a_damaged_row_is_named_not_a_traceback(home: Path) -> None:
    assert _pay(home, "--amount", "1.00")[0] == 0
    with sqlite3.connect(home / "terminal.db") as db:
        db.execute("UPDATE transactions SET time = 'yesterday' WHERE id = 1")
    result = CliRunner().invoke(app, ["log", "--home", str(home)])
    assert result.exit_code == 2
    assert "row 1 cannot be read" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("column", "value", "why"),
    [
        ("amount", "'12,34'", "amount is str, not int"),
        ("atc", "1.5", "atc is float, not int"),
        ("ca_index", "'CA1'", "ca_index is str, not int"),
        ("serial", "'x'", "serial is str, not int"),
        ("license", "123", "license is int, not bytes"),
        ("terminal_id", "x'54'", "terminal_id is bytes, not str"),
        ("time", "replace(time, 'T', ' ')", "is not as the log writes it"),
        ("time", "replace(time, 'T', 'X')", "is not as the log writes it"),
    ],
)
def test_a_row_of_the_wrong_type_or_form_is_named_in_one_line(
    home: Path, column: str, value: str, why: str
) -> None:
    """A damaged log is one line naming the row, with or without --verify (it was an
    internal error, exit 70, or a changed byte that verified)."""
    assert _pay(home, "--amount", "1.00")[0] == 0
    with sqlite3.connect(home / "terminal.db") as db:
        db.execute(f"UPDATE transactions SET {column} = {value} WHERE id = 1")
    for extra in ([], ["--verify"], ["--verify", "--json"]):
        result = CliRunner().invoke(app, ["log", "--home", str(home), *extra])
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.splitlines()
        assert line.startswith("hcepay: error: transaction log: row 1 cannot be read: ")
        assert why in line


def test_a_damaged_index_is_one_line_not_an_internal_error(home: Path) -> None:
    """The rows are read through the table, their count through the (account, ATC) index:
    a zeroed index page was an internal error (exit 70) for `hcepay log`."""
    assert _pay(home, "--amount", "1.00")[0] == 0
    path = home / "terminal.db"
    with sqlite3.connect(path) as db:
        (root,) = db.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_transactions_1'"
        ).fetchone()
        (size,) = db.execute("PRAGMA page_size").fetchone()
    db.close()
    with path.open("r+b") as f:
        f.seek((root - 1) * size)
        f.write(bytes(size))
    for extra in ([], ["--json"], ["--last", "1"]):
        result = CliRunner().invoke(app, ["log", "--home", str(home), *extra])
        assert result.exit_code == 2, result.output
        (line,) = result.stderr.splitlines()
        assert line.startswith("hcepay: error: transaction log: cannot count the transactions")


@pytest.mark.parametrize(
    "values",
    ["('6200123456789012', 5, x'00', '2026-01-01')", "(x'62', 'five', x'00', '2026-01-01')"],
)
def test_a_damaged_pending_entry_is_one_line_for_log_and_pay(home: Path, values: str) -> None:
    """An open pending entry whose account is text or whose ATC is not a number stops
    `log` and `pay` with one line, exit 2, and the payment is not attempted (it was an
    internal error, exit 70)."""
    with TransactionLog(home / "terminal.db"), sqlite3.connect(home / "terminal.db") as db:
        db.execute(f"INSERT INTO pending_open (account, atc, cdol1_data, created) VALUES {values}")
    result = CliRunner().invoke(app, ["log", "--home", str(home)])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("hcepay: error: transaction log: a pending entry cannot")
    code, out = _pay(home, "--amount", "1.00")
    assert code == 2 and json.loads(out)["verdict"] == "not attempted"
    assert "a pending entry cannot be read" in json.loads(out)["reason"]
    with TransactionLog(home / "terminal.db") as log:
        assert log.count() == 0


@pytest.mark.parametrize(
    ("values", "named"),
    [
        (
            "(x'6200123456789012', 5, x'00', '2026-01-01', 'x')",
            "account 6200123456789012, ATC 0005",
        ),
        (
            "(x'6200123456789012', 'five', x'00', '2026-01-01', 1)",
            "account 6200123456789012, ATC 'five'",
        ),
        ("('6200123456789012', 5, x'00', '2026-01-01', 1)", "account '6200123456789012', ATC 0005"),
    ],
)
def test_a_damaged_pending_entry_is_named_by_its_account_and_atc(
    home: Path, values: str, named: str
) -> None:
    """The line names the damaged entry by its key, as README says: pending entries have no
    id, so without it a log edited by hand could not be mended by hand (it said only "a
    pending entry")."""
    with TransactionLog(home / "terminal.db"), sqlite3.connect(home / "terminal.db") as db:
        db.execute(f"INSERT INTO pending_open VALUES {values}")
    result = CliRunner().invoke(app, ["log", "--home", str(home)])
    assert result.exit_code == 2, result.output
    assert f"a pending entry cannot be read ({named}): its " in result.stderr
    code, out = _pay(home, "--amount", "1.00")
    assert code == 2 and f"({named})" in json.loads(out)["reason"]


@pytest.mark.parametrize(
    "text",
    [
        '{"terminal_id": null, "merchant_id": "MERCHANT0000001", "country": 156}',
        '{"terminal_id": "TERM0001", "merchant_id": 7, "country": 156}',
        '{"terminal_id": "TERM0001", "merchant_id": "MERCHANT0000001", "country": true}',
        "[]",
    ],
)
def test_a_bad_terminal_description_is_refused(home: Path, text: str) -> None:
    """terminal.json's ids are strings and its country a number: a null id was paid with
    as the terminal "None", and a list was refused as 'list indices must be integers'."""
    (home / "terminal" / "terminal.json").write_text(text, encoding="utf-8")
    code, out = _pay(home, "--amount", "1.00")
    assert code == 2 and out.startswith("hcepay: error:") and "terminal.json" in out, out
    assert "list indices" not in out


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ('{"terminal_id": "TERM0002"}', ("TERM0002", "MERCHANT0000001", 156)),
        ('{"merchant_id": "SHOP 7", "country": 250}', ("TERM0001", "SHOP 7", 250)),
        ('{"country": "840"}', ("TERM0001", "MERCHANT0000001", 840)),
        ("{}", ("TERM0001", "MERCHANT0000001", 156)),
    ],
)
def test_a_partial_terminal_description_takes_the_defaults(
    home: Path, text: str, ids: tuple[str, str, int]
) -> None:
    """terminal.json is optional and its keys have defaults (docs/architecture.md): a file
    of the terminal id alone was refused as "bad terminal description ('merchant_id')"."""
    (home / "terminal" / "terminal.json").write_text(text, encoding="utf-8")
    code, out = _pay(home, "--amount", "1.00", "--trace", str(home / "t.json"))
    assert code == 0, out
    result = CliRunner().invoke(app, ["log", "--home", str(home), "--verify", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)["transactions"]
    steps = json.loads((home / "t.json").read_text())["steps"]
    (gpo,) = [CommandAPDU.parse(bytes.fromhex(s["c"])) for s in steps if s["c"][2:4] == "A8"]
    country = split_dol(PDOL, gpo_pdol_data(gpo.data))[0x9F1A]  # n4, as sent
    assert (row["terminal_id"], row["merchant_id"], country.hex()) == (*ids[:2], f"{ids[2]:04d}")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"country": true}', '"country" must be an ISO 3166 numeric code, a whole number'),
        ('{"country": 1.5}', '"country" must be an ISO 3166 numeric code, a whole number'),
        ('{"country": 1000}', '"country" must be an ISO 3166 numeric code, a whole number'),
        ('{"country": "fr"}', '"country" must be an ISO 3166 numeric code, a whole number'),
        ('{"terminal_id": 7}', '"terminal_id" must be a string'),
        ('{"merchant_id": null}', '"merchant_id" must be a string'),
        ('{"terminal_id": "TOO-LONG-ID"}', "terminal id must be 1 to 8 printable ASCII"),
        ("[]", "must be a JSON object"),
        ("{", "not valid JSON"),
    ],
)
def test_a_wrong_terminal_description_names_the_key(home: Path, text: str, says: str) -> None:
    """A wrong type is one line naming the key and what it must be: a country of true or
    1.5 said "invalid literal for int() with base 10: 'True'"."""
    path = home / "terminal" / "terminal.json"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["pay", "--home", str(home), "--amount", "1.00"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"hcepay: error: {path}: bad terminal description: ")
    assert says in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
    assert "invalid literal" not in result.stderr


def test_log_recover_imports_only_entries_that_verify(home: Path) -> None:
    """A spool file is only a file: an entry whose authorization does not re-check with
    the authority's key stays in the spool, and the log gets only the genuine one."""
    assert _pay(home, "--amount", "1.00")[0] == 0
    with TransactionLog(home / "terminal.db") as log:
        (row,) = log.rows()
    genuine = outcome_to_json(row.outcome)
    forged = dict(genuine, atc=777, amount=99999999)
    with sqlite3.connect(home / "terminal.db") as db:
        db.execute("DELETE FROM transactions")
    spool = home / "terminal.db.spool"
    spool.write_text("".join(json.dumps(e) + "\n" for e in (forged, genuine)))
    result = CliRunner().invoke(app, ["log", "recover", "--home", str(home)])
    assert result.exit_code == 5, result.output
    assert "1 imported" in result.output and "1 left in the spool" in result.output
    assert "ATC 777" in result.output and "does not verify" in result.output
    with TransactionLog(home / "terminal.db") as log:
        assert [(r.outcome.atc, r.outcome.amount) for r in log.rows()] == [(1, 100)]


def test_log_recover_with_nothing_spooled_needs_no_keys(tmp_path: Path, home: Path) -> None:
    """With nothing to import, a home without keys is not an error ("holds no authority
    key", exit 2, before); with a payment spooled, it still is: it cannot be verified."""
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(app, ["log", "recover", "--home", str(empty)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("0 imported, 0 already in the log, 0 left in the spool")
    _spool_one_payment(home)
    shutil.rmtree(home / "terminal" / "keys", ignore_errors=True)
    (home / "terminal" / "keystore.json").unlink()
    result = CliRunner().invoke(app, ["log", "recover", "--home", str(home)])
    assert result.exit_code == 2 and "holds no authority key" in result.stderr, result.output


def test_log_recover_on_a_missing_home_makes_nothing(tmp_path: Path) -> None:
    """A mistyped --home was made, with an empty terminal.db in it; then it reported
    "0 imported", exit 0. It is refused (exit 2), as `hcepay log` refuses it, and nothing is
    made; a home with no log nor spool yet reports zeros and writes nothing."""
    home = tmp_path / "typo"
    result = CliRunner().invoke(app, ["log", "recover", "--home", str(home)])
    assert result.exit_code == 2, result.output
    assert (
        result.stderr == f"hcepay: error: {home}: no such home (hcepay authority init makes one)\n"
    )
    assert not home.exists()
    home.mkdir()
    result = CliRunner().invoke(app, ["log", "recover", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("0 imported, 0 already in the log, 0 left in the spool")
    assert list(home.iterdir()) == []


def test_log_recover_verifies_a_payment_spooled_after_its_count(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A payment another process spools between recover's count (none: no keys read) and
    its import is verified with the terminal's keys, read then: it was checked against
    none and left in the spool as 'unknown authority key index 01', exit 5."""
    from reader import spool

    _spool_one_payment(home)
    spooled = home / "terminal.db.spool"
    entry = spooled.read_text()
    spooled.unlink()
    count = spool.pending_count

    def count_then_spool(log: Path) -> int:
        counted = count(log)
        spooled.write_text(entry)  # the other process's payment lands now
        return counted

    monkeypatch.setattr(spool, "pending_count", count_then_spool)
    result = CliRunner().invoke(app, ["log", "recover", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("1 imported"), result.output


def test_log_recover_names_a_missing_field_of_a_spool_entry(home: Path) -> None:
    """The warning says which field is missing (it said only "'verdict'")."""
    _spool_one_payment(home)
    spool = home / "terminal.db.spool"
    entry = json.loads(spool.read_text())
    del entry["verdict"]
    spool.write_text(json.dumps(entry) + "\n")
    result = CliRunner().invoke(app, ["log", "recover", "--home", str(home)])
    assert result.exit_code == 5, result.output
    assert "account 6200123456789012 ATC 1 left in the spool: missing 'verdict'" in result.stderr


def _damage(log: Path, how: str) -> None:
    """Make the log garbage, a truncated SQLite file, or a folder."""
    if how == "garbage":
        log.write_bytes(b"not a database\n" * 300)
    elif how == "truncated":
        with TransactionLog(log):
            pass
        data = log.read_bytes()
        log.write_bytes(data[: len(data) // 2 or 50])
    else:
        log.unlink(missing_ok=True)
        log.mkdir()


@pytest.mark.parametrize("how", ["garbage", "truncated", "folder"])
def test_log_recover_of_a_log_it_cannot_open_is_exit_2_with_logs_line(home: Path, how: str) -> None:
    """It was exit 5 ("not recorded") with nothing in the spool; `log` and `pay` say exit 2
    for the same file. Exit 5 stays for payments left in the spool."""
    log = home / "terminal.db"
    _damage(log, how)
    shown = CliRunner().invoke(app, ["log", "--home", str(home)])
    assert shown.exit_code == 2, shown.output
    result = CliRunner().invoke(app, ["log", "recover", "--home", str(home)])
    assert result.exit_code == 2, result.output
    assert result.stderr == shown.stderr and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("hcepay: error: transaction log: ")


def test_log_recover_of_a_log_it_cannot_open_keeps_the_spool_and_exit_5(home: Path) -> None:
    _spool_one_payment(home)
    spooled = (home / "terminal.db.spool").read_text()
    _damage(home / "terminal.db", "garbage")
    result = CliRunner().invoke(app, ["log", "recover", "--home", str(home)])
    assert result.exit_code == 5, result.output
    (line,) = result.stderr.splitlines()
    assert line.startswith("hcepay: error: transaction log: ")
    assert line.endswith("(1 payment left in the spool)")
    assert (home / "terminal.db.spool").read_text() == spooled


def test_counts_of_one_are_singular_in_log_and_recover(home: Path) -> None:
    """ "1 of 1 rows verify", "1 unreadable lines": a count of one takes the singular."""
    assert _pay(home, "--amount", "1.00")[0] == 0
    out = CliRunner().invoke(app, ["log", "--home", str(home), "--verify"]).output
    assert "1 of 1 row verifies" in out, out
    assert _pay(home, "--amount", "2.00")[0] == 0
    out = CliRunner().invoke(app, ["log", "--home", str(home), "--verify"]).output
    assert "2 of 2 rows verify" in out, out
    (home / "terminal.db.spool").write_text("{torn\n")
    out = CliRunner().invoke(app, ["log", "recover", "--home", str(home)]).output
    assert out.strip() == (
        "0 imported, 0 already in the log, 0 left in the spool, 1 unreadable line "
        f"(kept in {home / 'terminal.db.spool.bad'})"
    ), out
    assert (home / "terminal.db.spool.bad").read_text() == "{torn\n"
    (home / "terminal.db.spool").write_text("{torn again\n")
    result = CliRunner().invoke(app, ["log", "recover", "--home", str(home), "--json"])
    assert json.loads(result.stdout)["unreadable_kept_in"] == [str(home / "terminal.db.spool.bad")]


def test_plural() -> None:
    from reader.cli_common import plural

    assert [plural(n, "payment") for n in (0, 1, 2)] == ["0 payments", "1 payment", "2 payments"]
    assert plural(1, "entry", "entries") == "1 entry" and plural(3, "entry", "entries") == (
        "3 entries"
    )


def test_log_verify_holds_the_time_and_ids_to_the_signed_cdol1_data(home: Path) -> None:
    assert _pay(home, "--amount", "1.00")[0] == 0
    with sqlite3.connect(home / "terminal.db") as db:
        db.execute("UPDATE transactions SET terminal_id = 'OTHER' WHERE id = 1")
    result = CliRunner().invoke(app, ["log", "--home", str(home), "--verify", "--json"])
    assert result.exit_code == 3
    (row,) = json.loads(result.output)["transactions"]
    assert not row["verified"] and "signed CDOL1 data" in row["verify_reason"]


@pytest.mark.parametrize("field", ["terminal_id", "merchant_id"])
def test_an_id_ending_in_a_space_is_refused_before_paying(home: Path, field: str) -> None:
    """9F1C and 9F16 are padded with spaces: an id ending in one gave rows that are genuine
    yet fail `log --verify` (and spooled payments that `log recover` never imports)."""
    ids = {"terminal_id": "POS 1", "merchant_id": "SHOP 1"}
    config = home / "terminal" / "terminal.json"
    config.write_text(json.dumps({**ids, "country": 156, field: ids[field] + " "}))
    code, _ = _pay(home, "--amount", "1.00")
    assert code == 2
    with TransactionLog(home / "terminal.db") as log:
        assert log.count() == 0 and log.pending() == []
    config.write_text(json.dumps(ids))
    assert _pay(home, "--amount", "1.00")[0] == 0
    result = CliRunner().invoke(app, ["log", "--home", str(home), "--verify", "--json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)["transactions"]
    assert (row["terminal_id"], row["merchant_id"]) == ("POS 1", "SHOP 1")


def test_log_verify_holds_the_serial_to_the_license(home: Path) -> None:
    """PROTOCOL.md §7: the row keeps the license serial; a serial edited in the log (say,
    away from a revoked one) must fail the re-check, which recovers the real one."""
    assert _pay(home, "--amount", "1.00")[0] == 0
    assert _pay(home, "--amount", "2.00")[0] == 0
    with sqlite3.connect(home / "terminal.db") as db:
        db.execute("UPDATE transactions SET serial = 2 WHERE id = 2")
    result = CliRunner().invoke(app, ["log", "--home", str(home), "--verify", "--json"])
    assert result.exit_code == 3
    rows = json.loads(result.output)["transactions"]
    assert [r["verified"] for r in rows] == [True, False]
    assert rows[1]["verify_reason"] == "license serial 1, the row says 2"


def test_pay_refused_by_revoked_serial_exit_3(home: Path) -> None:
    result = CliRunner().invoke(app, ["authority", "revoke", "1", "--home", str(home)])
    assert result.exit_code == 0, result.output
    code, out = _pay(home, "--amount", "1.00")
    assert code == 3 and "revoked" in json.loads(out)["reason"]
    with TransactionLog(home / "terminal.db") as log:
        assert log.count() == 0 and log.pending() == []


@pytest.mark.parametrize(
    "amount",
    ["-1.00", "1.234", "1000000000000.00", "12,34", "abc", "", "1e3", "١٢.٣٤", "²", "1.²"],
)
def test_bad_amount_is_a_usage_error(home: Path, amount: str) -> None:
    code, _ = _pay(home, "--amount", amount)
    assert code == 2


def test_reader_and_in_process_together_is_a_usage_error(home: Path) -> None:
    result = CliRunner().invoke(
        app, ["pay", "--home", str(home), "--in-process", "--reader", "x", "--amount", "1"]
    )
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("12.34", 1234),
        ("12.3", 1230),
        ("12", 1200),
        ("0", 0),
        ("9999999999.99", 999999999999),
        (" 12.34\n", 1234),  # blanks around it, as a shell or a file may leave them
        ("0" * 28 + "1.00", 100),  # 32 characters: the longest text read
    ],
)
def test_parse_amount(text: str, units: int) -> None:
    assert parse_amount(text) == units


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0" * 29 + "1.00", "is too long"),  # 33 characters: not read, however small
        ("12.", "is not a decimal number"),
        (".50", "is not a decimal number"),
        ("+1", "is not a decimal number"),
    ],
)
def test_parse_amount_refuses(text: str, why: str) -> None:
    """An amount is digits, then optionally a point and 1 or 2 digits, at most 32
    characters (PROTOCOL.md §1, §3: n12 minor units)."""
    with pytest.raises(AmountError, match=why):
        parse_amount(text)


@given(st.integers(min_value=0, max_value=999_999_999_999))
def test_amount_round_trip(units: int) -> None:
    assert parse_amount(format_amount(units)) == units


@given(st.integers(min_value=10**12, max_value=10**20))
def test_amount_over_n12_refused(units: int) -> None:
    with pytest.raises(AmountError):
        parse_amount(format_amount(units))


_amount_texts = st.one_of(
    st.text(max_size=36),
    st.from_regex(r"\A\s?[-+]?[0-9]{0,16}(\.[0-9]{0,3})?\s?\Z"),
    st.integers(0, 10**13).map(lambda u: f"{u // 100}.{u % 100:02d}"),
)


@given(_amount_texts)
def test_any_text_is_its_decimal_value_or_amount_error(text: str) -> None:
    """Any text is refused (AmountError) or is the amount its decimal reading says, in minor
    units of n12 (PROTOCOL.md §1), and format_amount writes it back to the same value."""
    try:
        units = parse_amount(text)
    except AmountError:
        return
    assert Decimal(text.strip()) * 100 == units
    assert 0 <= units <= 999_999_999_999
    assert parse_amount(format_amount(units)) == units


_id_texts = st.text(max_size=17) | st.text(alphabet="AZ09 -", min_size=1, max_size=16)
_terminal_documents = st.fixed_dictionaries(
    {},
    optional={
        "terminal_id": _id_texts | st.integers(0, 9) | st.none(),
        "merchant_id": _id_texts | st.booleans(),
        "country": st.integers(-1, 1000) | st.booleans() | st.text(max_size=4) | st.none(),
    },
) | st.one_of(st.none(), st.integers(), st.lists(st.integers(), max_size=2))


@given(_terminal_documents)
def test_any_terminal_json_is_a_config_or_a_usage_error(doc: object) -> None:
    """terminal.json of any JSON is a configuration whose ids the CDOL1 data carries (9F1C
    an8, 9F16 an15, 9F1A n4: PROTOCOL.md §3) or one usage error (exit 2), never a crash."""
    with tempfile.TemporaryDirectory() as home:
        (Path(home) / "terminal").mkdir()
        (Path(home) / "terminal" / "terminal.json").write_text(json.dumps(doc))
        try:
            config = terminal_config(Path(home))
        except Failure as exc:
            assert exc.exit_code == ExitCode.USAGE and "bad terminal description" in exc.message
            return
    assert 1 <= len(config.terminal_id) <= 8 and config.terminal_id.isascii()
    assert 1 <= len(config.merchant_id) <= 15 and config.merchant_id.isascii()
    assert 0 <= config.country <= 999


def test_schema_version_and_newer_log_refused(tmp_path: Path) -> None:
    path = tmp_path / "terminal.db"
    with TransactionLog(path) as log:
        assert log.version == SCHEMA_VERSION
    with sqlite3.connect(path) as db:
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    assert mode == "wal"
    with pytest.raises(LogError) as caught:
        TransactionLog(path)
    assert "schema version" in caught.value.reason


def test_spooled_outcome_imports_once(home: Path, tmp_path: Path) -> None:
    from reader.log import log_path, outcome_to_json
    from reader.spool import Imported

    assert _pay(home, "--amount", "3.00")[0] == 0
    with TransactionLog(log_path(home)) as log:
        (row,) = list(log.rows())
    entry = json.loads(json.dumps(outcome_to_json(row.outcome)))
    with TransactionLog(tmp_path / "other.db") as other:
        assert other.import_entry(entry) is Imported.INSERTED
        assert other.import_entry(entry) is Imported.DUPLICATE
        (copy,) = list(other.rows())
    assert copy.outcome == row.outcome


def _spool_one_payment(home: Path) -> None:
    """One approved payment, moved from the log into its spool (decided, not recorded)."""
    assert _pay(home, "--amount", "1.00")[0] == 0
    with TransactionLog(home / "terminal.db") as log:
        (row,) = log.rows()
    with sqlite3.connect(home / "terminal.db") as db:
        db.execute("DELETE FROM transactions")
    (home / "terminal.db.spool").write_text(json.dumps(outcome_to_json(row.outcome)) + "\n")


@pytest.mark.parametrize(
    "args",
    [
        ["log", "--home", "{home}", "recover"],
        ["log", "--home", "{home}", "--json", "recover"],
        ["log", "recover", "--home", "{home}", "--json"],
    ],
)
def test_log_group_options_apply_to_recover(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """`hcepay log --home A recover` recovers A's spool, not ~/.hcepay's."""
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("HCEPAY_HOME", raising=False)
    _spool_one_payment(home)
    argv = [a.format(home=home) for a in args]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    if "--json" in argv:
        assert json.loads(result.output)["imported"] == 1
    else:
        assert "1 imported" in result.output
    with TransactionLog(home / "terminal.db") as log:
        assert log.count() == 1
    assert not (tmp_path / "user" / ".hcepay").exists()


def test_log_verify_before_recover_is_a_usage_error(home: Path) -> None:
    result = CliRunner().invoke(app, ["log", "--home", str(home), "--verify", "recover"])
    assert result.exit_code == 2 and "--verify" in result.output
    other = CliRunner().invoke(app, ["log", "--home", str(home), "recover", "--home", "/x"])
    assert other.exit_code == 2 and "two home folders" in other.output


def test_log_recover_home_on_the_line_beats_hcepay_home(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HCEPAY_HOME", str(tmp_path / "elsewhere"))
    _spool_one_payment(home)
    for argv in (["log", "recover", "--home", str(home)], ["log", "--home", str(home), "recover"]):
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 0 and "imported" in result.output, result.output
    assert not (tmp_path / "elsewhere").exists()


def test_log_last_shows_the_newest_rows_oldest_first(home: Path) -> None:
    """`log --last N`: the N newest transactions, oldest first, re-checked with --verify;
    the title and `total` say how many the log holds."""
    for amount in ("1.00", "2.00", "3.00"):
        assert _pay(home, "--amount", amount)[0] == 0
    result = CliRunner().invoke(app, ["log", "--home", str(home), "--json", "--last", "2"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [(r["atc"], r["amount"]) for r in doc["transactions"]] == [(2, 200), (3, 300)]
    assert doc["total"] == 3
    result = CliRunner().invoke(
        app, ["log", "--home", str(home), "--last", "5", "--verify"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    assert f"transactions in {home / 'terminal.db'}" in result.stdout  # all 3: no "last"
    assert "3 of 3 rows verify" in result.stdout
    result = CliRunner().invoke(
        app, ["log", "--home", str(home), "--last", "1", "--verify"], env={"COLUMNS": "200"}
    )
    assert f"the last 1 of 3 transactions in {home / 'terminal.db'}" in result.stdout
    assert "1 of 1 row verifies" in result.stdout and "0003" in result.stdout
    assert "0002" not in result.stdout, result.stdout


def test_log_last_below_one_is_a_usage_error(home: Path) -> None:
    result = CliRunner().invoke(app, ["log", "--home", str(home), "--last", "0"])
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "hcepay: error: --last 0: give 1 or more (the number of newest transactions to show)\n"
    )
    result = CliRunner().invoke(app, ["log", "--home", str(home), "--last", "-3"])
    assert result.exit_code == 2, result.output
    assert "'-3' is not a whole number in ASCII digits 0-9" in result.stderr


def test_log_json_has_the_pending_entries_and_the_spool(home: Path) -> None:
    """`log --json` says what the text says: pending entries (open or closed), the spool."""
    from datetime import datetime

    from reader.recovery import PendingEntry

    _spool_one_payment(home)
    account = bytes.fromhex("6200123456789012FFFF")
    with TransactionLog(home / "terminal.db") as log:
        log.write_pending(PendingEntry(account, 7, b"\x01" * 4), datetime(2026, 1, 2, 3, 4, 5))
        log.write_pending(PendingEntry(account, 8, b"\x02" * 4, 9), datetime(2026, 1, 2, 3, 4, 6))
        log.close_pending(PendingEntry(account, 8, b"\x02" * 4), "not paid")
    text = CliRunner().invoke(app, ["log", "--home", str(home)])
    assert "1 payment in the spool: run `hcepay log recover`" in text.output  # not "payments"
    result = CliRunner().invoke(app, ["log", "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["transactions"] == [] and doc["spooled"] == 1
    assert doc["log"] == str(home / "terminal.db")
    pending = [(p["account"], p["atc"], p["serial"], p["outcome"]) for p in doc["pending_entries"]]
    assert sorted(pending, key=lambda p: p[1]) == [  # the spooled payment's own: removed
        ("6200123456789012", 7, None, None),
        ("6200123456789012", 8, 9, "not paid"),
    ]


def test_pay_refuses_a_card_with_a_reader(home: Path) -> None:
    """--card names a home card; with --reader it would be silently ignored."""
    result = CliRunner().invoke(
        app, ["pay", "--home", str(home), "--reader", "0", "--card", "1", "--amount", "1"]
    )
    assert result.exit_code == 2 and "--card" in result.stderr, result.output


def test_an_empty_home_is_a_usage_error(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in (["log", "--home", ""], ["authority", "init", "--home", " "]):
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 2 and "empty home folder" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["home"]  # nothing written here


@pytest.mark.parametrize("lost", ["keystore.json", "ca-01.pub.pem"])
def test_a_lost_key_store_is_mended_by_the_command_pay_names(tmp_path: Path, lost: str) -> None:
    """Without terminal/keystore.json, pay said to run `hcepay authority init`, which then
    refused ("use --force"); --force made a new authority key, and every issued card and
    logged row failed. The command pay names now trusts the authority's own key again; so
    it does when the terminal's copy of the key (ca-01.pub.pem) is what was lost."""
    home = _small_keys_home(tmp_path)
    runner = CliRunner()
    assert _pay(home, "--amount", "1.00")[0] == 0
    (home / "terminal" / lost).unlink()
    result = runner.invoke(app, ["pay", "--home", str(home), "--amount", "1.00"])
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1, result.output
    command = result.stderr.split("`")[1]
    assert command == f"hcepay authority init --home {home}", result.stderr
    result = runner.invoke(app, command.split()[1:])
    assert result.exit_code == 0 and "kept, no new key" in result.stdout, result.output
    assert _pay(home, "--amount", "2.00")[0] == 0
    result = runner.invoke(app, ["log", "--home", str(home), "--verify", "--json"])
    assert result.exit_code == 0, result.output
    assert [r["verified"] for r in json.loads(result.output)["transactions"]] == [True, True]


def test_the_demo_homes_authority_key_is_kept_as_authority_init_keeps_one(
    tmp_path: Path,
) -> None:
    """The demo home copied the published authority key with the repository's 0644, which
    `authority init` then refused to read back (group-readable) when the home's key store
    was lost; it is 0600, as every private key hcepay writes, and is trusted again."""
    make_demo_home(tmp_path / "home")
    assert (tmp_path / "home" / "authority" / "ca-01.pem").stat().st_mode & 0o777 == 0o600
    (tmp_path / "home" / "terminal" / "keystore.json").unlink()
    result = CliRunner().invoke(app, ["authority", "init", "--home", str(tmp_path / "home")])
    assert result.exit_code == 0 and "kept, no new key" in result.stdout, result.output


def test_the_command_pay_names_targets_its_home_when_hcepay_home_points_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--home left out of the advice whenever the home was ~/.hcepay: with $HCEPAY_HOME set
    elsewhere, the command it named made a new authority in that other home."""
    monkeypatch.setenv("HOME", str(tmp_path))
    home = tmp_path / ".hcepay"
    make_demo_home(home)
    (home / "terminal" / "keystore.json").unlink()
    argv = ["pay", "--home", str(home), "--amount", "1.00"]
    monkeypatch.setenv("HCEPAY_HOME", str(tmp_path / "other"))
    advice = CliRunner().invoke(app, argv).stderr.split("`")[1]
    assert advice == f"hcepay authority init --home {home}"
    monkeypatch.delenv("HCEPAY_HOME")
    assert CliRunner().invoke(app, argv).stderr.split("`")[1] == "hcepay authority init"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--amount", "-1"], "amount -1 is negative"),
        (["--amount", "1.001"], "amount 1.001 has more than 2 decimals"),
        (["--amount", "1", "--currency", "1000"], "--currency 1000: an ISO 4217 numeric code"),
    ],
    ids=["negative", "decimals", "currency"],
)
def test_pay_json_says_an_error_found_before_paying_in_its_object(
    home: Path, args: list[str], reason: str
) -> None:
    """A point of sale reading `pay --json` gets one object for exit 2 too (it got nothing
    on stdout): the verdict "not attempted", the stderr line as the reason; nothing paid."""
    result = CliRunner().invoke(app, ["pay", "--home", str(home), "--in-process", "--json", *args])
    assert result.exit_code == 2
    (line,) = result.stdout.splitlines()
    out = json.loads(line)
    assert out["verdict"] == "not attempted" and out["exit_code"] == 2
    assert out["reason"].startswith(reason)
    assert result.stderr == f"hcepay: error: {out['reason']}\n"
    assert out["atc"] is None and out["row_id"] is None and out["recovered"] == []
    with TransactionLog(home / "terminal.db") as log:
        assert log.count() == 0 and log.pending() == []


def test_pay_json_without_authority_key_and_demo_json_bad_amount(tmp_path: Path) -> None:
    """The same object for a home without keys, and for `demo --json` (with its empty
    `steps`); without --json, stdout stays empty."""
    bare = tmp_path / "bare"
    result = CliRunner().invoke(app, ["pay", "--home", str(bare), "--amount", "1", "--json"])
    assert result.exit_code == 2
    out = json.loads(result.stdout)
    assert out["verdict"] == "not attempted" and "holds no authority key" in out["reason"]
    result = CliRunner().invoke(app, ["demo", "--amount", "x", "--json"])
    assert result.exit_code == 2
    out = json.loads(result.stdout)
    assert out["steps"] == [] and out["reason"] == "amount 'x' is not a decimal number like 12.34"
    result = CliRunner().invoke(app, ["demo", "--amount", "x"])
    assert result.exit_code == 2 and result.stdout == ""


@pytest.mark.parametrize("batch", [1, 2, 5, 500])
def test_log_json_is_printed_a_batch_at_a_time_and_is_one_object(
    home: Path, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`log --json` prints the rows a batch at a time (a log of 10^5 rows built whole took
    1.3 GB): the output is still one JSON object, every row once and in order, whatever
    the batch size against the row count (5 rows: batches of 1, 2 with a remainder, 5, and
    one batch larger than the log); --verify marks the tampered row and exits 3."""
    monkeypatch.setattr("reader.cli_pay.JSON_BATCH", batch)
    for cents in range(1, 6):
        assert _pay(home, "--amount", f"0.0{cents}")[0] == 0
    with sqlite3.connect(home / "terminal.db") as db:
        db.execute("UPDATE transactions SET amount = 999 WHERE id = 4")
    db.close()
    result = CliRunner().invoke(app, ["log", "--home", str(home), "--json", "--verify"])
    assert result.exit_code == 3, result.output
    doc = json.loads(result.stdout)
    assert [r["id"] for r in doc["transactions"]] == [1, 2, 3, 4, 5]
    assert [r["verified"] for r in doc["transactions"]] == [True, True, True, False, True]
    assert "amount" in doc["transactions"][3]["verify_reason"]
    assert doc["total"] == 5 and doc["pending_entries"] == [] and doc["spooled"] == 0
    result = CliRunner().invoke(app, ["log", "--home", str(home), "--json", "--last", "2"])
    assert result.exit_code == 0
    assert [r["id"] for r in json.loads(result.stdout)["transactions"]] == [4, 5]


def test_log_json_never_holds_more_than_a_batch_of_rows_in_one_print(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each print carries at most JSON_BATCH rows: the object is never built whole."""
    monkeypatch.setattr("reader.cli_pay.JSON_BATCH", 2)
    for _ in range(5):
        assert _pay(home, "--amount", "0.01")[0] == 0
    printed: list[str] = []
    monkeypatch.setattr(
        "reader.cli_pay.stdout.print", lambda text, end="\n": printed.append(str(text) + end)
    )
    result = CliRunner().invoke(app, ["log", "--home", str(home), "--json"])
    assert result.exit_code == 0, result.output
    assert [chunk.count('"atc"') for chunk in printed] == [0, 2, 2, 1]
    assert len(json.loads("".join(printed))["transactions"]) == 5


def test_log_recover_tries_no_entry_after_the_log_refuses_a_write(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A log that refuses a write (locked by another process: each try waits the busy
    timeout, 10 s) is tried once: the entries after it stay in the spool untried, each
    named on stderr, and recover exits 5. A log that takes the write again imports them."""
    for amount in ("1.00", "2.00", "3.00"):
        assert _pay(home, "--amount", amount)[0] == 0
    with TransactionLog(home / "terminal.db") as log:
        rows = list(log.rows())
    with sqlite3.connect(home / "terminal.db") as db:
        db.execute("DELETE FROM transactions")
    db.close()
    lines = [json.dumps(outcome_to_json(r.outcome)) + "\n" for r in rows]
    (home / "terminal.db.spool").write_text("".join(lines))
    tries: list[int] = []

    def locked(self: TransactionLog, entry: object) -> object:
        tries.append(1)
        raise LogError("cannot record the transaction: database is locked")

    monkeypatch.setattr(TransactionLog, "import_entry", locked)
    result = CliRunner().invoke(app, ["log", "--home", str(home), "recover", "--json"])
    assert result.exit_code == 5, result.output
    assert tries == [1]
    assert json.loads(result.stdout)["left_in_the_spool"] == 3
    assert result.stderr.count("database is locked") == 3
    monkeypatch.undo()
    result = CliRunner().invoke(app, ["log", "--home", str(home), "recover", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["imported"] == 3


def test_a_license_of_another_keys_length_says_its_usual_cause(tmp_path: Path) -> None:
    """A card issued under an authority key 01 that was made again (another size) is
    refused with "license bad length", which named no cause. `pay` and `log --verify` now
    say it, with the same refusal: exit 3, check 3, the license's reason first."""
    home = _small_keys_home(tmp_path)
    runner = CliRunner()
    assert _pay(home, "--amount", "1.00")[0] == ExitCode.OK
    remade = ["authority", "init", "--force", "--bits", "1032", "--home", str(home)]
    assert runner.invoke(app, remade).exit_code == 0
    cause = "the card was most likely issued under another authority key of that index (8F)"
    code, out = _pay(home, "--amount", "1.00")
    reason = json.loads(out)["reason"]
    assert (code, json.loads(out)["verdict"]) == (ExitCode.REFUSED, "refused")
    assert reason.startswith("license bad length (128 bytes, want 129); "), reason
    assert cause in reason and "`hcepay authority init --force`" in reason
    assert reason.endswith("issue the card again under the terminal's key")
    result = runner.invoke(app, ["pay", "--home", str(home), "--amount", "1.00"])
    assert result.exit_code == ExitCode.REFUSED
    assert result.stderr.startswith("hcepay: error: refused: license bad length")
    assert len(result.stderr.splitlines()) == 1 and cause in result.stderr
    result = runner.invoke(app, ["log", "--home", str(home), "--verify", "--json"])
    assert result.exit_code == ExitCode.REFUSED
    [row] = json.loads(result.stdout)["transactions"]
    assert row["verify_reason"].startswith("license bad length (128 bytes, want 129); ")
    assert cause in row["verify_reason"] and "issue the card" not in row["verify_reason"]


def _as_rich_lays_it_out(home: Path, width: int, *extra: str) -> str:
    """`hcepay log EXTRA`'s table and summary as rich lays them out measuring every cell
    at once (how `hcepay log` printed them before it printed a batch at a time), built
    from `log --json`."""
    done = CliRunner().invoke(app, ["log", "--home", str(home), "--json", *extra])
    doc = json.loads(done.stdout)
    rows = doc["transactions"]
    title = f"transactions in {doc['log']}"
    if len(rows) < doc["total"]:
        title = f"the last {len(rows)} of {doc['total']} {title}"
    table = Table(title=title)
    for column in ("id", "time", "account", "amount", "cur", "ATC", "verdict", "serial", "CA"):
        table.add_column(column, overflow="fold")
    verify = "--verify" in extra
    if verify:
        table.add_column("verify", overflow="fold")
    for r in rows:
        cells = [
            str(r["id"]),
            r["time"].replace("T", " "),
            r["account"],
            format_amount(r["amount"]),
        ]
        cells += [str(r["currency"]), f"{r['atc']:04X}", r["verdict"], str(r["serial"])]
        cells += [f"{r['ca_index']:02X}", *([r["verify_reason"] or "ok"] if verify else [])]
        table.add_row(*cells)
    out = io.StringIO()
    console = Console(
        file=out, width=width, highlight=False, soft_wrap=True, markup=False, emoji=False
    )
    console.print(table)
    if verify:
        good = sum(r["verified"] for r in rows)
        console.print(f"{good} of {len(rows)} row{'s' * (len(rows) != 1)} ", end="")
        console.print("verifies" if good == 1 else "verify")
    return out.getvalue()


def _rows_per_print(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record, for each print of stdout, how many table rows it holds (a row's first line
    starts with its id)."""
    counts: list[int] = []
    original = stdout.print

    def counting(*objects: Any, **options: Any) -> None:
        with stdout.capture() as captured:
            original(*objects, **options)
        text = captured.get()
        counts.append(sum(1 for line in text.splitlines() if re.match(r"│ \d", line)))
        original(*objects, **options)

    monkeypatch.setattr(stdout, "print", counting)
    return counts


@pytest.mark.parametrize("extra", [[], ["--verify"], ["--last", "3"]], ids=repr)
def test_log_table_is_printed_a_batch_at_a_time_as_rich_laid_it_out(
    home: Path, extra: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hcepay log` prints its table a batch of rows at a time (rich measured every cell
    of a log of 10^5 rows: 45 s, 790 MB): whatever the batch against the row count, the
    output is the table rich laid out whole, each row once, no print over a batch."""
    for cents in range(1, 6):
        assert _pay(home, "--amount", f"0.0{cents}")[0] == 0
    with sqlite3.connect(home / "terminal.db") as db:  # a failing row, a long reason
        db.execute("UPDATE transactions SET amount = 999 WHERE id = 4")
    db.close()
    expected = _as_rich_lays_it_out(home, stdout.width, *extra)
    assert "┃ id ┃ time" in expected and "0.05" in expected
    for batch in (1, 2, 5, 500):
        monkeypatch.setattr("reader.log_table.TABLE_BATCH", batch)
        counts = _rows_per_print(monkeypatch)
        result = CliRunner().invoke(app, ["log", "--home", str(home), *extra])
        assert result.exit_code == (3 if extra == ["--verify"] else 0), result.output
        assert result.stdout == expected, (batch, result.stdout)
        assert sum(counts) == (3 if extra[:1] == ["--last"] else 5)
        assert max(counts) == min(batch, sum(counts)), counts
        monkeypatch.undo()


@pytest.mark.parametrize("extra", [[], ["--verify"], ["--last", "2"]], ids=repr)
def test_a_log_table_wider_than_the_console_folds_as_rich_laid_it_out(
    home: Path, extra: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a console too narrow for the table, the columns are as wide as rich made them
    when it laid out the whole table: narrowing the widest column one at a time cut the
    time column to 9 at 79 columns ("2026-11-3", "0", "12:00:00": three lines a row where
    rich gave two), and differed from rich's at most widths from 20 to 120. A console too
    narrow for even the rules (1, 10 columns) is laid out as rich did too."""
    for cents in range(1, 6):
        assert _pay(home, "--amount", f"0.0{cents}")[0] == 0
    with sqlite3.connect(home / "terminal.db") as db:  # a failing row, a long reason
        db.execute("UPDATE transactions SET amount = 999 WHERE id = 4")
    db.close()
    differ = []
    for width in (1, 10, 30, 40, 50, 61, 70, 79, 83, 91, 97, 116):
        expected = _as_rich_lays_it_out(home, width, *extra)
        monkeypatch.setattr(stdout, "width", width)
        result = CliRunner().invoke(app, ["log", "--home", str(home), *extra])
        monkeypatch.undo()
        assert result.exit_code == (3 if extra == ["--verify"] else 0), result.output
        if result.stdout != expected:
            differ.append(width)
    assert differ == [], differ


@pytest.mark.parametrize("width", [60, 80])
def test_a_log_table_wider_than_the_console_folds_alike_in_every_batch(
    home: Path, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table that does not fit the console is laid out by rich with the same widths in
    every batch, no print over a batch: the lines of one table, all as wide, the same
    whatever the batch."""
    for cents in range(1, 6):
        assert _pay(home, "--amount", f"0.0{cents}")[0] == 0
    outputs = []
    for batch in (2, 500):
        monkeypatch.setattr("reader.log_table.TABLE_BATCH", batch)
        monkeypatch.setattr(stdout, "width", width)
        counts = _rows_per_print(monkeypatch)
        result = CliRunner().invoke(app, ["log", "--home", str(home), "--verify"])
        monkeypatch.undo()
        assert result.exit_code == 0, result.output
        assert sum(counts) == 5 and max(counts) == min(batch, 5), counts
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1], outputs
    lines = outputs[0].splitlines()[1:-1]  # the title and "5 of 5 rows verify" aside
    assert lines[0].startswith("┏") and lines[-1].startswith("└"), outputs[0]
    assert {len(line) for line in lines} == {len(lines[0])} and len(lines[0]) <= width
    assert [line[2] for line in lines if re.match(r"│ \d", line)] == list("12345")
    assert outputs[0].splitlines()[-1] == "5 of 5 rows verify"


@pytest.mark.parametrize("account", ["６２００１２３４５６７８９０１２", "6200\n123456789012"])
def test_a_hand_edited_account_is_shown_as_rich_laid_it_out(
    home: Path, account: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value the log never writes (wide characters, a line break: a log edited by hand)
    is laid out by rich, in batches of the same widths: as rich laid out the table whole."""
    monkeypatch.setattr("reader.log_table.TABLE_BATCH", 2)
    for cents in range(1, 4):
        assert _pay(home, "--amount", f"0.0{cents}")[0] == 0
    with sqlite3.connect(home / "terminal.db") as db:
        db.execute("UPDATE transactions SET account = ? WHERE id = 2", (account,))
    db.close()
    result = CliRunner().invoke(app, ["log", "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert result.stdout == _as_rich_lays_it_out(home, stdout.width), result.stdout


@pytest.mark.parametrize("extra", [[], ["--verify"], ["--last", "2"]], ids=repr)
def test_a_damaged_row_after_the_first_batch_prints_nothing_of_the_table(
    home: Path, extra: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows are read whole before the first is printed: a damaged row in a later batch
    is still one line, exit 2, with no half table before it."""
    monkeypatch.setattr("reader.log_table.TABLE_BATCH", 2)
    for cents in range(1, 6):
        assert _pay(home, "--amount", f"0.0{cents}")[0] == 0
    with sqlite3.connect(home / "terminal.db") as db:
        db.execute("UPDATE transactions SET time = 'yesterday' WHERE id = 5")
    db.close()
    result = CliRunner().invoke(app, ["log", "--home", str(home), *extra])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("hcepay: error: transaction log: row 5 cannot be read: ")


@given(
    st.lists(
        st.tuples(st.text(st.characters(min_codepoint=32, max_codepoint=126)), st.integers(1, 12)),
        min_size=1,
        max_size=5,
    )
)
def test_a_row_written_as_text_is_the_row_rich_lays_out(cells: list[tuple[str, int]]) -> None:
    """`hcepay log` writes a row of printable ASCII as text: the lines a rich Table of the
    same column widths renders for it, its cells folded alike (words kept whole where they
    fit, longer ones cut, blanks at a fold dropped), the row as high as its highest cell."""
    texts, widths = [c for c, _ in cells], [w for _, w in cells]
    table = Table(show_header=False)
    for width in widths:
        table.add_column(width=width, overflow="fold")
    table.add_row(*texts)
    out = io.StringIO()
    console = Console(file=out, width=200, highlight=False, soft_wrap=True, markup=False)
    console.print(table)
    rows = out.getvalue().splitlines()[1:-1]  # the top and bottom rules aside
    assert row_text(texts, widths, HEAVY_HEAD) == "\n".join(rows)


@pytest.mark.parametrize("length", [0, 100, 127, 249, 300])
def test_a_license_of_no_key_size_is_not_said_to_be_another_keys(home: Path, length: int) -> None:
    """The hint "sized for another key" fits a license as long as some authority key's
    modulus (128 to 248 bytes, PROTOCOL.md §5): one of 100 bytes is no key's, but damaged
    (a truncated record, a log edited by hand), and sending the user to remake the card
    or look for another authority key would mislead. The refusal is said as it is."""
    assert _pay(home, "--amount", "1.00")[0] == ExitCode.OK
    with sqlite3.connect(home / "terminal.db") as db:
        db.execute("UPDATE transactions SET license = ? WHERE id = 1", (bytes(length),))
    db.close()
    result = CliRunner().invoke(app, ["log", "--home", str(home), "--verify", "--json"])
    assert result.exit_code == ExitCode.REFUSED, result.output
    [row] = json.loads(result.stdout)["transactions"]
    assert row["verify_reason"] == f"license bad length ({length} bytes, want 248)"
