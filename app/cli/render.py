"""Human output (rich tables and key/value views) and machine output (JSON on stdout, nothing else)."""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table
from rich.text import Text

from app.cli.errors import ApiError, CliError

EMPTY = "-"
# The narrowest a folded (non-id) column may become before rows are shown as blocks instead.
MIN_FOLDED_WIDTH = 8


def emit_json(value: Any) -> None:
    """The only thing a `--json` command writes to stdout."""
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def emit_json_line(value: Any) -> None:
    """One compact JSON document per line, for streams (`jobs watch --json`)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def text(value: Any) -> str:
    """A cell: markup-escaped, `-` for nothing."""
    if value is None or value == "" or value == [] or value == {}:
        return EMPTY
    if isinstance(value, bool):
        return "true" if value else "false"  # as in JSON, which is how values are given (--hp packing=false)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return escape(json.dumps(value, ensure_ascii=False))
    return escape(str(value))


def timestamp(seconds: int | float | None) -> str:
    if not seconds:
        return EMPTY
    return datetime.fromtimestamp(seconds).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def size(count: int | None) -> str:
    if count is None:
        return EMPTY
    if count < 1024:
        return f"{count} B"
    amount = count / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if amount < 1024:
            return f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return EMPTY
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def table(
    columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None, ids: Collection[str] = ("ID",)
) -> IdTable:
    """A table whose `ids` columns are never wrapped or cut (see `IdTable`); the others fold to fit."""
    return IdTable(list(columns), [[text(cell) for cell in row] for row in rows], title, frozenset(ids))


def print_table(console: Console, grid: IdTable) -> None:
    """Print `grid` uncropped: on a terminal narrower than an id, the id's line runs past the edge (the
    terminal folds it on screen, a copy takes it whole) instead of being cut at the last column."""
    console.print(grid, crop=False)


class IdTable:
    """Rows as a rich table in which ids stay whole, whatever the terminal's width.

    An id cut in two cannot be copied into the next command. The id columns get their full width and
    the other columns share what is left (folding their text); when even that leaves them too little
    room, each row is shown as a block of `COLUMN value` lines instead, the ids first.
    """

    def __init__(self, columns: list[str], rows: list[list[str]], title: str | None, ids: frozenset[str]) -> None:
        self.columns, self.rows, self.title, self.ids = columns, rows, title, ids

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        shares = self._shares(options.max_width)
        yield self._as_table(shares) if shares is not None else self._as_blocks()

    def _natural(self, index: int) -> int:
        cells = [self.columns[index], *(row[index] for row in self.rows)]
        return max(Text.from_markup(cell).cell_len for cell in cells)

    def _shares(self, width: int) -> list[int] | None:
        """Each column's content width at `width`, the ids whole; None when the others would get too little."""
        natural = [self._natural(index) for index in range(len(self.columns))]
        others = [index for index, name in enumerate(self.columns) if name not in self.ids]
        # Borders and padding: one rule per column plus one, and a space on each side of every cell.
        room = width - (3 * len(self.columns) + 1) - sum(natural[i] for i in range(len(natural)) if i not in others)
        if room < sum(min(natural[index], MIN_FOLDED_WIDTH) for index in others):
            return None
        shares = list(natural)
        pending = sorted(others, key=lambda index: natural[index])
        while pending:  # max-min fair: a narrow column keeps its width, the wide ones share the rest
            fair = room // len(pending)
            index = pending.pop(0)
            shares[index] = min(natural[index], fair)
            room -= shares[index]
        return shares

    def _as_table(self, shares: list[int]) -> Table:
        grid = Table(title=self.title, header_style="bold", title_justify="left")
        for name, share in zip(self.columns, shares, strict=True):
            if name in self.ids:
                grid.add_column(name, no_wrap=True, min_width=share)
            else:
                grid.add_column(name, overflow="fold", max_width=share)
        for row in self.rows:
            grid.add_row(*row)
        return grid

    def _as_blocks(self) -> Group:
        order = sorted(range(len(self.columns)), key=lambda index: self.columns[index] not in self.ids)
        label_width = max(len(name) for name in self.columns) + 2
        blocks: list[RenderableType] = [Text(self.title, style="bold")] if self.title else []
        for row in self.rows:
            for index in order:
                blocks.append(self._block_line(self.columns[index], row[index], label_width))
            blocks.append(Text(""))
        return Group(*blocks)

    def _block_line(self, name: str, cell: str, label_width: int) -> RenderableType:
        if name in self.ids:  # one unbroken line, whatever the width (printed uncropped: `print_table`)
            line = Text(name.ljust(label_width), style="bold", no_wrap=True, overflow="ignore")
            return line.append_text(Text.from_markup(cell))
        grid = Table.grid()
        grid.add_column(style="bold", no_wrap=True, min_width=label_width)
        grid.add_column(overflow="fold")
        grid.add_row(name, Text.from_markup(cell))
        return grid


def details(pairs: Iterable[tuple[str, Any]], title: str | None = None) -> Table:
    """A key/value view; rows whose value is None are left out."""
    grid = Table.grid(padding=(0, 2))
    grid.title = title
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for key, value in pairs:
        if value is not None:
            grid.add_row(key, text(value))
    return grid


def show_error(console: Console, error: CliError) -> None:
    """The API's message and `param`, the per-line report of a rejected file, and a hint."""
    if isinstance(error, ApiError):
        lines = error.line_errors()
        label = f"HTTP {error.status_code}" + (f", {error.code}" if error.code else "")
        console.print(f"[bold red]Error[/] ({escape(label)}): {escape(_summary(error.message, lines))}")
        if error.param:
            console.print(f"  param: {escape(str(error.param))}")
        if lines:
            console.print(line_errors_table(lines))
            listed = _reported_count(error)
            if listed > len(lines):
                console.print(f"  ... and {listed - len(lines)} more problem(s) the server did not list.")
    else:
        console.print(f"[bold red]Error[/]: {escape(error.message)}")
    hint = error.hint or _hint_for(error)
    if hint:
        console.print(f"  hint: {escape(hint)}")


def _summary(message: str, lines: list[dict[str, Any]]) -> str:
    """The API's message without the inline list of bad lines that the table below shows in full."""
    if lines:
        head, found, _ = message.partition(f" line {lines[0].get('line')}:")
        if found and head.strip():
            return head.strip()
    return message


def line_errors_table(lines: list[dict[str, Any]]) -> IdTable:
    rows = [(entry.get("line"), entry.get("code"), entry.get("param"), entry.get("message")) for entry in lines]
    return table(["LINE", "CODE", "PARAM", "MESSAGE"], rows, title="Problems found")


def _reported_count(error: ApiError) -> int:
    count = error.details.get("error_count") if isinstance(error.details, dict) else None
    return int(count) if isinstance(count, int) else 0


def _hint_for(error: CliError) -> str | None:
    if isinstance(error, ApiError) and error.status_code == 401:
        return "The API key was refused: run `finetune login` or set FINETUNE_API_KEY."
    return None


def stdout_console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def transfer_progress(console: Console, *, disabled: bool) -> Progress:
    """A byte progress bar (on stderr for the commands), silent in --json mode."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=disabled,
    )
