"""The `hcepay` console script: quiet about Ctrl-C from its first instant.

Loading the command line (typer, rich; each command then loads what it runs: cryptography,
the card) takes a while; an interrupt then must be one line and exit 130, not a traceback,
so this module imports nothing heavy before it can catch one.
"""

from __future__ import annotations

import signal
import sys
from typing import NoReturn

INTERRUPTED = 130  # reader.cli_common.ExitCode.INTERRUPTED, not imported yet


def main() -> None:
    """Load the command line, then run it (reader/cli.py main)."""
    sys.unraisablehook = _quiet_about_interrupts
    try:
        from reader import interrupt

        signal.signal(signal.SIGINT, interrupt.raise_interrupt)  # remembers each Ctrl-C
        from reader.cli import main as run
    except BaseException as exc:
        if not caused_by_interrupt(exc):
            raise
        _interrupted()
    if interrupt.interrupt_swallowed():  # Python swallowed it in a finalizer: stop anyway
        _interrupted()
    run()


def _quiet_about_interrupts(unraisable: sys.UnraisableHookArgs) -> None:
    """Python swallows a Ctrl-C that lands in a finalizer and prints "Exception ignored in"
    with a traceback; reader/interrupt.py remembers it and stops the run all the same, in one
    line. Anything else is printed as Python does."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        return
    sys.__unraisablehook__(unraisable)


def _interrupted() -> NoReturn:
    """One line and exit 130; a second Ctrl-C, now, would only cut the line short."""
    try:
        from reader.interrupt import ignore_to_exit

        ignore_to_exit()
    except BaseException:  # a Ctrl-C while it loads: the run ends all the same
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stderr.write("hcepay: interrupted\n")
    sys.exit(INTERRUPTED)


def caused_by_interrupt(exc: BaseException | None) -> bool:
    """Whether `exc` is a Ctrl-C or was caused by one: Python 3.11 wraps an interrupt that
    lands while a class is made (a dataclass field's __set_name__) in a RuntimeError."""
    seen = 0
    while exc is not None and seen < 16:  # bounded: a chain may loop
        if isinstance(exc, KeyboardInterrupt):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


if __name__ == "__main__":
    main()
