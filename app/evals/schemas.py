"""OpenAI's eval, eval run and output item objects, as the user API answers them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.core.errors import BadRequest
from app.evals.tables import Eval, EvalOutputItem, EvalRun

MAX_METADATA_KEYS = 16


def _ts(when: datetime | None) -> int | None:
    return int(when.timestamp()) if when else None


def check_metadata(value: Any, param: str = "metadata") -> dict[str, str] | None:
    """OpenAI's metadata: at most 16 string pairs, keys up to 64 and values up to 512 characters."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > MAX_METADATA_KEYS:
        raise BadRequest(f"'{param}' must be an object of at most 16 string pairs.", param=param, code="invalid_value")
    for key, item in value.items():
        if not isinstance(item, str) or len(key) > 64 or len(item) > 512:
            raise BadRequest(
                f"'{param}.{key}': keys are at most 64 characters and values strings of at most 512.",
                param=f"{param}.{key}",
                code="invalid_value",
            )
    return dict(value)


def check_name(value: Any, param: str = "name") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 256:
        raise BadRequest(f"'{param}' must be a string of 1 to 256 characters.", param=param, code="invalid_value")
    return value


def eval_object(row: Eval) -> dict[str, Any]:
    shown = {
        "object": "eval",
        "id": row.id,
        "name": row.name,
        "data_source_config": row.data_source_config,
        "testing_criteria": row.testing_criteria,
        "created_at": _ts(row.created_at),
        "metadata": row.metadata_ or {},
    }
    if row.fine_tuning_job_id:  # beyond OpenAI: the job whose automatic comparison made it
        shown["fine_tuning_job_id"] = row.fine_tuning_job_id
    return shown


def run_object(row: EvalRun, report_url: str) -> dict[str, Any]:
    counts = {"total": 0, "errored": 0, "failed": 0, "passed": 0} | (row.result_counts or {})
    return {
        "object": "eval.run",
        "id": row.id,
        "eval_id": row.eval_id,
        "status": row.status,
        "model": row.model,
        "name": row.name,
        "created_at": _ts(row.created_at),
        "report_url": report_url,
        "result_counts": counts,
        "per_model_usage": row.per_model_usage or [],
        "per_testing_criteria_results": row.per_testing_criteria_results or [],
        "data_source": row.data_source,
        "metadata": row.metadata_ or {},
        "error": row.error,
        # Beyond OpenAI: how far the run is, and its fine-tuning job (whose MLflow run holds its metrics).
        "progress": {"total_items": row.total_items, "stored_items": counts["total"]},
        "fine_tuning_job_id": row.fine_tuning_job_id,
    }


def output_item_object(row: EvalOutputItem) -> dict[str, Any]:
    return {
        "object": "eval.run.output_item",
        "id": row.id,
        "run_id": row.run_id,
        "eval_id": row.eval_id,
        "created_at": _ts(row.created_at),
        "status": row.status,
        "datasource_item_id": row.datasource_item_id,
        "datasource_item": row.datasource_item,
        "results": row.results,
        "sample": row.sample,
    }
