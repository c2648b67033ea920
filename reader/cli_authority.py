"""`hcepay authority init | revoke | show`: the credit authority's keys and the terminal's store.

Home folder layout: docs/architecture.md; keys and licenses: PROTOCOL.md §5, §7.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final

import typer

from authority.errors import InvalidKeyError, KeyFileError
from authority.home import (
    DAY_FORM,
    authority_dir,
    ca_private_path,
    ca_public_path,
    index_hex,
    parse_day,
    peek_serial,
    serials_path,
    write_atomic,
)
from reader.cli_common import (
    KEY_INDEX_HELP,
    HomeOption,
    JsonOption,
    examples,
    existing_home,
    fail,
    home_folder,
    home_lock,
    key_index,
    not_a_file,
    problem,
    refuse_past,
    stderr,
    stdout,
    whole_number,
)

if TYPE_CHECKING:
    from authority.keystore import KeyStore
    from authority.rsa import RsaPublicKey

DEFAULT_YEARS = 5
# authority/rsa.py's DEFAULT_BITS and DEFAULT_EXPONENT, written out: importing it (gmpy2,
# cryptography) to show `--help` would double the command line's start
DEFAULT_BITS: Final = 1984
DEFAULT_EXPONENT: Final = 3
MAX_SERIAL = 0xFFFFFF
_CA_FILE = re.compile(r"ca-([0-9A-F]{2})\.pub\.pem")

authority_app = typer.Typer(
    name="authority",
    help="The credit authority: its RSA keys, license serials and the terminal's key store.",
    epilog=examples(
        "hcepay authority init   # key 01, trusted by the terminal",
        "hcepay authority show",
        "hcepay authority revoke 5",
    ),
    no_args_is_help=True,
)


def _expiry(text: str | None, today: date) -> date:
    if text is None:
        try:
            return today.replace(year=today.year + DEFAULT_YEARS)
        except ValueError:  # 29 February
            return today.replace(year=today.year + DEFAULT_YEARS, day=28)
    if DAY_FORM.fullmatch(text) is None:
        fail(f"--expires {text!r}: must be a date YYYY-MM-DD, as 2031-12-31")
    try:
        expires = parse_day(text)
    except ValueError:
        fail(f"--expires {text!r}: no such day (YYYY-MM-DD, as 2031-12-31)")
    refuse_past("--expires", text, expires, today)
    return expires


def _keystore(home: Path) -> KeyStore:
    from authority.keystore import load_keystore

    try:
        return load_keystore(home)
    except KeyFileError as exc:
        fail(str(exc))


@authority_app.command(
    "init",
    epilog=examples(
        "hcepay authority init   # key index 01, 1984 bits, in ~/.hcepay",
        "hcepay authority init --index 02 --home /tmp/pos",
        "hcepay authority init --bits 1024 --expires 2099-12-31   # a small key, for tests",
    ),
)
def init(
    ctx: typer.Context,
    home: HomeOption = None,
    index: Annotated[str, typer.Option("--index", metavar="XX", help=KEY_INDEX_HELP)] = "01",
    bits: Annotated[
        int,
        typer.Option(
            "--bits",
            parser=whole_number,
            metavar="BITS",
            help="Modulus size: 1024 to 1984 in steps of 8.",
        ),
    ] = DEFAULT_BITS,
    exponent: Annotated[
        int,
        typer.Option(
            "--exponent", parser=whole_number, metavar="E", help="Public exponent: 3 or 65537."
        ),
    ] = DEFAULT_EXPONENT,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            metavar="YYYY-MM-DD",
            help="The last day the terminal accepts the key; not a past day. "
            "Default: 5 years on (an existing key: its expiry as it is).",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Make a new key in place of an existing one of that index: the terminal "
            "then refuses every card issued under the old key.",
        ),
    ] = False,
) -> None:
    """Make an authority key pair and give its public key to the terminal's store.

    When the authority already has a key of that index, it is kept and the terminal trusts
    it (again): a lost key store is mended, and --expires changes the terminal's expiry."""
    from authority.keyfiles import save_private, save_public
    from authority.keystore import AuthorityKey, save_keystore, terminal_key_path
    from authority.rsa import generate

    folder = home_folder(home)
    idx = key_index(index, "--index")
    until = _expiry(expires, date.today())
    private_path = ca_private_path(folder, idx)
    not_a_file(private_path.parent)  # else "ca-01.pem is missing: restore it from a backup"
    if private_path.exists() and not force:  # a new key would orphan every issued card
        given = [
            name
            for name in ("bits", "exponent")
            if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"
        ]
        _trust_again(folder, idx, until if expires is not None else None, given, bits, exponent)
        return
    try:
        key = generate(bits, exponent)
    except InvalidKeyError as exc:
        fail(exc.reason)
    with home_lock(folder):  # one writer of the key store and serials at a time
        replaced = private_path.exists()
        if replaced and not force:
            fail(f"{private_path} was made meanwhile by another hcepay: run the command again")
        store = _keystore(folder)
        held = store.lookup(idx)
        if held is not None and not force:  # the authority's key lost, the terminal's kept
            fail(
                f"{private_path} is missing, but the terminal trusts a key {index_hex(idx)} "
                f"({terminal_key_path(folder, idx)}): a new key would refuse every card issued "
                f"under that one; restore {private_path} from a backup (--force makes a new key)"
            )
        replaced = replaced or held is not None
        try:
            save_private(private_path, key)
            save_public(ca_public_path(folder, idx), key.public)
            if not serials_path(folder).exists():
                write_atomic(serials_path(folder), b'{"next_serial": 1}\n')
            save_keystore(folder, store.with_key(AuthorityKey(idx, key.public, until)))
        except (OSError, KeyFileError) as exc:
            fail(f"cannot write the authority key: {problem(exc)}")
    stdout.print(
        f"authority key {index_hex(idx)}: {key.public.bits} bits, e = {key.public.e}, "
        f"in {private_path} (0600); terminal accepts it until {until.isoformat()}"
    )
    if replaced:
        stderr.print(
            f"hcepay: warning: this is a NEW authority key {index_hex(idx)}; the old one is "
            "gone: the terminal refuses every card issued under it (issue them again) and "
            "`hcepay log --verify` fails the rows it signed"
        )


def _trust_again(
    folder: Path,
    idx: int,
    expires: date | None,
    given: list[str],
    bits: int,
    exponent: int,
) -> None:
    """Keep the authority's existing key and put it in the terminal's store: making a new
    one (what --force does) would leave every card issued under it refused."""
    from authority.keyfiles import load_private, save_public
    from authority.keystore import AuthorityKey, keystore_path, save_keystore, terminal_key_path

    private_path = ca_private_path(folder, idx)
    name = index_hex(idx)
    with home_lock(folder):  # one writer of the key store at a time
        try:
            public = load_private(private_path).public
        except KeyFileError as exc:  # there but unusable: its own fix, never a silent new key
            fail(str(exc))
        kept = {"bits": public.bits, "exponent": public.e}
        wanted = {"bits": bits, "exponent": exponent}
        if any(kept[name] != wanted[name] for name in given):
            fail(
                f"{private_path} is a {public.bits}-bit key with e = {public.e}: "
                f"--{' and --'.join(given)} {'applies' if len(given) == 1 else 'apply'} to a "
                "new key (--force makes one, and the "
                "terminal then refuses every card issued under the old key)"
            )
        restored: list[str] = []  # lost public key files written again from the private key
        copy = terminal_key_path(folder, idx)
        if not copy.exists():  # the key store names it: it cannot be read without it
            try:
                save_public(copy, public)
            except (OSError, KeyFileError) as exc:
                fail(f"cannot write the terminal's copy of the key: {problem(exc)}")
            restored.append(str(copy))
        store = _keystore(folder)
        held = store.lookup(idx)
        if held is not None and held.key != public:  # the cards it accepts would be refused
            fail(
                f"the terminal trusts another key {name} than the authority's ({private_path}): "
                f"trusting this one would refuse every card issued under that one; remove "
                f"key {name} from {keystore_path(folder)} first to trust the authority's"
            )
        own = ca_public_path(folder, idx)  # the authority's public key file (card issue)
        if not own.exists():
            try:
                save_public(own, public)
            except (OSError, KeyFileError) as exc:
                fail(f"cannot write the authority's public key: {problem(exc)}")
            restored.append(str(own))
        if expires is not None:
            until = expires
        elif held is not None and held.key == public:
            until = held.expires  # as it was: only --expires changes it
        else:
            until = _expiry(None, date.today())
        if held is not None and held.key == public and held.expires == until:
            what = f"the terminal accepts it until {until.isoformat()}" + (
                f"; {' and '.join(restored)} restored" if restored else "; nothing changed"
            )
        else:
            try:
                save_keystore(folder, store.with_key(AuthorityKey(idx, public, until)))
            except (OSError, KeyFileError) as exc:
                fail(f"cannot write the key store: {problem(exc)}")
            if held is None:
                what = f"the terminal trusts it again, until {until.isoformat()}"
            else:
                what = (
                    f"the terminal now accepts it until {until.isoformat()} "
                    f"(was {held.expires.isoformat()})"
                )
    stdout.print(
        f"authority key {name} exists ({public.bits} bits, e = {public.e}, in {private_path}): "
        f"kept, no new key; {what}"
    )


@authority_app.command(
    "revoke",
    epilog=examples(
        "hcepay authority revoke 5   # pay refuses license serial 5 from now on (exit 3)"
    ),
)
def revoke(
    serial: Annotated[
        int,
        typer.Argument(
            parser=whole_number,
            metavar="SERIAL",
            help="The license serial to refuse from now on: a whole number, 0 to 16777215.",
        ),
    ],
    home: HomeOption = None,
) -> None:
    """Add a license serial to the terminal's revocation list (PROTOCOL.md §7).

    The home and its terminal key store must exist (hcepay authority init makes them): a
    home or key store that does not is exit 2."""
    from authority.keystore import MAX_REVOKED, keystore_path, save_keystore

    if not 0 <= serial <= MAX_SERIAL:
        fail(f"serial {serial}: must be 0 to {MAX_SERIAL}")
    folder = existing_home(home)  # a mistyped --home would revoke in a new, unused home
    with home_lock(folder):  # one writer of the key store at a time
        if not keystore_path(folder).exists():  # a key store of no key trusts no card
            fail(
                f"{keystore_path(folder)}: no terminal key store, nothing revoked "
                "(`hcepay authority init` makes one, or trusts the authority's key again)"
            )
        store = _keystore(folder)
        if serial in store.revoked:
            stdout.print(f"serial {serial} was already revoked")
            return
        if len(store.revoked) >= MAX_REVOKED:  # one more: a store that no command reads back
            fail(
                f"{keystore_path(folder)} holds {MAX_REVOKED} revoked serials, as many as it "
                f"can: serial {serial} not revoked"
            )
        try:
            save_keystore(folder, store.with_revoked(serial))
        except (OSError, KeyFileError) as exc:
            fail(f"cannot write the key store: {problem(exc)}")
    stdout.print(f"serial {serial} revoked")


def _authority_keys(home: Path) -> dict[int, RsaPublicKey | str]:
    """The authority's public keys by index (or why one cannot be read), bounded."""
    from authority.keyfiles import load_public

    found: dict[int, RsaPublicKey | str] = {}
    folder = authority_dir(home)
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("ca-*.pub.pem"))[:256]:
        match = _CA_FILE.fullmatch(path.name)
        if match is None:
            continue
        try:
            found[int(match.group(1), 16)] = load_public(path)
        except KeyFileError as exc:
            found[int(match.group(1), 16)] = exc.reason
    return found


@authority_app.command(
    "show",
    epilog=examples("hcepay authority show", "hcepay authority show --json --home /tmp/pos"),
)
def show(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """List the authority keys, the terminal's accepted keys and the revoked serials.

    With --json, one object: `home`, `keys` (each `index`, `bits`, `exponent`,
    `authority_private_key`, `authority_public_key`, `problem`, `terminal_expires`,
    `terminal_status`: valid, expired or not held, `same_key`), `next_serial` and
    `revoked`."""
    from rich.table import Table

    from authority.rsa import RsaPublicKey

    folder = home_folder(home)
    store = _keystore(folder)
    ca_keys = _authority_keys(folder)
    try:
        next_serial: int | None = peek_serial(folder)
    except KeyFileError as exc:
        fail(str(exc))
    if not serials_path(folder).exists():
        next_serial = None
    today = date.today()
    rows: list[dict[str, Any]] = []
    for idx in sorted(set(ca_keys) | set(store.keys)):
        held = ca_keys.get(idx)
        accepted = store.lookup(idx)
        key = accepted.key if accepted else held if isinstance(held, RsaPublicKey) else None
        rows.append(
            {
                "index": index_hex(idx),
                "bits": key.bits if key else None,
                "exponent": key.e if key else None,
                "authority_private_key": ca_private_path(folder, idx).exists(),
                "authority_public_key": isinstance(held, RsaPublicKey),
                "problem": held if isinstance(held, str) else None,
                "terminal_expires": accepted.expires.isoformat() if accepted else None,
                "terminal_status": (
                    "not held"
                    if accepted is None
                    else "valid"
                    if accepted.usable(today)
                    else "expired"
                ),
                "same_key": (
                    None
                    if accepted is None or not isinstance(held, RsaPublicKey)
                    else held == accepted.key
                ),
            }
        )
    if as_json:
        doc = {
            "home": str(folder),
            "keys": rows,
            "next_serial": next_serial,
            "revoked": sorted(store.revoked),
        }
        stdout.print(json.dumps(doc))  # one line, as every --json
        return
    table = Table(title=f"credit authority keys in {folder}")
    for column in ("index", "bits", "e", "private key", "terminal", "expires"):
        table.add_column(column, overflow="fold")  # never cut a value short
    for row in rows:
        status = row["terminal_status"]
        if row["same_key"] is False:
            status = "differs from the authority's key"
        table.add_row(
            row["index"],
            str(row["bits"] or "?"),
            str(row["exponent"] or "?"),
            "yes" if row["authority_private_key"] else "no",
            status,
            row["terminal_expires"] or "-",
        )
    stdout.print(table)
    for row in rows:  # the table shows the key as the terminal holds it: say what is amiss
        if row["problem"]:
            path = ca_public_path(folder, int(row["index"], 16))
            stdout.print(f"authority key {row['index']}: {path}: {row['problem']}")
    stdout.print(f"next license serial: {next_serial if next_serial else '-'}")
    revoked = ", ".join(str(s) for s in sorted(store.revoked)[:50]) or "none"
    more = " ..." if len(store.revoked) > 50 else ""
    stdout.print(f"revoked serials: {revoked}{more}")
    if not rows:
        stdout.print("no authority key yet: run `hcepay authority init`")


def register(app: typer.Typer) -> None:
    """Add the `authority` sub-app to the root app."""
    app.add_typer(authority_app, name="authority")
