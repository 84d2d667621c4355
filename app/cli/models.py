"""`finetune models`: list, show, delete, and download weights with every file checked against its SHA-256."""

from __future__ import annotations

import hashlib
import json
import os
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import typer
from rich.progress import Progress, TaskID

from app.cli.client import ApiClient, path_segment
from app.cli.context import CliState, JsonOption, state_of
from app.cli.errors import CliError
from app.cli.render import details, emit_json, print_table, size, table, timestamp, transfer_progress

models_app = typer.Typer(help="Base models and your fine-tuned models.", no_args_is_help=True)

CHUNK_BYTES = 1024 * 1024
LOCAL_MANIFEST = "manifest.json"


class ArtifactKind(StrEnum):
    adapter = "adapter"
    merged = "merged"


class ChecksumMismatch(CliError):
    def __init__(self, path: str, expected: str, actual: str, expected_bytes: int, actual_bytes: int) -> None:
        super().__init__(
            f"SHA-256 mismatch for {path}: the manifest says {expected} ({expected_bytes} bytes), "
            f"the download is {actual} ({actual_bytes} bytes). The file was not kept.",
            hint="Retry the download; if it fails again the weights on the server are damaged.",
        )


def model_path(model: str, suffix: str = "") -> str:
    return f"/v1/models/{path_segment(model)}{suffix}"


def weights_of(model: dict[str, Any]) -> list[str]:
    """What a model's weights are: its artifacts, or a checkpoint (`ft:…:ckpt-step-N`)."""
    return list(model.get("artifacts") or (["checkpoint"] if model.get("checkpoint") else []))


@models_app.command("list")
def list_models(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Base models open for fine-tuning and your fine-tuned models."""
    state = state_of(ctx)
    page = state.client().get("/v1/models")
    if state.json:
        emit_json(page)
        return
    # SERVED: `finetune chat` (and /v1/chat/completions) answers with it.
    rows = [[model["id"], model.get("owned_by"), model.get("parent"), ", ".join(weights_of(model)),
             "yes" if model.get("served") else "no", timestamp(model.get("created"))]
            for model in page["data"]]  # fmt: skip
    headers = ["ID", "OWNED BY", "BASE", "WEIGHTS", "SERVED", "CREATED"]
    print_table(state.out, table(headers, rows, ids=("ID", "OWNED BY", "BASE")))


@models_app.command("show")
def show(ctx: typer.Context, model: Annotated[str, typer.Argument(help="A model id.")],
         json_output: JsonOption = False) -> None:  # fmt: skip
    """One model."""
    state = state_of(ctx)
    found = state.client().get(model_path(model))
    if state.json:
        emit_json(found)
        return
    registry = found.get("registry") or {}
    state.out.print(
        details(
            [
                ("id", found["id"]),
                ("owned by", found.get("owned_by")),
                ("created", timestamp(found.get("created"))),
                ("base model", found.get("parent")),
                ("job", found.get("job_id")),
                ("weights", ", ".join(found.get("artifacts") or []) or None),
                ("registry", f"{registry.get('name')} v{registry.get('version')}" if registry.get("name") else None),
            ]
        )
    )


@models_app.command("delete")
def delete(ctx: typer.Context, model: Annotated[str, typer.Argument(help="A fine-tuned model id (ft:...).")],
           json_output: JsonOption = False) -> None:  # fmt: skip
    """Delete a fine-tuned model and its weights."""
    state = state_of(ctx)
    deleted = state.client().delete(model_path(model))
    if state.json:
        emit_json(deleted)
        return
    state.out.print(f"Deleted {deleted['id']}.")


@models_app.command("download")
def download(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(help="A fine-tuned model id (ft:...).")],
    directory: Annotated[Path, typer.Argument(help="Where to put the files (created if missing).", file_okay=False)],
    kind: Annotated[ArtifactKind, typer.Option(help="The LoRA adapter or the merged weights.")] = ArtifactKind.adapter,
    json_output: JsonOption = False,
) -> None:
    """Download the adapter or merged weights, checking every file's SHA-256 against the manifest."""
    state = state_of(ctx)
    files = download_model(state, model, directory, kind.value)
    if state.json:
        emit_json({"object": "model.download", "model": model, "kind": kind.value,
                   "directory": str(directory.resolve()), "files": files})  # fmt: skip
        return
    fetched = sum(1 for entry in files if entry["status"] == "downloaded")
    total = sum(int(entry["bytes"]) for entry in files)
    state.out.print(
        f"{len(files)} file(s), {size(total)}, SHA-256 verified ({fetched} downloaded, {len(files) - fetched} already "
        f"present) in {directory}."
    )


def download_model(state: CliState, model: str, directory: Path, kind: str) -> list[dict[str, Any]]:
    client = state.client()
    manifest: list[dict[str, Any]] = client.get(model_path(model, "/files"), {"kind": kind})["data"]
    directory.mkdir(parents=True, exist_ok=True)
    results = []
    with transfer_progress(state.err, disabled=state.json) as progress:
        task = progress.add_task(f"Downloading {kind}", total=sum(int(entry["bytes"]) for entry in manifest))
        for entry in manifest:
            target = _target(directory, str(entry["path"]))
            if _matches(target, entry):
                progress.advance(task, int(entry["bytes"]))
                status = "present"
            else:
                _fetch(client, model, kind, entry, target, progress, task)
                status = "downloaded"
            results.append({**entry, "status": status})
    # Kept beside the files so they can be checked again later with sha256sum or the like.
    (directory / LOCAL_MANIFEST).write_text(json.dumps({"model": model, "kind": kind, "files": manifest}, indent=1))
    return results


def _target(directory: Path, relative: str) -> Path:
    """The manifest's path under `directory`; a path that would escape it is refused."""
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise CliError(f"The manifest names an unsafe path: {relative!r}; nothing was written for it.")
    return directory.joinpath(*pure.parts)


def _matches(target: Path, entry: dict[str, Any]) -> bool:
    """An earlier download of the same file is kept rather than fetched again."""
    if not target.is_file() or target.stat().st_size != int(entry["bytes"]):
        return False
    digest = hashlib.sha256()
    with target.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest() == entry["sha256"]


def _fetch(client: ApiClient, model: str, kind: str, entry: dict[str, Any], target: Path, progress: Progress,
           task: TaskID) -> None:  # fmt: skip
    """Stream one file to a partial file while hashing it; only a verified file takes its real name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest, received = hashlib.sha256(), 0
    try:
        with client.stream(model_path(model, "/file"), params={"path": entry["path"], "kind": kind}) as response,\
                partial.open("wb") as sink:  # fmt: skip
            for chunk in response.iter_bytes(CHUNK_BYTES):
                sink.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                progress.advance(task, len(chunk))
        if digest.hexdigest() != entry["sha256"] or received != int(entry["bytes"]):
            raise ChecksumMismatch(str(entry["path"]), str(entry["sha256"]), digest.hexdigest(),
                                   int(entry["bytes"]), received)  # fmt: skip
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
