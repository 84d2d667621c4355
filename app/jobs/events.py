"""Job events: what one says (`NewEvent`), and their live publication on Redis for streams.

Rows are written by `app.jobs.repository` (fenced by attempt where a worker writes them); a
stream that misses a live message finds it in PostgreSQL (on reconnect, at the end).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.jobs.schemas import EventObject
from app.jobs.tables import JobEvent

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewEvent:
    """An event to append to a job: `type` is "metrics" for progress figures, else "message"."""

    message: str
    level: str = "info"  # info | warn | error
    data: dict[str, Any] | None = None
    type: str = "message"


def channel(job_id: str) -> str:
    return f"job-events:{job_id}"


async def publish(redis: aioredis.Redis, event: JobEvent) -> None:
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
