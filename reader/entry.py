"""The `hcepay` console script: quiet about Ctrl-C from its first instant.

Loading the command line (typer, rich, cryptography, the card) takes a while; an interrupt
then must be one line and exit 130, not a traceback, so this module imports nothing heavy
before it can catch one.
"""

from __future__ import annotations

import sys

INTERRUPTED = 130  # reader.cli_common.ExitCode.INTERRUPTED, not imported yet


def main() -> None:
    """Load the command line, then run it (reader/cli.py main)."""
    try:
        from reader.cli import main as run
    except BaseException as exc:
        if not _from_interrupt(exc):
            raise
        sys.stderr.write("hcepay: interrupted\n")
        sys.exit(INTERRUPTED)
    run()


def _from_interrupt(exc: BaseException | None) -> bool:
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
