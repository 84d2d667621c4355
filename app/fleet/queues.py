"""What waits in the Redis broker: queue lengths per priority step, and the messages themselves.

Kombu's Redis transport keeps one list per priority step (`gpu`, `gpu:1` .. `gpu:9`,
see `priority_steps` in app/core/celery_app.py), LPUSHes new messages and serves
by BRPOP over the lists in priority order: priority 0 first, and within one list
the oldest message first. Messages are JSON with a base64 JSON body `[args, kwargs, embed]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from app.core.celery_app import CPU_QUEUE, GPU_QUEUE
from app.jobs.queue_state import message_task_and_args, queue_keys

QUEUES = (GPU_QUEUE, CPU_QUEUE)


@dataclass(frozen=True)
class WaitingMessage:
    key: str  # the Redis list holding it
    raw: bytes | str  # the exact stored value, for LREM
    task: str | None
    args: list[Any]
    priority: int


def priority_of_key(queue: str, key: str) -> int:
    return 0 if key == queue else int(key.rsplit(":", 1)[1])


def decode(key: str, queue: str, raw: bytes | str) -> WaitingMessage:
    """Never raises: a message this code cannot read still counts, with no task name."""
    task, args = message_task_and_args(raw)
    return WaitingMessage(key=key, raw=raw, task=task, args=args, priority=priority_of_key(queue, key))


async def lengths(redis: aioredis.Redis, queue: str) -> dict[int, int]:
    """LLEN of each priority list of `queue`."""
    keys = queue_keys(queue)
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.llen(key)
        sizes = await pipe.execute()
    return {priority_of_key(queue, key): int(size) for key, size in zip(keys, sizes, strict=True)}


async def waiting(redis: aioredis.Redis, queue: str, limit: int | None = None) -> list[WaitingMessage]:
    """Messages of `queue` in the order a worker will take them (priority 0 first, oldest first)."""
    found: list[WaitingMessage] = []
    for key in queue_keys(queue):
        # LPUSH + BRPOP: the tail of a list is served next, so read it reversed.
        raws = await redis.lrange(key, 0, -1)
        found.extend(decode(key, queue, raw) for raw in reversed(raws))
        if limit is not None and len(found) >= limit:
            return found[:limit]
    return found


async def remove_task_messages(redis: aioredis.Redis, queue: str, task: str, args: list[Any]) -> int:
    """Take waiting messages of `task(*args)` out of `queue`; 0 if a worker already took them."""
    removed = 0
    for message in await waiting(redis, queue):
        if message.task == task and message.args == args:
            removed += int(await redis.lrem(message.key, 1, message.raw))  # type: ignore[arg-type]  # bytes work
    return removed
