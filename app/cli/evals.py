"""`finetune evals`: create an eval, run it (on given samples or a model's answers), show its runs and items."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.cli.client import path_segment
from app.cli.context import CliState, JsonOption, state_of
from app.cli.errors import ApiError, CliError, ExitCode
from app.cli.eval_requests import LocalRows, Prompting, data_source, eval_body, read_rows, run_body
from app.cli.eval_views import criteria_table, items_table, runs_table, show_eval, show_run
from app.cli.jobs import fetch_pages, parse_metadata
from app.cli.render import emit_json, print_table, table, timestamp

evals_app = typer.Typer(help="Evaluate models and answers with graders (OpenAI's Evals API).", no_args_is_help=True)

EVALS = "/v1/evals"
POLL_SECONDS = 1.0
FINISHED = ("completed", "failed", "canceled")
EXIT_CODES = {"completed": ExitCode.OK, "failed": ExitCode.JOB_FAILED, "canceled": ExitCode.JOB_CANCELLED}
PAGE_SIZE = 100  # the API's largest page

EvalArgument = Annotated[str, typer.Argument(help="eval_...")]
MetadataOption = Annotated[list[str] | None, typer.Option(help="KEY=VALUE, repeatable.")]


def eval_path(eval_id: str, suffix: str = "") -> str:
    return f"{EVALS}/{path_segment(eval_id)}{suffix}"


def run_path(eval_id: str, run_id: str, suffix: str = "") -> str:
    return eval_path(eval_id, f"/runs/{path_segment(run_id)}{suffix}")


def exit_code_for(status: str) -> int:
    """0 completed, 1 failed, 2 canceled (as `jobs watch` reports a job's end)."""
    return int(EXIT_CODES.get(status, ExitCode.ERROR))


@evals_app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--name", help="The eval's name.")] = None,
    item_schema: Annotated[
        str | None, typer.Option("--item-schema", help="JSON Schema of the items: a JSON file or inline JSON.")
    ] = None,
    criteria: Annotated[
        str | None,
        typer.Option("--criteria", help="testing_criteria: a JSON file or inline JSON (a list of graders, or one)."),
    ] = None,
    include_sample_schema: Annotated[
        bool, typer.Option("--include-sample-schema", help="Criteria read {{sample.*}}: the model's answers.")
    ] = False,
    metadata: MetadataOption = None,
    spec: Annotated[
        str | None,
        typer.Option("--spec", help="OpenAI's whole create body (a JSON file or inline JSON), instead of the above."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Create an eval: the schema of its items and its testing criteria (graders)."""
    state = state_of(ctx)
    body = eval_body(name=name, item_schema=item_schema, criteria=criteria,
                     include_sample_schema=include_sample_schema, metadata=parse_metadata(metadata or []),
                     spec=spec)  # fmt: skip
    created = state.client().post(EVALS, body)
    if state.json:
        emit_json(created)
        return
    state.out.print(f"Created [bold]{created['id']}[/] ({created.get('name')}).")
    print_table(state.out, criteria_table(created.get("testing_criteria") or []))
    state.out.print(f"Run it with: finetune evals run {created['id']} --samples samples.jsonl")


@evals_app.command("list")
def list_evals(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Evals per page.")] = 20,
    all_pages: Annotated[bool, typer.Option("--all", help="Follow every page.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Your organization's evals, newest first."""
    state = state_of(ctx)
    found = fetch_pages(state, EVALS, limit, all_pages, {"order": "desc"})
    if state.json:
        emit_json({"object": "list", "data": found})
        return
    rows = [[entry["id"], entry.get("name"), ", ".join(str(c.get("name")) for c in entry.get("testing_criteria") or []),
             timestamp(entry.get("created_at"))] for entry in found]  # fmt: skip
    print_table(state.out, table(["ID", "NAME", "CRITERIA", "CREATED"], rows))


@evals_app.command("run")
def run(
    ctx: typer.Context,
    eval_id: EvalArgument,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Sample this model on each item (a completions run).")
    ] = None,
    items: Annotated[
        Path | None, typer.Option("--items", help="JSONL of items for --model, sent inline.", dir_okay=False)
    ] = None,
    samples: Annotated[
        Path | None,
        typer.Option("--samples", help='JSONL of {"item", "sample": {"output_text"}} rows to grade.', dir_okay=False),
    ] = None,
    file_id: Annotated[str | None, typer.Option("--file-id", help="An uploaded file's items (file-...).")] = None,
    system: Annotated[str | None, typer.Option(help="With --model: the system message, {{item.x}} allowed.")] = None,
    user: Annotated[str | None, typer.Option(help="With --model: the user message, {{item.x}} allowed.")] = None,
    template: Annotated[
        str | None, typer.Option(help="With --model: the messages as a JSON list (file or inline).")
    ] = None,
    item_reference: Annotated[
        str | None, typer.Option(help="With --model: the item's field holding the messages (default item.messages).")
    ] = None,
    temperature: Annotated[float | None, typer.Option(min=0.0, help="With --model: sampling temperature.")] = None,
    max_tokens: Annotated[int | None, typer.Option(min=1, help="With --model: max_completion_tokens.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="The run's name.")] = None,
    metadata: MetadataOption = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the run to end, showing its progress.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Start a run; --wait follows it and exits 0 completed, 1 failed, 2 canceled."""
    state = state_of(ctx)
    prompting = Prompting(template=template, system=system, user=user, item_reference=item_reference,
                          temperature=temperature, max_tokens=max_tokens)  # fmt: skip
    local_items = read_rows(items, "--items", with_samples=False) if items else None
    local_samples = read_rows(samples, "--samples", with_samples=True) if samples else None
    source = data_source(model=model, items=local_items, samples=local_samples, file_id=file_id, prompting=prompting)
    body = run_body(source, name, parse_metadata(metadata or []))
    started = _start_run(state, eval_id, body, local_items or local_samples)
    if not wait:
        if state.json:
            emit_json(started)
            return
        count = (started.get("progress") or {}).get("total_items")
        state.out.print(f"Started [bold]{started['id']}[/] ({started['status']}, {count} items) on {eval_id}.")
        state.out.print(f"Follow it with: finetune evals show {eval_id} {started['id']}")
        return
    finished = wait_for_run(state, eval_id, started["id"])
    if state.json:
        emit_json(finished)
    else:
        show_run(state.out, finished, state.client().get(eval_path(eval_id)).get("testing_criteria") or [])
        if finished["status"] == "completed" and _counts_of(finished, "failed", "errored"):
            state.out.print(f"See what failed with: finetune evals show {eval_id} {finished['id']} --failed")
    raise typer.Exit(exit_code_for(finished["status"]))


def _counts_of(run: dict[str, Any], *names: str) -> int:
    return sum(int((run.get("result_counts") or {}).get(name, 0)) for name in names)


def _start_run(state: CliState, eval_id: str, body: dict[str, Any], local: LocalRows | None) -> dict[str, Any]:
    """POST the run; a refused inline row is named by its line in the local file, too."""
    try:
        started: dict[str, Any] = state.client().post(eval_path(eval_id, "/runs"), body)
    except ApiError as error:
        if local is not None and error.hint is None:
            error.hint = local.hint_for(error.param)
        raise
    return started


def wait_for_run(state: CliState, eval_id: str, run_id: str, poll_seconds: float = POLL_SECONDS) -> dict[str, Any]:
    """Poll the run until it ends; a progress bar of its stored items on stderr (none with --json)."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("items"),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=state.err, disable=state.json) as progress:
        task = progress.add_task(f"Run {run_id}", total=None, status="queued")
        while True:
            try:
                found: dict[str, Any] = state.client().get(run_path(eval_id, run_id))
            except CliError as error:
                goes_on = f"The run goes on: see it with finetune evals show {eval_id} {run_id}"
                error.hint = f"{error.hint} {goes_on}" if error.hint else goes_on
                raise
            counts = found.get("progress") or {}
            progress.update(task, total=counts.get("total_items"), completed=counts.get("stored_items", 0),
                            status=found["status"])  # fmt: skip
            if found["status"] in FINISHED:
                return found
            time.sleep(poll_seconds)


@evals_app.command("show")
def show(
    ctx: typer.Context,
    eval_id: EvalArgument,
    run_id: Annotated[str | None, typer.Argument(help="evalrun_...: show this run and its output items.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="With RUN_ID: only the items that failed.")] = False,
    page_size: Annotated[int, typer.Option(min=1, max=100, help="Items fetched per request.")] = PAGE_SIZE,
    json_output: JsonOption = False,
) -> None:
    """An eval and its runs; with RUN_ID the run's results and every output item (all pages)."""
    state = state_of(ctx)
    found = state.client().get(eval_path(eval_id))
    criteria = found.get("testing_criteria") or []
    if run_id is None:
        runs = fetch_pages(state, eval_path(eval_id, "/runs"), page_size, True)
        if state.json:
            emit_json({"eval": found, "runs": runs})
            return
        show_eval(state.out, found)
        print_table(state.out, runs_table(runs))
        return
    run_found = state.client().get(run_path(eval_id, run_id))
    params = {"status": "fail"} if failed else None
    output_items = fetch_pages(state, run_path(eval_id, run_id, "/output_items"), page_size, True, params)
    if state.json:
        emit_json({"run": run_found, "output_items": output_items})
        return
    show_run(state.out, run_found, criteria)
    if not output_items:
        state.out.print("No failed items." if failed else "No output items yet.")
        return
    title = f"{'Failed items' if failed else 'Output items'} ({len(output_items)})"
    print_table(state.out, items_table(output_items, criteria, title))
