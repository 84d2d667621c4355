"""Admin control of any tenant's jobs: read with events, cancel, retry, change priority.

State changes go through the jobs domain's conditional transition (the row changes
only if it is still in the expected status, since a worker may be changing it too),
and messages through the outbox, published after commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.authz.resources import Resources
from app.core.celery_app import GPU_QUEUE, TASK_RUN_FINETUNE, TASK_VALIDATE_JOB
from app.core.database import after_commit, utcnow
from app.core.errors import Conflict, NotFound
from app.core.outbox import enqueue, reprioritize_unsent
from app.fleet.queues import remove_task_messages
from app.jobs import repository
from app.jobs import service as jobs
from app.jobs.schemas import JobFilters
from app.jobs.tables import Job

# A queued job's priority decides its place in the GPU queue; before that it only travels with the job.
REPRIORITIZABLE = ("validating_files", "queued", "paused")


async def get(session: AsyncSession, job_id: str) -> Job:
    job = await repository.get(session, job_id)
    if job is None:
        raise NotFound(f"No such fine-tuning job: '{job_id}'", param="job_id")
    return job


async def list_jobs(
    session: AsyncSession, filters: JobFilters, after: str | None, limit: int
) -> tuple[Sequence[Job], bool]:
    return await repository.filtered_page(session, filters, after, limit)


async def get_with_events(session: AsyncSession, job_id: str, events: int) -> tuple[Job, list[Any]]:
    """The job, and its newest `events` as read-only rows (`repository.EVENT_ROWS.row`)."""
    job = await get(session, job_id)
    rows, _ = await repository.events_page(session, job_id, None, events)
    return job, rows


async def cancel(resources: Resources, session: AsyncSession, job_id: str) -> Job:
    """The owner's cancel, done by job control (the route's Cerbos decision): `cancelled` at once."""
    return await jobs.cancel_job(resources, session, await get(session, job_id))


async def retry(resources: Resources, session: AsyncSession, job_id: str) -> Job:
    """A failed job runs again as a new attempt, from its latest checkpoint."""
    job = await get(session, job_id)
    if job.status != "failed":
        raise Conflict(f"Job '{job_id}' is {job.status}; only a failed job can be retried.", param="job_id")
    validated = job.resolved_hyperparameters is not None
    values = {
        "status": "queued" if validated else "validating_files",
        "error": None,
        "finished_at": None,
        "cancel_requested": False,
        "pause_requested": False,
        "lease_until": None,
        "enqueued_at": utcnow(),
        # A retry gets a fresh budget of attempts on top of those already spent (attempts keep fencing).
        "attempts_allowed": job.attempt + resources.settings.max_job_attempts,
    }
    job = await jobs.transition(resources, session, job, values, ("failed",), await _retry_message(session, job))
    if validated:
        enqueue(session, resources.sessionmaker, TASK_RUN_FINETUNE, [job.id], priority=job.priority)
    else:  # it failed validating its files: validate again, which then queues it
        enqueue(session, resources.sessionmaker, TASK_VALIDATE_JOB, [job.id])
    await session.flush()
    return job


async def _retry_message(session: AsyncSession, job: Job) -> str:
    checkpoint = await repository.latest_checkpoint(session, job.id)
    start = f"from the checkpoint at step {checkpoint.step_number}" if checkpoint else "from the start (no checkpoint)"
    return f"Retry requested by an administrator: attempt {job.attempt + 1} continues {start}"


async def set_priority(resources: Resources, session: AsyncSession, job_id: str, priority: int) -> Job:
    """Change the priority; a queued job's broker message is replaced by one with the new priority."""
    job = await get(session, job_id)
    if job.status not in REPRIORITIZABLE:
        raise Conflict(f"Job '{job_id}' is {job.status}; only a job that has not started can change priority.",
                       param="job_id")  # fmt: skip
    if job.priority == priority:
        return job
    message = f"Priority changed from {job.priority} to {priority} by an administrator"
    job = await jobs.transition(resources, session, job, {"priority": priority}, (job.status,), message)
    if job.status == "queued":
        await _requeue_with_priority(resources, session, job)
    return job


async def _requeue_with_priority(resources: Resources, session: AsyncSession, job: Job) -> None:
    if await reprioritize_unsent(session, TASK_RUN_FINETUNE, [job.id], job.priority):
        return  # not published yet: it will be, with the new priority
    job_id = job.id

    async def take_old_message_out() -> None:
        # After commit and before the new message is published (callbacks run in order). If a
        # worker took the old one meanwhile, the new one is a duplicate its claim turns away.
        await remove_task_messages(resources.redis, GPU_QUEUE, TASK_RUN_FINETUNE, [job_id])

    after_commit(session, take_old_message_out)
    enqueue(session, resources.sessionmaker, TASK_RUN_FINETUNE, [job.id], priority=job.priority)
    await session.flush()
