"""The worker's writes for one attempt: each its own transaction, retried while PostgreSQL restarts
(`WorkerContext.write`), fenced by the attempt, and published on Redis once committed.
"""

from __future__ import annotations

import logging
import shutil
from typing import Any

from app.core.celery_app import TASK_RUN_FINETUNE
from app.core.database import utcnow
from app.core.outbox import enqueue, relay
from app.core.worker_context import WorkerContext
from app.jobs import events, repository
from app.jobs.events import NewEvent
from app.jobs.tables import Job, JobEvent
from app.jobs.worker.state import RunState, work_dir_of

logger = logging.getLogger(__name__)


async def update_job(context: WorkerContext, state: RunState, **values: Any) -> None:
    """Set columns of the job (None values are skipped, but for `lease_until`); fenced out if it is not ours."""
    values = {key: value for key, value in values.items() if value is not None or key == "lease_until"}

    async def update_row() -> bool:
        async with context.sessionmaker() as session:
            owned = await repository.update_fenced(session, state.job.id, state.attempt, **values)
            await session.commit()
            return owned

    if not await context.write(update_row, f"job {state.job.id}: update"):
        state.fenced_out = True


async def add_event(context: WorkerContext, state: RunState, event: NewEvent) -> None:
    async def add() -> JobEvent | None:
        async with context.sessionmaker() as session:
            row = await repository.add_fenced_event(session, state.job.id, state.attempt, event)
            await session.commit()
            return row

    row = await context.write(add, f"job {state.job.id}: event")
    if row is None:
        state.fenced_out = True
        return
    await events.publish(context.redis, row)


async def fail(context: WorkerContext, job: Job, attempt: int, code: str, message: str) -> None:
    """The job failed for good: its row, an error event, and the partial outputs removed."""

    async def record() -> JobEvent | None:
        async with context.sessionmaker() as session:
            done = await repository.update_fenced(
                session,
                job.id,
                attempt,
                status="failed",
                finished_at=utcnow(),
                lease_until=None,
                error={"code": code, "message": message, "param": None},
            )
            if not done:
                return None
            event = repository.add_event(session, job.id, NewEvent(f"Job failed: {message}", level="error"), attempt)
            await session.commit()
            return event

    event = await context.write(record, f"job {job.id}: failure")
    if event is not None:
        await events.publish(context.redis, event)
        await events.publish_status(context.redis, job.id, "failed")
    shutil.rmtree(work_dir_of(context, job.id) / "output", ignore_errors=True)


async def requeue(context: WorkerContext, state: RunState, event: NewEvent, **values: Any) -> bool:
    """Back to `queued` with its message in the outbox, published now (else by the reconciler); False if fenced out."""
    job = state.job

    async def write() -> tuple[JobEvent, int] | None:
        async with context.sessionmaker() as session:
            if not await repository.update_fenced(
                session, job.id, state.attempt, status="queued", lease_until=None, enqueued_at=utcnow(), **values
            ):
                return None
            row = repository.add_event(session, job.id, event, attempt=state.attempt)
            message = enqueue(session, None, TASK_RUN_FINETUNE, [job.id], priority=job.priority)
            await session.commit()
            return row, message.id

    written = await context.write(write, f"job {job.id}: re-queue")
    if written is None:
        state.fenced_out = True
        return False
    row, message_id = written
    try:
        await relay(context.sessionmaker, [message_id])  # this message only: the reconciler relays the rest
    except Exception:  # the message is in the outbox: the reconciler publishes it
        logger.exception("job %s: re-queue message not published now; the reconciler will", job.id)
    await events.publish(context.redis, row)
    await events.publish_status(context.redis, job.id, "queued")
    return True
