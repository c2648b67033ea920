"""The home folder as every command with --home takes it (docs/architecture.md layout)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reader.cli import app
from reader.cli_pay import make_demo_home

ROOT = Path(__file__).resolve().parents[2]

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


@pytest.mark.parametrize("argv", HOME_COMMANDS, ids=" ".join)
def test_a_home_that_cannot_be_a_folder_is_refused_alike_by_every_command(
    argv: list[str], tmp_path: Path
) -> None:
    """A dangling symbolic link (an unmounted volume) and a path under a file: log and
    authority show exited 0 with no rows and no keys, log named the spool ("Not a
    directory"), authority init said "cannot lock ...: File exists"."""
    link = tmp_path / "home"
    link.symlink_to(tmp_path / "gone")
    (tmp_path / "file").write_text("x\n")
    for home, expected in (
        (link, f"the home {link} is a symbolic link to {tmp_path / 'gone'}, which is missing"),
        (tmp_path / "file" / "home", f"{tmp_path / 'file'} is a file, not a folder"),
    ):
        result = CliRunner().invoke(app, [*argv, "--home", str(home)])
        assert (result.exit_code, result.stdout) == (2, ""), result.output
        assert result.stderr.startswith("hcepay: error: the home "), result.stderr
        assert expected in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "gone").exists() and (tmp_path / "file").read_text() == "x\n"


@pytest.mark.parametrize("argv", HOME_COMMANDS, ids=" ".join)
def test_a_home_the_system_cannot_look_up_is_refused_alike_by_every_command(
    argv: list[str], tmp_path: Path
) -> None:
    """A name longer than the system takes and a loop of symbolic links: exists() raised
    "File name too long" (internal error, exit 70); a loop was called a missing target."""
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for home, why in (
        (tmp_path / ("a" * 300), "File name too long"),
        (loop, "Too many levels of symbolic links"),
        (loop / "home", "Too many levels of symbolic links"),
    ):
        result = CliRunner().invoke(app, [*argv, "--home", str(home)])
        expected = f"hcepay: error: the home {home} cannot be a folder: {why}\n"
        assert (result.exit_code, result.stdout, result.stderr) == (2, "", expected), result.output
    # ~NAME of no such user: expanduser raised RuntimeError (internal error, exit 70)
    expected = "hcepay: error: the home ~nosuchuser/h: ~nosuchuser names no user's home folder\n"
    for env, args in (({}, ["--home", "~nosuchuser/h"]), ({"HCEPAY_HOME": "~nosuchuser/h"}, [])):
        result = CliRunner().invoke(app, [*argv, *args], env=env)
        assert (result.exit_code, result.stdout, result.stderr) == (2, "", expected), result.output


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


def _issued_home(tmp_path: Path) -> Path:
    """A home made as README says: an authority key and one card (1024-bit keys)."""
    home = tmp_path / "home"
    for argv in (
        ["authority", "init", "--bits", "1024"],
        ["card", "issue", "--account", "6200123456789012", "--limit", "10", "--bits", "1024"],
    ):
        result = CliRunner().invoke(app, [*argv, "--home", str(home)])
        assert result.exit_code == 0, result.output
    return home


def _one_line(argv: list[str], home: Path) -> str:
    """The command's stderr, checked to be one error line and exit 2 without Python's own
    error text."""
    result = CliRunner().invoke(app, [*argv, "--home", str(home)])
    assert result.exit_code == 2, result.output
    err = result.stderr.removeprefix("generating a 1024-bit APP key...\n")  # progress
    assert err.startswith("hcepay: error: ") and len(err.splitlines()) == 1, err
    for python in ("[Errno", "codec", "Error)", "Expecting"):
        assert python not in err, err
    return err


PAY = ["pay", "--amount", "1.00"]
ISSUE = ["card", "issue", "--account", "6200123456789013", "--limit", "1", "--bits", "1024"]
CARD = "cards/6200123456789012"
DEEP = "[" * 100_000  # json's decoder recurses once per level: RecursionError, exit 70


@pytest.mark.parametrize(
    ("argv", "damage", "says"),
    [
        (PAY, f"{CARD}/state.dat/", f"{CARD}/state.dat: is a folder, not a file"),
        (["card", "send", "--in-process", "00"], f"{CARD}/state.dat/", "is a folder, not a file"),
        (PAY, f"{CARD}/card.json=\xeb\x01", f"{CARD}/card.json: bad card description: not UTF-8"),
        (PAY, f"{CARD}/card.json={{", f"{CARD}/card.json: bad card description: not valid JSON"),
        (PAY, f"{CARD}/card.json#license=ZZ", "card.json: bad card description: 'license' must be"),
        (ISSUE, "cards=x", "cannot issue card 6200123456789013: {home}/cards: is a file, not a"),
        (PAY, "cards=x", "error: {home}/cards: is a file, not a folder"),  # was: issue one
        (["card", "send", "--in-process", "00"], "cards=x", "{home}/cards: is a file, not a"),
        (PAY, f"{CARD}/card.json/", f"{CARD}/card.json: is a folder, not a file"),  # ditto
        ([*PAY, "--card", CARD[6:]], f"{CARD}/card.json/", f"{CARD}/card.json: is a folder"),
        (ISSUE, "authority/serials.json=x", "serials.json: bad serials file: not valid JSON"),
        (ISSUE, "authority/serials.json=[]", 'serials.json: bad serials file: must be {"next_'),
        (ISSUE, "authority/serials.json=\xff", "serials.json: bad serials file: not UTF-8 text"),
        (ISSUE, "authority/serials.json/", "authority/serials.json: is a folder, not a file"),
        (["authority", "show"], "authority/serials.json=1", "bad serials file: must be"),
        (["authority", "init", "--index", "02"], "terminal=x", "{home}/terminal: is a file, not a"),
        (["authority", "init"], "authority=x", "error: {home}/authority: is a file, not a folder"),
        (ISSUE, "authority=x", "error: {home}/authority: is a file, not a folder"),  # not: init
        (PAY, "terminal/keystore.json/", "terminal/keystore.json: is a folder, not a file"),
        (PAY, "terminal/keystore.json=\xff", "keystore.json: bad key store: not UTF-8 text"),
        (PAY, "terminal/keystore.json={", "keystore.json: bad key store: not valid JSON"),
        (PAY, f"terminal/keystore.json={DEEP}", "keystore.json: bad key store: nested too deeply"),
        (ISSUE, f"authority/serials.json={DEEP}", "bad serials file: nested too deeply"),
        (PAY, f"terminal/terminal.json={DEEP}", "bad terminal description: nested too deeply"),
        (PAY, "terminal/terminal.json/", "terminal/terminal.json: is a folder, not a file"),
        (PAY, "terminal.db/", "transaction log: {home}/terminal.db: is a folder, not a file"),
        (["log"], "terminal.db/", "log: {home}/terminal.db: is a folder, not a file"),
        (["log", "recover"], "terminal.db/", "{home}/terminal.db: is a folder, not a file"),
        (["log"], "terminal.db.spool/", "spool: {home}/terminal.db.spool: is a folder, not a"),
    ],
)
def test_a_damaged_file_of_the_home_is_named_in_plain_words(
    argv: list[str], damage: str, says: str, tmp_path: Path
) -> None:
    """Python's own error text was the message: "[Errno 21] Is a directory: '...'",
    "[Errno 20] Not a directory", "[Errno 17] File exists", "unreadable serials file
    (JSONDecodeError)", "'utf-8' codec can't decode byte 0xeb". DAMAGE is NAME/ (a folder in
    its place), NAME=TEXT (a file of that text in its place) or NAME#FIELD=VALUE (one string
    field of a JSON file changed)."""
    home = _issued_home(tmp_path)
    if damage.endswith("/"):
        target = home / damage.rstrip("/")
        target.unlink(missing_ok=True)
        target.mkdir()
    elif "#" in damage:  # NAME#FIELD=VALUE: one field of a JSON file changed
        name, _, change = damage.partition("#")
        field, _, value = change.partition("=")
        obj = json.loads((home / name).read_text(encoding="utf-8"))
        obj[field] = value
        (home / name).write_text(json.dumps(obj), encoding="utf-8")
    else:
        name, _, text = damage.partition("=")
        target = home / name
        if target.is_dir():
            shutil.rmtree(target)
        target.write_bytes(text.encode("latin-1"))
    err = _one_line(argv, home)
    assert says.replace("{home}", str(home)) in err, err
    if argv[:2] == ["authority", "init"]:  # refused before any key was made
        assert not (home / "authority" / "ca-02.pem").exists()


def test_json_nested_too_deeply_is_passed_over_where_a_damaged_file_is(tmp_path: Path) -> None:
    """A spool line, or a card.json read for its serial (the serials file lost), nested too
    deeply for json's decoder: RecursionError was an internal error (exit 70) in log, log
    recover and card issue, where an unreadable line or card is passed over."""
    home = _issued_home(tmp_path)
    (home / "terminal.db.spool").write_text(DEEP + "\n")
    for argv in (["log"], ["log", "--json"], ["log", "recover"]):
        result = CliRunner().invoke(app, [*argv, "--home", str(home)])
        assert (result.exit_code, result.stderr) == (0, ""), result.output
    assert "1 unreadable line" in result.stdout, result.stdout
    assert (home / "terminal.db.spool.bad").read_text() == DEEP + "\n"
    (home / "authority" / "serials.json").unlink()
    (home / CARD / "card.json").write_text(DEEP)
    result = CliRunner().invoke(app, [*ISSUE, "--home", str(home)])
    assert result.exit_code == 0 and "license serial 1," in result.stdout, result.output


@pytest.mark.parametrize(
    ("env", "home"), [("~/elsewhere", "elsewhere"), ("", ".hcepay"), (None, ".hcepay")]
)
def test_the_default_home_expands_a_tilde_in_hcepay_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str | None, home: str
) -> None:
    """$HCEPAY_HOME as a user writes it in a profile (`~/elsewhere`) is that folder of the
    user's home, as --home's is (authority/home.py resolve_home); unset or empty, the home
    is ~/.hcepay."""
    from authority.home import resolve_home
    from reader.cli_common import default_home

    monkeypatch.setenv("HOME", str(tmp_path))
    if env is None:
        monkeypatch.delenv("HCEPAY_HOME", raising=False)
    else:
        monkeypatch.setenv("HCEPAY_HOME", env)
    assert default_home() == resolve_home(None) == tmp_path / home


@pytest.mark.parametrize(
    "argv",
    [
        ["log"],
        ["log", "--verify"],
        ["log", "--json"],
        ["log", "recover"],
        ["authority", "revoke", "3"],
    ],
    ids=" ".join,
)
def test_a_home_that_does_not_exist_is_named_not_shown_empty(
    argv: list[str], tmp_path: Path
) -> None:
    """A mistyped --home: `log` showed an empty table, `log --verify` "0 of 0 rows verify"
    and `log recover` "0 imported", each exit 0, as `authority revoke` refused it. A home
    that exists but holds no log yet is still an empty log."""
    missing = tmp_path / "typo"
    result = CliRunner().invoke(app, [*argv, "--home", str(missing)])
    expected = f"hcepay: error: {missing}: no such home (hcepay authority init makes one)\n"
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", expected), result.output
    assert not missing.exists()
    if argv[0] == "log":
        missing.mkdir()
        result = CliRunner().invoke(app, [*argv, "--home", str(missing)])
        assert result.exit_code == 0, result.output
        assert not (missing / "terminal.db").exists()


@pytest.mark.parametrize("argv", [["log"], ["log", "--json"], ["log", "recover"]], ids=" ".join)
def test_a_log_that_is_a_dangling_link_is_named_not_shown_empty(
    argv: list[str], tmp_path: Path
) -> None:
    """terminal.db a symbolic link to a log moved away (or a volume not mounted): `log`
    showed an empty table and `log recover` "0 imported", exit 0, as for a home with no
    log yet; the rows were not lost, only not where the link points."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "terminal.db").symlink_to(tmp_path / "moved" / "terminal.db")
    result = CliRunner().invoke(app, [*argv, "--home", str(home)])
    expected = (
        f"hcepay: error: transaction log: {home / 'terminal.db'} is a symbolic link to "
        f"{tmp_path / 'moved' / 'terminal.db'}, which is missing\n"
    )
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", expected), result.output
    assert not (tmp_path / "moved").exists()


def test_pay_makes_no_new_log_where_a_dangling_link_points(tmp_path: Path) -> None:
    """terminal.db a symbolic link to a volume not mounted (its mount point there, empty):
    `log` refused it, but `pay` made a new log in the mount point and recorded the payment
    there, out of the real log (hidden once the volume is mounted) and with no replay
    refused against it."""
    home = tmp_path / "home"
    make_demo_home(home)
    (tmp_path / "mnt").mkdir()
    (home / "terminal.db").symlink_to(tmp_path / "mnt" / "terminal.db")
    result = CliRunner().invoke(app, [*PAY, "--in-process", "--home", str(home)])
    expected = (
        f"hcepay: error: transaction log: {home / 'terminal.db'} is a symbolic link to "
        f"{tmp_path / 'mnt' / 'terminal.db'}, which is missing\n"
    )
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", expected), result.output
    assert list((tmp_path / "mnt").iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "name", "says"),
    [
        (PAY, "terminal/keystore.json", "keystore.json: cannot read (not a regular file)"),
        (PAY, "terminal/terminal.json", "terminal/terminal.json: not a regular file"),
        (PAY, "terminal/ca-01.pub.pem", "ca-01.pub.pem: cannot read (not a regular file)"),
        (ISSUE, "authority/serials.json", "serials.json: cannot read (not a regular file)"),
        (ISSUE, "authority/ca-01.pem", "ca-01.pem: cannot read (not a regular file)"),
        (["log"], "terminal.db.spool", "terminal.db.spool: cannot read (not a regular file)"),
        (PAY, f"{CARD}/state.dat", f"{CARD}/state.dat: not a regular file"),  # "Illegal seek"
        (PAY, f"{CARD}/card.json", f"{CARD}/card.json: not a regular file"),  # "no card"
    ],
)
def test_a_fifo_in_place_of_a_file_of_the_home_is_refused_not_waited_on(
    argv: list[str], name: str, says: str, tmp_path: Path
) -> None:
    """A FIFO in place of a file the command reads: the read waited for a writer forever
    (the command never ended); state.dat's said "Illegal seek" with no file, card.json's
    "no card (issue one)". In a child process, so that a hang is a timeout, not a stuck
    suite."""
    home = _issued_home(tmp_path)
    target = home / name
    target.unlink(missing_ok=True)  # terminal.json and the spool are not made
    os.mkfifo(target, 0o600)
    result = subprocess.run(
        [sys.executable, "-m", "reader.entry", *argv, "--home", str(home)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    err = result.stderr.removeprefix("generating a 1024-bit APP key...\n")
    assert (result.returncode, err.count("\n")) == (2, 1), result.stderr
    assert err.startswith("hcepay: error: ") and says in err, err


@pytest.mark.parametrize("encoding", ["utf-8:strict", "ascii"])
def test_a_home_name_stdout_cannot_encode_is_escaped_not_an_internal_error(
    encoding: str, tmp_path: Path
) -> None:
    """A home whose name holds a byte FF (not UTF-8) under a UTF-8 locale (en_US.UTF-8:
    strict), or an é under an ASCII one: printing it raised UnicodeEncodeError from `log`
    and `authority show` (internal error, exit 70). It is a backslash escape, as stderr's."""
    home = tmp_path / "caf\udcff\u00e9"
    made = CliRunner().invoke(
        app, ["authority", "init", "--bits", "1024", "--home", str(tmp_path / "x")]
    )
    assert made.exit_code == 0, made.output
    shutil.move(tmp_path / "x", home)
    for argv in (["log"], ["authority", "show"]):
        result = subprocess.run(
            [sys.executable, "-m", "reader.entry", *argv, "--home", os.fsencode(home)],
            capture_output=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONIOENCODING": encoding},
            timeout=60,
            check=False,
        )
        assert (result.returncode, result.stderr) == (0, b""), result.stderr
        assert b"caf\\udcff" in result.stdout, result.stdout


@contextmanager
def _unwritable(path: Path) -> Iterator[None]:
    """`path` made unwritable for this process: mode 555 for a user; for root, which writes
    whatever the mode says, immutable (chattr +i). Checked: the test must meet a real
    refusal, not a mode root ignores."""
    mode = path.stat().st_mode
    if os.geteuid() != 0:
        path.chmod(0o555 if path.is_dir() else 0o444)
    elif shutil.which("chattr") is None:
        pytest.skip("root writes a folder of any mode: this needs chattr +i")
    elif subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip(f"chattr +i is not supported for {path}'s file system")

    def undo() -> None:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], check=True)
        path.chmod(mode)

    try:
        with pytest.raises(OSError):  # the refusal is real
            if path.is_dir():
                (path / "probe").touch()
            else:
                path.open("a").close()
        yield
    finally:
        undo()


def _paid_home(tmp_path: Path) -> Path:
    """A demo home whose log holds one payment."""
    home = tmp_path / "home"
    make_demo_home(home)
    result = CliRunner().invoke(app, ["pay", "--home", str(home), "--amount", "1.00"])
    assert result.exit_code == 0, result.output
    return home


@pytest.mark.parametrize(
    "argv",
    [["log"], ["log", "--json"], ["log", "--verify"], ["log", "recover"], ["pay", "--amount", "1"]],
    ids=" ".join,
)
def test_a_log_in_a_home_that_cannot_be_written_is_one_line_naming_the_folder(
    argv: list[str], tmp_path: Path
) -> None:
    """A home that is not writable (a read-only mount, a folder of another user): `log`
    and `pay` said "attempt to write a readonly database", or "unable to open database
    file" for a new log. The line names the log, its folder, why and what to do; exit 2
    as for every file of the home that cannot be used, and no payment is attempted."""
    home = _paid_home(tmp_path)
    state = next((home / "cards").iterdir()) / "state.dat"
    before = state.read_bytes()
    expected = (
        f"hcepay: error: transaction log: {home / 'terminal.db'}: its folder {home} is not "
        "writable, and the log writes terminal.db-wal and terminal.db-shm beside it (make "
        "the folder writable by this user, or give another --home)\n"
    )
    with _unwritable(home):
        result = CliRunner().invoke(app, [*argv, "--home", str(home)])
    assert result.exit_code == 2, result.output
    assert result.stderr == expected
    assert state.read_bytes() == before  # the card was not even selected


def test_pay_in_a_home_that_cannot_be_written_makes_no_log_and_says_why(tmp_path: Path) -> None:
    """A new log cannot be made there: SQLite said only "unable to open database file"."""
    home = tmp_path / "home"
    make_demo_home(home)
    with _unwritable(home):
        result = CliRunner().invoke(app, ["pay", "--home", str(home), "--amount", "1"])
    assert result.exit_code == 2, result.output
    assert f": {home / 'terminal.db'}: its folder {home} is not writable, " in result.stderr
    assert "unable to open" not in result.stderr and not (home / "terminal.db").exists()


def test_pay_with_a_log_that_cannot_be_written_names_it(tmp_path: Path) -> None:
    """A log file this user may read but not write: `log` shows it, and `pay` stops at its
    pending entry, before GENERATE AC (PROTOCOL.md §9), naming the file, not SQLite's
    "attempt to write a readonly database"."""
    home = _paid_home(tmp_path)
    log = home / "terminal.db"
    with _unwritable(log):
        shown = CliRunner().invoke(app, ["log", "--home", str(home)])
        result = CliRunner().invoke(app, ["pay", "--home", str(home), "--amount", "1"])
    assert shown.exit_code == 0 and "0001" in shown.stdout, shown.output
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"hcepay: error: not attempted: transaction log: {log}: is not writable by this user "
        "(the log is read and written: make it both for this user)\n"
    )
