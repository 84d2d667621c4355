"""What a succeeded job leaves behind: weights with manifests, the result file, MLflow, the model row."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from app.artifacts.archive import write_manifest
from app.core import ids
from app.core.database import utcnow
from app.core.worker_context import WorkerContext
from app.files.tables import File
from app.finetuned.tables import FineTunedModel
from app.jobs import events, lifecycle, tracking
from app.jobs.schemas import fine_tuned_model_name
from app.jobs.tables import Job, JobEvent
from app.users.tables import Organization

if TYPE_CHECKING:
    from app.jobs.runner import RunState

logger = logging.getLogger(__name__)
RESULTS_PURPOSE = "fine-tune-results"


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


async def finish_success(context: WorkerContext, state: RunState) -> None:
    """Record the outputs of a finished run. Safe to run again for the same run (a retried attempt):
    the registry version of the run is reused, and rows are written in one transaction, or not at all."""
    job, done = state.job, state.done or {}
    artifact_dirs = {
        name: str(done[key]) for name, key in (("adapter", "adapter_dir"), ("merged", "merged_dir")) if done.get(key)
    }
    if not artifact_dirs and done.get("model_dir"):
        artifact_dirs["model"] = str(done["model_dir"])
    for path in artifact_dirs.values():
        write_manifest(Path(path))

    async def organization_name() -> str:
        async with context.sessionmaker() as session:
            organization = await session.get(Organization, job.organization_id)
            return organization.name if organization else job.organization_id

    job.fine_tuned_model = fine_tuned_model_name(job, await context.write(organization_name, f"job {job.id}: name"))

    registry: tuple[str | None, int | None] = (None, None)
    if state.run_id:
        mlflow_dirs = {name: path for name, path in artifact_dirs.items() if name != "merged"}
        try:
            registry = await asyncio.to_thread(
                tracking.log_outputs_and_register,
                context,
                job,
                state.run_id,
                mlflow_dirs,
                [done["metrics_csv"]] if done.get("metrics_csv") else [],
            )
        except Exception:
            logger.exception("job %s: MLflow logging/registration failed", job.id)

    result = _store_result_file(context, job, Path(done["metrics_csv"])) if done.get("metrics_csv") else None

    result_ids = [result.id] if result else []

    async def record() -> tuple[list[JobEvent], list[str]]:
        """The success rows, once: returns the events added and the result files the job names."""
        async with context.sessionmaker() as session:
            current = await session.get(Job, job.id)
            if current is None or current.attempt != state.attempt or current.status == "succeeded":
                # Another attempt owns the job, or this one's commit went through before its connection broke.
                return [], list(current.result_files or []) if current else []
            if result is not None:
                await session.merge(result)
            success = {
                "status": "succeeded",
                "finished_at": utcnow(),
                "lease_until": None,
                "fine_tuned_model": job.fine_tuned_model,
                "result_files": result_ids,
                "trained_tokens": done.get("trained_tokens"),
                "output_dir": str(done.get("output_dir") or ""),
            }
            if state.last_step:  # an attempt that resumed at the last checkpoint trains no step: keep the count
                success["current_step"] = state.last_step
            if not await lifecycle.update_fenced(session, job.id, state.attempt, **success):
                await session.rollback()
                return [], []
            existing = await session.scalar(select(FineTunedModel).where(FineTunedModel.job_id == job.id))
            if existing is None:
                session.add(
                    FineTunedModel(
                        id=job.fine_tuned_model,
                        job_id=job.id,
                        owner_id=job.owner_id,
                        organization_id=job.organization_id,
                        base_model=job.model,
                        adapter_path=artifact_dirs.get("adapter") or artifact_dirs.get("model"),
                        merged_path=artifact_dirs.get("merged"),
                        registry_name=registry[0],
                        registry_version=registry[1],
                    )
                )
            added = [
                events.add_event(
                    session,
                    job.id,
                    f"New fine-tuned model created: {job.fine_tuned_model}",
                    attempt=state.attempt,
                    data={"registry": {"name": registry[0], "version": registry[1]}},
                ),
                events.add_event(session, job.id, "The job has successfully completed", attempt=state.attempt),
            ]
            await session.commit()
            return added, result_ids

    stored: list[str] = []
    try:
        added, stored = await context.write(record, f"job {job.id}: success")
    finally:
        if result is not None and result.id not in stored:
            (context.settings.datasets_path / result.storage_name).unlink(missing_ok=True)
    if not added:
        return
    for event in added:
        await events.publish(context.redis, event)
    await events.publish_status(context.redis, job.id, "succeeded")
