"""`hcepay vectors replay` and `hcepay vectors record` (PROTOCOL.md §8, docs/conformance.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from reader import vectors as vx
from reader.cli_common import ExitCode, JsonOption, fail, stderr, stdout

PROGRESS_THRESHOLD = 8  # show a progress bar from this many vectors on
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


def difference_cell(difference: vx.Difference) -> Text:
    """The table cell of a difference: where, then expected and got with the bytes marked."""
    head = difference.describe().split(":", 1)[0]
    cell = Text(head + "\n", style="yellow")
    if difference.offset is None:
        cell.append(f"expected {difference.expected or '(nothing)'}\n")
        cell.append(f"got      {difference.got or '(nothing)'}")
        return cell
    cell.append("expected ")
    cell.append(marked(difference.expected, difference.positions, around=difference.offset))
    cell.append("\ngot      ")
    cell.append(marked(difference.got, difference.positions, around=difference.offset))
    return cell


def results_table(results: Sequence[vx.ReplayResult]) -> Table:
    """The replay table: vector, side, steps, verdict, first difference."""
    table = Table(title="hcepay conformance replay", show_lines=False)
    table.add_column("vector")
    table.add_column("side")
    table.add_column("steps", justify="right")
    table.add_column("verdict")
    table.add_column("first difference")
    for result in results:
        verdict = Text("pass", style="green") if result.passed else Text("FAIL", style="bold red")
        difference = difference_cell(result.difference) if result.difference else Text("")
        table.add_row(
            result.name,
            result.side.value,
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
    }
    if result.verdict is not None:
        out["terminal_verdict"] = result.verdict.value
        out["terminal_reason"] = result.reason
    if result.difference is not None:
        d = result.difference
        out["difference"] = {
            "problem": d.problem.value,
            "step": d.step,
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
    results: list[vx.ReplayResult] = []
    if not progress:
        return [_with_path(replay(v), p) for p, v in items]
    with Progress(console=stderr, transient=True) as bar:
        task = bar.add_task("replaying", total=len(items))
        for path, vector in items:
            results.append(_with_path(replay(vector), path))
            bar.advance(task)
    return results


def _with_path(result: vx.ReplayResult, path: Path) -> vx.ReplayResult:
    from dataclasses import replace

    return replace(result, path=str(path))


def default_vectors_folder() -> Path:
    """The repository's `vectors/` folder (next to the packages)."""
    return Path(__file__).resolve().parent.parent / "vectors"


def register(app: typer.Typer) -> None:
    """Add `hcepay vectors replay` and `hcepay vectors record` to the root app."""
    group = typer.Typer(
        help="Conformance vectors (PROTOCOL.md §8): replay them, record new ones.",
        no_args_is_help=True,
    )
    app.add_typer(group, name="vectors")

    @group.command("replay")
    def replay_command(
        paths: Annotated[
            list[Path] | None,
            typer.Argument(help="Vector files or folders (default: the repository's vectors/)."),
        ] = None,
        reader_name: Annotated[
            str | None,
            typer.Option("--reader", help="Replay card-side vectors on the card in this reader."),
        ] = None,
        in_process: Annotated[
            bool,
            typer.Option("--in-process", help="Replay against our applet in-process (default)."),
        ] = False,
        profiles: Annotated[
            Path | None,
            typer.Option("--profiles", help="Profiles folder (default: vectors/profiles)."),
        ] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Replay vectors; exit 0 only when every one passes (1 when any fails)."""
        if reader_name is not None and in_process:
            fail("choose one of --reader and --in-process", ExitCode.USAGE)
        folder = default_vectors_folder()
        try:
            files = vx.collect(paths or [folder])
            items = [(path, vx.load(path)) for path in files]
        except vx.VectorError as exc:
            fail(str(exc), ExitCode.USAGE)
        if not items:
            fail("no vector files found", ExitCode.USAGE)
        profiles_folder = profiles or folder / "profiles"
        replay = _replayer(reader_name, profiles_folder)
        results = run_all(items, replay, progress=not as_json and len(items) >= PROGRESS_THRESHOLD)
        failed = sum(not r.passed for r in results)
        if as_json:
            summary = {"passed": len(results) - failed, "failed": failed}
            payload = {"results": [result_json(r) for r in results], **summary}
            stdout.print_json(json.dumps(payload))
        else:
            stdout.print(results_table(results))
            style = "green" if not failed else "bold red"
            stdout.print(Text(f"{len(results) - failed} passed, {failed} failed", style=style))
        if failed:
            raise typer.Exit(int(ExitCode.DECLINED))


def _replayer(
    reader_name: str | None, profiles_folder: Path
) -> Callable[[vx.Vector], vx.ReplayResult]:
    """The function that replays one vector: card side in-process or on a reader."""
    return lambda vector: vx.replay_vector(vector, profiles_folder, reader=reader_name)
