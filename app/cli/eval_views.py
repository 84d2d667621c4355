"""How `finetune evals` shows an eval, its runs, a run's results and its output items."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from app.cli.render import EMPTY, IdTable, details, print_table, table, timestamp

OUTPUT_CHARS = 60


def criterion_text(criterion: dict[str, Any]) -> str:
    """What a grader checks, in one line: `{{sample.output_text}} eq {{item.answer}}`."""
    kind = criterion.get("type")
    if kind == "string_check":
        return f"{criterion.get('input')} {criterion.get('operation')} {criterion.get('reference')}"
    if kind == "text_similarity":
        compared = f"{criterion.get('evaluation_metric')}({criterion.get('input')}, {criterion.get('reference')})"
        return f"{compared} >= {criterion.get('pass_threshold')}"
    if kind == "score_model":
        return (f"{criterion.get('model')} scores in {criterion.get('range')}, "
                f"passes at {criterion.get('pass_threshold')}")  # fmt: skip
    if kind == "label_model":
        return f"{criterion.get('model')} labels {criterion.get('labels')}, passing {criterion.get('passing_labels')}"
    if kind == "multi":
        return f"{criterion.get('calculate_output')} >= {criterion.get('pass_threshold')}"
    return EMPTY


def criteria_table(criteria: list[dict[str, Any]]) -> IdTable:
    rows = [[criterion.get("name"), criterion.get("type"), criterion_text(criterion)] for criterion in criteria]
    return table(["NAME", "TYPE", "GRADES"], rows, title="Testing criteria", ids=("NAME",))


def item_fields(found: dict[str, Any]) -> list[str]:
    """The fields of the eval's items (its item schema's properties)."""
    schema = (found.get("data_source_config") or {}).get("schema") or {}
    item = (schema.get("properties") or {}).get("item") or {}
    return list((item.get("properties") or {}).keys())


def show_eval(console: Console, found: dict[str, Any]) -> None:
    schema = (found.get("data_source_config") or {}).get("schema") or {}
    console.print(
        details(
            [
                ("id", found["id"]),
                ("name", found.get("name")),
                ("created", timestamp(found.get("created_at"))),
                ("item fields", ", ".join(item_fields(found)) or EMPTY),
                ("sample schema", "sample" in (schema.get("properties") or {})),
                ("fine-tuning job", found.get("fine_tuning_job_id")),
                ("metadata", found.get("metadata") or None),
            ]
        )
    )
    print_table(console, criteria_table(found.get("testing_criteria") or []))


def _counts(run: dict[str, Any]) -> dict[str, int]:
    return {"total": 0, "errored": 0, "failed": 0, "passed": 0, **(run.get("result_counts") or {})}


def _items_text(run: dict[str, Any]) -> str:
    progress = run.get("progress") or {}
    return f"{progress.get('stored_items', 0)}/{progress.get('total_items', '?')}"


def runs_table(runs: list[dict[str, Any]]) -> IdTable:
    rows = []
    for run in runs:
        counts = _counts(run)
        rows.append([run["id"], run.get("name"), run.get("status"), run.get("model"), _items_text(run),
                     f"{counts['passed']}/{counts['total']}", timestamp(run.get("created_at"))])  # fmt: skip
    columns = ["ID", "NAME", "STATUS", "MODEL", "ITEMS", "PASSED", "CREATED"]
    return table(columns, rows, title="Runs", ids=("ID", "MODEL"))


def _source_text(data_source: dict[str, Any]) -> str:
    source = data_source.get("source") or {}
    if source.get("type") == "file_id":
        where = f"file {source.get('id')}"
    else:
        where = f"{len(source.get('content') or [])} inline rows"
    return f"{data_source.get('type')} ({where})"


def _rate(passed: int, total: int) -> str:
    return f"{passed / total:.0%}" if total else EMPTY


def criterion_names(criteria: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The eval's criteria by the id its runs' per-criteria results name them with."""
    return {str(criterion.get("id", criterion.get("name"))): criterion for criterion in criteria}


def show_run(console: Console, run: dict[str, Any], criteria: list[dict[str, Any]]) -> None:
    """The run, its result counts, per-criteria results and per-model usage."""
    error = run.get("error") or {}
    counts = _counts(run)
    console.print(
        details(
            [
                ("id", run["id"]),
                ("eval", run.get("eval_id")),
                ("name", run.get("name")),
                ("status", run.get("status")),
                ("model", run.get("model") or EMPTY),
                ("data source", _source_text(run.get("data_source") or {})),
                ("items", _items_text(run)),
                ("created", timestamp(run.get("created_at"))),
                ("error", f"{error.get('code')}: {error.get('message')}" if error else None),
                ("report", run.get("report_url")),
                ("fine-tuning job", run.get("fine_tuning_job_id")),
                ("metadata", run.get("metadata") or None),
            ]
        )
    )
    summary = [(name, counts[name]) for name in ("total", "passed", "failed", "errored")]
    console.print(details([*summary, ("pass rate", _rate(counts["passed"], counts["total"]))], title="Result counts"))
    named = criterion_names(criteria)
    rows = []
    for result in run.get("per_testing_criteria_results") or []:
        criterion = named.get(str(result.get("testing_criteria")), {})
        passed, failed = int(result.get("passed", 0)), int(result.get("failed", 0))
        rows.append([criterion.get("name", result.get("testing_criteria")), criterion.get("type"), passed, failed,
                     _rate(passed, passed + failed)])  # fmt: skip
    columns = ["CRITERION", "TYPE", "PASSED", "FAILED", "PASS RATE"]
    print_table(console, table(columns, rows, title="Per testing criteria", ids=("CRITERION",)))
    usage = run.get("per_model_usage") or []
    if usage:
        usage_rows = [[entry.get("model_name"), entry.get("invocation_count"), entry.get("prompt_tokens"),
                       entry.get("completion_tokens"), entry.get("total_tokens")] for entry in usage]  # fmt: skip
        columns = ["MODEL", "CALLS", "PROMPT TOKENS", "COMPLETION TOKENS", "TOTAL TOKENS"]
        print_table(console, table(columns, usage_rows, title="Per model usage", ids=("MODEL",)))


def grade_text(result: dict[str, Any] | None) -> str:
    """One criterion's grade of one item: `pass 1`, `fail 0.25`, or `error`."""
    if result is None:
        return EMPTY
    if (result.get("sample") or {}).get("error"):
        return "error"
    score = result.get("score")
    shown = f" {score:.3g}" if isinstance(score, (int, float)) else ""
    return ("pass" if result.get("passed") else "fail") + shown


def output_text(item: dict[str, Any]) -> str:
    """The answer graded (cut short), or why there is none."""
    sample = item.get("sample") or {}
    if (sample.get("error") or {}).get("message"):
        said = f"error: {sample['error']['message']}"
    else:
        said = " ".join(str(message.get("content", "")) for message in sample.get("output") or [])
    return said if len(said) <= OUTPUT_CHARS else said[: OUTPUT_CHARS - 1] + "…"


def items_table(items: list[dict[str, Any]], criteria: list[dict[str, Any]], title: str) -> IdTable:
    names = [str(criterion.get("name")) for criterion in criteria]
    rows = []
    for item in items:
        grades = {result.get("name"): result for result in item.get("results") or []}
        rows.append([item.get("datasource_item_id"), item["id"], item.get("status"),
                     *(grade_text(grades.get(name)) for name in names), output_text(item)])  # fmt: skip
    return table(["ITEM", "ID", "STATUS", *names, "OUTPUT"], rows, title=title)
