"""`hcepay card issue` and `hcepay card send`: make a card, poke a card by hand.

`card_app` is importable so that other modules can add commands to it (`card serve` lives
in reader/cli_pcsc.py).
"""

from __future__ import annotations

import calendar
import json
import re
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn, Protocol

import typer

from authority.errors import KeyFileError
from authority.home import allocate_serial, ca_private_path, cards_dir, index_hex, peek_serial
from reader.cli_common import (
    AMOUNT_HELP,
    KEY_INDEX_HELP,
    ONE_TRANSPORT,
    READER_HELP,
    WAIT_HELP,
    CurrencyOption,
    ExitCode,
    HomeOption,
    JsonOption,
    examples,
    fail,
    format_amount,
    hex_input,
    home_folder,
    home_lock,
    key_index,
    not_a_file,
    problem,
    reader_transport,
    refuse_past,
    seconds,
    stderr,
    stdout,
    wait_seconds,
    whole_number,
)
from reader.cli_pay import AmountError, parse_amount

card_app = typer.Typer(
    name="card",
    help="Issue a card into the home folder, send it APDUs by hand (and serve it).",
    epilog=examples(
        "hcepay card issue --account 6200123456789012 --limit 1000.00",
        "hcepay card send --in-process 00A404000E325041592E5359532E444446303100",
    ),
    no_args_is_help=True,
)

MAX_LINES = 10_000
MAX_HEX = 2 * (65536 + 9)
MAX_CARD_FOLDERS = 10_000
EXPIRY_RE = re.compile(r"(20[0-9]{2})-(0[1-9]|1[0-2])")  # ASCII digits: \d takes "٣"


def _minor_units(text: str) -> int:
    """`1000.00` -> 100000: the amount syntax and n12 bound of `pay --amount`."""
    try:
        return parse_amount(text)
    except AmountError as exc:
        fail(f"--limit: {exc}")


def _expiry(text: str | None) -> str:
    """`2030-12` -> `301231` (YYMMDD, the last day of the month); default: 5 years on."""
    if text is None:
        today = date.today()
        year, month = today.year + 5, today.month
    else:
        match = EXPIRY_RE.fullmatch(text)
        if match is None:
            fail(f"bad expiry {text!r}: expected YYYY-MM (2000-2099)")
        year, month = int(match[1]), int(match[2])
    last = calendar.monthrange(year, month)[1]
    if text is not None:  # valid through its month's last day (authority/license.py)
        refuse_past("--expiry", text, date(year, month, last), date.today())
    return f"{year % 100:02d}{month:02d}{last:02d}"


@card_app.command(
    "issue",
    epilog=examples(
        "hcepay card issue --account 6200123456789012 --limit 1000.00",
        "hcepay card issue --account 6200123456789013 --limit 500.00 --holder 'CARDHOLDER/B'",
    ),
)
def issue(
    account: Annotated[
        str,
        typer.Option(
            "--account",
            metavar="DIGITS",
            help="The credit account id (5A): 1 to 19 ASCII digits; the card's folder name.",
        ),
    ],
    limit: Annotated[
        str, typer.Option("--limit", metavar="AMOUNT", help=f"The credit limit: {AMOUNT_HELP}.")
    ],
    expiry: Annotated[
        str | None,
        typer.Option(
            "--expiry",
            metavar="YYYY-MM",
            help="Valid through that month's end; not a past month. Default: 5 years on.",
        ),
    ] = None,
    bits: Annotated[
        int,
        typer.Option(
            "--bits",
            parser=whole_number,
            metavar="BITS",
            help="APP key size: 1024..1984, a multiple of 8.",
        ),
    ] = 1984,
    holder: Annotated[
        str,
        typer.Option(
            "--holder",
            metavar="NAME",
            help="Cardholder name (5F20): 2 to 26 printable ASCII characters.",
        ),
    ] = "CARDHOLDER",
    currency: CurrencyOption = 156,
    ca_index_text: Annotated[
        str, typer.Option("--ca-index", metavar="XX", help=KEY_INDEX_HELP)
    ] = "01",
    home: HomeOption = None,
) -> None:
    """Issue a card: APP key pair, license signed by the home's authority, state at ATC 0.

    The card goes in `<home>/cards/ACCOUNT`, with the next license serial; the authority's
    key of --ca-index must exist (`hcepay authority init`). Pay with it in-process, or serve
    it to a virtual reader (`hcepay card serve`)."""
    from applet.profile import IssueRequest, issue_card
    from authority.keyfiles import load_private
    from authority.rsa import generate

    if not account.isascii() or not account.isdigit() or not 1 <= len(account) <= 19:
        fail(f"bad account {account!r}: expected 1 to 19 digits")
    if bits % 8 or not 1024 <= bits <= 1984:
        fail(f"bad --bits {bits}: 1024 to 1984, a multiple of 8 (PROTOCOL.md §5)")
    if not 0 <= currency <= 999:
        fail(f"--currency {currency}: an ISO 4217 numeric code is 0..999")
    ca_index = key_index(ca_index_text, "--ca-index")
    if not holder.isascii() or not holder.isprintable() or not 2 <= len(holder) <= 26:
        fail("--holder must be 2 to 26 printable ASCII characters (5F20, ans)")
    units, yymmdd = _minor_units(limit), _expiry(expiry)
    root = home_folder(home)
    folder = cards_dir(root) / account
    if (folder / "card.json").exists():
        fail(f"card {account} exists already in {folder}")
    ca_path = ca_private_path(root, ca_index)
    not_a_file(ca_path.parent)  # else "cannot read (Not a directory)": run authority init
    try:
        ca = load_private(ca_path)
        peek_serial(root)
    except KeyFileError as exc:
        if ca_path.exists():  # there but unusable: its own fix, never a new authority key
            fail(str(exc))
        index = "" if ca_index == 1 else f" --index {index_hex(ca_index)}"
        fail(f"{exc} (run `hcepay authority init{index}` first)")
    stderr.print(f"generating a {bits}-bit APP key...")
    app = generate(bits, 3)
    with home_lock(root):  # one serial each (§5.1), one issuer of a card folder
        try:
            serial = allocate_serial(root)
            request = IssueRequest(account, units, yymmdd, holder, ca_index, serial, currency)
            issue_card(folder, request, ca, app)
        except (KeyFileError, OSError, ValueError) as exc:
            fail(f"cannot issue card {account}: {problem(exc)}")
    stdout.print(
        f"issued card {account}: limit {format_amount(units)}, expiry "
        f"20{yymmdd[:2]}-{yymmdd[2:4]}, license serial {serial}, in {folder}"
    )


class _Link(Protocol):
    name: str

    def connect(self) -> bytes: ...
    def transmit(self, command: bytes) -> bytes: ...
    def disconnect(self) -> None: ...


class _InProcess:
    """The home's card, loaded and stored like a served card."""

    def __init__(self, folder: Path) -> None:
        from applet.profile import open_card

        self.card = open_card(folder)
        self.name = f"in-process card {folder.name}"

    def connect(self) -> bytes:
        return self.card.power_on()

    def transmit(self, command: bytes) -> bytes:
        return self.card.process(command)

    def disconnect(self) -> None:
        self.card.deactivate("card send done")


def _damaged_card(card_json: Path) -> NoReturn:
    """A card.json that is there but no regular file, said so (not "no card: issue one")."""
    what = "is a folder, not a file" if card_json.is_dir() else "not a regular file"
    fail(f"{card_json}: {what}")


def card_folder(home: Path, account: str | None) -> Path:
    """--card ACCOUNT, else the only card in the home folder (a one-line error otherwise).
    A `cards` that is a file, or a card.json that is a folder, is said so: "no card, issue
    one" sent the user to `card issue`, which then refused that file or card."""
    from authority.license import account_from_digits

    cards = cards_dir(home)
    not_a_file(cards)
    if account is not None:
        try:
            account_from_digits(account)
        except ValueError:
            fail(f"bad account {account!r}: expected 1 to 19 digits")
        folder = cards / account
        if (folder / "card.json").exists() and not (folder / "card.json").is_file():
            _damaged_card(folder / "card.json")
        if not (folder / "card.json").is_file():
            fail(f"no card {account} in {cards} (issue one with `hcepay card issue`)")
        return folder
    found: list[Path] = []
    damaged: list[Path] = []  # a card.json that is a folder or a FIFO
    if cards.is_dir():
        for i, child in enumerate(sorted(cards.iterdir())):
            if i >= MAX_CARD_FOLDERS:
                break
            if (child / "card.json").is_file():
                found.append(child)
            elif (child / "card.json").exists():
                damaged.append(child / "card.json")
    if not found and damaged:
        _damaged_card(damaged[0])
    if not found:
        fail(f"no card in {cards} (issue one with `hcepay card issue`)")
    if len(found) > 1:
        names = ", ".join(f.name for f in found[:5])
        fail(f"{len(found)} cards in {cards} ({names}): pick one with --card ACCOUNT")
    return found[0]


def _commands(apdus: list[str]) -> list[bytes]:
    """The command APDUs: the arguments, or one per line on stdin with `-`. An error names
    the line or argument it is in (blank and comment lines hold no APDU, so a count of
    APDUs would not find it)."""
    lines: Iterator[str]
    where = "line" if apdus == ["-"] else "argument"
    lines = iter(sys.stdin.readline, "") if apdus == ["-"] else iter(apdus)
    commands: list[bytes] = []
    for number, line in enumerate(lines, 1):
        if number > MAX_LINES:
            fail(f"more than {MAX_LINES} {where}s")
        text = "".join(line.split("#", 1)[0].split())
        if not text:
            continue
        if len(text) > MAX_HEX:
            fail(f"{where} {number} is longer than {MAX_HEX} hex digits")
        try:
            commands.append(hex_input(text))
        except ValueError as exc:
            fail(f"{where} {number} {exc}: {line.strip()[:40]!r}")
    if not commands:
        fail("no APDU to send (give HEX arguments, or - to read them from stdin)")
    return commands


def _transport_errors() -> tuple[type[Exception], ...]:
    """The terminal's TransportError, when reader/transport.py is there."""
    try:
        from reader.transport import TransportError
    except ImportError:
        return ()
    return (TransportError,)


def _link(
    in_process: bool, reader: str | None, home: Path | None, card: str | None, wait: float | None
) -> _Link:
    if in_process == (reader is not None):
        fail(ONE_TRANSPORT)
    if reader is not None and card is not None:  # as `pay` refuses it (reader/cli_pay.py)
        fail(
            "--card picks the home's card for --in-process; with --reader, the card is the "
            "one in the reader: give one of them"
        )
    seconds = wait_seconds(wait, reader, 0.0)
    if reader is not None:
        return reader_transport(reader, seconds)
    folder = card_folder(home_folder(home), card)
    try:
        return _InProcess(folder)
    except (OSError, ValueError) as exc:
        fail(f"cannot open card {folder.name}: {problem(exc)}")


@card_app.command(
    "send",
    epilog=examples(
        "hcepay card send --in-process 00A404000E325041592E5359532E444446303100",
        "hcepay card send --reader 0 - < apdus.txt   # one APDU a line, # comments",
    ),
)
def send(
    apdus: Annotated[
        list[str] | None,
        typer.Argument(metavar="[HEX ... | -]", help="Command APDUs in hex; - reads stdin."),
    ] = None,
    in_process: Annotated[
        bool, typer.Option("--in-process", help="Talk to the home's card in this process.")
    ] = False,
    reader: Annotated[
        str | None, typer.Option("--reader", metavar="NAME", help=READER_HELP)
    ] = None,
    card: Annotated[
        str | None,
        typer.Option(
            "--card",
            metavar="ACCOUNT",
            help="With --in-process: the account of the home's card. Default: the only card.",
        ),
    ] = None,
    wait: Annotated[
        float | None,
        typer.Option("--wait", parser=seconds, metavar="SECONDS", help=f"{WAIT_HELP} Default: 0."),
    ] = None,
    decode: Annotated[
        bool,
        typer.Option("--decode", help="Decode each response (with --json: each item's `decoded`)."),
    ] = False,
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """Send raw command APDUs in order, in one session; print each response in hex (with
    --json: a list of {"command", "response", "sw"}).

    With --decode, each response is decoded as `hcepay decode --response` shows it; with
    --json too, each item has `decoded`: the object `hcepay decode --response --json`
    prints (`data`, `sw`, `sw_meaning`, `tlv`, `tlv_error`).

    Exit 0 once every APDU is answered, whatever its status word; 2 usage (a bad APDU is
    named by its argument or line); 4 transport error (no card, the card lost)."""
    from reader.transport import LoggingTransport, ReaderChoiceError

    commands = _commands(apdus or [])
    link = LoggingTransport(_link(in_process, reader, home, card, wait))  # -v: one line a pair
    from reader.cli_decode import _print_text, decode_response

    exchanged: list[dict[str, Any]] = []
    try:
        link.connect()
        try:
            for command in commands:
                response = link.transmit(command)
                if as_json:
                    exchanged.append(
                        {
                            "command": command.hex().upper(),
                            "response": response.hex().upper(),
                            "sw": response[-2:].hex().upper(),
                        }
                    )
                    if decode:
                        exchanged[-1]["decoded"] = decode_response(response)
                    continue
                stdout.print(response.hex().upper())
                if decode:
                    _print_text(decode_response(response), response, True)
        finally:
            link.disconnect()
    except _transport_errors() as exc:
        usage = isinstance(exc, ReaderChoiceError)  # --reader matches several readers
        fail(str(getattr(exc, "reason", exc)), ExitCode.USAGE if usage else ExitCode.TRANSPORT)
    if as_json:
        stdout.print(json.dumps(exchanged))


def register(app: typer.Typer) -> None:
    """Add the `card` sub-app (issue, send) to the root app."""
    app.add_typer(card_app, name="card")
