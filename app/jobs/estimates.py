"""Cost and time before launch: real token counts from the CPU worker, the same rule as training."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import Principal
from app.authz.resources import Resources
from app.catalog.tables import CatalogEntry
from app.core.celery_app import TASK_COUNT_TOKENS, celery_app, queue_for
from app.core.config import Settings
from app.core.database import utcnow
from app.core.errors import BadRequest, ServiceUnavailable
from app.files.service import storage_path
from app.files.tables import File
from app.jobs import service
from app.jobs.schemas import EstimateObject, JobCreate
from app.training.hyperparams import estimate, learning_rate_multiplier, resolve_hyperparameters
from app.training.strategy import ModelShape

COUNT_TIMEOUT_SECONDS = 120


def count_request(
    entry: CatalogEntry, file_path: str, method: str, max_seq_length: int, truncate: bool
) -> dict[str, Any]:
    """Arguments of the token-count task (JSON only)."""
    return {
        "path": file_path,
        "base_model": entry.source,
        "revision": entry.revision,
        "chat_template": entry.chat_template,
        "method": method,
        "max_seq_length": max_seq_length,
        "truncate": truncate,
    }


def _count_on_worker(request: dict[str, Any]) -> dict[str, Any]:
    result = celery_app.send_task(TASK_COUNT_TOKENS, args=[request], queue=queue_for(TASK_COUNT_TOKENS))
    try:
        return dict(result.get(timeout=COUNT_TIMEOUT_SECONDS))
    finally:
        result.forget()


def resolve_and_estimate(
    settings: Settings, method: str, requested: dict[str, Any], entry: CatalogEntry, examples: int, tokens: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    fine_tune_type, quantization = service.recipe_of(requested)
    resolved = resolve_hyperparameters(
        service.tunable(requested), examples, tokens, method, fine_tune_type, entry.max_seq_length
    )
    # OpenAI's job object names the rate as a multiplier, resolved from "auto" like n_epochs and batch_size.
    multiplier = learning_rate_multiplier(resolved["learning_rate"], method, fine_tune_type)
    resolved.update(fine_tune_type=fine_tune_type, quantization=quantization, learning_rate_multiplier=multiplier)
    # The API sees no GPU: TRAINING_PROCESSES says how many ranks a job gets (one when unset).
    shape = ModelShape.from_parameter_count(entry.parameter_count) if entry.parameter_count else None
    processes = settings.training_processes or 1
    figures = estimate(examples, tokens, resolved, settings.estimate_tokens_per_second, method, processes, shape)
    figures["estimated_gpu_hours"] = round(figures["estimated_seconds"] * processes / 3600, 4)
    return resolved, figures


def finish_time(figures: dict[str, Any]) -> Any:
    return utcnow() + timedelta(seconds=float(figures["estimated_seconds"]))


async def estimate_request(
    resources: Resources, session: AsyncSession, principal: Principal, body: JobCreate
) -> EstimateObject:
    settings = resources.settings
    entry, training, validation, requested = await service.check_request(
        session, resources.authorizer, principal, body, settings.min_training_examples
    )
    max_len = int(requested.get("max_seq_length") or entry.max_seq_length)

    async def count(row: File) -> dict[str, Any]:
        request = count_request(
            entry, str(storage_path(settings, row)), body.method_type(), max_len, settings.truncate_long_examples
        )
        try:
            return await anyio.to_thread.run_sync(partial(_count_on_worker, request))
        except TimeoutError:
            raise ServiceUnavailable("No CPU worker answered the token count in time; retry shortly.") from None

    train_counts = await count(training)
    if train_counts["errors"]:
        first = train_counts["errors"][0]
        raise BadRequest(
            f"Training file: line {first['line']}: {first['message']}",
            param="training_file",
            code=first["code"],
            details={"errors": train_counts["errors"]},
        )
    valid_counts = await count(validation) if validation else None
    try:
        resolved, figures = resolve_and_estimate(
            settings, body.method_type(), requested, entry, train_counts["examples"], train_counts["tokens"]
        )
    except ValueError as error:
        field = str(error).split(":", 1)[0]
        raise BadRequest(str(error), param=f"{body.hyperparameters_param()}.{field}") from None
    return EstimateObject(
        model=body.model,
        method=body.method_type(),
        training_examples=train_counts["examples"],
        training_tokens=train_counts["tokens"],
        validation_examples=valid_counts["examples"] if valid_counts else None,
        validation_tokens=valid_counts["tokens"] if valid_counts else None,
        too_long_examples=len(train_counts["too_long"]),
        total_steps=figures["total_steps"],
        trained_tokens=figures["trained_tokens"],
        estimated_seconds=figures["estimated_seconds"],
        estimated_gpu_hours=figures["estimated_gpu_hours"],
        training_processes=figures["training_processes"],
        strategy=figures["strategy"],
        memory_per_gpu_gib=figures["memory_per_gpu_gib"],
        hyperparameters=resolved,
    )
