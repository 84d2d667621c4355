"""`finetune jobs`: estimate, create, list, show, control, events, checkpoints and the live `watch`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from app.cli.client import path_segment
from app.cli.context import CliState, JsonOption, state_of
from app.cli.errors import CliError
from app.cli.files import upload_file
from app.cli.render import details, duration, emit_json, print_table, table, timestamp
from app.cli.watch import watch_job

jobs_app = typer.Typer(help="Create, follow and control fine-tuning jobs.", no_args_is_help=True)

JOBS = "/v1/fine_tuning/jobs"
ESTIMATE_TIMEOUT_SECONDS = 300.0  # the API waits for a CPU worker to count the tokens of both files


class MethodChoice(StrEnum):
    sft = "sft"
    dpo = "dpo"


METHOD_TYPES = {MethodChoice.sft: "supervised", MethodChoice.dpo: "dpo"}


def job_path(job_id: str, suffix: str = "") -> str:
    return f"{JOBS}/{path_segment(job_id)}{suffix}"


def resolve_file(state: CliState, value: str, option: str) -> str:
    """A file id is used as is; a local path is uploaded first (its id is used)."""
    local = Path(value).expanduser()
    if local.is_file():
        created = upload_file(state, local)
        if not state.json:
            state.err.print(f"Uploaded {local.name} as {created['id']}.")
        return str(created["id"])
    if value.startswith("file-"):
        return value
    raise CliError(f"{option}: '{value}' is neither a file id (file-...) nor a local file.")


def _key_values(pairs: list[str], option: str) -> list[tuple[str, str]]:
    parsed = []
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise CliError(f"{option}: expected KEY=VALUE, got '{pair}'.")
        parsed.append((key, value))
    return parsed


def parse_metadata(pairs: list[str]) -> dict[str, str] | None:
    return dict(_key_values(pairs, "--metadata")) or None


def parse_hyperparameters(pairs: list[str]) -> dict[str, Any]:
    """Values are JSON when they parse (`4`, `false`, `["q_proj"]`), else plain strings (`cosine`)."""
    chosen: dict[str, Any] = {}
    for key, value in _key_values(pairs, "--hp"):
        try:
            chosen[key] = json.loads(value)
        except ValueError:
            chosen[key] = value
    return chosen


def job_body(model: str, method: MethodChoice, training_file: str, validation_file: str | None,
             hyperparameters: dict[str, Any], suffix: str | None, seed: int | None,
             metadata: dict[str, str] | None) -> dict[str, Any]:  # fmt: skip
    """OpenAI's create body; the platform's superset knobs sit in method.<type>.hyperparameters."""
    method_type = METHOD_TYPES[method]
    body: dict[str, Any] = {
        "model": model,
        "training_file": training_file,
        "method": {"type": method_type, method_type: {"hyperparameters": hyperparameters}},
    }
    optional = {"validation_file": validation_file, "suffix": suffix, "seed": seed, "metadata": metadata}
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


def show_estimate(state: CliState, estimate: dict[str, Any]) -> None:
    state.out.print(
        details(
            [
                ("model", estimate.get("model")),
                ("method", estimate.get("method")),
                ("training examples", estimate.get("training_examples")),
                ("training tokens", estimate.get("training_tokens")),
                ("validation examples", estimate.get("validation_examples")),
                ("validation tokens", estimate.get("validation_tokens")),
                ("too-long examples", estimate.get("too_long_examples")),
                ("total steps", estimate.get("total_steps")),
                ("trained tokens", estimate.get("trained_tokens")),
                ("estimated time", duration(estimate.get("estimated_seconds"))),
                ("estimated GPU hours", estimate.get("estimated_gpu_hours")),
            ],
            title="Estimate",
        )
    )
    state.out.print(details(sorted((estimate.get("hyperparameters") or {}).items()), title="Resolved hyperparameters"))


def show_job(state: CliState, job: dict[str, Any]) -> None:
    progress = job.get("progress") or {}
    error = job.get("error") or {}
    method = job.get("method") or {}
    method_type = method.get("type", "supervised")
    state.out.print(
        details(
            [
                ("id", job["id"]),
                ("status", job.get("status")),
                ("model", job.get("model")),
                ("fine-tuned model", job.get("fine_tuned_model")),
                ("method", method_type),
                ("training file", job.get("training_file")),
                ("validation file", job.get("validation_file")),
                ("progress", _progress_text(progress)),
                ("trained tokens", job.get("trained_tokens")),
                ("created", timestamp(job.get("created_at"))),
                ("estimated finish", timestamp(job.get("estimated_finish")) if job.get("estimated_finish") else None),
                ("finished", timestamp(job.get("finished_at")) if job.get("finished_at") else None),
                ("error", _error_text(error) if error else None),
                ("result files", job.get("result_files") or None),
                ("metadata", job.get("metadata")),
            ]
        )
    )
    hyperparameters = (method.get(method_type) or {}).get("hyperparameters") or job.get("hyperparameters") or {}
    state.out.print(details(sorted(hyperparameters.items()), title="hyperparameters"))


def metrics_text(metrics: dict[str, Any]) -> str:
    """`train_loss=6.751 train_mean_token_accuracy=0.1364`: four significant digits, the step left out."""
    shown = [f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
             for key, value in metrics.items() if key != "step"]  # fmt: skip
    return " ".join(shown)


def _progress_text(progress: dict[str, Any]) -> str | None:
    step, total = progress.get("step"), progress.get("total_steps")
    if step is None and total is None:
        return None
    attempt = progress.get("attempt")
    return f"step {step or 0}/{total or '?'}" + (f" (attempt {attempt})" if attempt else "")


def _error_text(error: dict[str, Any]) -> str:
    param = f" (param: {error['param']})" if error.get("param") else ""
    return f"{error.get('code')}: {error.get('message')}{param}"


@jobs_app.command("create")
def create(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", "-m", help="Base model id from `finetune models list`.")],
    train: Annotated[str, typer.Option("--train", "-t", help="Training file: a file id or a local path.")],
    validation: Annotated[str | None, typer.Option("--validation", help="Validation file id or path.")] = None,
    method: Annotated[MethodChoice, typer.Option(help="sft (chat) or dpo (preference pairs).")] = MethodChoice.sft,
    epochs: Annotated[int | None, typer.Option(min=1, help="Epochs (n_epochs).")] = None,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Batch size.")] = None,
    learning_rate: Annotated[float | None, typer.Option(help="Absolute learning rate.")] = None,
    lr_multiplier: Annotated[float | None, typer.Option(help="OpenAI's learning_rate_multiplier.")] = None,
    lora_r: Annotated[int | None, typer.Option(min=1, help="LoRA rank.")] = None,
    lora_alpha: Annotated[int | None, typer.Option(min=1, help="LoRA alpha.")] = None,
    lora_dropout: Annotated[float | None, typer.Option(help="LoRA dropout.")] = None,
    full: Annotated[bool, typer.Option("--full", help="Full fine-tuning instead of LoRA.")] = False,
    qlora: Annotated[bool, typer.Option("--qlora", help="QLoRA: 4-bit base model with LoRA.")] = False,
    max_seq_length: Annotated[int | None, typer.Option(min=1, help="Maximum sequence length in tokens.")] = None,
    beta: Annotated[float | None, typer.Option(help="DPO beta.")] = None,
    suffix: Annotated[str | None, typer.Option(help="Suffix of the fine-tuned model name.")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Random seed.")] = None,
    metadata: Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable.")] = None,
    hp: Annotated[
        list[str] | None,
        typer.Option(
            "--hp", help="Any other hyperparameter as KEY=VALUE (JSON value), repeatable: --hp packing=false."
        ),
    ] = None,
    estimate: Annotated[
        bool,
        typer.Option(
            "--estimate", help="Only print the estimate: no job (a local file is still uploaded, to count its tokens)."
        ),
    ] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Follow the job live after creating it.")] = False,
    live: Annotated[
        bool | None, typer.Option("--live/--plain", help="With --watch: live view or a line per event.")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Create a fine-tuning job (local files are uploaded first); --estimate prints cost and time only."""
    state = state_of(ctx)
    hyperparameters = {
        "n_epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "learning_rate_multiplier": lr_multiplier,
        "lora_r": lora_r,
        "lora_alpha": lora_alpha,
        "lora_dropout": lora_dropout,
        "fine_tune_type": "full" if full else None,
        "quantization": "qlora" if qlora else None,
        "max_seq_length": max_seq_length,
        "beta": beta,
    }
    chosen = {
        **parse_hyperparameters(hp or []),
        **{key: value for key, value in hyperparameters.items() if value is not None},
    }
    wanted_metadata = parse_metadata(metadata or [])
    training_file = resolve_file(state, train, "--train")
    validation_file = resolve_file(state, validation, "--validation") if validation else None
    body = job_body(model, method, training_file, validation_file, chosen, suffix, seed, wanted_metadata)
    client = state.client()
    if estimate:
        figures = client.post(f"{JOBS}/estimate", body, timeout=ESTIMATE_TIMEOUT_SECONDS)
        if state.json:
            emit_json(figures)
        else:
            show_estimate(state, figures)
        return
    job = client.post(JOBS, body)
    if watch:
        raise typer.Exit(watch_job(state, job["id"], live=live))
    if state.json:
        emit_json(job)
        return
    state.out.print(f"Created [bold]{job['id']}[/] ({job['status']}). Follow it with: finetune jobs watch {job['id']}")


@jobs_app.command("list")
def list_jobs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Jobs per page.")] = 20,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow every page.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Your jobs, newest first."""
    state = state_of(ctx)
    jobs = fetch_pages(state, JOBS, limit, all_pages)
    if state.json:
        emit_json({"object": "list", "data": jobs})
        return
    rows = [[job["id"], job.get("model"), job.get("status"), _progress_text(job.get("progress") or {}),
             job.get("fine_tuned_model"), timestamp(job.get("created_at"))] for job in jobs]  # fmt: skip
    columns = ["ID", "MODEL", "STATUS", "PROGRESS", "FINE-TUNED MODEL", "CREATED"]
    print_table(state.out, table(columns, rows, ids=("ID", "MODEL", "FINE-TUNED MODEL")))


def fetch_pages(
    state: CliState, path: str, limit: int, all_pages: bool, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """OpenAI-style pages followed through `after` while `has_more` says so; `params` go with every page."""
    items: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        page = state.client().get(path, {**(params or {}), "limit": limit, "after": after})
        items += page["data"]
        if not (all_pages and page.get("has_more") and page["data"]):
            return items
        after = page["data"][-1]["id"]


@jobs_app.command("show")
def show(ctx: typer.Context, job_id: Annotated[str, typer.Argument(help="ftjob-...")],
         json_output: JsonOption = False) -> None:  # fmt: skip
    """One job: status, progress, files, hyperparameters, error."""
    state = state_of(ctx)
    job = state.client().get(job_path(job_id))
    if state.json:
        emit_json(job)
    else:
        show_job(state, job)


def _control(ctx: typer.Context, job_id: str, action: str, done: str) -> None:
    state = state_of(ctx)
    job = state.client().post(job_path(job_id, f"/{action}"))
    if state.json:
        emit_json(job)
        return
    state.out.print(f"{done} {job['id']}: status is now {job['status']}.")


@jobs_app.command("cancel")
def cancel(ctx: typer.Context, job_id: Annotated[str, typer.Argument(help="ftjob-...")],
           json_output: JsonOption = False) -> None:  # fmt: skip
    """Cancel a job (a running one saves a checkpoint first)."""
    _control(ctx, job_id, "cancel", "Cancel requested for")


@jobs_app.command("pause")
def pause(ctx: typer.Context, job_id: Annotated[str, typer.Argument(help="ftjob-...")],
          json_output: JsonOption = False) -> None:  # fmt: skip
    """Pause a job at a checkpoint."""
    _control(ctx, job_id, "pause", "Pause requested for")


@jobs_app.command("resume")
def resume(ctx: typer.Context, job_id: Annotated[str, typer.Argument(help="ftjob-...")],
           json_output: JsonOption = False) -> None:  # fmt: skip
    """Resume a paused job from its latest checkpoint."""
    _control(ctx, job_id, "resume", "Resumed")


@jobs_app.command("events")
def list_events(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="ftjob-...")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="The newest this many events.")] = 50,
    json_output: JsonOption = False,
) -> None:
    """A job's recent events, oldest first (the API pages newest first)."""
    state = state_of(ctx)
    page = state.client().get(job_path(job_id, "/events"), {"limit": limit})
    if state.json:
        emit_json(page)
        return
    rows = [[timestamp(event.get("created_at")), event.get("level"), event.get("type"), event.get("message")]
            for event in reversed(page["data"])]  # fmt: skip
    print_table(state.out, table(["TIME", "LEVEL", "TYPE", "MESSAGE"], rows))


@jobs_app.command("checkpoints")
def list_checkpoints(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="ftjob-...")],
    json_output: JsonOption = False,
) -> None:
    """A job's checkpoints still on disk, newest first."""
    state = state_of(ctx)
    page = state.client().get(job_path(job_id, "/checkpoints"), {"limit": 100})
    if state.json:
        emit_json(page)
        return
    rows = [[checkpoint["id"], checkpoint.get("step_number"), metrics_text(checkpoint.get("metrics") or {}),
             timestamp(checkpoint.get("created_at"))] for checkpoint in page["data"]]  # fmt: skip
    print_table(state.out, table(["ID", "STEP", "METRICS", "CREATED"], rows))


@jobs_app.command("watch")
def watch(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="ftjob-...")],
    max_retries: Annotated[int, typer.Option(min=0, help="Reconnects in a row before giving up.")] = 20,
    live: Annotated[
        bool | None,
        typer.Option("--live/--plain", help="Live view, or a line per event (default: live on a terminal)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Follow a job until it ends; exit code 0 succeeded, 1 failed, 2 cancelled, 3 paused, 4 error."""
    raise typer.Exit(watch_job(state_of(ctx), job_id, max_retries=max_retries, live=live))
