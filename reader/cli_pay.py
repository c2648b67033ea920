"""`hcepay demo`, `hcepay pay` and `hcepay log`: the terminal's commands.

Exit codes (docs/architecture.md): 0 approved, 1 declined by the card, 2 usage error,
3 refused by a check (PROTOCOL.md §7), 4 transport error, 5 decided (approved or declined)
but not recorded (kept in the spool), 70 a bug.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, NoReturn, Protocol

import typer

from apdu.errors import DecodeError
from authority.errors import KeyFileError, LicenseReason
from authority.home import LOCK_FILE, authority_dir, cards_dir, read_regular, terminal_dir
from reader import spool
from reader.cli_common import (
    AMOUNT_HELP,
    MINOR_DIGITS,
    ONE_TRANSPORT,
    PAY_WAIT,
    READER_HELP,
    TRACE_HELP,
    WAIT_HELP,
    CurrencyOption,
    ExitCode,
    Failure,
    HomeOption,
    JsonOption,
    default_home,
    examples,
    existing_home,
    fail,
    format_amount,
    home_folder,
    interrupted,
    note_for_lost_output,
    plural,
    problem,
    reader_transport,
    seconds,
    sigterm_unwinds,
    stderr,
    stdout,
    wait_seconds,
    whole_number,
)
from reader.interrupt import PaymentGuard

if TYPE_CHECKING:
    from authority.keystore import KeyStore
    from reader import checks
    from reader.flow import Env, Outcome, Paid, PaymentRequest, TerminalConfig
    from reader.log import LogRow, PendingRow, TransactionLog
    from reader.recovery import PendingEntry
    from reader.trace import CardStart
    from reader.transport import TracingTransport, Transport

MAX_AMOUNT: Final = 999_999_999_999  # n12
AMOUNT_RE: Final = re.compile(r"^([0-9]+)(?:\.([0-9]+))?$")  # ASCII digits only
MAX_AMOUNT_TEXT: Final = 32
PROFILE: Final = Path(__file__).resolve().parent.parent / "vectors" / "profiles" / "test-card-1"
DEMO_KEY_YEARS: Final = 5
OTHER_KEY_HINT: Final = (
    "; the license is sized for another key: the card was most likely issued under another "
    "authority key of that index (8F) than the terminal holds (one made again with `hcepay "
    "authority init --force`, or another home's)"
)


class AmountError(ValueError):
    """An amount the terminal cannot ask for; the message says why."""


def parse_amount(text: str) -> int:
    """A decimal amount ("12.34") in minor units, without floats; AmountError otherwise."""
    text = text.strip()
    if len(text) > MAX_AMOUNT_TEXT:
        raise AmountError(f"amount {text[:MAX_AMOUNT_TEXT]}... is too long")
    if text.startswith("-"):
        raise AmountError(f"amount {text} is negative")
    match = AMOUNT_RE.match(text)
    if match is None:
        raise AmountError(f"amount {text!r} is not a decimal number like 12.34")
    whole, fraction = match[1], match[2] or ""
    if len(fraction) > MINOR_DIGITS:
        raise AmountError(f"amount {text} has more than {MINOR_DIGITS} decimals")
    units = int(whole) * 10**MINOR_DIGITS + int(fraction.ljust(MINOR_DIGITS, "0"))
    if units > MAX_AMOUNT:
        raise AmountError(f"amount {text} does not fit 12 digits of minor units (n12)")
    return units


def _amount(text: str) -> int:
    try:
        return parse_amount(text)
    except AmountError as exc:
        fail(str(exc), ExitCode.USAGE)


def default_terminal() -> TerminalConfig:
    """The terminal of a home without terminal.json, and the demo's (made when asked: only
    the commands that pay load reader.flow)."""
    from reader.flow import TerminalConfig

    return TerminalConfig("TERM0001", "MERCHANT0000001", 156)


def terminal_config(home: Path) -> TerminalConfig:
    """<home>/terminal/terminal.json (terminal id, merchant id, country); a key it leaves out,
    or no file at all, is the default (docs/architecture.md calls the file optional)."""
    from reader.flow import TerminalConfig

    path = terminal_dir(home) / "terminal.json"
    default = default_terminal()
    if not path.exists():
        return default
    try:
        obj = json.loads(read_regular(path).decode("utf-8"))
    except OSError as exc:
        fail(problem(exc))
    except UnicodeDecodeError:
        fail(f"{path}: bad terminal description: not UTF-8 text")
    except RecursionError:  # json's decoder recurses once per level
        fail(f"{path}: bad terminal description: nested too deeply")
    except ValueError:
        fail(f"{path}: bad terminal description: not valid JSON")
    if not isinstance(obj, dict):
        fail(f"{path}: bad terminal description: must be a JSON object")
    terminal_id = obj.get("terminal_id", default.terminal_id)
    merchant_id = obj.get("merchant_id", default.merchant_id)
    for key, value in (("terminal_id", terminal_id), ("merchant_id", merchant_id)):
        if not isinstance(value, str):
            fail(f'{path}: bad terminal description: "{key}" must be a string')
    country = obj.get("country", default.country)
    if isinstance(country, str) and country.isascii() and country.isdigit():
        country = int(country)  # "156" was read as 156 before; kept
    if not isinstance(country, int) or isinstance(country, bool) or not 0 <= country <= 999:
        fail(
            f'{path}: bad terminal description: "country" must be an ISO 3166 numeric code, '
            "a whole number 0 to 999"
        )
    try:
        return TerminalConfig(terminal_id, merchant_id, country)
    except ValueError as exc:
        fail(f"{path}: bad terminal description: {exc}")


# ------------------------------------------------------------------------- one payment


@dataclass(frozen=True)
class Run:
    """A payment's result as the CLI reports it."""

    code: ExitCode
    verdict: str
    reason: str
    paid: Paid | None = None
    outcome: Outcome | None = None
    recovered: tuple[Outcome, ...] = ()  # torn payments recorded at this contact (P§9)


class GuardedJournal:
    """The transaction log as a payment writes it under a PaymentGuard: the guard holds
    Ctrl-C from the pending entry on (GENERATE AC follows it), and no write is cut in two."""

    def __init__(self, log: TransactionLog, guard: PaymentGuard) -> None:
        self.log = log
        self.guard = guard
        self.written: PendingEntry | None = None  # this payment's entry, once it is stored
        self.recorded: list[Outcome] = []  # every row stored, in order

    def write_pending(self, pending: PendingEntry, now: datetime) -> None:
        self.guard.hold()
        self.log.write_pending(pending, now)
        self.written = pending

    def left_open(self) -> bool:
        """Whether this payment's pending entry is stored and still open: GENERATE AC went
        out and no verified answer closed it (PROTOCOL.md §9)."""
        from reader.log import LogError

        if self.written is None:
            return False
        try:
            return self.written in self.log.pending()
        except LogError:
            return True  # as far as this run knows, it was written and not closed

    def close_pending(self, pending: PendingEntry, outcome: str = "refused") -> None:
        with self.guard.shield():
            self.log.close_pending(pending, outcome)

    def pending(self) -> list[PendingEntry]:
        return self.log.pending()

    def record(self, outcome: Outcome, *, later: bool = False) -> int:
        with self.guard.shield():
            row_id = self.log.record(outcome, later=later)
        self.recorded.append(outcome)
        return row_id


def run_payment(
    transport: Transport,
    cfg: TerminalConfig,
    request: PaymentRequest,
    env: Env,
    keys: KeyStore,
    log: TransactionLog,
    guard: PaymentGuard | None = None,
) -> Run:
    """One payment, every failure mapped to its exit code (no exception escapes but bugs).

    With a guard, Ctrl-C raises KeyboardInterrupt only before the pending entry is written
    (no payment was made); from then on the payment runs to its verdict."""
    from reader.checks import CheckError
    from reader.flow import NotRecordedError, pay
    from reader.log import LogError, outcome_to_json
    from reader.transport import ReaderChoiceError, TransportError

    guard = guard or PaymentGuard()  # not entered: only holds and shields, no handler
    journal = GuardedJournal(log, guard)
    try:
        paid = pay(transport, cfg, request, env, keys, journal)
    except CheckError as exc:  # what was recorded before it: torn payments proven now (P§9)
        note = _torn_note(journal)
        recovered = tuple(journal.recorded)
        reason = refusal(exc, "; issue the card again under the terminal's key")
        return Run(ExitCode.REFUSED, "refused", reason + note, recovered=recovered)
    except ReaderChoiceError as exc:  # --reader matches several readers: nothing was sent
        return Run(ExitCode.USAGE, "not attempted", exc.reason)
    except TransportError as exc:
        note = _torn_note(journal)
        recovered = tuple(journal.recorded)
        return Run(ExitCode.TRANSPORT, "transport error", exc.reason + note, recovered=recovered)
    except NotRecordedError as exc:
        o = exc.outcome
        if exc.recovered:  # PROTOCOL.md §9: an earlier payment, proven now; this one not made
            what = (
                f"this payment was not made: the torn payment of ATC {o.atc:04X} "
                f"({format_amount(o.amount)}, {o.verdict.value}) is proven but not recorded"
            )
        else:
            what = f"{'approved' if o.approved else 'declined'} but not recorded"
        mine = None if exc.recovered else o
        done = tuple(journal.recorded)  # torn payments recorded before it (P§9)
        try:
            with guard.shield():
                where = spool.append(log.path, outcome_to_json(o))
        except spool.SpoolError as spool_exc:
            reason = f"{what}: {exc.reason}; spool failed too: {spool_exc.reason}"
            return Run(ExitCode.NOT_RECORDED, "not recorded", reason, outcome=mine, recovered=done)
        reason = f"{what}: {exc.reason}; kept in {where} (hcepay log recover)"
        return Run(ExitCode.NOT_RECORDED, "not recorded", reason, outcome=mine, recovered=done)
    except LogError as exc:  # torn payments recorded before it are reported still (P§9)
        reason = f"transaction log: {exc.reason}"
        return Run(ExitCode.USAGE, "not attempted", reason, recovered=tuple(journal.recorded))
    if paid.outcome.approved:
        return Run(ExitCode.OK, "approved", "", paid, paid.outcome, paid.recovered)
    reason = "declined by the card"
    return Run(ExitCode.DECLINED, "declined", reason, paid, paid.outcome, paid.recovered)


def refusal(exc: checks.CheckError, fix: str = "") -> str:
    """A check's refusal as `pay` and `log --verify` say it: a license whose length is not
    the authority key's (PROTOCOL.md §5.1, §7 check 3) but is another key size's adds its
    usual cause, a card signed by another key of that index, which the bare "license bad
    length" never hinted at (and `fix`, what to do about it). A length no key has (a
    truncated record, a row edited by hand) is damage, not another key: said as it is. The
    refusal, its check and its exit code stay as they are."""
    from authority.rsa import MAX_BITS, MIN_BITS
    from reader.checks import LicenseCheckError

    if (
        isinstance(exc, LicenseCheckError)
        and exc.license_reason is LicenseReason.BAD_LENGTH
        and exc.license_length is not None
        and MIN_BITS // 8 <= exc.license_length <= MAX_BITS // 8
    ):
        return exc.reason + OTHER_KEY_HINT + fix
    return exc.reason


def _torn_note(journal: GuardedJournal) -> str:
    """What a failure after GENERATE AC leaves: the card may have deducted, so the pending
    entry stays open until the card's last answer settles it (PROTOCOL.md §9)."""
    if not journal.left_open():
        return ""
    return (
        "; GENERATE AC was sent, so the card may have deducted: the pending entry stays open "
        "and is settled at the card's next contact (recorded once, or closed as not paid)"
    )


def fresh_env(now: datetime | None = None) -> Env:
    """The clock and a fresh unpredictable number from the CSPRNG (PROTOCOL.md §7)."""
    from reader.flow import Env

    return Env(now or datetime.now().replace(microsecond=0), secrets.token_bytes(4))


def _run_json(run: Run, request: PaymentRequest) -> dict[str, Any]:
    outcome = run.outcome
    return {
        "verdict": run.verdict,
        "reason": run.reason,
        "atc": outcome.atc if outcome is not None else None,
        "amount": format_amount(request.amount),
        "currency": request.currency,
        "row_id": run.paid.row_id if run.paid is not None else None,
        "recovered_atcs": [o.atc for o in run.recovered],
        # each torn transaction recorded at this contact (P§9): a decline is no payment
        "recovered": [
            {"atc": o.atc, "amount": format_amount(o.amount), "verdict": o.verdict.value}
            for o in run.recovered
        ],
        "exit_code": int(run.code),
    }


def _not_attempted_json(failure: Failure) -> dict[str, Any]:
    """`--json` for an error found before the payment (exit 2: a bad amount, no authority
    key...): the same keys as a payment's, with the line said on stderr as the reason."""
    return {
        "verdict": "not attempted",
        "reason": failure.message,
        "atc": None,
        "amount": None,
        "currency": None,
        "row_id": None,
        "recovered_atcs": [],
        "recovered": [],
        "exit_code": failure.exit_code,
    }


# ------------------------------------------------------------------------- demo


def _payment_steps(
    steps: list[tuple[bytes, bytes]], run: Run, request: PaymentRequest, env: Env
) -> list[tuple[int, str, str]]:
    """The six steps of a credit payment (README "The flow"), as far as this one went."""
    out: list[tuple[int, str, str]] = []
    sent = {c[1] for c, _ in steps if len(c) > 1}
    o = run.outcome
    if 0xA8 in sent:
        out.append(
            (
                1,
                "credit payment request",
                f"GET PROCESSING OPTIONS: {format_amount(request.amount)} "
                f"(currency {request.currency}), unpredictable number "
                f"{env.unpredictable_number.hex().upper()}",
            )
        )
    if 0xB2 in sent:
        detail = "READ RECORD 1-3: account, CDOL1, authority index, license 9F46"
        if o is not None:
            detail += f" ({plural(len(o.license), 'byte')}), APP key exponent and remainder"
        out.append((2, "payment response with APP public key license", detail))
    if o is not None or 0xAE in sent:
        serial = f"serial {o.serial}, authority key {o.ca_index:02X}" if o else "license accepted"
        out.append(
            (
                3,
                "license verified with the credit authority public key",
                f"{serial}; APP key recovered",
            )
        )
    if 0xAE in sent:
        out.append(
            (
                4,
                "payment deduction request",
                "pending entry written, then GENERATE AC with the CDOL1 data",
            )
        )
    if o is not None:
        out.append(
            (
                5,
                "payment authorization",
                f"CID {o.cid:02X}, ATC {o.atc:04X}, 9F4B of {plural(len(o.authorization), 'byte')}",
            )
        )
    if run.paid is not None:
        out.append(
            (
                6,
                "authorization recovered and checked, transaction recorded",
                f"row {run.paid.row_id} in terminal.db",
            )
        )
    return out


def make_demo_home(home: Path) -> Path:
    """An authority and one card in `home`; the card folder.

    Uses the published test profile (test-card-1) when present; otherwise makes new keys.
    """
    from authority.keyfiles import load_public
    from authority.keystore import AuthorityKey, KeyStore, save_keystore

    expires = date.today() + timedelta(days=365 * DEMO_KEY_YEARS)
    if (PROFILE / "card.json").is_file():
        (home / "authority").mkdir(parents=True)
        for name in ("ca-01.pem", "ca-01.pub.pem"):
            shutil.copy(PROFILE / name, home / "authority" / name)
        (home / "authority" / "ca-01.pem").chmod(0o600)  # as authority init writes it
        ca_public = load_public(PROFILE / "ca-01.pub.pem")
        save_keystore(home, KeyStore({1: AuthorityKey(1, ca_public, expires)}))
        account = str(json.loads((PROFILE / "card.json").read_text())["account"])
        folder = cards_dir(home) / account
        folder.mkdir(parents=True)
        for name in ("card.json", "app.pem", "app.pub.pem"):
            shutil.copy(PROFILE / name, folder / name)
        return folder
    from applet.profile import IssueRequest, issue_card
    from authority.rsa import generate

    ca = generate()
    save_keystore(home, KeyStore({1: AuthorityKey(1, ca.public, expires)}))
    folder = cards_dir(home) / "6200123456789012"
    last = date(expires.year, 12, 31)
    request = IssueRequest("6200123456789012", 100000, last.strftime("%y%m%d"), "DEMO", 1, 1)
    issue_card(folder, request, ca, generate())
    return folder


def demo(
    amount: Annotated[
        str, typer.Option("--amount", metavar="AMOUNT", help=f"The amount: {AMOUNT_HELP}.")
    ] = "12.34",
    trace: Annotated[Path | None, typer.Option("--trace", metavar="FILE", help=TRACE_HELP)] = None,
    as_json: JsonOption = False,
) -> None:
    """One complete payment, in-process, in a temporary home, shown as the six steps of a
    credit payment (request, license, verification, deduction, authorization, record).

    The card is the published test card (limit 1000.00, currency 156); the home and its
    log are removed when the demo ends. Exit 0 approved, 1 declined (an amount over the
    limit), 2 usage, 3 refused by a check; `--json` prints `hcepay pay --json`'s object
    with `steps` added."""
    from applet.profile import open_card
    from authority.keystore import load_keystore
    from reader.flow import PaymentRequest
    from reader.log import TransactionLog, log_path
    from reader.trace import CardStart
    from reader.transport import (
        ChainingTransport,
        InProcessTransport,
        LoggingTransport,
        TracingTransport,
    )

    try:
        request = PaymentRequest(_amount(amount))
        _check_trace(trace)
    except Failure as failure:
        if as_json:
            stdout.print(json.dumps({**_not_attempted_json(failure), "steps": []}))
        raise
    note_for_lost_output("the demo's home was temporary: its payment is gone with it")
    with sigterm_unwinds(), PaymentGuard() as guard:
        try:
            with tempfile.TemporaryDirectory(prefix="hcepay-demo-") as tmp:
                home = Path(tmp)
                folder = make_demo_home(home)
                keys = load_keystore(home)
                card = InProcessTransport(open_card(folder), "in-process demo card")
                tracer = TracingTransport(LoggingTransport(card))
                env = fresh_env()
                with TransactionLog(log_path(home)) as log:
                    run = run_payment(
                        ChainingTransport(tracer),
                        default_terminal(),
                        request,
                        env,
                        keys,
                        log,
                        guard,
                    )
        except KeyboardInterrupt:
            interrupted("no payment was made")
        steps = _payment_steps(tracer.steps, run, request, env)
        if trace is not None:
            _write_trace(trace, tracer, env, request, "demo", CardStart("test-card-1"))
        if as_json:
            out = _run_json(run, request)
            out["steps"] = [{"step": n, "name": name, "detail": d} for n, name, d in steps]
            stdout.print(json.dumps(out))
        else:
            for number, name, detail in steps:
                stdout.print(f"{number} {name}: {detail}")
            _print_verdict(run, request)
        _held_interrupt(guard, run)
    raise typer.Exit(int(run.code))


def _held_interrupt(guard: PaymentGuard, run: Run) -> None:
    """After the verdict: say that a Ctrl-C came too late to stop the payment."""
    if guard.interrupted:
        stderr.print(
            f"hcepay: interrupted after GENERATE AC: the payment went on to its verdict "
            f"({run.verdict}, exit {int(run.code)})"
        )


def _print_recovered(run: Run) -> None:
    """The torn payments recorded at this contact (PROTOCOL.md §9), whatever became of the
    payment itself: they are in the log even when it was refused."""
    for o in run.recovered:
        done = f"recovered torn payment: ATC {o.atc:04X}, {format_amount(o.amount)}"
        stdout.print(done if o.approved else f"{done}, declined by the card (nothing paid)")


def _print_verdict(run: Run, request: PaymentRequest) -> None:
    _print_recovered(run)
    line = f"verdict: {run.verdict.upper()} {format_amount(request.amount)} ({request.currency})"
    if run.reason:
        line += f": {run.reason}"
    stdout.print(line)


def _write_trace(
    path: Path,
    tracer: TracingTransport,
    env: Env,
    request: PaymentRequest,
    name: str,
    card: CardStart | None,
) -> None:
    from reader.trace import trace_json, write_trace

    description = f"one payment of {format_amount(request.amount)} ({request.currency})"
    doc = trace_json(
        tracer.steps, name=name, description=description, env=env, request=request, card=card
    )
    try:
        write_trace(path, doc)
    except OSError as exc:  # the payment is done: its verdict and exit code stand
        stderr.print(f"hcepay: warning: cannot write the trace {path}: {exc.strerror or exc}")
        return
    stderr.print(f"trace written to {path}")  # stderr: --json's stdout stays one object


def _check_trace(path: Path | None) -> None:
    """A trace file that could not be written is a usage error before any payment."""
    if path is None:
        return
    from reader.trace import check_output_path

    try:
        check_output_path(path)
    except OSError as exc:
        fail(f"--trace {path}: {exc.strerror or exc} ({exc.filename or path})")


# ------------------------------------------------------------------------- pay


def _check_trace_in_home(path: Path | None, home: Path) -> None:
    """A trace never replaces a file of the home (docs/architecture.md layout): the log
    with its journal and spool, the lock, the authority's keys, the terminal's key store and
    the cards; written over the log, it lost every recorded payment."""
    from reader.log import log_path

    if path is None:
        return
    target, root = path.resolve(), home.resolve()
    kept = (authority_dir(root), terminal_dir(root), cards_dir(root))
    if (
        target.parent == root
        and (target.name.startswith(log_path(root).name) or target.name == LOCK_FILE)
    ) or any(target.is_relative_to(folder) for folder in kept):
        fail(f"--trace {path}: a file of the home {home} (its log, keys or cards)")


def _keys(home: Path) -> KeyStore:
    from authority.keystore import load_keystore

    try:
        keys = load_keystore(home)
    except KeyFileError as exc:
        lost_copy = exc.reason == "no such file" and Path(exc.path).parent == terminal_dir(home)
        fail(f"{exc} ({_init_advice(home)})" if lost_copy else str(exc))
    if not keys.keys:
        fail(f"the terminal in {home} holds no authority key ({_init_advice(home)})")
    return keys


def _init_advice(home: Path) -> str:
    """The command that gives the terminal a key: the authority's own, when it has one
    (`authority init` trusts it again; a new key would orphan every issued card)."""
    where = "" if home == default_home() else f" --home {shlex.quote(str(home))}"
    held = sorted(authority_dir(home).glob("ca-[0-9A-F][0-9A-F].pem"))[:8]
    if not held:
        return f"run `hcepay authority init{where}`"
    commands = []
    for path in held:
        index = path.name[3:5]
        option = "" if index == "01" else f" --index {index}"
        commands.append(f"`hcepay authority init{option}{where}`")
    if len(commands) == 1:
        return f"the authority's key is in {held[0]}: {commands[0]} trusts it again"
    where_held = f"the authority's keys are in {authority_dir(home)}"
    return f"{where_held}: {' and '.join(commands)} trust them again"


def _transport(home: Path, reader: str | None, card: str | None, wait: float = 0.0) -> Transport:
    """The card in the reader named (PC/SC), waiting up to `wait` seconds for it to be
    presented, else the home's card in this process."""
    if reader is not None:
        return reader_transport(reader, wait)  # pyscard only when a reader is asked for
    from applet.profile import open_card
    from reader.cli_card import card_folder
    from reader.transport import InProcessTransport

    folder = card_folder(home, card)
    try:
        return InProcessTransport(open_card(folder), f"in-process card {folder.name}")
    except (OSError, ValueError) as exc:
        fail(f"cannot open card {folder.name}: {problem(exc)}")


def pay_command(
    amount: Annotated[
        str, typer.Option("--amount", metavar="AMOUNT", help=f"The amount: {AMOUNT_HELP}.")
    ],
    currency: CurrencyOption = 156,
    reader: Annotated[
        str | None, typer.Option("--reader", metavar="NAME", help=READER_HELP)
    ] = None,
    in_process: Annotated[
        bool, typer.Option("--in-process", help="Pay with the home's card in this process.")
    ] = False,
    card: Annotated[
        str | None,
        typer.Option(
            "--card",
            metavar="ACCOUNT",
            help="The account of the home's card to pay with (in-process). Default: the only card.",
        ),
    ] = None,
    trace: Annotated[Path | None, typer.Option("--trace", metavar="FILE", help=TRACE_HELP)] = None,
    wait: Annotated[
        float | None,
        typer.Option(
            "--wait",
            parser=seconds,
            metavar="SECONDS",
            help=f"{WAIT_HELP} Default with --reader: {PAY_WAIT:g}.",
        ),
    ] = None,
    as_json: JsonOption = False,
    home: HomeOption = None,
) -> None:
    """One payment with the home folder's keys, with the card in a PC/SC reader (--reader)
    or, by default, the home's card in this process (--in-process says so explicitly).

    Exit 0 approved, 1 declined, 2 usage, 3 refused by a check, 4 transport error,
    5 decided (approved or declined) but not recorded (kept in the spool: `hcepay log
    recover`), 74 the result could not be printed (the payment stands: `hcepay log`).

    `--json` prints one object: `verdict`, `reason`, `atc`, `amount`, `currency`, `row_id`,
    `recovered_atcs`, `recovered`, `exit_code`; for an error found before paying (exit 2),
    `verdict` "not attempted" and the error line as `reason`. None for 74, 130, or a command
    line click refuses (an unknown option, no --amount, --currency abc)."""
    note_for_lost_output("what the command did stands (a payment made is recorded: hcepay log)")
    with PaymentGuard() as guard:
        try:
            tracer, env, request, run = _pay_once(
                amount, currency, reader, in_process, card, trace, home, guard, wait
            )
        except KeyboardInterrupt:
            interrupted("no payment was made")
        except Failure as failure:
            if as_json:
                stdout.print(json.dumps(_not_attempted_json(failure)))
            raise
        _report_payment(run, request, tracer, env, trace, as_json)
        _held_interrupt(guard, run)
    raise typer.Exit(int(run.code))


def _pay_once(
    amount: str,
    currency: int,
    reader: str | None,
    in_process: bool,
    card: str | None,
    trace: Path | None,
    home: Path | None,
    guard: PaymentGuard,
    wait: float | None = None,
) -> tuple[TracingTransport, Env, PaymentRequest, Run]:
    from reader.flow import PaymentRequest
    from reader.log import LogError, TransactionLog
    from reader.transport import ChainingTransport, LoggingTransport, TracingTransport

    if reader is not None and in_process:  # the options first, as every command: then files
        fail(ONE_TRANSPORT)
    if reader is not None and card is not None:
        fail(
            "--card picks the home's card for an in-process payment; with --reader, the "
            "card is the one in the reader: give one of them"
        )
    seconds = wait_seconds(wait, reader, PAY_WAIT)
    units = _amount(amount)
    if not 0 <= currency <= 999:
        fail(f"--currency {currency}: an ISO 4217 numeric code is 0..999")
    request = PaymentRequest(units, currency)
    _check_trace(trace)
    root = home_folder(home)
    _check_trace_in_home(trace, root)
    keys = _keys(root)
    cfg = terminal_config(root)
    tracer = TracingTransport(LoggingTransport(_transport(root, reader, card, seconds)))
    env = fresh_env()
    try:  # a link to a log not there (a volume not mounted): no new log made where it points
        log = TransactionLog(_existing_log_path(root))
    except LogError as exc:
        fail(f"transaction log: {exc.reason}")
    with log:
        run = run_payment(ChainingTransport(tracer), cfg, request, env, keys, log, guard)
    return tracer, env, request, run


def _report_payment(
    run: Run,
    request: PaymentRequest,
    tracer: TracingTransport,
    env: Env,
    trace: Path | None,
    as_json: bool,
) -> None:
    """The trace file, then the verdict on stdout (or, for a failure, one line on stderr)."""
    if trace is not None:
        _write_trace(trace, tracer, env, request, "pay", None)
    if as_json:
        stdout.print(json.dumps(_run_json(run, request)))
    elif run.code in (ExitCode.OK, ExitCode.DECLINED):
        o = run.outcome
        atc = f", ATC {o.atc:04X}" if o is not None else ""
        row = f", row {run.paid.row_id}" if run.paid is not None else ""
        _print_verdict(run, request)
        stdout.print(f"account {o.account if o else '?'}{atc}{row}")
    else:
        _print_recovered(run)  # recorded before this payment failed
        stderr.print(f"hcepay: error: {run.verdict}: {run.reason}")


# ------------------------------------------------------------------------- log


def _recorded(o: Outcome) -> checks.Recorded:
    from authority.license import pad_account
    from reader import checks

    return checks.Recorded(
        account=pad_account(bytes.fromhex(o.account + "F" * (len(o.account) % 2))),
        amount=o.amount,
        currency=o.currency,
        atc=o.atc,
        unpredictable_number=o.unpredictable_number,
        cid=o.cid,
        ca_index=o.ca_index,
        serial=o.serial,
        authorization=o.authorization,
        license=o.license,
        remainder=o.remainder,
        exponent=o.exponent,
        record1_value=o.record1_value,
        cdol1_data=o.cdol1_data,
        day=o.time.date(),
    )


def verify_row(outcome: Outcome, keys: KeyStore) -> str:
    """ "" when a row re-checks with the authority's public key, else why it fails. The
    time, terminal id and merchant id must be those of the signed CDOL1 data too."""
    from reader import checks
    from reader.checks import CheckError
    from reader.recovery import sent_with

    try:
        checks.verify_recorded(_recorded(outcome), keys)
        sent = sent_with(outcome.cdol1_data, outcome.time.date())
    except CheckError as exc:
        return refusal(exc)
    except (ValueError, KeyError, TypeError, DecodeError) as exc:
        # TypeError: a column of another type (text where bytes are kept), edited by hand
        return f"malformed row: {exc}"
    kept = (outcome.time.replace(microsecond=0), outcome.terminal_id, outcome.merchant_id)
    if kept != (sent.time, sent.terminal_id, sent.merchant_id):
        return (
            "time, terminal id or merchant id differ from the signed CDOL1 data (9A 9F21 9F1C 9F16)"
        )
    return ""


def _pending_json(p: PendingRow) -> dict[str, Any]:
    return {
        "created": p.created,
        "account": p.entry.account.hex().upper().rstrip("F"),
        "atc": p.entry.atc,
        "serial": p.entry.serial,  # the license serial checked before GENERATE AC (or None)
        "outcome": p.outcome,  # None while open
    }


def _spooled(path: Path) -> int:
    """How many payments wait in the spool for `hcepay log recover`."""
    try:
        return spool.pending_count(path)
    except spool.SpoolError as exc:
        fail(f"spool: {exc.reason}")


def _print_pending(entries: list[PendingRow], spooled: int) -> None:
    """The pending entries (PROTOCOL.md §9) and the spool, under the transactions."""
    from rich.table import Table

    if entries:
        table = Table(title="pending entries of torn or refused payments (PROTOCOL.md §9)")
        for column in ("created", "account", "ATC", "outcome"):
            table.add_column(column, overflow="fold")  # never cut a value short
        for p in entries:
            account = p.entry.account.hex().upper().rstrip("F")
            table.add_row(p.created, account, f"{p.entry.atc:04X}", p.outcome or "open")
        stdout.print(table)
    if spooled:
        stdout.print(f"{plural(spooled, 'payment')} in the spool: run `hcepay log recover`")


log_app = typer.Typer(
    name="log",  # its help is log_command's docstring
    invoke_without_command=True,
    epilog=examples(
        "hcepay log   # the rows, the pending entries, the spool",
        "hcepay log --verify   # re-check every row; exit 3 when one fails",
        "hcepay log --last 20 --verify   # the 20 newest transactions, re-checked",
        "hcepay log --json",
        "hcepay log recover   # import what the log could not take",
        "hcepay log --home /tmp/pos --json recover   # the group's --home and --json apply",
    ),
)


def _existing_log_path(root: Path) -> Path:
    """The home's terminal.db for `log` and `log recover`, which show no log as an empty
    one, and `pay`, which makes one: a symbolic link whose target is missing (a log moved, a
    volume not mounted) or a loop is refused, not shown as an empty log or "0 imported", nor
    made a new log where the link points (payments out of the log, no replay refused)."""
    from reader.log import log_path

    path = log_path(root)
    try:
        path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            target = os.readlink(path)
            fail(f"transaction log: {path} is a symbolic link to {target}, which is missing")
    except OSError as exc:
        fail(f"transaction log: {path}: {exc.strerror}")
    return path


@log_app.callback()
def log_command(
    ctx: typer.Context,
    as_json: JsonOption = False,
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Re-check every row shown with the authority's key."),
    ] = False,
    last: Annotated[
        int | None,
        typer.Option(
            "--last",
            parser=whole_number,
            metavar="N",
            help="Only the last N transactions, the newest (oldest first, as always).",
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """The transaction log (--json, --verify, --last N): its rows, the pending entries that
    no row of their own contact closed (torn payments, open or settled later: PROTOCOL.md
    §9) and how many payments wait in the spool; subcommands below.

    With --verify, exit 3 when a row fails its re-check. A row or pending entry the log
    cannot read back (a column not of the type the log writes) is one line naming it, exit 2.
    A home that does not exist is exit 2 (a mistyped --home); one with no log yet shows an
    empty log.

    With --json, one object: `log` (the file), `transactions` (the rows shown; with --verify
    each has `verified` and `verify_reason`), `total` (the rows in the log, shown or not:
    --last), `pending_entries` (each `created`, `account`,
    `atc`, `serial`, `outcome`: null while open, else what closed it) and `spooled`
    (payments kept for `hcepay log recover`)."""
    if ctx.invoked_subcommand is not None:
        return

    if last is not None and last < 1:
        fail(f"--last {last}: give 1 or more (the number of newest transactions to show)")
    root = existing_home(home)  # a mistyped --home is not an empty log
    path = _existing_log_path(root)
    if as_json:
        if _print_log_json(root, path, last, verify):
            raise typer.Exit(int(ExitCode.REFUSED))
    elif _print_log_table(root, path, last, verify):
        raise typer.Exit(int(ExitCode.REFUSED))


def _print_log_table(root: Path, path: Path, last: int | None, verify: bool) -> bool:
    """`hcepay log` as a table; whether a row failed its re-check. As `--json`, the rows are
    read twice in one snapshot: to check that each reads back, re-check it and measure its
    cells, then to print them a batch at a time. A row that cannot be read is one line,
    exit 2, with nothing printed. Rows of printable ASCII (every row the log writes) are
    written as text in rich's layout, folded by rich's wrap in a console too narrow for
    them; a hand-edited value (wide characters, a line break) is laid out by rich, each
    batch with the same widths."""
    from reader import log_table
    from reader.log import LogError, TransactionLog

    columns = (*log_table.LOG_COLUMNS, "verify") if verify else log_table.LOG_COLUMNS
    layout = log_table.Layout([log_table.cell_width(c) for c in columns])
    failures: dict[int, str] | None = {} if verify else None  # the rows failing: id -> why
    total = shown_count = 0
    pending_rows: list[PendingRow] = []
    with ExitStack() as stack:
        log: TransactionLog | None = None
        if path.exists():
            try:
                log = stack.enter_context(TransactionLog(path))
                stack.enter_context(log.snapshot())
            except LogError as exc:
                fail(f"transaction log: {exc.reason}")

        def shown() -> Iterator[LogRow]:
            if log is None:
                return iter(())
            return log.rows(last, last=True) if last is not None else log.rows()

        try:
            keys: KeyStore | None = None
            for r in shown():
                if failures is not None:
                    if keys is None:  # a home with no rows needs no keys
                        keys = _keys(root)
                    if why := verify_row(r.outcome, keys):
                        failures[r.id] = why
                layout.add(log_table.row_cells(r, failures))
                shown_count += 1
            if log is not None:
                total = log.count()
                pending_rows = log.pending_rows()
        except LogError as exc:
            fail(f"transaction log: {exc.reason}")
        spooled = _spooled(path)
        what = f"the last {shown_count} of {total} transactions" if shown_count < total else ""
        title = f"{what or 'transactions'} in {path}"
        try:
            log_table.print_rows(shown(), title, columns, layout, shown_count, failures)
        except LogError as exc:  # read once already: only a disk failing in between
            fail(f"transaction log: {exc.reason}")
    bad = len(failures) if failures is not None else 0
    if failures is not None:
        good = shown_count - bad
        verb = "verifies" if good == 1 else "verify"
        stdout.print(f"{good} of {plural(shown_count, 'row')} {verb}")
    _print_pending(pending_rows, spooled)
    return bool(bad)


JSON_BATCH: Final = 500  # rows printed at a time by `hcepay log --json` (about 0.8 MB)


def _print_log_json(root: Path, path: Path, last: int | None, verify: bool) -> bool:
    """`hcepay log --json`; whether a row failed its re-check. The rows are read twice in one
    snapshot: to check that each reads back (and re-check it), then to print them a batch
    at a time. Built whole, the object of 10^5 rows (170 MB) took 1.3 GB and 6 s; and a
    row that cannot be read is still one line, exit 2, with nothing printed."""
    from reader.log import LogError, TransactionLog, outcome_to_json

    spooled = _spooled(path)
    head: dict[str, Any] = {"log": str(path), "total": 0, "pending_entries": [], "spooled": spooled}
    if not path.exists():
        stdout.print(json.dumps({**head, "transactions": []}))
        return False
    failures: dict[int, str] = {}  # the rows that fail their re-check: id -> why
    try:
        with TransactionLog(path) as log, log.snapshot():

            def shown() -> Iterator[LogRow]:
                return log.rows(last, last=True) if last is not None else log.rows()

            keys: KeyStore | None = None
            for r in shown():
                if verify:
                    if keys is None:  # a home with no rows needs no keys
                        keys = _keys(root)
                    if why := verify_row(r.outcome, keys):
                        failures[r.id] = why
            head["total"] = log.count()
            head["pending_entries"] = [_pending_json(p) for p in log.pending_rows()]
            stdout.print(json.dumps(head)[:-1] + ', "transactions": [', end="")
            batch: list[str] = []
            separator = ""
            for r in shown():
                item: dict[str, Any] = {"id": r.id, **outcome_to_json(r.outcome)}
                if verify:
                    item["verified"] = r.id not in failures
                    item["verify_reason"] = failures.get(r.id, "")
                batch.append(json.dumps(item))
                if len(batch) == JSON_BATCH:
                    stdout.print(separator + ", ".join(batch), end="")
                    batch, separator = [], ", "
            stdout.print((separator if batch else "") + ", ".join(batch) + "]}")
    except LogError as exc:
        fail(f"transaction log: {exc.reason}")
    return bool(failures)


class _HasSources(Protocol):
    def get_parameter_source(self, name: str) -> Any: ...


def _given(ctx: _HasSources, name: str) -> bool:
    """Whether the option `name` was given on the command line (not $HCEPAY_HOME)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name == "COMMANDLINE"


@log_app.command(
    "recover",
    epilog=examples(
        "hcepay log recover   # exit 5 while entries stay in the spool",
        "hcepay log recover --json --home /tmp/pos",
    ),
)
def log_recover(ctx: typer.Context, as_json: JsonOption = False, home: HomeOption = None) -> None:
    """Import the spool (payments decided but not recorded) into the log, each once.
    Exit 5 when entries are left in the spool; exit 2 when the log cannot be opened and
    the spool is empty, or the home does not exist (as `hcepay log`). Unreadable lines are
    kept aside in `<spool>.bad` (--json: `unreadable_kept_in`).

    `--home` and `--json` may come before `recover` too (`hcepay log --home A recover`)."""
    from reader.log import LogError, TransactionLog

    parent = ctx.parent
    group = parent.params if parent is not None else {}
    if group.get("verify"):
        fail("--verify re-checks the log's rows; `log recover` re-checks every entry anyway")
    as_json = as_json or bool(group.get("as_json"))
    if parent is not None and _given(parent, "home"):  # `log --home A recover`
        outer = Path(group["home"])  # as click parsed it: a str
        if _given(ctx, "home") and home != outer:
            fail(f"two home folders: --home {outer} and --home {home}")
        home = outer
    root = existing_home(home)  # a mistyped --home is not "0 imported"
    path = _existing_log_path(root)
    try:  # the keys verify spooled payments: with none spooled, a home needs none
        spooled = spool.pending_count(path)
    except spool.SpoolError as exc:
        fail(f"spool: {exc.reason}", ExitCode.NOT_RECORDED)
    if not path.exists() and not any(spool.present(p) for p in spool.spool_paths(path)):
        _print_import(spool.ImportReport(0, 0, 0, 0), as_json)  # as `hcepay log`: no file made
        return
    keys = [_keys(root)] if spooled else []
    log_down: list[str] = []  # why the log refused a write: the other entries are not tried

    def insert(entry: dict[str, str | int | None]) -> spool.Imported:
        """Record one spooled payment once it re-checks with the authority's key (a spool
        file is only a file: what it holds is verified like a card's answer). Once the log
        refuses a write (locked by another process, a full disk), the entries after it stay
        in the spool untried: each would wait the busy timeout (10 s) to fail the same way."""
        from authority.keystore import load_keystore
        from reader.log import outcome_from_json

        try:
            if log_down:
                raise LogError(log_down[0])
            if not keys:  # spooled since the count (another process's payment): read them now
                try:
                    keys.append(load_keystore(root))
                except KeyFileError as exc:
                    raise LogError(str(exc)) from None
            why = verify_row(outcome_from_json(entry), keys[0])
            if why:
                raise LogError(f"does not verify: {why}")
            try:
                return log.import_entry(entry)
            except LogError as exc:  # the log itself, not this entry
                log_down.append(exc.reason)
                raise
        except (ValueError, KeyError, TypeError, LogError) as exc:
            where = f"account {entry.get('account')} ATC {entry.get('atc')}"
            why = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
            stderr.print(f"hcepay: warning: spool entry {where} left in the spool: {why}")
            raise LogError(f"bad spool entry: {why}") from None

    try:
        log = TransactionLog(path)
    except LogError as exc:
        _unopened_log(path, exc.reason)
    try:
        with log:
            report = spool.import_spool(path, insert)
    except LogError as exc:
        fail(f"transaction log: {exc.reason}", ExitCode.NOT_RECORDED)
    except spool.SpoolError as exc:
        fail(f"spool: {exc.reason}", ExitCode.NOT_RECORDED)
    _print_import(report, as_json)
    if report.remaining:
        raise typer.Exit(int(ExitCode.NOT_RECORDED))


def _print_import(report: spool.ImportReport, as_json: bool) -> None:
    """What `log recover` did: its counts, as JSON or one line."""
    if as_json:
        counts = {
            "imported": report.inserted,
            "already_in_the_log": report.duplicates,
            "left_in_the_spool": report.remaining,
            "unreadable_lines": report.bad_lines,
            "unreadable_kept_in": [str(p) for p in report.kept_aside],
        }
        stdout.print(json.dumps(counts))
    else:
        line = (
            f"{report.inserted} imported, {report.duplicates} already in the log, "
            f"{report.remaining} left in the spool, {plural(report.bad_lines, 'unreadable line')}"
        )
        if report.kept_aside:
            line += f" (kept in {', '.join(map(str, report.kept_aside))})"
        stdout.print(line)


def _unopened_log(path: Path, reason: str) -> NoReturn:
    """A log `log recover` cannot open: `hcepay log`'s line and its exit 2, as nothing is
    left undone; exit 5 only when payments wait in the spool (they stay there)."""
    try:
        spooled = spool.pending_count(path)
    except spool.SpoolError as exc:
        fail(f"transaction log: {reason}; spool: {exc.reason}", ExitCode.NOT_RECORDED)
    if spooled:
        left = f"{plural(spooled, 'payment')} left in the spool"
        fail(f"transaction log: {reason} ({left})", ExitCode.NOT_RECORDED)
    fail(f"transaction log: {reason}")


def register(app: typer.Typer) -> None:
    """Add `demo`, `pay` and `log` to the root app."""
    app.command(
        "demo",
        epilog=examples(
            "hcepay demo",
            "hcepay demo --amount 1000.01   # over the test card's limit: declined",
            "hcepay demo --trace demo.json   # the exchange as a §8 trace",
        ),
    )(demo)
    app.command(
        "pay",
        epilog=examples(
            "hcepay pay --amount 12.34   # the home's card, in-process",
            "hcepay pay --amount 12.34 --reader 'Virtual PCD 00 00'   # waits 30 s for the tap",
            "hcepay pay --amount 12.34 --reader acr122 --wait 60",
            "hcepay pay --amount 0.50 --currency 978 --json --trace pay.json",
        ),
    )(pay_command)
    app.add_typer(log_app, name="log")
