"""What every `hcepay` command shares: exit codes, the home folder option, one-line errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from enum import IntEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from authority.home import HomeBusyError, hold_home


class ExitCode(IntEnum):
    """The exit codes of `hcepay` (docs/architecture.md)."""

    OK = 0
    DECLINED = 1  # also: a failed decode or replay
    USAGE = 2
    REFUSED = 3
    TRANSPORT = 4
    NOT_RECORDED = 5
    INTERNAL = 70


stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)

HomeOption = Annotated[
    Path | None,
    typer.Option(
        "--home",
        envvar="HCEPAY_HOME",
        help="hcepay's home folder (authority keys, cards, terminal log). Default: ~/.hcepay.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def home_folder(explicit: Path | None) -> Path:
    """The home folder: --home, else $HCEPAY_HOME, else ~/.hcepay."""
    if explicit is not None:
        return explicit.expanduser()
    env = os.environ.get("HCEPAY_HOME")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".hcepay"


def examples(*commands: str) -> str:
    """A command's help epilog: its examples, one paragraph each (the help is markdown)."""
    return "**Examples**\n\n" + "\n\n".join(f"`{command}`" for command in commands)


def fail(message: str, code: ExitCode = ExitCode.USAGE) -> NoReturn:
    """Print one line to stderr and exit with `code`: never a traceback."""
    stderr.print(f"hcepay: error: {message}", markup=False)
    raise typer.Exit(int(code))


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
            fail(f"cannot lock {home}: {exc.strerror or exc}")
        yield
