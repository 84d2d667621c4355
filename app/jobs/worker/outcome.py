"""How an attempt ends: success (weights, result file, MLflow, the model row), a stop, a retry, or a failure."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.artifacts.archive import write_manifest
from app.core import ids
from app.core.celery_app import TASK_COMPARE_WITH_BASE
from app.core.database import commit, utcnow
from app.core.outbox import enqueue
from app.core.worker_context import WorkerContext
from app.files import repository as files
from app.files.tables import File
from app.finetuned import repository as finetuned
from app.finetuned.tables import FineTunedModel
from app.jobs import events, repository, service
from app.jobs.events import NewEvent
from app.jobs.tables import Job, JobEvent
from app.jobs.worker import mlflow_run, record, shutdown
from app.jobs.worker.state import RunState
from app.training.callbacks import TrainingOutputs

logger = logging.getLogger(__name__)

EXIT_OK, EXIT_ERROR = 0, 1  # the trainer's exit codes (app/training/__main__.py); 3 is a checkpointed stop
RESULTS_PURPOSE = "fine-tune-results"
# Errors another attempt would meet again: the job fails at once.
FINAL_ERRORS = ("out_of_memory", "invalid_config", "missing_chat_template")
# A torchrun rank whose peer died without reporting (killed, crashed hard): retried like a killed trainer.
RETRIED_ERRORS = ("rank_lost",)


async def conclude(context: WorkerContext, state: RunState, return_code: int, elapsed: float, gpus: int) -> str:
    """Record how the attempt ended; returns what happened (for logs and tests)."""
    job = state.job

    async def count_gpu_time() -> None:
        async with context.sessionmaker() as session:
            await repository.add_gpu_seconds(session, job.id, elapsed * max(1, gpus))
            await session.commit()

    await context.write(count_gpu_time, f"job {job.id}: GPU time")
    if state.fenced_out:
        logger.warning("job %s attempt %s lost its lease; another attempt owns it now", job.id, state.attempt)
        return "fenced_out"
    if return_code == EXIT_OK and state.done is not None and await finish_success(context, state):
        return "succeeded"
    await _refresh_flags(context, state)
    # A stop request wins whatever the exit code: the trainer may have been signalled before
    # it could install its handler, a cancelled job must never be re-queued, and a job answered
    # `cancelled` (or `paused`) must not end otherwise, even if its training finished meanwhile.
    if state.cancel or state.pause:
        return await _stopped(context, state)
    if return_code != EXIT_OK and state.shutdown and state.error is None:
        return await shutdown.hand_back(context, state)
    if state.error is not None and state.error.code not in RETRIED_ERRORS:
        code = state.error.code or "training_error"
        if code in FINAL_ERRORS or return_code == EXIT_ERROR:
            await record.fail(context, job, state.attempt, code, state.error.message)
            return "failed"
    return await _retry_or_fail(context, state, return_code)


async def _stopped(context: WorkerContext, state: RunState) -> str:
    status = "cancelled" if state.cancel else "paused"
    values: dict[str, Any] = {"status": status, "lease_until": None}
    if status == "cancelled":
        values["finished_at"] = utcnow()
    await record.update_job(context, state, **values)
    said = (
        "Job cancelled"
        if state.cancel
        else f"Job paused at step {state.last_step}; resume continues from its checkpoint"
    )
    await record.add_event(context, state, NewEvent(said))
    await events.publish_status(context.redis, state.job.id, status)
    return status


async def _refresh_flags(context: WorkerContext, state: RunState) -> None:
    """Read cancel/pause once more: the trainer may have ended between two control polls."""

    async def read() -> Job | None:
        async with context.sessionmaker() as session:
            return await repository.get(session, state.job.id)

    job = await context.write(read, f"job {state.job.id}: stop flags")
    if job is not None and job.attempt == state.attempt:
        state.cancel = state.cancel or job.cancel_requested
        state.pause = state.pause or job.pause_requested


async def _retry_or_fail(context: WorkerContext, state: RunState, return_code: int) -> str:
    """The trainer died without saying why (killed, crashed): try again from the last checkpoint."""
    job = state.job
    if state.attempt >= job.last_allowed_attempt(context.settings.max_job_attempts):
        message = f"The training process ended with code {return_code} on attempt {state.attempt}, the last allowed."
        await record.fail(context, job, state.attempt, "max_attempts_exceeded", message)
        return "failed"

    requeued = NewEvent(
        f"Training process ended unexpectedly (code {return_code}); re-queued to resume from the latest checkpoint",
        level="warn",
    )
    await record.requeue(context, state, requeued)
    return "requeued"


def _store_result_file(context: WorkerContext, job: Job, csv_path: Path) -> File:
    datasets = context.settings.datasets_path
    datasets.mkdir(parents=True, exist_ok=True)
    storage_name = f"{uuid.uuid4().hex}.csv"
    shutil.copyfile(csv_path, datasets / storage_name)
    data = (datasets / storage_name).read_bytes()
    return File(
        id=ids.file_id(),
        owner_id=job.owner_id,
        organization_id=job.organization_id,
        filename="step_metrics.csv",
        purpose=RESULTS_PURPOSE,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        storage_name=storage_name,
        status="processed",
        data_format=None,
        statistics={},
        index_status="skipped",
    )


def _artifact_dirs(done: TrainingOutputs) -> dict[str, str]:
    """The weights a run leaves: its adapter and merged weights, or the full model of a full fine-tune."""
    found = {name: str(path) for name, path in (("adapter", done.adapter_dir), ("merged", done.merged_dir)) if path}
    if not found and done.model_dir:
        found["model"] = str(done.model_dir)
    return found


@dataclass(frozen=True)
class Registration:
    """The run's registry entry: its name and version, or why there is none."""

    name: str | None = None
    version: int | None = None
    error: str | None = None


async def _register(context: WorkerContext, state: RunState, artifact_dirs: dict[str, str]) -> Registration:
    """The run's weights logged to MLflow and registered, tried again for MLFLOW_REGISTER_RETRY_SECONDS.

    MLflow is not the source of truth: a registration that keeps failing does not fail the job,
    but it is said (`Registration.error`, then a warning event), never only logged.
    """
    done = state.done
    if done is None:
        return Registration()
    if not state.run_id:
        return Registration(error="no MLflow run: it could not be started when the attempt began")
    mlflow_dirs = {name: path for name, path in artifact_dirs.items() if name != "merged"}
    deadline = time.monotonic() + context.settings.mlflow_register_retry_seconds
    wait = 0.5
    while True:
        try:
            name, version = await asyncio.to_thread(
                mlflow_run.log_outputs_and_register, context, state.job, state.run_id, mlflow_dirs,
                [done.metrics_csv] if done.metrics_csv else [],
            )  # fmt: skip
            return Registration(name, version)
        except Exception as error:
            left = deadline - time.monotonic()
            if left <= 0:
                logger.exception("job %s: MLflow logging/registration failed; giving up", state.job.id)
                return Registration(error=f"{type(error).__name__}: {error}"[:500])
            logger.warning("job %s: MLflow registration failed (%s); trying again", state.job.id, error)
            await asyncio.sleep(min(wait, left))  # the last try lands on the deadline
            wait = min(wait * 2, 10.0)


def _model_row(job: Job, artifact_dirs: dict[str, str], registry: Registration) -> FineTunedModel:
    return FineTunedModel(
        id=job.fine_tuned_model,
        job_id=job.id,
        owner_id=job.owner_id,
        organization_id=job.organization_id,
        base_model=job.model,
        adapter_path=artifact_dirs.get("adapter") or artifact_dirs.get("model"),
        merged_path=artifact_dirs.get("merged"),
        registry_name=registry.name,
        registry_version=registry.version,
    )


async def finish_success(context: WorkerContext, state: RunState) -> bool:
    """Record the outputs of a finished run; False when a stop request was accepted first (the job
    then ends as that request said). Safe to run again for the same run (a retried attempt): the
    registry version of the run is reused, and rows are written in one transaction, or not at all."""
    job, done = state.job, state.done
    assert done is not None
    artifact_dirs = _artifact_dirs(done)
    for path in artifact_dirs.values():
        write_manifest(Path(path))

    async def name() -> str:
        async with context.sessionmaker() as session:
            return await service.model_name(session, job)

    job.fine_tuned_model = await context.write(name, f"job {job.id}: name")
    registry = await _register(context, state, artifact_dirs)
    result = _store_result_file(context, job, Path(done.metrics_csv)) if done.metrics_csv else None
    result_ids = [result.id] if result else []

    async def write_rows() -> tuple[list[JobEvent], list[str], bool]:
        """The success rows, once: the events added, the result files the job names, whether it succeeded."""
        async with context.sessionmaker() as session:
            current = await repository.get(session, job.id)
            if current is None or current.attempt != state.attempt or current.status == "succeeded":
                # Another attempt owns the job, or this one's commit went through before its connection broke.
                return [], list(current.result_files or []) if current else [], True
            if result is not None:
                await files.save(session, result)
            success = {
                "status": "succeeded",
                "finished_at": utcnow(),
                "lease_until": None,
                "fine_tuned_model": job.fine_tuned_model,
                "result_files": result_ids,
                "trained_tokens": done.trained_tokens,
                "output_dir": str(done.output_dir or ""),
            }
            if state.last_step:  # an attempt that resumed at the last checkpoint trains no step: keep the count
                success["current_step"] = state.last_step
            # Not over an accepted cancel or pause: the row lock orders this UPDATE and the request's.
            if not await repository.update_fenced(session, job.id, state.attempt, unless_stopping=True, **success):
                await session.rollback()
                return [], [], False
            if await finetuned.of_job(session, job.id) is None:
                finetuned.add(session, _model_row(job, artifact_dirs, registry))
            created = NewEvent(
                f"New fine-tuned model created: {job.fine_tuned_model}",
                data={"registry": {"name": registry.name, "version": registry.version}},
            )
            said = [created, NewEvent("The job has successfully completed")]
            if registry.error:
                unregistered = NewEvent(
                    f"The model was not registered in MLflow ({registry.error}); its weights are stored "
                    "and can be downloaded",
                    level="warn",
                    data={"registry": {"error": registry.error}},
                )
                said.insert(1, unregistered)
            added = [repository.add_event(session, job.id, event, attempt=state.attempt) for event in said]
            if job.validation_file:  # the fine-tune against its base on that file (app/evals/comparison.py)
                enqueue(session, context.sessionmaker, TASK_COMPARE_WITH_BASE, [job.id])
            await commit(session)
            return added, result_ids, True

    stored: list[str] = []
    try:
        added, stored, succeeded = await context.write(write_rows, f"job {job.id}: success")
    finally:
        if result is not None and result.id not in stored:
            (context.settings.datasets_path / result.storage_name).unlink(missing_ok=True)
    for event in added:
        await events.publish(context.redis, event)
    if added:
        await events.publish_status(context.redis, job.id, "succeeded")
    return succeeded
