"""The `hcepay` command: one typer app; each cli_* module registers its own commands."""

from __future__ import annotations

import errno
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from functools import partial
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from reader import cli_authority, cli_card, cli_decode, cli_pay, cli_pcsc, cli_vectors
from reader.cli_common import ExitCode, examples, interrupt_reported, output_lost, stderr
from reader.entry import caused_by_interrupt
from reader.interrupt import (
    hold_decided_payments_to_exit,
    run_ends_on_interrupt,
    stop_holding_to_exit,
)

_WRITERS = ("rich.", "click.", "typer._click.")  # modules that write stdout (typer bundles click)
_OUTPUT_ERRNOS = frozenset({errno.EPIPE, errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG})

# the base of every error click reports, found from typer's public BadParameter: typer
# bundles its own copy of click, older typers use the click package
_CLICK_ERROR: type[Exception] = next(
    c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"
)

_CLICK_CONTEXT: type = next(c for c in typer.Context.__mro__[1:] if c.__name__ == "Context")


def usage_line(exc: Exception) -> str:
    """A usage error that click found (an unknown option or command, a missing or bad
    value) as one line, as hcepay says every other error: "hcepay: error: <what> (see
    '<command> -h')"."""
    message = "; ".join(
        line.strip() for line in str(getattr(exc, "format_message", exc.__str__)()).splitlines()
    ).rstrip(".")
    message = message[:1].lower() + message[1:]
    ctx = _context_of(exc)
    path = getattr(ctx, "command_path", "") or "hcepay"
    if ctx is not None and ctx.parent is not None and _is_verbose(exc):
        root = ctx.find_root().command_path  # -v is the root's option, not the command's
        option = getattr(exc, "option_name", "-v")
        message += f"; {option} goes before the command: {root} {option}{path[len(root) :]} ..."
    return f"hcepay: error: {message} (see '{path} -h')"


def _context_of(exc: Exception) -> Any:
    """The context of the command whose arguments were being parsed when `exc` was raised:
    click's parser raises some errors (an option's missing value) with none, though the
    command is known (its parse_args frame holds it). None before any command."""
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        return ctx
    for frame, _ in reversed(list(traceback.walk_tb(exc.__traceback__))):  # the innermost
        candidate = frame.f_locals.get("ctx")
        if isinstance(candidate, _CLICK_CONTEXT):
            return candidate
    return None


def _is_verbose(exc: Exception) -> bool:
    """Whether `exc` is the root's -v/--verbose given after a command (`hcepay pay -v`)."""
    name = getattr(exc, "option_name", None)
    return type(exc).__name__ == "NoSuchOption" and name in ("-v", "--verbose")


class OneLineErrors(TyperGroup):
    """The app's group: click's usage errors are one line on stderr (exit 2), not its
    four-line "Usage / Try / Error" box. Only the standalone run (the `hcepay` command,
    CliRunner) is changed; a caller that asks for standalone_mode=False gets click's."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        run = partial(super().main, args, prog_name, complete_var, False, windows_expand_args)
        if not standalone_mode:
            return run(**extra)
        try:
            code = run(**extra)
        except _CLICK_ERROR as exc:
            _report(exc)
        except typer.Abort:  # click's own: a prompt's end of input
            stderr.print("hcepay: aborted")
            sys.exit(1)
        except SystemExit as exc:  # click's exit 1 for a closed pipe (--help printing)
            lost = exc.__context__
            if exc.code == 1 and isinstance(lost, OSError) and lost.errno == errno.EPIPE:
                output_lost(lost.strerror or str(lost))  # 74, as for every command's output
            raise
        # typer.Exit(n) comes back as n; a command that returns comes back as None
        sys.exit(code if isinstance(code, int) else 0)


def _report(exc: Exception) -> NoReturn:
    """Say a click error in one line and exit with its code (2 for usage errors)."""
    code = int(getattr(exc, "exit_code", ExitCode.USAGE))
    if type(exc).__name__ != "NoArgsIsHelpError":  # `hcepay` alone: its help is printed
        stderr.print(usage_line(exc))
    sys.exit(code)


app = typer.Typer(
    name="hcepay",
    cls=OneLineErrors,
    help=(
        "hcepay: an ISO 7816 card-emulation simulator for mobile credit payment.\n\n"
        "Start with `hcepay demo` (one complete payment, in-process, nothing to set up). "
        "Then make a home folder of your own (--home FOLDER, else $HCEPAY_HOME, else "
        "~/.hcepay): `authority init`, `card issue`, `pay`, `log`. `hcepay COMMAND -h` says "
        "what each command does, with examples.\n\n"
        "Every command exits 0 when it did what it says, 2 for a usage error (one line on "
        "stderr, never a traceback), 70 for an internal error (a bug), 74 when its output "
        "could not be written (what it did stands) and 130 when interrupted; a command with "
        "more codes (pay, demo, log, vectors, card send, decode, readers) names them in its "
        "help."
    ),
    epilog=examples(
        "hcepay demo",
        "hcepay authority init --home /tmp/pos   # an authority key, trusted by the terminal",
        "hcepay card issue --account 6200123456789012 --limit 1000.00 --home /tmp/pos",
        "hcepay pay --amount 12.34 --home /tmp/pos   # the home's card, in-process",
        "hcepay log --verify --home /tmp/pos",
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",  # docstrings reflow: a paragraph is its lines joined
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            metavar="",  # a flag, repeated: -v, -vv (no value)
            help="Log more (-v: one line per APDU, -vv: debug).",
        ),
    ] = 0,
) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


for module in (cli_decode, cli_authority, cli_card, cli_pcsc, cli_pay, cli_vectors):
    module.register(app)


def main() -> None:
    """Entry point: run the app, a decided payment's Ctrl-C held to the process's end."""
    hold_decided_payments_to_exit()
    _never_unencodable()
    try:
        _run()
    finally:
        stop_holding_to_exit()  # what a held guard left ignored stays so: the process ends


def _never_unencodable() -> None:
    """stdout writes what its encoding cannot hold as a backslash escape, as Python's stderr
    does: a path of bytes that are not UTF-8 (a lone surrogate) under a UTF-8 locale, or an
    é under an ASCII one, raised UnicodeEncodeError from `hcepay log`, `authority show` and
    any line naming the home (internal error, exit 70)."""
    reconfigure = getattr(sys.stdout, "reconfigure", None)  # a TextIOWrapper; None if closed
    if reconfigure is not None:
        reconfigure(errors="backslashreplace")


def _run() -> None:
    """Run the app; turn any unexpected exception into one line and exit 70."""
    try:
        app(standalone_mode=True)
    except SystemExit as exc:  # typer makes Ctrl-C a silent exit 130: say what it was
        if exc.code == ExitCode.INTERRUPTED:
            run_ends_on_interrupt()
            if not interrupt_reported():
                stderr.print("hcepay: interrupted")
        raise
    except KeyboardInterrupt:
        run_ends_on_interrupt()
        stderr.print("hcepay: interrupted")
        sys.exit(int(ExitCode.INTERRUPTED))
    except Exception as exc:  # the last resort: a bug, reported in one line
        if caused_by_interrupt(exc):  # wrapped while a command loaded its modules (entry.py)
            run_ends_on_interrupt()
            stderr.print("hcepay: interrupted")
            sys.exit(int(ExitCode.INTERRUPTED))
        if isinstance(exc, OSError) and _output_lost(exc):
            output_lost(exc.strerror or str(exc))
        if os.environ.get("HCEPAY_DEBUG"):
            raise
        stderr.print(
            f"hcepay: internal error: {type(exc).__name__}: {exc} (HCEPAY_DEBUG=1 for a traceback)"
        )
        sys.exit(int(ExitCode.INTERNAL))


def _output_lost(exc: OSError) -> bool:
    """Whether `exc` is stdout that cannot be written (a full disk, a closed pipe): an
    output error raised while rich or click wrote (a closed pipe: cli_common._Stdout). The
    frame that raised it must be theirs: every command runs inside click's frames, so a
    disk error reading or writing the card or the log is not the output's."""
    if exc.errno not in _OUTPUT_ERRNOS:
        return False
    frames = [frame for frame, _ in traceback.walk_tb(exc.__traceback__)]
    return bool(frames) and frames[-1].f_globals.get("__name__", "").startswith(_WRITERS)


if __name__ == "__main__":
    main()
