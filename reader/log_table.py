"""`hcepay log`'s table, printed a batch of rows at a time: a terminal's log reaches 10^5
rows, which rich laid out as one table in 45 s and 790 MB. The column widths come from a
first reading of the rows (reader/cli_pay.py), so that each batch is laid out alike."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from rich.box import HEAVY_HEAD, Box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from reader.cli_common import format_amount, stdout
from reader.log import LogRow

TABLE_BATCH: Final = 500  # rows printed at a time by `hcepay log` (about 60 kB of text)
LOG_COLUMNS: Final = ("id", "time", "account", "amount", "cur", "ATC", "verdict", "serial", "CA")


def row_cells(r: LogRow, failures: dict[int, str] | None) -> list[str]:
    """One row of `hcepay log` as its cells; with --verify (`failures`), why it fails or ok."""
    o = r.outcome
    cells = [
        str(r.id),
        o.time.isoformat(sep=" "),
        o.account,
        format_amount(o.amount),
        str(o.currency),
        f"{o.atc:04X}",
        str(o.verdict),
        str(o.serial),
        f"{o.ca_index:02X}",
    ]
    if failures is not None:
        cells.append(failures.get(r.id) or "ok")
    return cells


def cell_width(text: str) -> int:
    """The columns a cell takes in a rich table: its widest line."""
    return max(map(cell_len, text.splitlines()), default=0)


@dataclass
class Layout:
    """What the first reading of the rows learns for printing them: each column's width
    (its widest cell, as rich measures it) and whether every cell is printable ASCII, one
    line, so that a row can be written as text of those widths."""

    widths: list[int]
    plain: bool = True

    def add(self, cells: list[str]) -> None:
        joined = "".join(cells)
        if self.plain and joined.isascii() and joined.isprintable():
            self.widths = [max(w, len(c)) for w, c in zip(self.widths, cells, strict=True)]
        else:  # a hand-edited value: wide characters, a line break (rich lays them out)
            self.plain = False
            self.widths = [max(w, cell_width(c)) for w, c in zip(self.widths, cells, strict=True)]


def fit(columns: tuple[str, ...], widths: list[int], room: int) -> list[int]:
    """The column widths rich gives a table of these columns, whose widest cells are
    `widths` wide, in a console of `room` columns: the layout `hcepay log` had when rich
    laid out the whole table, so that every batch folds alike and as before. Rich sizes a
    column by its widest cell alone, so one row of cells that wide stands for all the rows;
    its widths are read off the top rule of that row's table (rich says them nowhere else)."""
    probe = Table(box=HEAVY_HEAD)
    for column in columns:
        probe.add_column(column, overflow="fold")
    probe.add_row(*("x" * width for width in widths))
    console = Console(
        file=io.StringIO(), width=room, legacy_windows=False, safe_box=False, color_system=None
    )
    lines = iter(Segment.split_lines(console.render(probe)))  # not cut to the width
    top = "".join(segment.text for segment in next(lines))
    return [max(len(rule) - 2, 0) for rule in top[1:-1].split(HEAVY_HEAD.top_divider)]


class TablePart:
    """A table's lines without its top rule (a batch after the first) or its bottom rule
    (a batch before the last): a long table printed a batch at a time reads as one."""

    def __init__(self, table: Table, *, top: bool, bottom: bool) -> None:
        self.table = table
        self.top = top
        self.bottom = bottom

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lines = list(Segment.split_lines(console.render(self.table, options)))
        for line in lines[0 if self.top else 1 : None if self.bottom else -1]:
            yield from line
            yield Segment.line()


class Written:
    """Lines of text written as they are, then a line break: a string printed by rich
    becomes one rich Text per line (a third of the time of a table of 10^5 rows)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Segment(self.text)
        yield Segment.line()


def batch_table(title: str | None, columns: tuple[str, ...], widths: list[int]) -> Table:
    """`hcepay log`'s table of fixed column widths: a batch of rows is laid out without
    measuring the others (rich measured every cell of 10^5 rows: 45 s, 790 MB)."""
    table = Table(title=title, show_header=title is not None)
    for column, width in zip(columns, widths, strict=True):
        table.add_column(column, width=width, overflow="fold")  # never cut a value short
    return table


def print_rows(
    rows: Iterator[LogRow],
    title: str,
    columns: tuple[str, ...],
    layout: Layout,
    count: int,
    failures: dict[int, str] | None,
) -> None:
    """The table of `count` rows, TABLE_BATCH rows per print."""
    room = stdout.width
    widths = layout.widths
    if table_width(widths) > room:
        widths = fit(columns, widths, room)
    head = batch_table(title, columns, widths)
    if layout.plain and min(widths) > 0 and table_width(widths) <= room:
        stdout.print(TablePart(head, top=True, bottom=False))
        box = (head.box or HEAVY_HEAD).substitute(stdout.options, safe=stdout.safe_box)
        batch: list[str] = []
        for r in rows:
            batch.append(row_text(row_cells(r, failures), widths, box))
            if len(batch) == TABLE_BATCH:
                stdout.print(Written("\n".join(batch)))
                batch = []
        batch.append(box.get_bottom([w + 2 for w in widths]))
        stdout.print(Written("\n".join(batch)))
        return
    part = head
    first = True
    for printed, r in enumerate(rows, 1):
        part.add_row(*row_cells(r, failures))
        if part.row_count == TABLE_BATCH and printed < count:
            stdout.print(TablePart(part, top=first, bottom=False))
            part, first = batch_table(None, columns, widths), False
    stdout.print(TablePart(part, top=first, bottom=True))


def table_width(widths: list[int]) -> int:
    """The columns a table of these column widths takes: each cell's two spaces, the rules."""
    return sum(widths) + 3 * len(widths) + 1


def row_text(cells: list[str], widths: list[int], box: Box) -> str:
    """A row of printable ASCII cells as rich lays it out in columns of these widths: each
    cell folded by rich's own wrap where it is wider than its column, the row as high as
    its highest cell (writing rows so is ten times faster than rendering a rich Table)."""
    folded = [cell_lines(c, w) for c, w in zip(cells, widths, strict=True)]
    height = max(map(len, folded))
    inner = f" {box.mid_vertical} "
    lines = []
    for i in range(height):
        parts = (f[i] if i < len(f) else " " * w for f, w in zip(folded, widths, strict=True))
        lines.append(f"{box.mid_left} {inner.join(parts)} {box.mid_right}")
    return "\n".join(lines)


@lru_cache(maxsize=1024)  # the values that repeat: verdicts, re-check failures, times
def cell_lines(text: str, width: int) -> tuple[str, ...]:
    """A cell's lines in a column `width` wide, each padded to it, as a rich Table folds
    them (overflow="fold": words kept whole where they fit, longer ones cut)."""
    if len(text) <= width:
        return (text.ljust(width),)
    lines = Text(text).wrap(stdout, width, justify="left", overflow="fold")
    return tuple(line.plain.ljust(width) for line in lines)
