"""Job events: appended to PostgreSQL (fenced by attempt) and published on Redis for live streams."""

from __future__ import annotations

import json
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core import ids
from app.core.database import utcnow
from app.jobs.tables import Job, JobEvent

logger = logging.getLogger(__name__)


def channel(job_id: str) -> str:
    return f"job-events:{job_id}"


def add_event(
    session: AsyncSession,
    job_id: str,
    message: str,
    level: str = "info",
    data: dict[str, Any] | None = None,
    event_type: str = "message",
    attempt: int = 0,
) -> JobEvent:
    event = JobEvent(
        id=ids.event_id(), job_id=job_id, attempt=attempt, level=level, type=event_type, message=message, data=data
    )
    session.add(event)
    return event


async def add_fenced_event(
    session: AsyncSession,
    job_id: str,
    attempt: int,
    message: str,
    level: str = "info",
    data: dict[str, Any] | None = None,
    event_type: str = "message",
) -> JobEvent | None:
    """Insert only while `attempt` still owns the job: a worker that lost its lease writes nothing."""
    event_id = ids.event_id()
    now = utcnow()
    source = select(
        literal(event_id),
        Job.id,
        literal(attempt),
        literal(level),
        literal(event_type),
        literal(message),
        literal(data, type_=JobEvent.__table__.c.data.type),
        literal(now, type_=JobEvent.__table__.c.created_at.type),
    ).where(Job.id == job_id, Job.attempt == attempt)
    columns = ["id", "job_id", "attempt", "level", "type", "message", "data", "created_at"]
    result = await session.execute(insert(JobEvent).from_select(columns, source).returning(JobEvent.id))
    if result.scalar_one_or_none() is None:
        return None
    return JobEvent(
        id=event_id,
        job_id=job_id,
        attempt=attempt,
        level=level,
        type=event_type,
        message=message,
        data=data,
        created_at=now,
    )


async def publish(redis: aioredis.Redis, event: JobEvent) -> None:
    from app.jobs.schemas import EventObject

    await _publish_live(redis, event.job_id, json.dumps(EventObject.of(event).model_dump()))


async def publish_status(redis: aioredis.Redis, job_id: str, status: str) -> None:
    await _publish_live(redis, job_id, json.dumps({"object": "status", "status": status}))


async def _publish_live(redis: aioredis.Redis, job_id: str, payload: str) -> None:
    """Best effort: the event is already in PostgreSQL, where a stream finds what it missed (on reconnect, at the end).

    Callers publish after their commit; failing here would tell a client "503, retry" about a change
    that is already made (a retried job creation made a second job while Redis was down).
    """
    try:
        await redis.publish(channel(job_id), payload)
    except (RedisConnectionError, RedisTimeoutError) as error:
        logger.warning("live event of %s not published (Redis unavailable): %s", job_id, error)
