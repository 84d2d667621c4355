"""MLflow for a job: one run per job (a resumed job continues it), params, per-step metrics, artifacts, registry.

MLflow is observability, not the source of truth: a failed MLflow call never fails the training
run. A metric that could not be logged is logged as a warning; a run that could not be started or
a model that could not be registered (after MLFLOW_REGISTER_RETRY_SECONDS of tries, worker/outcome.py)
is also said in a warning event of the job.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric

from app.core.mlflow_clients import mlflow_client
from app.core.worker_context import WorkerContext
from app.jobs import repository
from app.jobs.tables import Job
from app.jobs.worker.state import RunState

logger = logging.getLogger(__name__)

EXPERIMENT = "fine-tuning"
METRIC_KEYS = (
    "train_loss",
    "train_mean_token_accuracy",
    "learning_rate",
    "tokens_per_second",
    "valid_loss",
    "valid_mean_token_accuracy",
)
FLUSH_EVERY_SECONDS = 2.0
MAX_BATCH = 900  # MLflow's log_batch accepts at most 1000 metrics per call


def _client(context: WorkerContext) -> MlflowClient:
    return mlflow_client(context.settings.mlflow_tracking_uri)


def _experiment_id(mlflow: MlflowClient) -> str:
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return str(experiment.experiment_id)
    return str(mlflow.create_experiment(EXPERIMENT))


def _start_or_continue(context: WorkerContext, job: Job) -> str:
    mlflow = _client(context)
    if job.mlflow_run_id:
        mlflow.update_run(job.mlflow_run_id, status="RUNNING")
        return job.mlflow_run_id
    run = mlflow.create_run(
        _experiment_id(mlflow),
        run_name=job.id,
        tags={
            "job_id": job.id,
            "base_model": job.model,
            "owner_id": job.owner_id,
            "organization_id": job.organization_id,
        },
    )
    params = {
        "method": job.method,
        "model": job.model,
        "training_file": job.training_file,
        "validation_file": job.validation_file or "",
        "seed": job.seed,
    }
    params.update({key: value for key, value in (job.resolved_hyperparameters or {}).items()})
    for key, value in params.items():
        mlflow.log_param(run.info.run_id, key, str(value)[:500])
    return str(run.info.run_id)


async def ensure_run(context: WorkerContext, job: Job, attempt: int) -> str | None:
    try:
        run_id = await asyncio.to_thread(_start_or_continue, context, job)
    except Exception:
        logger.exception("job %s: MLflow run could not be started", job.id)
        return None
    if run_id != job.mlflow_run_id:
        async with context.sessionmaker() as session:
            await repository.update_fenced(session, job.id, attempt, mlflow_run_id=run_id)
            await session.commit()
        job.mlflow_run_id = run_id
    return run_id


def queue_metrics(state: RunState, data: dict[str, Any], step: int) -> None:
    for key in METRIC_KEYS:
        value = data.get(key)
        if isinstance(value, int | float):
            state.metrics.append((key, float(value), step))


async def maybe_flush(context: WorkerContext, state: RunState) -> None:
    if time.monotonic() - state.last_flush >= FLUSH_EVERY_SECONDS:
        await flush_metrics(context, state)


async def flush_metrics(context: WorkerContext, state: RunState) -> None:
    state.last_flush = time.monotonic()
    if not state.metrics or not state.run_id:
        return
    pending, state.metrics = state.metrics, []
    now = int(time.time() * 1000)
    metrics = [Metric(key, value, now, step) for key, value, step in pending]
    mlflow = _client(context)
    try:
        for start in range(0, len(metrics), MAX_BATCH):
            await asyncio.to_thread(mlflow.log_batch, state.run_id, metrics=metrics[start : start + MAX_BATCH])
    except Exception:
        logger.exception("job %s: could not log %d metrics to MLflow", state.job.id, len(metrics))


def registry_name(base_model: str, suffix: str | None) -> str:
    raw = f"ft-{base_model}-{suffix}" if suffix else f"ft-{base_model}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", raw)[:200]


def log_outputs_and_register(
    context: WorkerContext, job: Job, run_id: str, artifact_dirs: dict[str, str], files: list[str]
) -> tuple[str, int]:
    """Log the weights and result files, finish the run, and register a model version. Sync (thread)."""
    mlflow = _client(context)
    for name, path in artifact_dirs.items():
        mlflow.log_artifacts(run_id, path, artifact_path=name)
    for path in files:
        mlflow.log_artifact(run_id, path)
    mlflow.set_terminated(run_id, status="FINISHED")
    name = registry_name(job.model, job.suffix)
    if not mlflow.search_registered_models(filter_string=f"name = '{name}'"):
        mlflow.create_registered_model(name, tags={"base_model": job.model})
    for existing in mlflow.search_model_versions(filter_string=f"name = '{name}' and run_id = '{run_id}'"):
        return name, int(existing.version)  # registered by an earlier try of this run: one version per run
    source_name = "adapter" if "adapter" in artifact_dirs else next(iter(artifact_dirs))
    artifact_uri = mlflow.get_run(run_id).info.artifact_uri
    version = mlflow.create_model_version(
        name,
        source=f"{artifact_uri}/{source_name}",
        run_id=run_id,
        tags={"job_id": job.id, "base_model": job.model, "fine_tuned_model": job.fine_tuned_model or ""},
    )
    return name, int(version.version)
