"""Job state changes made by workers: every write is fenced by the attempt that claimed the job."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import utcnow
from app.jobs.tables import Job


def attempt_limit(job: Job, max_job_attempts: int) -> int:
    return job.attempts_allowed or max_job_attempts


async def claim(session: AsyncSession, job_id: str, worker: str, lease_seconds: int) -> int | None:
    """Take a queued job: one UPDATE bumps `attempt` and sets the lease. None if someone else has it."""
    now = utcnow()
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued", Job.cancel_requested.is_(False))
        .values(
            status="running",
            attempt=Job.attempt + 1,
            lease_until=now + timedelta(seconds=lease_seconds),
            heartbeat_at=now,
            worker=worker,
            pause_requested=False,
            started_at=now,
        )
        .returning(Job.attempt)
    )
    return result.scalar_one_or_none()


async def heartbeat(session: AsyncSession, job_id: str, attempt: int, lease_seconds: int) -> tuple[bool, bool] | None:
    """Extend the lease; returns (cancel_requested, pause_requested), or None when fenced out."""
    now = utcnow()
    result = await session.execute(
        update(Job)
        .where(Job.id == job_id, Job.attempt == attempt, Job.status == "running")
        .values(heartbeat_at=now, lease_until=now + timedelta(seconds=lease_seconds))
        .returning(Job.cancel_requested, Job.pause_requested)
    )
    row = result.one_or_none()
    return None if row is None else (bool(row[0]), bool(row[1]))


async def update_fenced(session: AsyncSession, job_id: str, attempt: int, **values: Any) -> bool:
    result = await session.execute(
        update(Job).where(Job.id == job_id, Job.attempt == attempt).values(**values).returning(Job.id)
    )
    return result.scalar_one_or_none() is not None


async def expired_leases(session: AsyncSession) -> list[Job]:
    query = select(Job).where(Job.status == "running", Job.lease_until < utcnow()).with_for_update(skip_locked=True)
    return list((await session.scalars(query)).all())


async def queued_jobs(session: AsyncSession, older_than: timedelta) -> list[Job]:
    query = select(Job).where(
        and_(Job.status.in_(("queued", "validating_files")), Job.enqueued_at < utcnow() - older_than)
    )
    return list((await session.scalars(query)).all())
