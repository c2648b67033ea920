"""`hcepay readers` and `hcepay card serve`: the PC/SC side of the command line.

`card serve` puts a card from the home folder into a vpcd reader of a running pcscd (vpcd
listens; the card is its TCP client), so that any PC/SC application can talk to it.
"""

from __future__ import annotations

import json
import socket
from typing import Annotated

import typer

from applet.vpcd import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    VpcdClient,
    VpcdConfig,
    format_endpoint,
    parse_endpoint,
)
from reader.cli_common import (
    ExitCode,
    HomeOption,
    JsonOption,
    examples,
    fail,
    home_folder,
    on_stop_signals,
    plural,
    problem,
    require_pcsc,
    stderr,
    stdout,
)


def readers(as_json: JsonOption = False) -> None:
    """List the PC/SC readers pcscd knows, with the ATR of the card in each.

    The index is what --reader takes (as does a part of the name). Exit 0, also when there
    is no reader (said on stderr; --json: []), 4 when pcscd is not running or PC/SC
    support (pyscard) is missing."""
    from rich.table import Table

    require_pcsc()
    from reader.pcsc import list_readers
    from reader.transport import TransportError

    try:
        infos = list_readers()
    except TransportError as exc:
        fail(exc.reason, ExitCode.TRANSPORT)
    if as_json:
        rows = [
            {
                "index": i.index,
                "name": i.name,
                "atr": i.atr.hex().upper() if i.atr else None,
                "mute": i.mute,
            }
            for i in infos
        ]
        stdout.print(json.dumps(rows))  # one line, as every --json
        return
    if not infos:
        stderr.print("no PC/SC reader (is vsmartcard-vpcd installed?)")
        return
    table = Table("index", "name", "ATR")
    for info in infos:
        if info.atr:
            atr = info.atr.hex(" ").upper()
        else:
            atr = "(card not responding)" if info.mute else "(no card)"
        table.add_row(str(info.index), info.name, atr)
    stdout.print(table)


VpcdOption = Annotated[
    str,
    typer.Option(
        "--vpcd",
        metavar="HOST:PORT",
        help="Where vpcd listens: 35963 is reader 'Virtual PCD 00 00', 35964 '... 00 01'.",
    ),
]
VPCD_DEFAULT = f"{DEFAULT_HOST}:{DEFAULT_PORT}"


def serve(
    vpcd: VpcdOption = VPCD_DEFAULT,
    card: Annotated[
        str | None,
        typer.Option(
            "--card", metavar="ACCOUNT", help="The card to serve (default: the only one)."
        ),
    ] = None,
    home: HomeOption = None,
) -> None:
    """Serve a card to pcscd through vpcd until Ctrl-C (reconnects when pcscd restarts).

    `hcepay -v card serve` logs one line per APDU. One process serves a card folder at a
    time. The card's state (ATC, used credit) is saved as it changes, as for `pay`.

    Exit 0 when stopped (Ctrl-C or SIGTERM), 2 for a bad --vpcd or card (one in use by
    another process included).
    """
    from applet import open_card
    from reader.cli_card import card_folder

    config = vpcd_config(vpcd)
    folder = card_folder(home_folder(home), card)
    try:
        runtime = open_card(folder)
    except (OSError, ValueError) as exc:
        fail(f"cannot open card {folder.name}: {problem(exc)}")
    client = VpcdClient(runtime, config)

    where = format_endpoint(config.host, config.port)
    stderr.print(f"serving card {folder.name} to vpcd at {where} (Ctrl-C stops)")
    with on_stop_signals(client.stop):
        client.serve_forever()
    stderr.print(f"stopped: {plural(client.apdus, 'APDU')} served, card state saved")


def vpcd_config(text: str) -> VpcdConfig:
    """`--vpcd HOST:PORT` as where to serve; a usage error for a bad address or host."""
    try:
        host, port = parse_endpoint(text)
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except ValueError as exc:
        fail(str(exc))
    except (OSError, UnicodeError) as exc:  # socket.gaierror: no such host
        fail(f"--vpcd {text}: host {host!r} is not a host name or address ({exc})")
    return VpcdConfig(host=host, port=port)


def register(app: typer.Typer) -> None:
    """Add `readers` to the root app and `serve` to the `card` sub-app."""
    app.command("readers", epilog=examples("hcepay readers", "hcepay readers --json"))(readers)
    from reader import cli_card

    card_app: typer.Typer | None = getattr(cli_card, "card_app", None)
    if card_app is not None:
        card_app.command(
            "serve",
            epilog=examples(
                "hcepay -v card serve   # the only card, into 'Virtual PCD 00 00'",
                "hcepay card serve --card 6200123456789013 --vpcd 127.0.0.1:35964",
            ),
        )(serve)
