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
    except KeyboardInterrupt:
        sys.stderr.write("hcepay: interrupted\n")
        sys.exit(INTERRUPTED)
    run()


if __name__ == "__main__":
    main()
