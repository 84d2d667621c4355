from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import fetch_page
from app.core.outbox import OutboxMessage
from app.jobs.tables import Checkpoint, Job, JobEvent


@dataclass(frozen=True)
class JobFilters:
    statuses: list[str] | None = None
    owner_id: str | None = None
    organization_id: str | None = None
    model: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


async def jobs_page(
    session: AsyncSession, filters: JobFilters, after: str | None, limit: int
) -> tuple[Sequence[Job], bool]:
    query = select(Job)
    if filters.statuses:
        query = query.where(Job.status.in_(filters.statuses))
    if filters.owner_id:
        query = query.where(Job.owner_id == filters.owner_id)
    if filters.organization_id:
        query = query.where(Job.organization_id == filters.organization_id)
    if filters.model:
        query = query.where(Job.model == filters.model)
    if filters.created_after:
        query = query.where(Job.created_at >= filters.created_after)
    if filters.created_before:
        query = query.where(Job.created_at < filters.created_before)
    return await fetch_page(session, query, Job.id, after=after, limit=limit)


async def latest_events(session: AsyncSession, job_id: str, limit: int) -> Sequence[JobEvent]:
    rows, _ = await fetch_page(session, select(JobEvent).where(JobEvent.job_id == job_id), JobEvent.id,
                               after=None, limit=limit)  # fmt: skip
    return rows


async def latest_checkpoint(session: AsyncSession, job_id: str) -> Checkpoint | None:
    query = (
        select(Checkpoint)
        .where(Checkpoint.job_id == job_id, Checkpoint.deleted.is_(False))
        .order_by(Checkpoint.step_number.desc())
        .limit(1)
    )
    return await session.scalar(query)


async def reprioritize_unsent(session: AsyncSession, task_name: str, job_id: str, priority: int) -> int:
    """Give the job's not-yet-published messages the new priority; how many there were."""
    result = await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.task_name == task_name, OutboxMessage.sent_at.is_(None), OutboxMessage.args == [job_id])
        .values(priority=priority)
        .returning(OutboxMessage.id)
    )
    return len(result.all())
