"""One attempt of one job, from claim to outcome (DESIGN.md §2 rules 1-2)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from app.catalog import repository as catalog
from app.catalog.sources import unavailable
from app.catalog.tables import CatalogEntry
from app.core.worker_context import WorkerContext
from app.files import repository as files
from app.files.service import storage_path
from app.files.tables import File
from app.jobs import repository
from app.jobs.events import NewEvent
from app.jobs.tables import Job
from app.jobs.worker import mlflow_run, outcome, progress, record
from app.jobs.worker.state import RunState, work_dir_of
from app.jobs.worker.supervise import supervise, visible_gpu_count
from app.training.config import Hyperparameters, TrainingConfig

logger = logging.getLogger(__name__)


async def run_job(context: WorkerContext, job_id: str) -> str:
    """Claim and run one job; returns what happened (for logs and tests)."""
    settings = context.settings
    worker_name = f"{socket.gethostname()}:{os.getpid()}"
    async with context.sessionmaker() as session:
        attempt = await repository.claim(session, job_id, worker_name, settings.job_lease_seconds)
        await session.commit()
    if attempt is None:
        logger.info("job %s not claimable (duplicate delivery or no longer queued)", job_id)
        return "not_claimed"
    job, entry, rows = await context.write(lambda: _load(context, job_id), f"job {job_id}: load")
    if attempt > job.last_allowed_attempt(settings.max_job_attempts):
        message = f"The job did not finish after {attempt - 1} attempts."
        await record.fail(context, job, attempt, "max_attempts_exceeded", message)
        return "failed"
    assert entry is not None
    if problem := unavailable(entry.id, entry.source, f"the GPU worker {worker_name}"):
        await record.fail(context, job, attempt, "base_model_unavailable", problem)
        return "failed"
    state = RunState(job=job, attempt=attempt, work_dir=work_dir_of(context, job_id))
    # Until the trainer's control loop heartbeats, the lease is kept here: preparing (MLflow, journals)
    # can outlast a lease, and the reconciler would then hand the job to another attempt.
    async with keep_lease(context, state):
        config_path = await _prepare(context, state, entry, rows)
    if state.fenced_out:
        logger.warning("job %s attempt %s lost its lease while preparing", job_id, attempt)
        return "fenced_out"
    return_code, elapsed = await supervise(context, state, config_path)
    return await outcome.conclude(context, state, return_code, elapsed, visible_gpu_count())


async def _prepare(context: WorkerContext, state: RunState, entry: CatalogEntry, rows: dict[str, File]) -> Path:
    """Everything before the trainer starts: its config, the MLflow run, what earlier attempts left unrecorded."""
    job, attempt, job_id = state.job, state.attempt, state.job.id
    state.work_dir.mkdir(parents=True, exist_ok=True)
    config_path = build_config(context, job, entry, rows).write(state.work_dir / f"config-attempt-{attempt}.json")
    state.run_id = await mlflow_run.ensure_run(context, job, attempt)
    if state.run_id is None:
        said = "MLflow run could not be started: this attempt's metrics are not tracked and the model not registered"
        await record.add_event(context, state, NewEvent(said, level="warn"))
    await context.write(lambda: progress.replay_unrelayed_progress(context, state), f"job {job_id}: replay journals")
    await context.write(lambda: progress.record_checkpoints_on_disk(context, state), f"job {job_id}: checkpoints")
    resuming = any((state.work_dir / "checkpoints").glob("checkpoint-*"))
    started = f"Training started (attempt {attempt})" + (", resuming from the latest checkpoint" if resuming else "")
    await record.add_event(context, state, NewEvent(started, data={"attempt": attempt, "mlflow_run_id": state.run_id}))
    return config_path


@asynccontextmanager
async def keep_lease(context: WorkerContext, state: RunState) -> AsyncIterator[None]:
    """Heartbeat the attempt's lease every JOB_HEARTBEAT_SECONDS while the block runs; fenced out if it is lost."""
    settings = context.settings

    async def beat() -> None:
        while not state.fenced_out:
            await asyncio.sleep(settings.job_heartbeat_seconds)
            try:
                async with context.sessionmaker() as session:
                    flags = await repository.heartbeat(session, state.job.id, state.attempt, settings.job_lease_seconds)
                    await session.commit()
            except Exception:  # the next beat tries again; the lease outlasts a few misses
                logger.exception("job %s: heartbeat while preparing failed", state.job.id)
                continue
            state.fenced_out = flags is None

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()


async def _load(context: WorkerContext, job_id: str) -> tuple[Job, CatalogEntry | None, dict[str, File]]:
    async with context.sessionmaker() as session:
        job = await repository.get(session, job_id)
        assert job is not None
        return job, await catalog.get(session, job.model), await files.by_ids(session, job.file_ids())


def build_config(context: WorkerContext, job: Job, entry: CatalogEntry, rows: dict[str, File]) -> TrainingConfig:
    resolved = dict(job.resolved_hyperparameters or {})
    fine_tune_type = resolved.pop("fine_tune_type", "lora")
    quantization = resolved.pop("quantization", None)
    work = work_dir_of(context, job.id)
    settings = context.settings
    return TrainingConfig(
        job_id=job.id,
        base_model=entry.source,
        revision=entry.revision,
        chat_template=entry.chat_template,
        training_file=storage_path(settings, rows[job.training_file]),
        validation_file=storage_path(settings, rows[job.validation_file]) if job.validation_file else None,
        method=job.method,  # type: ignore[arg-type]
        fine_tune_type=fine_tune_type,
        quantization=quantization,
        hyperparameters=Hyperparameters(**{k: v for k, v in resolved.items() if k in Hyperparameters.model_fields}),
        seed=job.seed,
        output_dir=work / "output",
        checkpoint_dir=work / "checkpoints",
        data_cache_dir=work / "data-cache",
        checkpoint_every_steps=settings.checkpoint_every_steps,
        keep_checkpoints=settings.keep_checkpoints,
        truncate_long_examples=settings.truncate_long_examples,
    )
