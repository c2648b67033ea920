"""`hcepay vectors replay` and `hcepay vectors record`, and the terminal-side replay's checks."""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from reader import vectors as vx
from reader.checks import Verdict
from reader.cli import app
from reader.flow import Outcome

ROOT = Path(__file__).resolve().parents[2]
APPROVE = ROOT / "vectors" / "card" / "card-approve-basic.json"
TERMINAL_APPROVE = ROOT / "vectors" / "terminal" / "terminal-approve.json"
REFUSAL = ROOT / "vectors" / "terminal" / "terminal-license-byte-middle.json"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_live_payment_recorded_replays_byte_exact(tmp_path: Path) -> None:
    out = tmp_path / "live.json"
    code, stdout, _ = run(
        "vectors",
        "record",
        "--out",
        str(out),
        "--amount",
        "7.50",
        "--atc",
        "5",
        "--used",
        "100.00",
        "--json",
    )
    assert code == 0, stdout
    assert json.loads(stdout)["verdict"] == "approved"
    assert len(stdout.splitlines()) == 1  # one line, as every --json (it was indented)
    vector = vx.load(out)
    assert vector.card == vx.CardStart("test-card-1", 5, 10_000)
    assert vector.terminal is not None and vector.terminal.amount == 750
    assert [s.command[1] for s in vector.steps] == [0xA4, 0xA4, 0xA8, 0xB2, 0xB2, 0xB2, 0xAE, 0xC0]
    result = vx.replay_vector(vector, ROOT / "vectors" / "profiles")
    assert result.passed and result.done == len(vector.steps)
    code, stdout, _ = run("vectors", "replay", str(out), "--json")
    assert code == 0 and json.loads(stdout)["passed"] == 1
    # the same exchange from another starting ATC is not the same vector
    moved = replace(vector, card=vx.CardStart("test-card-1", 6, 10_000))
    assert not vx.replay_vector(moved, ROOT / "vectors" / "profiles").passed


def test_record_refuses_an_out_it_cannot_write_before_paying(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing folder or a folder for --out was found only when the vector was written,
    after the payment had spent the card's ATC and credit (a real card's, with --reader):
    exit 2 and the exchange lost. Refused before any payment, as pay's --trace is."""
    from reader import cli_vectors

    def no_payment(**_: object) -> None:
        raise AssertionError("paid before checking --out")

    monkeypatch.setattr(cli_vectors, "record_vector", no_payment)
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)  # renamed over, the pipe would be gone; written to, it would block
    for out in (tmp_path / "missing" / "v.json", tmp_path, fifo):
        code, stdout, stderr = run("vectors", "record", "--out", str(out))
        assert (code, stdout) == (2, ""), stderr
        assert stderr.startswith(f"hcepay: error: cannot write {out}: ") and stderr.count("\n") == 1
    assert fifo.is_fifo()


def test_record_never_writes_over_the_profile_it_records_from(tmp_path: Path) -> None:
    """`--out` naming the profile's card.json or key (or a link to one) replaced it with
    the vector: the profile no longer opened. Refused before the payment, file unchanged."""
    profiles = tmp_path / "profiles"
    shutil.copytree(ROOT / "vectors" / "profiles" / "test-card-1", profiles / "test-card-1")
    card = profiles / "test-card-1"
    link = tmp_path / "v.json"
    link.symlink_to(card / "app.pem")
    kept = {name: (card / name).read_bytes() for name in ("card.json", "app.pem")}
    for out in (card / "card.json", card / "app.pem", card / "new.json", link):
        code, stdout, stderr = run(
            "vectors", "record", "--out", str(out), "--profiles", str(profiles)
        )
        assert (code, stdout) == (2, ""), stderr
        assert stderr == (
            f"hcepay: error: --out {out}: a file of the profiles folder {profiles} (the cards' "
            "keys and descriptions), not a vector: write the vector elsewhere\n"
        )
    assert {name: (card / name).read_bytes() for name in kept} == kept
    assert link.is_symlink() and not (card / "new.json").exists()


def test_record_replaces_a_vector_file_and_no_other_file(tmp_path: Path) -> None:
    """An existing --out is replaced only when it is a vector (recorded again); any other
    file (notes, a key, a config) is refused before the payment and left as it was."""
    other = tmp_path / "notes.json"
    other.write_text('{"not": "a vector"}\n', encoding="utf-8")
    code, stdout, stderr = run("vectors", "record", "--out", str(other))
    assert (code, stdout) == (2, "")
    assert stderr == (
        f"hcepay: error: --out {other}: exists and is not a vector file, so it is not replaced\n"
    )
    assert other.read_text(encoding="utf-8") == '{"not": "a vector"}\n'
    vector = tmp_path / "v.json"
    shutil.copy(APPROVE, vector)
    code, stdout, stderr = run("vectors", "record", "--out", str(vector), "--amount", "1.00")
    assert code == 0, stderr
    terminal = vx.load(vector).terminal
    assert terminal is not None and terminal.amount == 100  # the new recording's


def test_replay_exit_codes_and_table(tmp_path: Path) -> None:
    code, stdout, _ = run("vectors", "replay", str(APPROVE), str(TERMINAL_APPROVE))
    assert code == 0 and "2 passed, 0 failed" in stdout
    obj = json.loads(APPROVE.read_text(encoding="utf-8"))
    obj["steps"][2]["r"] = "6985"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(obj), encoding="utf-8")
    code, stdout, _ = run("vectors", "replay", str(bad), str(APPROVE))
    assert code == 1
    assert "FAIL" in stdout and "step 3" in stdout and "1 passed, 1 failed" in stdout
    code, stdout, _ = run("vectors", "replay", str(bad), "--json")
    assert len(stdout.splitlines()) == 1  # one line, as every --json (it was indented)
    difference = json.loads(stdout)["results"][0]["difference"]
    assert (difference["step"], difference["offset"], difference["expected"]) == (
        3,
        0,
        "6985",
    )  # 1-based, as "step 3" above


def test_a_replay_with_stderr_not_a_terminal_writes_nothing_there() -> None:
    """The progress bar (from 8 vectors on) drew nothing but left an empty line on a
    stderr that is a file or a pipe, where only errors and warnings go."""
    code, stdout, stderr = run("vectors", "replay", str(ROOT / "vectors" / "card"))
    assert code == 0 and " passed, 0 failed" in stdout
    assert stderr == ""


def test_a_vector_name_shows_no_control_character(tmp_path: Path) -> None:
    """A vector file is data: an ESC sequence in its name is shown as dots in the table
    (it reached the terminal raw), and --json keeps the name as it is."""
    obj = json.loads(APPROVE.read_text(encoding="utf-8"))
    obj["name"] = "evil\x1b]0;title\x07\x1b[2J"
    vector = tmp_path / "evil.json"
    vector.write_text(json.dumps(obj), encoding="utf-8")
    code, stdout, _ = run("vectors", "replay", str(vector))
    assert code == 0 and "evil.]0;title..[2J" in stdout, stdout
    assert "\x1b" not in stdout and "\x07" not in stdout
    code, stdout, _ = run("vectors", "replay", str(vector), "--json")
    assert json.loads(stdout)["results"][0]["vector"] == obj["name"]


def test_replay_usage_errors_are_one_line(tmp_path: Path) -> None:
    code, _, stderr = run("vectors", "replay", str(tmp_path / "absent.json"))
    assert code == 2 and stderr.count("\n") == 1 and "absent.json" in stderr
    code, _, stderr = run("vectors", "replay", "--in-process", "--reader", "x", str(APPROVE))
    assert code == 2 and "pick one of --in-process and --reader NAME" in stderr
    code, _, stderr = run("vectors", "record", "--out", str(tmp_path / "x.json"), "--amount", "-1")
    assert code == 2 and "negative" in stderr
    for option in ("--amount", "--used"):  # the error names the option that is wrong
        code, _, stderr = run("vectors", "record", "--out", str(tmp_path / "x.json"), option, "1e3")
        assert code == 2 and stderr.startswith(f"hcepay: error: {option}: amount"), stderr


TERMINAL_BAD = (
    '{"hcepay_vector": 1, "name": "x", "expect": {"verdict": "approved"}, '
    '"terminal": {"unpredictable_number": "01020304", %s}, '
    '"steps": [{"c": "00A4", "r": "9000"}]}'
)


def test_authority_expires_is_only_yyyy_mm_dd(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    for expires in ("20300101", "2030-W01-1"):  # date.fromisoformat reads both
        fields = f'"date": "261129", "time": "120000", "authority_expires": "{expires}"'
        bad.write_text(TERMINAL_BAD % fields, encoding="utf-8")
        code, _, stderr = run("vectors", "replay", str(bad))
        assert code == 2, stderr
        assert f"authority_expires {expires!r} is not YYYY-MM-DD" in stderr


@pytest.mark.parametrize(
    "text",
    [
        '{"hcepay_vector": 1, "name": "x", "steps": [' + "[" * 100_000 + "]}",
        '{"hcepay_vector": 1, "name": "x", "n": ' + "9" * 5000 + "}",
        '{"hcepay_vector": true, "name": "x", "steps": [{"c": "00", "r": "9000"}]}',
        '{"hcepay_vector": 1.0, "name": "x", "steps": [{"c": "00", "r": "9000"}]}',
        '{"hcepay_vector": 1, "name": "x", "steps": [{"c": "+1A4", "r": "9000"}]}',
        '{"hcepay_vector": 1, "name": "x", "steps": [{"c": "00A4", "r": "٩٠00"}]}',
        TERMINAL_BAD % '"date": "261399", "time": "120000"',
        TERMINAL_BAD % '"date": "261129", "time": "120000", "authority_expires": "tomorrow"',
        '{"hcepay_vector": 1, "name": "x", "steps": [{"c": "00A4", "r": "9000"}]}',
    ],
    ids=[
        "deep",
        "long number",
        "version true",
        "version 1.0",
        "plus sign",
        "arabic digits",
        "no such date",
        "expiry not a date",
        "card side without a card",
    ],
)
def test_a_malformed_vector_is_a_usage_error_not_a_traceback(tmp_path: Path, text: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(text, encoding="utf-8")
    code, _, stderr = run("vectors", "replay", str(bad))
    assert code == 2 and stderr.count("\n") == 1 and "internal error" not in stderr


def test_a_vector_path_that_is_not_a_file_is_refused(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)  # reading it would block for ever
    code, _, stderr = run("vectors", "replay", str(fifo))
    assert code == 2 and "not a regular file" in stderr


def test_a_piped_replay_marks_the_differing_bytes(tmp_path: Path) -> None:
    """docs/conformance.md: the FAIL row shows the differing bytes marked. Piped (here, the
    runner's output) there is no colour: a line of carets marks them under "got"."""
    vector = json.loads(APPROVE.read_text(encoding="utf-8"))
    response = vector["steps"][1]["r"]
    vector["steps"][1]["r"] = (
        response[:40] + ("00" if response[40:42] != "00" else "11") + response[42:]
    )
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(vector), encoding="utf-8")
    code, out, _ = run("vectors", "replay", str(changed))
    cells = [line.split("│")[-2].rstrip() for line in out.splitlines() if line.count("│") > 2]
    got = next(i for i, cell in enumerate(cells) if cell.lstrip().startswith("got "))
    assert code == 1 and "step 2, byte 20" in cells[got - 2], out
    column = cells[got + 1].index("^^")
    assert cells[got + 1].strip() == "^^"
    assert cells[got][column : column + 2] != cells[got - 1][column : column + 2]  # the byte


def test_a_missing_vector_file_is_one_plain_line(tmp_path: Path) -> None:
    missing = tmp_path / "nonexist.json"
    code, out, err = run("vectors", "replay", str(missing))
    assert (code, out, err) == (2, "", f"hcepay: error: {missing}: No such file or directory\n")


@pytest.mark.parametrize(
    ("vector", "damage", "says"),
    [
        (TERMINAL_APPROVE, "terminal.json", "terminal.json: No such file or directory"),
        (TERMINAL_APPROVE, "terminal.json/", "terminal.json: is a folder, not a file"),
        (TERMINAL_APPROVE, "terminal.json={}", "profile 'test-card-1': missing field 'terminal_"),
        (TERMINAL_APPROVE, "terminal.json=" + "[" * 100_000, "JSON nested too deeply"),
        (APPROVE, "app.pem/", "cannot be opened: {profiles}/test-card-1/app.pem: is a folder"),
    ],
)
def test_a_damaged_profile_is_named_in_plain_words(
    vector: Path, damage: str, says: str, tmp_path: Path
) -> None:
    """A profile file that was missing was Python's "[Errno 2] No such file or directory:
    'PATH'" in the replay's difference; a missing field was only "'terminal_id'". DAMAGE
    is NAME (removed), NAME/ (a folder in its place) or NAME=TEXT."""
    import shutil

    profiles = tmp_path / "profiles"
    shutil.copytree(ROOT / "vectors" / "profiles", profiles)
    name, _, text = damage.partition("=")
    target = profiles / "test-card-1" / name.rstrip("/")
    target.unlink()
    if name.endswith("/"):
        target.mkdir()
    elif text:
        target.write_text(text, encoding="utf-8")
    code, out, _ = run("vectors", "replay", "--json", "--profiles", str(profiles), str(vector))
    (result,) = json.loads(out)["results"]
    got = result["difference"]["got"]
    assert code == 1 and says.replace("{profiles}", str(profiles)) in got, got
    assert "[Errno" not in got


def test_a_terminal_sending_another_command_is_caught() -> None:
    vector = vx.load(TERMINAL_APPROVE)
    steps = list(vector.steps)
    gpo = steps[2]
    steps[2] = replace(
        gpo, command=gpo.command[:10] + bytes([gpo.command[10] ^ 1]) + gpo.command[11:]
    )
    result = vx.replay_vector(replace(vector, steps=tuple(steps)), ROOT / "vectors" / "profiles")
    assert result.difference is not None
    assert result.difference.problem is vx.Problem.COMMAND
    assert (result.difference.step, result.difference.offset) == (2, 10)


def test_a_terminal_stopping_early_or_deciding_otherwise_is_caught() -> None:
    profiles = ROOT / "vectors" / "profiles"
    refusal = vx.load(REFUSAL)
    extra = replace(refusal, steps=(*refusal.steps, refusal.steps[0]))
    missing = vx.replay_vector(extra, profiles).difference
    assert missing is not None and missing.problem is vx.Problem.MISSING_COMMAND
    assert missing.step == len(refusal.steps)
    assert refusal.expect is not None
    approve = replace(refusal, expect=vx.Expect(Verdict.APPROVED))
    verdict = vx.replay_vector(approve, profiles).difference
    assert verdict is not None and verdict.problem is vx.Problem.VERDICT
    assert "refused" in verdict.got
    reason = replace(refusal, expect=vx.Expect(Verdict.REFUSED, "check 2: something else"))
    other = vx.replay_vector(reason, profiles).difference
    assert other is not None and other.problem is vx.Problem.REASON
    assert other.got == refusal.expect.reason


def test_refusals_leave_no_row_and_payments_one(profiles: Path) -> None:
    approve = vx.run_terminal(
        vx.load(TERMINAL_APPROVE), profiles, vx.ScriptedCard(vx.load(TERMINAL_APPROVE).steps)
    )
    assert approve.verdict is Verdict.APPROVED and approve.rows_added == 1
    refusal = vx.load(REFUSAL)
    run_ = vx.run_terminal(refusal, profiles, vx.ScriptedCard(refusal.steps))
    assert run_.verdict is Verdict.REFUSED and run_.rows_added == 0


def test_a_terminal_logging_another_row_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """A row that is not the transaction (a decline stored as an approval, another amount)
    fails the replay: the new row is re-checked as `hcepay log --verify` does (P§7)."""
    from reader.log import TransactionLog

    record = TransactionLog.record

    def as_approval(self: TransactionLog, outcome: Outcome) -> int:
        return record(self, replace(outcome, cid=0x40, verdict=Verdict.APPROVED))

    profiles = ROOT / "vectors" / "profiles"
    decline = vx.load(ROOT / "vectors" / "terminal" / "terminal-decline.json")
    assert vx.replay_vector(decline, profiles).passed
    monkeypatch.setattr(TransactionLog, "record", as_approval)
    difference = vx.replay_vector(decline, profiles).difference
    assert difference is not None and difference.problem is vx.Problem.LOG
    assert "does not verify" in difference.got

    def more(self: TransactionLog, outcome: Outcome) -> int:
        return record(self, replace(outcome, amount=outcome.amount + 1))

    monkeypatch.setattr(TransactionLog, "record", more)
    difference = vx.replay_vector(vx.load(TERMINAL_APPROVE), profiles).difference
    assert difference is not None and difference.problem is vx.Problem.LOG


def test_a_terminal_sending_generate_ac_before_its_pending_entry_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """P§9: the pending entry is written before GENERATE AC leaves; a terminal that skips it
    fails the replay, for a payment and for a refusal of the answer (check 4) alike."""
    from reader.log import TransactionLog

    monkeypatch.setattr(TransactionLog, "write_pending", lambda self, pending, now: None)
    profiles = ROOT / "vectors" / "profiles"
    for name in ("terminal-approve", "terminal-amount-mismatch"):
        difference = vx.replay_vector(
            vx.load(ROOT / "vectors" / "terminal" / f"{name}.json"), profiles
        ).difference
        assert difference is not None and difference.problem is vx.Problem.LOG, name
        assert "before its pending entry" in difference.got


def test_a_terminal_leaving_the_pending_entry_open_after_paying_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """P§9: the verified answer closes the pending entry; one left open is a difference."""
    from reader.log import TransactionLog

    monkeypatch.setattr(TransactionLog, "_remove", lambda self, account, atc: None)
    vector = vx.load(TERMINAL_APPROVE)
    difference = vx.replay_vector(vector, ROOT / "vectors" / "profiles").difference
    assert difference is not None and difference.problem is vx.Problem.LOG
    assert "still open" in difference.got


def test_an_unknown_profile_is_a_bad_vector_file(tmp_path: Path) -> None:
    """A vector naming a profile that is not there is a usage error (exit 2) naming the file
    and the field, as docs/conformance.md says, not a FAIL row of the card (exit 1)."""
    obj = json.loads(APPROVE.read_text(encoding="utf-8"))
    obj["card"]["profile"] = "test-card-9"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(obj), encoding="utf-8")
    code, stdout, stderr = run("vectors", "replay", str(bad), str(APPROVE))
    assert code == 2 and stdout == "" and stderr.count("\n") == 1, (stdout, stderr)
    assert f"{bad}: card.profile: no profile 'test-card-9'" in stderr
    code, _, stderr = run("vectors", "replay", str(TERMINAL_APPROVE), "--profiles", str(tmp_path))
    assert code == 2 and "terminal-approve.json: card.profile" in stderr


def test_record_refuses_a_profile_that_replay_would_refuse(tmp_path: Path) -> None:
    """`--profile ../profiles/test-card-1` was recorded (a folder outside the profiles
    folder), and replay then refused the vector it wrote: "bad profile name"."""
    out = tmp_path / "v.json"
    for profile in ("../profiles/test-card-1", ".", ""):
        code, stdout, stderr = run("vectors", "record", "--out", str(out), "--profile", profile)
        assert (code, stdout) == (2, ""), stderr
        assert f"card.profile: bad profile name {profile!r}" in stderr and stderr.count("\n") == 1
    assert not out.exists()


def test_record_names_a_vector_of_a_file_name_not_in_utf8(tmp_path: Path) -> None:
    """--out with a byte FF in its name (a lone surrogate in Python), whose stem is the
    vector's default name, or such a --name: saving raised UnicodeEncodeError after the
    payment (internal error, exit 70, the exchange lost). The byte is U+FFFD in the name."""
    import subprocess
    import sys

    for out, extra in (
        (tmp_path / "r\udcff.json", []),
        (tmp_path / "plain.json", ["--name", "a\udcffb"]),
    ):
        argv = ["vectors", "record", "--out", str(out), *extra]
        result = subprocess.run(  # the process's own stdout, which writes the name as a user's
            [sys.executable, "-m", "reader.entry", *(os.fsencode(a) for a in argv)],
            capture_output=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        assert (result.returncode, result.stderr) == (0, b""), result.stderr
        name = vx.load(out).name
        assert name in ("r\ufffd", "a\ufffdb"), name
        assert vx.replay_vector(vx.load(out), ROOT / "vectors" / "profiles").passed


def test_a_path_too_long_for_the_system_is_a_usage_error(tmp_path: Path) -> None:
    """A vector path, a --profiles folder or a vector's profile name longer than the system
    takes: is_dir() and is_file() raised "File name too long" (internal error, exit 70)."""
    long = "a" * 300
    obj = json.loads(APPROVE.read_text(encoding="utf-8"))
    obj["card"]["profile"] = long
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(obj), encoding="utf-8")
    out = str(tmp_path / "out.json")
    for argv, says in (
        (["vectors", "replay", str(tmp_path / long)], f"{tmp_path / long}: File name too long"),
        (["vectors", "replay", "--profiles", str(tmp_path / long)], "File name too long"),
        (["vectors", "replay", str(bad)], f"{bad}: card.profile: profile '{long}' in "),
        (["vectors", "record", "--out", out, "--profile", long], "File name too long"),
        (["vectors", "record", "--out", out, "--profiles", str(tmp_path / long)], "too long"),
        (["vectors", "serve", "--profiles", str(tmp_path / long)], "File name too long"),
    ):
        code, stdout, stderr = run(*argv)
        assert (code, stdout) == (2, ""), stderr
        assert says in stderr and stderr.count("\n") == 1, stderr


TORN = ROOT / "vectors" / "terminal" / "terminal-torn-recorded.json"


def test_a_terminal_closing_a_torn_payment_otherwise_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """P§9: a terminal that closes as not paid a torn payment the card proves, or records it
    from an answer that does not verify, fails the replay naming the pending entry."""
    import reader.flow as flow
    from reader.recovery import CloseNotPaid, NotPaidReason

    profiles = ROOT / "vectors" / "profiles"
    vector = vx.load(TORN)
    assert vector.expect is not None and vector.expect.pending == ("recorded",)
    assert vx.replay_vector(vector, profiles).passed
    monkeypatch.setattr(
        flow, "decide", lambda entry, *a, **k: CloseNotPaid(entry, NotPaidReason.NO_ANSWER)
    )
    difference = vx.replay_vector(vector, profiles).difference
    assert difference is not None and difference.problem is vx.Problem.PENDING
    assert (difference.expected, difference.got) == (
        "recorded",
        "not paid: the card holds no last answer (6A88)",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t, e: t["pending"][0].update(cdol1_data="0G"), "pending[0].cdol1_data: '0G'"),
        (lambda t, e: t["pending"][0].pop("atc"), "pending[0]: missing 'atc'"),
        (lambda t, e: t["pending"][0].update(serial=1 << 24), "serial 16777216 outside 0..FFFFFF"),
        (lambda t, e: t["pending"][0].update(serial=-1), "serial -1 outside 0..FFFFFF"),
        (lambda t, e: e.update(pending=["recorded", "recorded"]), "one outcome per"),
        (lambda t, e: e.update(pending=[1]), "'pending' must be a list of outcomes"),
    ],
)
def test_a_bad_torn_transaction_names_its_field(change: Any, message: str) -> None:
    obj = json.loads(TORN.read_text(encoding="utf-8"))
    change(obj["terminal"], obj["expect"])
    with pytest.raises(vx.VectorError, match=re.escape(message)):
        vx.vector_from_json(obj, "torn.json")


CHOICES = {
    "card-extended-le-whole",
    "card-get-data-before-select",
    "card-no-le-61xx",
    "card-no-le-each-command",
    "card-select-partial-and-next",
    "card-sw-forms-each-command",
    "card-sw-get-response-nothing-pending",
    "card-sw-read-record-forms",
    "card-wrong-le-6c-gpo",
    "card-wrong-le-6c00-long",
}


def test_protocol_only_leaves_out_the_vectors_of_choices() -> None:
    """A card that follows PROTOCOL.md but answers otherwise where it leaves the answer open
    (docs/protocol-choices.md) replays the rest with --protocol-only."""
    card_folder = str(ROOT / "vectors" / "card")
    code, out, _ = run("vectors", "replay", card_folder, "--json")
    every = json.loads(out)
    assert code == 0 and every["left_out"] == 0
    assert {r["vector"] for r in every["results"] if r["choice"]} == CHOICES
    code, out, _ = run("vectors", "replay", card_folder, "--json", "--protocol-only")
    kept = json.loads(out)
    assert code == 0 and kept["left_out"] == len(CHOICES)
    assert not any(r["choice"] for r in kept["results"])
    assert len(kept["results"]) == len(every["results"]) - len(CHOICES)
    code, out, _ = run("vectors", "replay", card_folder, "--protocol-only")
    assert code == 0 and f"0 failed, {len(CHOICES)} left out (choices, --protocol-only)" in out


def test_protocol_only_over_choices_alone_says_so() -> None:
    """Vectors that are all choices are found, then left out: not 'no vector files found'."""
    one = str(ROOT / "vectors" / "card" / "card-no-le-61xx.json")
    code, _, err = run("vectors", "replay", one, "--protocol-only")
    assert code == 2
    assert "--protocol-only left out every vector found (1, all choices)" in err


@pytest.mark.parametrize("value", ['"yes"', "1", "null"])
def test_choice_is_true_or_false(tmp_path: Path, value: str) -> None:
    text = APPROVE.read_text(encoding="utf-8").replace(
        '"hcepay_vector": 1,', f'"hcepay_vector": 1, "choice": {value},'
    )
    with pytest.raises(vx.VectorError, match="'choice' must be true or false"):
        vx.loads(text)


def test_choice_is_kept_on_save() -> None:
    vector = vx.load(ROOT / "vectors" / "card" / "card-no-le-61xx.json")
    assert vector.choice and vx.loads(vx.dumps(vector)).choice
    assert not vx.load(APPROVE).choice
