"""`hcepay vectors replay`, `record` and `serve` (PROTOCOL.md §8, docs/conformance.md)."""

from __future__ import annotations

import json
import math
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from applet.vpcd import format_endpoint
from reader.cli_common import (
    AMOUNT_HELP,
    ONE_TRANSPORT,
    PAY_WAIT,
    READER_HELP,
    WAIT_HELP,
    CurrencyOption,
    ExitCode,
    JsonOption,
    examples,
    fail,
    interrupted,
    on_stop_signals,
    plural,
    reader_transport,
    require_pcsc,
    seconds,
    stderr,
    stdout,
    wait_seconds,
    whole_number,
)
from reader.cli_pcsc import VPCD_DEFAULT, VpcdOption, vpcd_config

if TYPE_CHECKING:
    from rich.table import Table

    from reader import vectors as vx

PROGRESS_THRESHOLD = 8  # show a progress bar from this many vectors on (stderr a terminal)
CONTEXT_BYTES = 6  # bytes shown either side of the first difference


def marked(hex_text: str, positions: Sequence[int], *, around: int | None = None) -> Text:
    """Hex (pairs, `..` allowed) as rich Text with the bytes at `positions` in bold red.

    With `around` (a byte offset), only a window of CONTEXT_BYTES either side is shown.
    """
    pairs = [hex_text[i : i + 2] for i in range(0, len(hex_text), 2)]
    first, last = 0, len(pairs)
    if around is not None:
        first = max(0, around - CONTEXT_BYTES)
        last = min(len(pairs), around + CONTEXT_BYTES + 1)
    marks = set(positions)
    text = Text("…" if first > 0 else "")
    for offset in range(first, last):
        text.append(pairs[offset], style="bold red" if offset in marks else "")
    if last < len(pairs):
        text.append("…")
    if not pairs:
        text.append("(nothing)", style="dim")
    return text


def carets(length: int, positions: Sequence[int], around: int) -> str:
    """A line of `^^` under the bytes at `positions` in the window `marked` shows of hex of
    `length` bytes around `around`: the mark where no colour shows (a file, a pipe,
    NO_COLOR)."""
    first = max(0, around - CONTEXT_BYTES)
    last = min(length, around + CONTEXT_BYTES + 1)
    marks = set(positions)
    line = " " if first > 0 else ""  # under the "…"
    line += "".join("^^" if offset in marks else "  " for offset in range(first, last))
    return line.rstrip()


def difference_cell(difference: vx.Difference, caret_line: bool | None = None) -> Text:
    """The table cell of a difference: where, then expected and got with the bytes marked:
    in bold red, and with a `^^` line under them when the output shows no colour
    (`caret_line` None: stdout's own)."""
    from reader import vectors as vx

    head = difference.describe().split(":", 1)[0]
    cell = Text(head + "\n", style="yellow")
    if difference.problem in (vx.Problem.TRANSPORT, vx.Problem.SETUP):
        cell.append(difference.got)
        return cell
    if difference.offset is None:
        cell.append(f"expected {difference.expected or '(nothing)'}\n")
        cell.append(f"got      {difference.got or '(nothing)'}")
        return cell
    cell.append("expected ")
    cell.append(marked(difference.expected, difference.positions, around=difference.offset))
    cell.append("\ngot      ")
    cell.append(marked(difference.got, difference.positions, around=difference.offset))
    if caret_line if caret_line is not None else stdout.color_system is None:
        length = max(len(difference.expected), len(difference.got)) // 2
        cell.append("\n         " + carets(length, difference.positions, difference.offset))
    return cell


def _shown(text: str) -> str:
    """A vector file's text as shown: control characters as dots (no ESC reaches a tty)."""
    return "".join(ch if ch.isprintable() else "." for ch in text)


def results_table(results: Sequence[vx.ReplayResult]) -> Table:
    """The replay table: vector, side, steps, verdict, first difference."""
    from rich.table import Table

    table = Table(title="hcepay conformance replay", show_lines=False)
    table.add_column("vector", overflow="fold")
    table.add_column("side")
    table.add_column("steps", justify="right")
    table.add_column("verdict")
    table.add_column("first difference", overflow="fold")
    for result in results:
        verdict = Text("pass", style="green") if result.passed else Text("FAIL", style="bold red")
        difference = difference_cell(result.difference) if result.difference else Text("")
        table.add_row(
            _shown(result.name),
            result.side.value + (" (choice)" if result.choice else ""),
            f"{result.done}/{result.steps}",
            verdict,
            difference,
        )
    return table


def result_json(result: vx.ReplayResult) -> dict[str, Any]:
    """One replay result as JSON."""
    out: dict[str, Any] = {
        "vector": result.name,
        "path": result.path,
        "side": result.side.value,
        "steps": result.steps,
        "done": result.done,
        "passed": result.passed,
        "choice": result.choice,
    }
    if result.verdict is not None:
        out["terminal_verdict"] = result.verdict.value
        out["terminal_reason"] = result.reason
    if result.difference is not None:
        d = result.difference
        out["difference"] = {
            "problem": d.problem.value,
            "step": None if d.step is None else d.step + 1,  # 1-based, as in the text
            "offset": d.offset,
            "expected": d.expected,
            "got": d.got,
            "positions": list(d.positions),
            "text": d.describe(),
        }
    return out


def run_all(
    items: Sequence[tuple[Path, vx.Vector]],
    replay: Callable[[vx.Vector], vx.ReplayResult],
    *,
    progress: bool,
) -> list[vx.ReplayResult]:
    """Replay every vector in order, with a progress bar on stderr when asked."""
    from rich.progress import Progress

    results: list[vx.ReplayResult] = []
    if not progress:
        return [_with_path(replay(v), p, v) for p, v in items]
    with Progress(console=stderr, transient=True) as bar:
        task = bar.add_task("replaying", total=len(items))
        for path, vector in items:
            results.append(_with_path(replay(vector), path, vector))
            bar.advance(task)
    return results


def _with_path(result: vx.ReplayResult, path: Path, vector: vx.Vector) -> vx.ReplayResult:
    from dataclasses import replace

    return replace(result, path=str(path), choice=vector.choice)


def default_vectors_folder() -> Path:
    """The repository's `vectors/` folder (next to the packages)."""
    return Path(__file__).resolve().parent.parent / "vectors"


def register(app: typer.Typer) -> None:
    """Add `hcepay vectors replay`, `record` and `serve` to the root app."""
    group = typer.Typer(
        help="Conformance vectors (PROTOCOL.md §8): replay them, record new ones, serve them "
        "to your own terminal.",
        epilog=examples(
            "hcepay vectors replay vectors/card   # the card-side vectors, in-process",
            "hcepay vectors record --out my-payment.json --amount 5.00",
        ),
        no_args_is_help=True,
    )
    app.add_typer(group, name="vectors")
    register_record(group)
    register_serve(group)

    @group.command(
        "replay",
        epilog=examples(
            "hcepay vectors replay   # every vector, against the in-process card",
            "hcepay vectors replay vectors/card --reader 'Virtual PCD 00 00'",
            "hcepay vectors replay vectors/card --reader acr122 --wait 30   # then tap the phone",
            "hcepay vectors replay vectors/terminal --json",
            "hcepay vectors replay vectors/card --protocol-only",
        ),
    )
    def replay_command(
        paths: Annotated[
            list[Path] | None,
            typer.Argument(
                metavar="[PATH]...",
                help="Vector files or folders (each searched for *.json, profiles/ left out). "
                "Default: the repository's vectors/.",
            ),
        ] = None,
        reader_name: Annotated[
            str | None,
            typer.Option(
                "--reader",
                metavar="NAME",
                help="Replay card-side vectors on the card in this reader. " + READER_HELP,
            ),
        ] = None,
        wait: Annotated[
            float | None,
            typer.Option(
                "--wait",
                parser=seconds,
                metavar="SECONDS",
                help=f"{WAIT_HELP} Each vector's. Default: 0.",
            ),
        ] = None,
        in_process: Annotated[
            bool,
            typer.Option("--in-process", help="Replay against our applet in-process (default)."),
        ] = False,
        profiles: Annotated[
            Path | None,
            typer.Option(
                "--profiles",
                metavar="FOLDER",
                help="The folder of the card profiles vectors name. Default: vectors/profiles.",
            ),
        ] = None,
        protocol_only: Annotated[
            bool,
            typer.Option(
                "--protocol-only",
                help='Leave out the vectors marked "choice": they hold docs/protocol-choices.md, '
                "where PROTOCOL.md leaves the answer open, and a card may choose otherwise.",
            ),
        ] = False,
        as_json: JsonOption = False,
    ) -> None:
        """Replay vectors; exit 0 only when every one passes (1 when any fails, 2 for a bad
        vector file or option, 4 when the card could not be reached).

        A card-side vector sends its commands to a card (our applet in-process, or the card
        in --reader) and compares each answer; a terminal-side one runs our terminal against
        its card's answers and compares the commands and the verdict. With --json, one
        object: `results` (each vector's), `passed`, `failed`, `left_out`."""
        from reader import vectors as vx

        if reader_name is not None and in_process:
            fail(ONE_TRANSPORT, ExitCode.USAGE)
        seconds = wait_seconds(wait, reader_name, 0.0)
        if reader_name is not None:
            reader_name = _one_reader(reader_name)
        folder = default_vectors_folder()
        try:
            files = vx.collect(paths or [folder])
            items = [(path, vx.load(path)) for path in files]
        except vx.VectorError as exc:
            fail(str(exc), ExitCode.USAGE)
        left_out = sum(vector.choice for _, vector in items) if protocol_only else 0
        if protocol_only:
            items = [(path, vector) for path, vector in items if not vector.choice]
        if not items and left_out:
            fail(f"--protocol-only left out every vector found ({left_out}, all choices)")
        if not items:
            fail("no vector files found", ExitCode.USAGE)
        profiles_folder = profiles or folder / "profiles"
        try:
            if profiles is not None and not vx.is_folder(profiles, f"--profiles {profiles}"):
                fail(f"--profiles {profiles}: no such folder")
        except vx.VectorError as exc:
            fail(str(exc))
        for path, vector in items:  # a profile the replay needs must exist: a bad vector file
            if vector.card is not None and (reader_name is None or vector.expect is not None):
                try:
                    vx.profile_folder(profiles_folder, vector.card)
                except vx.VectorError as exc:
                    fail(f"{path}: {exc}", ExitCode.USAGE)
        replay = _replayer(reader_name, profiles_folder, seconds)
        bar = not as_json and len(items) >= PROGRESS_THRESHOLD and stderr.is_terminal
        results = run_all(items, replay, progress=bar)
        failed = sum(not r.passed for r in results)
        if as_json:
            summary = {"passed": len(results) - failed, "failed": failed, "left_out": left_out}
            payload = {"results": [result_json(r) for r in results], **summary}
            stdout.print(json.dumps(payload))
        else:
            stdout.print(results_table(results))
            style = "green" if not failed else "bold red"
            line = f"{len(results) - failed} passed, {failed} failed"
            if protocol_only:
                line += f", {left_out} left out (choices, --protocol-only)"
            stdout.print(Text(line, style=style))
        if any(r.difference and r.difference.problem is vx.Problem.TRANSPORT for r in results):
            raise typer.Exit(int(ExitCode.TRANSPORT))
        if failed:
            raise typer.Exit(int(ExitCode.DECLINED))


def _one_reader(reader_name: str) -> str:
    """The reader `--reader` names (exact name, index, or a part of one name: reader/pcsc.py
    resolve_reader); a part in several names is a usage error. When pcscd cannot tell, the
    text is kept: the payment's connect reports why (exit 4)."""
    require_pcsc()
    from reader.pcsc import find_reader
    from reader.transport import ReaderChoiceError, TransportError

    try:
        return find_reader(reader_name)
    except ReaderChoiceError as exc:
        fail(exc.reason, ExitCode.USAGE)
    except TransportError:
        return reader_name


def _replayer(
    reader_name: str | None, profiles_folder: Path, wait: float
) -> Callable[[vx.Vector], vx.ReplayResult]:
    """The function that replays one vector (on the card in `reader_name`, waited for up to
    `wait` seconds); a vector that cannot be set up is a failure."""
    from reader import vectors as vx

    def replay(vector: vx.Vector) -> vx.ReplayResult:
        try:
            return vx.replay_vector(
                vector,
                profiles_folder,
                reader=reader_name,
                card_transport=lambda reader: reader_transport(reader, wait),
            )
        except vx.VectorError as exc:
            problem = vx.Difference(vx.Problem.SETUP, "a usable vector", str(exc))
            return vx.ReplayResult(vector.name, vector.side, len(vector.steps), 0, problem)

    return replay


def record_vector(
    *,
    name: str,
    start: vx.CardStart,
    values: vx.TerminalValues,
    profiles: Path,
    reader_name: str | None,
    wait: float = 0.0,
) -> tuple[vx.Vector, vx.TerminalRun]:
    """Run one payment (our card in-process, or the card in `reader_name`, waited for up to
    `wait` seconds) and make the exchange a card-side vector (PROTOCOL.md §8).
    TransportError when the card is lost."""
    from reader import vectors as vx
    from reader.transport import InProcessTransport, Transport, TransportError

    draft = vx.Vector(name, "", (), start, values)
    transport: Transport
    if reader_name is None:
        transport = InProcessTransport(vx.in_process_card(start, profiles))
    else:
        transport = reader_transport(reader_name, wait)
    run = vx.run_terminal(draft, profiles, transport)
    if run.verdict is None:
        raise TransportError(run.reason.removeprefix("transport error: "))
    amount = f"{values.amount or 0:d} minor units of currency {values.currency or 0:03d}"
    outcome = run.verdict.value + (f" ({run.reason})" if run.reason else "")
    where = f"the card in {reader_name}" if reader_name else f"profile {start.profile}"
    description = f"a recorded payment of {amount} with {where}: {outcome}"
    vector = vx.Vector(name, description, run.steps, start, values)
    return vector, run


def _terminal_values(
    un: str | None, day: str | None, clock: str | None, amount: int, currency: int
) -> vx.TerminalValues:
    from reader import vectors as vx

    now = datetime.now()
    obj = {
        "unpredictable_number": un if un is not None else secrets.token_bytes(4).hex().upper(),
        "date": day if day is not None else now.strftime("%y%m%d"),
        "time": clock if clock is not None else now.strftime("%H%M%S"),
        "amount": amount,
        "currency": currency,
    }
    return vx.terminal_values_from_json(obj, "terminal values")


def _check_out(out: Path, profiles: Path) -> None:
    """An --out that cannot be written is a usage error before the payment, checked as
    pay's --trace is: the payment spends the card's ATC and credit (a real card's, with
    --reader), and its exchange was lost when only the write found the folder missing.
    Nor may it replace what is not a vector: a file of the profiles folder (the card's
    card.json or key, written over by the card's own exchange), even through a symbolic
    link, or any other file already there. A vector (or trace) file is replaced: that is
    how a vector is recorded again."""
    from reader.trace import check_output_path

    try:
        check_output_path(out)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc} ({exc.filename or out})")
    if out.resolve().is_relative_to(profiles.resolve()):
        fail(
            f"--out {out}: a file of the profiles folder {profiles} (the cards' keys and "
            "descriptions), not a vector: write the vector elsewhere"
        )
    if out.exists() and not _vector_file(out):
        fail(f"--out {out}: exists and is not a vector file, so it is not replaced")


def _vector_file(path: Path) -> bool:
    """Whether the regular file `path` is a vector or a trace (a JSON object with
    `hcepay_vector`, PROTOCOL.md §8), which a recording may replace; a file that is not
    one is never replaced, whatever its name."""
    from reader import vectors as vx

    try:
        with path.open("rb") as f:
            raw = f.read(vx.MAX_VECTOR_FILE_BYTES + 1)
        obj = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return False
    return isinstance(obj, dict) and "hcepay_vector" in obj


def _text(name: str) -> str:
    """`name` as UTF-8 can write it: bytes of a file name or argument that are not UTF-8
    (lone surrogates in Python) become U+FFFD. The vector file is UTF-8 JSON, and saving a
    name of them raised UnicodeEncodeError after the payment (exit 70, the exchange lost)."""
    return os.fsencode(name).decode("utf-8", "replace")


def _option_amount(option: str, text: str) -> int:
    """An amount option in minor units; AmountError naming the option (--amount, --used)."""
    from reader.cli_pay import AmountError, parse_amount

    try:
        return parse_amount(text)
    except AmountError as exc:
        raise AmountError(f"{option}: {exc}") from None


def register_record(group: typer.Typer) -> None:
    """Add `hcepay vectors record`."""

    @group.command(
        "record",
        epilog=examples(
            "hcepay vectors record --out my-payment.json --amount 5.00 --in-process",
            "hcepay vectors record --out phone.json --reader 0",
            "hcepay vectors record --out phone.json --reader acr122 --wait 60   # then tap",
        ),
    )
    def record_command(
        out: Annotated[
            Path,
            typer.Option(
                "--out",
                metavar="FILE",
                help="The vector file to write: a new file, or a vector file to replace "
                "(no other file, nor one of the profiles folder).",
            ),
        ],
        amount: Annotated[
            str, typer.Option("--amount", metavar="AMOUNT", help=f"The amount: {AMOUNT_HELP}.")
        ] = "12.34",
        currency: CurrencyOption = 156,
        profile: Annotated[
            str,
            typer.Option(
                "--profile", metavar="NAME", help="The card profile: a folder of --profiles."
            ),
        ] = "test-card-1",
        atc: Annotated[
            int,
            typer.Option(
                "--atc",
                parser=whole_number,
                metavar="N",
                help="The card's ATC at the start: a whole number, 0 to 65535.",
            ),
        ] = 0,
        used: Annotated[
            str,
            typer.Option(
                "--used",
                metavar="AMOUNT",
                help=f"The card's used credit at the start: {AMOUNT_HELP}.",
            ),
        ] = "0",
        reader_name: Annotated[
            str | None,
            typer.Option(
                "--reader", metavar="NAME", help="Pay the card in this reader. " + READER_HELP
            ),
        ] = None,
        wait: Annotated[
            float | None,
            typer.Option(
                "--wait",
                parser=seconds,
                metavar="SECONDS",
                help=f"{WAIT_HELP} Default with --reader: {PAY_WAIT:g}, as pay's.",
            ),
        ] = None,
        in_process: Annotated[
            bool, typer.Option("--in-process", help="Pay our card in-process (default).")
        ] = False,
        un: Annotated[
            str | None,
            typer.Option(
                "--un",
                metavar="HEX",
                help="The unpredictable number (9F37): 8 hex digits. Default: a random one.",
            ),
        ] = None,
        day: Annotated[
            str | None,
            typer.Option(
                "--date", metavar="YYMMDD", help="The transaction date (9A). Default: today."
            ),
        ] = None,
        clock: Annotated[
            str | None,
            typer.Option(
                "--time", metavar="HHMMSS", help="The transaction time (9F21). Default: now."
            ),
        ] = None,
        name: Annotated[
            str | None,
            typer.Option(
                "--name",
                metavar="TEXT",
                help="The vector's name. Default: --out's file name without .json.",
            ),
        ] = None,
        profiles: Annotated[
            Path | None,
            typer.Option(
                "--profiles",
                metavar="FOLDER",
                help="The folder of the card profiles vectors name. Default: vectors/profiles.",
            ),
        ] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Run one payment and write it as a vector, ready to replay (PROTOCOL.md §8).

        The card is the profile's, in-process (its files are only read), or the card in
        --reader; --atc and --used give its starting state, which the vector keeps. Exit 0
        when the vector is written, whatever the payment's verdict (it is in the vector and
        in the line printed); 2 usage, 4 when the card could not be reached (nothing
        written). With --json, one object: `out`, `vector`, `steps`, `verdict`, `reason`."""
        from reader import vectors as vx
        from reader.cli_pay import AmountError
        from reader.transport import TransportError

        if reader_name is not None and in_process:
            fail(ONE_TRANSPORT, ExitCode.USAGE)
        seconds = wait_seconds(wait, reader_name, PAY_WAIT)
        if reader_name is not None:
            reader_name = _one_reader(reader_name)
        profiles_folder = profiles or default_vectors_folder() / "profiles"
        _check_out(out, profiles_folder)
        try:
            minor = _option_amount("--amount", amount)
            used_minor = _option_amount("--used", used)
            start = vx.CardStart(profile, atc, used_minor)
            if not 0 <= atc <= 0xFFFF:
                raise vx.VectorError(f"--atc {atc} out of 0..65535")
            values = _terminal_values(un, day, clock, minor, currency)
            vector, run = record_vector(
                name=_text(name or out.stem),
                start=start,
                values=values,
                profiles=profiles_folder,
                reader_name=reader_name,
                wait=seconds,
            )
        except (AmountError, vx.VectorError) as exc:
            fail(str(exc), ExitCode.USAGE)
        except TransportError as exc:
            fail(f"transport error: {exc.reason}", ExitCode.TRANSPORT)
        try:
            vx.save(out, vector)
        except OSError as exc:
            fail(f"cannot write {out}: {exc.strerror}", ExitCode.USAGE)
        summary = {
            "out": str(out),
            "vector": vector.name,
            "steps": len(vector.steps),
            "verdict": run.verdict.value if run.verdict else None,
            "reason": run.reason,
        }
        if as_json:
            stdout.print(json.dumps(summary))
        else:
            stdout.print(f"wrote {out}: {plural(len(vector.steps), 'step')}, {summary['verdict']}")


def register_serve(group: typer.Typer) -> None:
    """Add `hcepay vectors serve`."""

    @group.command(
        "serve",
        epilog=examples(
            "hcepay vectors serve   # every terminal-side vector, one after the other",
            "hcepay vectors serve vectors/terminal/terminal-license-expired.json --json",
            "hcepay vectors serve --vpcd 127.0.0.1:35964 --timeout 60 --idle 5",
        ),
    )
    def serve_command(
        paths: Annotated[
            list[Path] | None,
            typer.Argument(
                metavar="[PATH]...",
                help="Terminal-side vector files or folders (default: vectors/terminal).",
            ),
        ] = None,
        vpcd: VpcdOption = VPCD_DEFAULT,
        idle: Annotated[
            float,
            typer.Option(
                "--idle",
                parser=seconds,
                metavar="SECONDS",
                help="Silence after a command that ends an exchange the terminal did not end "
                "by powering the card off or resetting it.",
            ),
        ] = 2.0,
        timeout: Annotated[
            float | None,
            typer.Option(
                "--timeout",
                parser=seconds,
                metavar="SECONDS",
                help="Fail a vector whose first command has not come by then (default: wait).",
            ),
        ] = None,
        profiles: Annotated[
            Path | None,
            typer.Option(
                "--profiles",
                metavar="FOLDER",
                help="The folder of the card profiles vectors name. Default: vectors/profiles.",
            ),
        ] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Test your terminal: serve each terminal-side vector's card in a vpcd reader and
        check the commands your terminal sends (exit 0 when every vector passes, 1 when one
        fails, 2 for a bad vector file or option, 4 when vpcd is not reachable within
        --timeout, 130 on Ctrl-C).

        Before each vector, set your terminal as the lines printed say (its unpredictable
        number, date, time, amount, authority key, log), then pay on the virtual reader. A
        pass means your terminal sent exactly the vector's commands and stopped where it
        stops; check its verdict and its log against the `expect` line yourself
        (docs/conformance.md, "Test your terminal").
        """
        from reader import served_vectors as sv
        from reader import vectors as vx

        if not 0 < idle < math.inf or (timeout is not None and not 0 < timeout < math.inf):
            fail("--idle and --timeout must be a number of seconds more than 0", ExitCode.USAGE)
        config = vpcd_config(vpcd)
        folder = default_vectors_folder()
        with suppress(ValueError):  # the key file as the user would type it, from here
            folder = folder.relative_to(Path.cwd())
        profiles_folder = profiles or folder / "profiles"
        try:
            files = vx.collect(paths or [folder / "terminal"])
            items = [(path, vx.load(path)) for path in files]
            setups = [
                vx.terminal_setup(_terminal_side(path, v), profiles_folder) for path, v in items
            ]
        except vx.VectorError as exc:
            fail(str(exc), ExitCode.USAGE)
        if not items:
            fail("no vector files found", ExitCode.USAGE)
        timing = sv.ServeTiming(idle=idle, timeout=timeout)
        results: list[vx.ReplayResult] = []
        unreachable = ""  # vpcd never took the card: no verdict on the terminal
        stop = threading.Event()
        with on_stop_signals(stop.set):
            for number, ((path, vector), setup) in enumerate(zip(items, setups, strict=True), 1):
                stderr.print(Text(f"[{number}/{len(items)}] {_shown(vector.name)}", style="bold"))
                stderr.print(Text(f"  {_shown(vector.description)}"))
                for line in sv.setup_lines(setup):
                    stderr.print(Text(f"  set: {_shown(line)}"))
                stderr.print(Text(f"  expect: {_shown(sv.expected_end(vector))}"))
                where = format_endpoint(config.host, config.port)  # said before vpcd takes it
                stderr.print(f"  serving the card to the vpcd reader at {where}: pay on it now")
                try:
                    result = sv.serve_vector(vector, config, timing, stop)
                except sv.VpcdUnreachableError as exc:
                    unreachable = exc.reason
                    break
                if result is None:
                    break
                results.append(_with_path(result, path, vector))
                detail = f"{result.done}/{result.steps} commands"
                if result.difference is not None:
                    detail = result.difference.describe()
                verdict, style = ("pass", "green") if result.passed else ("FAIL", "bold red")
                stderr.print(Text(f"  {verdict}: {detail}", style=style))
        failed = sum(not r.passed for r in results)
        if as_json:
            rows = []
            for result, (_, vector) in zip(results, items, strict=False):
                row = result_json(result)
                row["expect"] = sv.expected_end(vector)
                rows.append(row)
            stdout.print(
                json.dumps({"results": rows, "passed": len(results) - failed, "failed": failed})
            )
        elif results:
            stdout.print(results_table(results))
            style = "green" if not failed else "bold red"
            stdout.print(Text(f"{len(results) - failed} passed, {failed} failed", style=style))
        if unreachable:
            fail(unreachable, ExitCode.TRANSPORT)
        if len(results) < len(items):
            interrupted(f"{len(items) - len(results)} of {len(items)} vector(s) not served")
        if failed:
            raise typer.Exit(int(ExitCode.DECLINED))


def _terminal_side(path: Path, vector: vx.Vector) -> vx.Vector:
    """The vector, when it is a terminal-side one; VectorError otherwise."""
    from reader import vectors as vx

    if vector.side is not vx.Side.TERMINAL:
        raise vx.VectorError(
            "a card-side vector: `hcepay vectors replay` runs it against a card", str(path)
        )
    return vector
