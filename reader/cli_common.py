"""What every `hcepay` command shares: exit codes, the home folder option, one-line errors."""

from __future__ import annotations

import logging
import math
import os
import re
import signal
import string
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import date
from enum import IntEnum
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Final, NoReturn

import typer
from rich.console import Console

from authority.home import HomeBusyError, hold_home, os_problem
from reader.interrupt import ignore_to_exit, run_ends_on_interrupt

if TYPE_CHECKING:
    from reader.pcsc import PcscTransport  # pyscard: imported only for a reader


class ExitCode(IntEnum):
    """The exit codes of `hcepay` (docs/architecture.md)."""

    OK = 0
    DECLINED = 1  # also: a failed decode or replay
    USAGE = 2
    REFUSED = 3
    TRANSPORT = 4
    NOT_RECORDED = 5
    INTERNAL = 70
    OUTPUT_LOST = 74  # stdout cannot be written (sysexits EX_IOERR); what was done stands
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)


class _Stdout(Console):
    """The commands' stdout: a closed pipe is output that cannot be written, as a full disk
    (exit 74); rich's own answer to it is a silent exit 1, the code of a decline."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        output_lost("Broken pipe")


class _Stderr(Console):
    """The commands' stderr: when it is a closed pipe too, the line is lost but the exit code
    stays the command's own; rich's answer is exit 1, the code of a decline. stderr then
    points at /dev/null, so that nothing else tries it."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        _to_devnull(sys.stderr.fileno())


def _to_devnull(fd: int) -> None:
    """Point `fd` at /dev/null: an output that cannot be written is not tried again (nor by
    Python's own last flush)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _file_width() -> int | None:
    """The width of stdout when it is a file or a pipe and COLUMNS does not say: a table
    folds a value that does not fit, and rich's 80 columns there cut `hcepay log` rows
    mid-account ("accoun/t"). A terminal keeps its own width."""
    try:
        terminal = sys.stdout.isatty()
    except (AttributeError, ValueError, OSError):  # no stdout at all (closed: None): rich's own
        return None
    return None if terminal or "COLUMNS" in os.environ else FILE_WIDTH


FILE_WIDTH = 1000  # wider than any row hcepay prints: tables are as wide as their values

# markup and emoji off: what is printed is never parsed (paths, names and vector files may
# hold "[/x]" or ":x:"); styled output is built as rich Text
stdout = _Stdout(highlight=False, soft_wrap=True, markup=False, emoji=False, width=_file_width())
stderr = _Stderr(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)


def _home_path(text: str) -> Path:
    """--home as given: an empty one is a mistake, not the current folder."""
    if not text.strip():
        raise typer.BadParameter("an empty home folder (use --home . for this folder)")
    return Path(text)


HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        parser=_home_path,
        metavar="FOLDER",
        envvar="HCEPAY_HOME",
        help="hcepay's home folder (authority keys, cards, terminal log). Default: ~/.hcepay.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
AMOUNT_HELP: Final = (
    "a decimal string in the currency's units, at most 2 decimals (12.34, 5, 0.50); "
    "no sign, no exponent"
)
TRACE_HELP: Final = (
    "Write the exchange to FILE as a PROTOCOL.md §8 trace (JSON), replacing the file."
)


KEY_INDEX_HELP = (
    "Authority key index (tag 8F): two hex digits, 01 to FF, as in the key file ca-XX.pem."
)
_KEY_INDEX = re.compile(r"[0-9A-Fa-f]{2}")


def key_index(text: str, option: str) -> int:
    """An authority key index (8F) as every option takes it: two hex digits, 01 to FF (the
    names of the key files ca-XX.pem and of the terminal's keys; a card refuses 00)."""
    if _KEY_INDEX.fullmatch(text) is None or int(text, 16) == 0:
        fail(f"{option} {text!r}: an authority key index is two hex digits, 01 to FF (ca-01.pem)")
    return int(text, 16)


_DIGITS: Final = re.compile(r"[0-9]+")
_SECONDS: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")
MAX_DIGITS: Final = 18  # more than any number hcepay takes (int() refuses 4301 in its own words)


MINOR_DIGITS: Final = 2  # amounts in minor units: 1234 is 12.34 (PROTOCOL.md §3, n12)


def format_amount(units: int) -> str:
    """Minor units as a decimal string (12.34)."""
    return f"{units // 10**MINOR_DIGITS}.{units % 10**MINOR_DIGITS:0{MINOR_DIGITS}d}"


def whole_number(text: str | int) -> int:
    """A number given on the command line (a serial, --currency, --bits, --last, --atc) as
    every command reads it: ASCII digits 0-9 and nothing else. Python's int() also reads
    "٣" (an Arabic-Indic three) as 3, and " 3", "+3" or "1_000": a serial or a code the
    user did not type. A usage error (exit 2) that click says in one line, naming the
    option; an int is an option's default, passed through."""
    if isinstance(text, int):
        return text
    if _DIGITS.fullmatch(text) is None:
        raise typer.BadParameter(f"{text!r} is not a whole number in ASCII digits 0-9")
    if len(text) > MAX_DIGITS:
        raise typer.BadParameter(f"{text[:MAX_DIGITS]}... has more than {MAX_DIGITS} digits")
    return int(text)


def seconds(text: str | float) -> float:
    """A duration in seconds (--wait, --idle, --timeout): ASCII digits with an optional
    decimal part (30, 0.5). Python's float() also reads "٣", "1e3", "inf" and "nan"; the
    command still checks the range (wait_seconds)."""
    if isinstance(text, float | int):
        return float(text)
    if _SECONDS.fullmatch(text) is None or len(text) > MAX_DIGITS:
        raise typer.BadParameter(f"{text!r} is not a number of seconds like 30 or 0.5")
    return float(text)


CurrencyOption = Annotated[
    int,
    typer.Option(
        "--currency",
        parser=whole_number,
        metavar="CODE",
        help="Currency: an ISO 4217 numeric code, 0 to 999 (156 yuan, 978 euro, 840 dollar).",
    ),
]


def default_home() -> Path:
    """The home a command without --home uses: $HCEPAY_HOME, else ~/.hcepay."""
    env = os.environ.get("HCEPAY_HOME")
    return Path(env).expanduser() if env else Path.home() / ".hcepay"


def home_folder(explicit: Path | None) -> Path:
    """The home folder: --home, else $HCEPAY_HOME, else ~/.hcepay. One that exists and is
    not a folder is refused here, for every command alike: each said something else of it
    ("holds no authority key", "Not a directory", "no authority key yet" with exit 0). So is
    one that cannot be made: a dangling symbolic link, a path under a file."""
    try:
        folder = explicit.expanduser() if explicit is not None else default_home()
    except RuntimeError:  # ~NAME of no such user: expanduser cannot say where it is
        given = Path(os.environ.get("HCEPAY_HOME", "")) if explicit is None else explicit
        fail(f"the home {given}: {given.parts[0]} names no user's home folder")
    try:  # what exists() cannot say: a name too long, a loop of symbolic links
        folder.stat()
    except (FileNotFoundError, NotADirectoryError):
        pass  # a home to make, or one under a file (below)
    except OSError as exc:
        fail(f"the home {folder} cannot be a folder: {exc.strerror}")
    if folder.exists() and not folder.is_dir():
        fail(f"the home {folder} is a file, not a folder")
    if folder.is_symlink() and not folder.exists():  # an unmounted volume, a moved folder
        fail(f"the home {folder} is a symbolic link to {os.readlink(folder)}, which is missing")
    for part in folder.parents:  # bounded by the path's depth
        if part.exists() and not part.is_dir():
            fail(f"the home {folder} cannot be a folder: {part} is a file, not a folder")
    return folder


def not_a_file(folder: Path) -> None:
    """A folder of the home (cards, authority) that is a file is named as such (exit 2),
    before a command calls the files it should hold missing and sends the user to the
    command that makes them, which then refuses that file."""
    if folder.exists() and not folder.is_dir():
        fail(f"{folder}: is a file, not a folder")


def existing_home(explicit: Path | None) -> Path:
    """The home folder (home_folder), which must exist: a command that only reads it, or
    changes what is there, would show an empty home or make a new one for a mistyped --home."""
    folder = home_folder(explicit)
    if not folder.exists():
        fail(f"{folder}: no such home (hcepay authority init makes one)")
    return folder


def refuse_past(option: str, text: str, last_day: date, today: date) -> None:
    """A date a user gives that is already past is a usage error (exit 2): a key or a card
    that expired before it was made is refused at every payment."""
    if last_day < today:
        fail(f"{option} {text}: already past")


def examples(*commands: str) -> str:
    """A command's help epilog: its examples, one paragraph each (the help is markdown)."""
    return "**Examples**\n\n" + "\n\n".join(f"`{command}`" for command in commands)


_interrupt_reported: list[bool] = [False]


def interrupted(detail: str = "") -> NoReturn:
    """Say on stderr that Ctrl-C stopped the command (and what it did not do); exit 130."""
    run_ends_on_interrupt()
    stderr.print(f"hcepay: interrupted{f' ({detail})' if detail else ''}")
    _interrupt_reported[0] = True
    raise typer.Exit(int(ExitCode.INTERRUPTED))


def interrupt_reported() -> bool:
    """Whether a command has already said that it was interrupted."""
    return _interrupt_reported[0]


def plural(count: int, noun: str, nouns: str = "") -> str:
    """`1 payment`, `2 payments`: a count with its noun in the right number (`nouns` for an
    irregular plural: `plural(n, "entry", "entries")`)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


_LOST_OUTPUT_NOTE = ["what the command did stands"]  # what output_lost adds; one per process


def note_for_lost_output(note: str) -> None:
    """What `output_lost` says stands, for a command that has more to say than the default
    (`pay`: its payment is in the log)."""
    _LOST_OUTPUT_NOTE[0] = note


def output_lost(reason: str) -> NoReturn:
    """stdout cannot be written (a full disk, a closed pipe): one line on stderr and exit 74;
    what the command did stands."""
    _to_devnull(sys.stdout.fileno())
    stderr.print(f"hcepay: cannot write the output ({reason}); {_LOST_OUTPUT_NOTE[0]}")
    sys.exit(int(ExitCode.OUTPUT_LOST))


ONE_TRANSPORT: Final = "pick one of --in-process and --reader NAME"  # both were given
MAX_WAIT: Final = 3600.0  # seconds: --wait is bounded as every input is
PAY_WAIT: Final = 30.0  # seconds a payment on a --reader waits for the tap (docs/pcsc.md)
WAIT_HELP: Final = "Wait this long for a card or phone in an empty --reader (0: do not wait)."


def wait_seconds(wait: float | None, reader: str | None, default: float) -> float:
    """`--wait SECONDS` checked: a usage error when negative, not finite, over MAX_WAIT, or
    given without --reader; `default` when not given."""
    if wait is None:
        return default if reader is not None else 0.0
    if not math.isfinite(wait) or not 0 <= wait <= MAX_WAIT:
        fail(f"--wait {wait:g}: give seconds from 0 to {MAX_WAIT:g}")
    if reader is None:
        fail("--wait waits for a card in a PC/SC reader: give --reader NAME too")
    return wait


def _announce_wait(reader: str, wait: float) -> None:
    """The one line a command waiting for a card says (PcscTransport's on_wait)."""
    stderr.print(
        f"present the card or phone to {reader} (waiting up to {wait:g} s)",
        markup=False,
        highlight=False,
    )


READER_HELP: Final = (
    "A PC/SC reader: its name, its index (hcepay readers), or a part of its name, any case, "
    "that only it holds."
)  # reader/pcsc.py resolve_reader: exact name, then index, then a unique part


def require_pcsc() -> None:
    """Import reader/pcsc.py (pyscard) for a command that talks to a PC/SC reader; where
    pyscard cannot be imported, one line and exit 4, the same for every command."""
    try:
        import reader.pcsc  # noqa: F401  (`import`, not `from reader import`: a fresh try)
    except ImportError as exc:
        fail(f"PC/SC support is not available here ({exc}: install pyscard)", ExitCode.TRANSPORT)


def reader_transport(reader: str, wait: float = 0.0) -> PcscTransport:
    """The card in the PC/SC reader `reader` names (its name, index or a part of it only it
    holds: reader/pcsc.py resolve_reader), waited for up to `wait` seconds, saying so once;
    exit 4 where pyscard cannot be imported (require_pcsc)."""
    require_pcsc()
    from reader.pcsc import PcscTransport

    return PcscTransport(reader, wait=wait, on_wait=_announce_wait)


def hex_input(text: str) -> bytes:
    """Hex digits (blanks and colons already removed) as bytes; ValueError saying what is
    wrong as a predicate: "is not hexadecimal ('G' at offset 2)" (0-based, as a
    DecodeError's offset) or "has an odd number of hex digits (3)" (fromhex's own text
    names neither)."""
    bad = next((i for i, c in enumerate(text) if c not in string.hexdigits), None)
    if bad is not None:
        raise ValueError(f"is not hexadecimal ({text[bad]!r} at offset {bad})")
    if len(text) % 2:
        raise ValueError(f"has an odd number of hex digits ({len(text)})")
    return bytes.fromhex(text)


class Failure(typer.Exit):
    """The exit `fail` raises, keeping its message: `pay --json` and `demo --json` say it in
    their JSON object too (a machine reading stdout gets an object for exit 2 as well)."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(int(code))
        self.message = message


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Print one line to stderr and exit with `code`: never a traceback."""
    stderr.print(f"hcepay: error: {message}")
    raise Failure(message, code)


def problem(exc: Exception) -> str:
    """An exception's text for a one-line message: an OSError in plain words, naming its
    file ("PATH: is a folder, not a file"), never Python's "[Errno 21] ..." (os_problem)."""
    return os_problem(exc) if isinstance(exc, OSError) else str(exc)


@contextmanager
def home_lock(home: Path) -> Iterator[None]:
    """Hold the home's lock (authority/home.py hold_home) around one read-modify-write of
    its files; a one-line error when another hcepay keeps it or it cannot be made."""
    with ExitStack() as stack:
        try:
            stack.enter_context(hold_home(home))
        except HomeBusyError as exc:
            fail(str(exc))
        except OSError as exc:
            if home.exists() and not home.is_dir():
                fail(f"the home {home} is a file, not a folder")
            fail(f"cannot lock {exc.filename or home}: {exc.strerror or exc}")
        yield


@contextmanager
def on_stop_signals(
    stop: Callable[[], None], signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
) -> Iterator[None]:
    """Call `stop` on SIGINT or SIGTERM (or `signals`) while the block runs, then put the
    handlers back: a serving loop ends cleanly, its card or vectors saved (the main thread
    only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logging.getLogger(__name__).info("signal %s: stopping", signal.Signals(signum).name)
        stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """While the block runs, SIGTERM ends the process by unwinding it (exit 143, 128 + 15),
    so that its `finally` blocks run: the demo's temporary home, authority key included, is
    removed, as after Ctrl-C. Only for commands whose work a kill may cut anywhere (a
    temporary home): a payment's durable steps are made to survive SIGTERM's default."""

    def unwind() -> None:
        ignore_to_exit(signal.SIGTERM)  # a second one must not cut the cleanup
        stderr.print("hcepay: terminated")
        sys.exit(128 + signal.SIGTERM)

    with on_stop_signals(unwind, (signal.SIGTERM,)):
        yield
