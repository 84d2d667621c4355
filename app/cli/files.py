"""`finetune files`: upload (streamed, with the validation report on rejection), list, show, search, delete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.client import path_segment
from app.cli.context import CliState, JsonOption, state_of
from app.cli.errors import ApiError, CliError
from app.cli.multipart import MultipartUpload
from app.cli.render import details, emit_json, print_table, size, table, timestamp, transfer_progress

files_app = typer.Typer(help="Upload and manage training files.", no_args_is_help=True)

UPLOAD_TIMEOUT_SECONDS = 600.0  # the server validates every line while it receives the body


def upload_file(state: CliState, path: Path, purpose: str = "fine-tune") -> dict[str, Any]:
    """Upload one local file; the API's rejection (with every bad line) surfaces as an ApiError."""
    if not path.is_file():
        raise CliError(f"No such file: {path}")
    upload = MultipartUpload(path=path, fields={"purpose": purpose})
    client = state.client()
    with transfer_progress(state.err, disabled=state.json) as progress:
        task = progress.add_task(f"Uploading {path.name}", total=upload.file_bytes)
        created: dict[str, Any] = client.request(
            "POST",
            "/v1/files",
            content=upload.body(lambda sent: progress.advance(task, sent)),
            headers={"Content-Type": upload.content_type, "Content-Length": str(upload.content_length)},
            timeout=UPLOAD_TIMEOUT_SECONDS,
        )
    return created


def file_row(file: dict[str, Any]) -> list[Any]:
    statistics = file.get("statistics") or {}
    return [file["id"], file.get("filename"), size(file.get("bytes")), file.get("format"),
            statistics.get("examples"), file.get("status"), timestamp(file.get("created_at"))]  # fmt: skip


FILE_COLUMNS = ["ID", "FILENAME", "SIZE", "FORMAT", "EXAMPLES", "STATUS", "CREATED"]


def show_file(state: CliState, file: dict[str, Any]) -> None:
    statistics = file.get("statistics") or {}
    state.out.print(
        details(
            [
                ("id", file["id"]),
                ("filename", file.get("filename")),
                ("purpose", file.get("purpose")),
                ("size", size(file.get("bytes"))),
                ("status", file.get("status")),
                ("status details", file.get("status_details")),
                ("format", file.get("format")),
                ("created", timestamp(file.get("created_at"))),
                ("index", file.get("index_status")),
                ("exact duplicates", file.get("duplicates")),
                ("near duplicates", file.get("near_duplicates")),
            ]
        )
    )
    if statistics:
        state.out.print(details(sorted(statistics.items()), title="statistics"))


@files_app.command("upload")
def upload(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A JSONL file of chat or preference examples.", dir_okay=False)],
    purpose: Annotated[str, typer.Option(help="The file's purpose.")] = "fine-tune",
    json_output: JsonOption = False,
) -> None:
    """Upload a dataset; if the API rejects it, every bad line is printed as a table."""
    state = state_of(ctx)
    created = upload_file(state, path, purpose)
    if state.json:
        emit_json(created)
        return
    state.out.print(f"Uploaded [bold]{created['id']}[/] ({size(created.get('bytes'))}).")
    show_file(state, created)


@files_app.command("list")
def list_files(
    ctx: typer.Context,
    purpose: Annotated[str | None, typer.Option(help="Only files with this purpose.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="At most this many files.")] = 100,
    json_output: JsonOption = False,
) -> None:
    """Your files, newest first."""
    state = state_of(ctx)
    page = state.client().get("/v1/files", {"purpose": purpose, "limit": limit})
    if state.json:
        emit_json(page)
        return
    print_table(state.out, table(FILE_COLUMNS, [file_row(file) for file in page["data"]]))


@files_app.command("show")
def show(ctx: typer.Context, file_id: Annotated[str, typer.Argument(help="file-...")],
         json_output: JsonOption = False) -> None:  # fmt: skip
    """One file, with its validation statistics and duplicate counts."""
    state = state_of(ctx)
    file = state.client().get(f"/v1/files/{path_segment(file_id)}")
    if state.json:
        emit_json(file)
        return
    show_file(state, file)


@files_app.command("search")
def search(
    ctx: typer.Context,
    file_id: Annotated[str, typer.Argument(help="file-...")],
    query: Annotated[str, typer.Argument(help="What to look for (semantic search over the examples).")],
    limit: Annotated[int, typer.Option(min=1, max=100, help="At most this many results.")] = 10,
    json_output: JsonOption = False,
) -> None:
    """Examples of a file closest in meaning to QUERY."""
    state = state_of(ctx)
    try:
        found = state.client().get(f"/v1/files/{path_segment(file_id)}/search", {"q": query, "limit": limit})
    except ApiError as error:
        if error.status_code == 404 and error.param is None and error.message == "Not Found":
            error.hint = "This server does not offer file search (no /v1/files/{id}/search route)."
        raise
    results = found.get("data", []) if isinstance(found, dict) else found
    if state.json:
        emit_json(found)
        return
    if not results:
        state.out.print("No matching examples.")
        return
    state.out.print(search_table(results))


SEARCH_CELL_CHARS = 160


def search_table(results: list[dict[str, Any]]) -> Any:
    """Columns are the fields the results carry, in order of first appearance; long values are cut."""
    columns: list[str] = []
    for result in results:
        columns += [key for key in result if key not in columns and key != "object"]
    rows = [[_cell(result.get(column)) for column in columns] for result in results]
    return table([column.upper() for column in columns], rows)


def _cell(value: Any) -> Any:
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and len(value) > SEARCH_CELL_CHARS:
        return value[: SEARCH_CELL_CHARS - 1] + "…"
    return value


@files_app.command("delete")
def delete(ctx: typer.Context, file_id: Annotated[str, typer.Argument(help="file-...")],
           json_output: JsonOption = False) -> None:  # fmt: skip
    """Delete a file and its stored content."""
    state = state_of(ctx)
    deleted = state.client().delete(f"/v1/files/{path_segment(file_id)}")
    if state.json:
        emit_json(deleted)
        return
    state.out.print(f"Deleted {deleted['id']}.")
