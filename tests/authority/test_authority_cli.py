"""`hcepay authority init | revoke | show` (docs/architecture.md home folder layout)."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from authority.keyfiles import load_private, load_public
from authority.keystore import AuthorityKey, KeyStore, load_keystore, save_keystore
from authority.rsa import generate
from reader.cli_authority import register

Invoke = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(tmp_path: Path) -> Invoke:
    app = typer.Typer()

    @app.callback()
    def _root() -> None: ...

    register(app)
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(app, [*args, "--home", str(tmp_path)])
        return result.exit_code, result.stdout, result.stderr

    return invoke


def test_init_writes_keys_serials_and_terminal_store(run: Invoke, tmp_path: Path) -> None:
    code, out, _ = run("authority", "init", "--bits", "1024", "--exponent", "65537")
    assert code == 0, out
    private = tmp_path / "authority" / "ca-01.pem"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = load_private(private)
    assert (key.public.bits, key.public.e) == (1024, 65537)
    assert load_public(tmp_path / "authority" / "ca-01.pub.pem") == key.public
    assert json.loads((tmp_path / "authority" / "serials.json").read_text()) == {"next_serial": 1}
    store = load_keystore(tmp_path)
    held = store.lookup(1)
    assert held is not None and held.key == key.public
    today = date.today()
    assert held.expires.year == today.year + 5


def test_init_with_index_and_expiry_and_no_overwrite(run: Invoke, tmp_path: Path) -> None:
    code, _, _ = run(
        "authority", "init", "--index", "A2", "--bits", "1024", "--expires", "2040-06-30"
    )
    assert code == 0
    held = load_keystore(tmp_path).lookup(0xA2)
    assert held is not None and held.expires == date(2040, 6, 30)
    first = load_public(tmp_path / "authority" / "ca-A2.pub.pem")
    code, out, _ = run("authority", "init", "--index", "a2", "--bits", "1024")
    assert code == 0 and "kept, no new key" in out and "nothing changed" in out, out
    assert load_public(tmp_path / "authority" / "ca-A2.pub.pem") == first
    code, out, err = run("authority", "init", "--index", "A2", "--bits", "1024", "--force")
    assert code == 0
    assert load_public(tmp_path / "authority" / "ca-A2.pub.pem") != first
    assert "warning" in err and "refuses every card issued under it" in err, err


def test_init_trusts_the_existing_key_again_when_the_key_store_is_lost(
    run: Invoke, tmp_path: Path
) -> None:
    """A lost terminal/keystore.json: init refused ("use --force"), and --force made a new
    authority key, which orphaned every issued card and logged row. It keeps the key."""
    assert run("authority", "init", "--bits", "1024")[0] == 0
    key = load_private(tmp_path / "authority" / "ca-01.pem")
    (tmp_path / "terminal" / "keystore.json").unlink()
    (tmp_path / "terminal" / "ca-01.pub.pem").unlink()
    code, out, err = run("authority", "init")
    assert code == 0, err
    assert "kept, no new key" in out and "the terminal trusts it again" in out, out
    assert load_private(tmp_path / "authority" / "ca-01.pem").public == key.public
    held = load_keystore(tmp_path).lookup(1)
    assert held is not None and held.key == key.public
    assert held.expires.year == date.today().year + 5
    assert json.loads((tmp_path / "authority" / "serials.json").read_text()) == {"next_serial": 1}


def test_init_changes_the_expiry_of_an_existing_key_without_a_new_key(
    run: Invoke, tmp_path: Path
) -> None:
    """--expires on an existing key said "use --force", which would make a new key."""
    assert run("authority", "init", "--bits", "1024", "--expires", "2040-01-01")[0] == 0
    key = load_private(tmp_path / "authority" / "ca-01.pem")
    code, out, _ = run("authority", "init", "--expires", "2035-01-01")
    assert code == 0 and "until 2035-01-01 (was 2040-01-01)" in out, out
    held = load_keystore(tmp_path).lookup(1)
    assert held is not None and held.key == key.public and held.expires == date(2035, 1, 1)
    code, out, _ = run("authority", "init")  # no --expires: the expiry stays as it is
    assert code == 0 and "nothing changed" in out
    assert load_keystore(tmp_path).lookup(1) == held


def test_init_with_other_bits_than_the_existing_key_is_refused(run: Invoke, tmp_path: Path) -> None:
    """--bits or --exponent describe a new key: asked of a kept one, they are refused."""
    assert run("authority", "init", "--bits", "1024")[0] == 0
    key = load_private(tmp_path / "authority" / "ca-01.pem")
    for args in (("--bits", "1032"), ("--exponent", "65537")):
        code, _, err = run("authority", "init", *args)
        assert code == 2 and "is a 1024-bit key with e = 3" in err and "--force" in err, err
        assert len(err.strip().splitlines()) == 1
    assert load_private(tmp_path / "authority" / "ca-01.pem").public == key.public


def test_init_with_the_kept_keys_own_size_or_exponent_is_a_re_trust(
    run: Invoke, tmp_path: Path
) -> None:
    """Only the options given are held to the kept key: `--bits 1024` alone was compared
    with the default exponent too, and refused a key of 1024 bits and e = 65537."""
    assert run("authority", "init", "--bits", "1024", "--exponent", "65537")[0] == 0
    for args in (
        ("--bits", "1024"),
        ("--exponent", "65537"),
        ("--bits", "1024", "--exponent", "65537"),
    ):
        code, out, err = run("authority", "init", *args)
        assert code == 0 and "kept, no new key" in out, (args, err)


def test_init_never_replaces_another_key_the_terminal_trusts(run: Invoke, tmp_path: Path) -> None:
    """The terminal trusts a key 01 that is not this authority's (its key store came from
    another home): init said "it now holds this one", and every card the terminal accepted
    was refused from then on. It refuses, exit 2, and changes nothing."""
    assert run("authority", "init", "--bits", "1024")[0] == 0
    shutil.rmtree(tmp_path / "terminal")  # the terminal of another authority's home
    save_keystore(tmp_path, KeyStore({1: AuthorityKey(1, generate(1024).public, date(2031, 1, 1))}))
    before = load_keystore(tmp_path).lookup(1)
    code, _, err = run("authority", "init")
    assert code == 2 and "trusts another key 01" in err and len(err.strip().splitlines()) == 1
    assert load_keystore(tmp_path).lookup(1) == before


def test_init_never_replaces_the_terminals_key_when_the_private_key_is_lost(
    run: Invoke, tmp_path: Path
) -> None:
    """authority/ca-01.pem lost, the terminal's key 01 kept: init made a new key 01 without
    --force and gave it to the terminal, which then refused every card issued under the old
    one. It refuses, exit 2, and changes nothing; --force still makes the new key."""
    assert run("authority", "init", "--bits", "1024")[0] == 0
    (tmp_path / "authority" / "ca-01.pem").unlink()
    before = load_keystore(tmp_path).lookup(1)
    code, _, err = run("authority", "init", "--bits", "1024")
    assert code == 2 and "ca-01.pem is missing" in err and len(err.strip().splitlines()) == 1
    assert load_keystore(tmp_path).lookup(1) == before
    assert not (tmp_path / "authority" / "ca-01.pem").exists()
    code, _, err = run("authority", "init", "--bits", "1024", "--force")
    assert code == 0 and "NEW authority key 01" in err, err
    assert load_keystore(tmp_path).lookup(1) != before


def test_init_restores_the_authoritys_lost_public_key(run: Invoke, tmp_path: Path) -> None:
    """authority/ca-01.pub.pem lost, the key store intact: init said "nothing changed" and
    left it missing (card issue reads it)."""
    assert run("authority", "init", "--bits", "1024")[0] == 0
    key = load_private(tmp_path / "authority" / "ca-01.pem")
    (tmp_path / "authority" / "ca-01.pub.pem").unlink()
    code, out, _ = run("authority", "init")
    assert code == 0 and "ca-01.pub.pem restored" in out and "nothing changed" not in out, out
    assert load_public(tmp_path / "authority" / "ca-01.pub.pem") == key.public


def test_revoke_without_a_key_store_is_refused(run: Invoke, tmp_path: Path) -> None:
    """It exited 0 and wrote a key store of no key ({"keys": {}, "revoked": [9]})."""
    assert run("authority", "init", "--bits", "1024")[0] == 0
    store = tmp_path / "terminal" / "keystore.json"
    store.unlink()
    code, out, err = run("authority", "revoke", "9")
    assert code == 2 and out == ""
    assert err == (
        f"hcepay: error: {store}: no terminal key store, nothing revoked (`hcepay authority "
        "init` makes one, or trusts the authority's key again)\n"
    )
    assert not store.exists()
    assert run("authority", "init")[0] == 0 and run("authority", "revoke", "9")[0] == 0
    assert load_keystore(tmp_path).revoked == frozenset({9})


@pytest.mark.parametrize(
    "args",
    [
        ("--bits", "1000"),
        ("--bits", "2048"),
        ("--exponent", "5"),
        ("--index", "1"),
        ("--index", "GG"),
        ("--index", "00"),
        ("--index", "100"),
        ("--expires", "2020-01-01"),
        ("--expires", "tomorrow"),
    ],
)
def test_init_usage_errors_are_one_line(run: Invoke, args: tuple[str, str]) -> None:
    code, out, err = run("authority", "init", *args)
    assert code == 2
    assert err.startswith("hcepay: error: ")
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("expires", "said"),
    [
        ("20400101", "must be a date YYYY-MM-DD, as 2031-12-31"),  # fromisoformat reads it
        ("2040-W01-1", "must be a date YYYY-MM-DD, as 2031-12-31"),
        ("2040-01-01T00:00", "must be a date YYYY-MM-DD, as 2031-12-31"),
        ("2040-\u0660\u0661-01", "must be a date YYYY-MM-DD, as 2031-12-31"),
        ("2040-02-30", "no such day (YYYY-MM-DD, as 2031-12-31)"),
    ],
)
def test_init_expires_is_only_yyyy_mm_dd(
    run: Invoke, tmp_path: Path, expires: str, said: str
) -> None:
    code, out, err = run("authority", "init", "--bits", "1024", "--expires", expires)
    assert (code, out) == (2, "")
    assert err == f"hcepay: error: --expires {expires!r}: {said}\n"
    assert not (tmp_path / "authority").exists()  # no key made


def test_revoke_and_show(run: Invoke, tmp_path: Path) -> None:
    assert run("authority", "init", "--bits", "1024")[0] == 0
    assert run("authority", "revoke", "7")[0] == 0
    assert run("authority", "revoke", "7")[0] == 0  # idempotent
    assert run("authority", "revoke", "16777216")[0] == 2
    assert load_keystore(tmp_path).revoked == frozenset({7})
    code, out, _ = run("authority", "show", "--json")
    assert code == 0
    assert len(out.splitlines()) == 1  # one line, as every other --json (it was indented)
    doc = json.loads(out)
    assert doc["revoked"] == [7]
    assert doc["next_serial"] == 1
    (row,) = doc["keys"]
    assert row["index"] == "01" and row["bits"] == 1024 and row["exponent"] == 3
    assert row["authority_private_key"] is True and row["terminal_status"] == "valid"
    assert row["same_key"] is True
    code, out, _ = run("authority", "show")
    assert code == 0 and "01" in out and "valid" in out and "revoked serials: 7" in out


def test_revoke_refuses_the_serial_past_what_the_key_store_reads_back(
    run: Invoke, tmp_path: Path
) -> None:
    """The 100001st revoked serial was written, and the key store was then refused by
    every command ('"revoked" must be a list of serials'): pay, log --verify and authority
    revoke itself, until it was edited by hand. Refused, nothing changed."""
    from authority.keystore import MAX_REVOKED

    assert run("authority", "init", "--bits", "1024")[0] == 0
    store = load_keystore(tmp_path)
    full = KeyStore(store.keys, frozenset(range(1, MAX_REVOKED + 1)))
    save_keystore(tmp_path, full)
    before = (tmp_path / "terminal" / "keystore.json").read_bytes()
    code, out, err = run("authority", "revoke", str(MAX_REVOKED + 1))
    assert (code, out) == (2, "")
    assert err == (
        f"hcepay: error: {tmp_path / 'terminal' / 'keystore.json'} holds {MAX_REVOKED} "
        f"revoked serials, as many as it can: serial {MAX_REVOKED + 1} not revoked\n"
    )
    assert (tmp_path / "terminal" / "keystore.json").read_bytes() == before
    assert load_keystore(tmp_path).revoked == full.revoked
    assert run("authority", "revoke", "5") == (0, "serial 5 was already revoked\n", "")


def test_revoke_in_no_home_is_refused(tmp_path: Path) -> None:
    """A mistyped --home made a new home and revoked there, leaving the terminal's own
    key store as it was."""
    from reader.cli import app

    missing = tmp_path / "no-such-home"
    result = CliRunner().invoke(app, ["authority", "revoke", "3", "--home", str(missing)])
    assert result.exit_code == 2, result.output
    assert (
        result.stderr
        == f"hcepay: error: {missing}: no such home (hcepay authority init makes one)\n"
    )
    assert not missing.exists()


def test_show_on_an_empty_home(run: Invoke) -> None:
    code, out, _ = run("authority", "show")
    assert code == 0 and "authority init" in out


def test_broken_keystore_is_one_line(run: Invoke, tmp_path: Path) -> None:
    (tmp_path / "terminal").mkdir()
    (tmp_path / "terminal" / "keystore.json").write_text("{")
    code, _, err = run("authority", "revoke", "3")
    assert code == 2 and "key store" in err and len(err.strip().splitlines()) == 1


def test_show_names_an_unreadable_authority_public_key(run: Invoke, tmp_path: Path) -> None:
    """The text says what --json's `problem` says: the table alone showed such a key as
    valid, with nothing amiss."""
    assert run("authority", "init", "--bits", "1024")[0] == 0
    (tmp_path / "authority" / "ca-01.pub.pem").write_text("not a key\n")
    code, out, _ = run("authority", "show", "--json")
    assert code == 0 and json.loads(out)["keys"][0]["problem"]
    code, out, _ = run("authority", "show")
    assert code == 0 and "ca-01.pub.pem: not a SubjectPublicKeyInfo PEM public key" in out, out


def test_a_home_that_is_a_file_or_a_lock_that_is_a_folder_is_named(tmp_path: Path) -> None:
    """Said as it is, not as the lock's 'File exists' about the home or 'Is a directory'
    about the home."""
    from reader.cli import app

    runner = CliRunner()
    home = tmp_path / "home"
    home.write_text("")
    result = runner.invoke(app, ["authority", "revoke", "3", "--home", str(home)])
    assert result.exit_code == 2 and f"{home} is a file, not a folder" in result.stderr
    home.unlink()
    (home / ".home.lock").mkdir(parents=True)
    result = runner.invoke(app, ["authority", "revoke", "3", "--home", str(home)])
    assert result.exit_code == 2, result.output
    assert f"cannot lock {home / '.home.lock'}: Is a directory" in result.stderr, result.stderr
