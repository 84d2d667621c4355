"""Human output (rich tables and key/value views) and machine output (JSON on stdout, nothing else)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from app.cli.errors import ApiError, CliError

EMPTY = "-"


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


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> Table:
    grid = Table(title=title, header_style="bold", title_justify="left")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(text(cell) for cell in row))
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


def line_errors_table(lines: list[dict[str, Any]]) -> Table:
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
