from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import utcnow
from app.jobs.tables import Job


async def running_jobs(session: AsyncSession) -> Sequence[Job]:
    return (await session.scalars(select(Job).where(Job.status == "running").order_by(Job.id))).all()


async def has_live_running_job(session: AsyncSession, within: timedelta) -> bool:
    """A job heartbeating now proves a GPU worker is alive even when it cannot answer a ping."""
    query = select(Job.id).where(Job.status == "running", Job.heartbeat_at > utcnow() - within).limit(1)
    return await session.scalar(query) is not None
