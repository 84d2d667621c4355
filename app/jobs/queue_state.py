"""What the Redis broker holds: the job ids waiting in a queue or delivered but not yet acknowledged."""

from __future__ import annotations

import base64
import json
from typing import Any

import redis.asyncio as aioredis

from app.core.celery_app import CPU_QUEUE, GPU_QUEUE, queue_for

PRIORITY_SEPARATOR = ":"
UNACKED_HASH = "unacked"


def queue_keys(queue: str) -> list[str]:
    """Kombu's Redis transport keeps one list per priority step: `gpu`, `gpu:1`, ... `gpu:9`."""
    return [queue] + [f"{queue}{PRIORITY_SEPARATOR}{step}" for step in range(1, 10)]


def message_task_and_args(raw: bytes | str) -> tuple[str | None, list[Any]]:
    """The task name and positional args of a stored Celery message; (None, []) if unreadable.

    Queued messages are JSON with a base64 JSON body `[args, kwargs, embed]`; entries of the
    `unacked` hash wrap the message as `[message, exchange, routing_key]`.
    """
    try:
        message = json.loads(raw)
        if isinstance(message, list):
            message = message[0]
        task = message.get("headers", {}).get("task")
        body = json.loads(base64.b64decode(message["body"]))
        return task, list(body[0]) if isinstance(body, list) and body else []
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        return None, []


def _job_id_of(raw: bytes | str) -> str | None:
    _, args = message_task_and_args(raw)
    return str(args[0]) if args else None


async def _stored_messages(redis: aioredis.Redis, queues: tuple[str, ...]) -> list[bytes | str]:
    """Every message waiting in `queues` (each priority list) and every delivered, unacknowledged one."""
    raws = [raw for queue in queues for key in queue_keys(queue) for raw in await redis.lrange(key, 0, -1)]
    return raws + list((await redis.hgetall(UNACKED_HASH)).values())


async def job_ids_in_broker(redis: aioredis.Redis) -> set[str]:
    found = {_job_id_of(raw) for raw in await _stored_messages(redis, (GPU_QUEUE, CPU_QUEUE))}
    return {job_id for job_id in found if job_id is not None}


async def task_args_in_broker(redis: aioredis.Redis, task_name: str) -> set[str]:
    """The first argument of every `task_name` message waiting in its queue or delivered and not acknowledged."""
    found: set[str] = set()
    for raw in await _stored_messages(redis, (queue_for(task_name),)):
        task, args = message_task_and_args(raw)
        if task == task_name and args:
            found.add(str(args[0]))
    return found
