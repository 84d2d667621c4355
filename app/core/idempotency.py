"""`Idempotency-Key` on create calls: a repeated key returns the first response.

A key is claimed in Redis (SET NX) before the request runs, so a retry that
arrives while the first attempt is still running (the usual case: the client
timed out) gets 409 instead of creating a second object. A request that fails
releases its claim, so the client may retry with the same key.

A first response is remembered only once the change it names is committed: `once` commits
the request's session itself before storing it (the one commit outside the session dependency).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import commit
from app.core.errors import BadRequest, Conflict

TTL_SECONDS = 24 * 3600
# How long an unfinished claim blocks the key if its process dies before releasing it.
CLAIM_SECONDS = 120
MAX_KEY_CHARS = 255


def _redis_key(principal_id: str, route: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"idempotency:{principal_id}:{route}:{digest}"


def fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Replay:
    """`response` is the first response when the key was used before; set it to remember a new one."""

    response: Any = None


async def _claim(redis: aioredis.Redis, name: str, body_fingerprint: str) -> Any | None:
    """Claim the key (None), or the stored first response; 409 while another request holds it."""
    pending = json.dumps({"fingerprint": body_fingerprint, "pending": True})
    if await redis.set(name, pending, nx=True, ex=CLAIM_SECONDS):
        return None
    stored = await redis.get(name)
    if stored is None:  # expired between the two calls: claim it again
        return await _claim(redis, name, body_fingerprint)
    record = json.loads(stored)
    if record["fingerprint"] != body_fingerprint:
        raise Conflict(
            "This Idempotency-Key was already used with a different request body.",
            param="Idempotency-Key",
            code="idempotency_key_reused",
        )
    if record.get("pending"):
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            param="Idempotency-Key",
            code="idempotency_key_in_use",
            headers={"Retry-After": "1", "x-should-retry": "true"},
        )
    return record["response"]


@asynccontextmanager
async def once(
    redis: aioredis.Redis, session: AsyncSession, principal_id: str, route: str, key: str | None, body: Any
) -> AsyncIterator[Replay]:
    """Run the block at most once per key; without a key, always run it (and leave the commit to the caller)."""
    replay = Replay()
    if not key:
        yield replay
        return
    if len(key) > MAX_KEY_CHARS:
        raise BadRequest(
            "Idempotency-Key is longer than 255 characters.", param="Idempotency-Key", code="invalid_idempotency_key"
        )
    name, body_fingerprint = _redis_key(principal_id, route, key), fingerprint(body)
    replay.response = await _claim(redis, name, body_fingerprint)
    if replay.response is not None:
        yield replay
        return
    try:
        yield replay
    except BaseException:
        await redis.delete(name)
        raise
    if replay.response is None:  # the block chose not to answer: leave the key free
        await redis.delete(name)
        return
    try:
        await commit(session)  # a replay must name a row that exists
    except BaseException:
        await redis.delete(name)
        raise
    record = json.dumps({"fingerprint": body_fingerprint, "response": replay.response}, default=str)
    await redis.set(name, record, ex=TTL_SECONDS)
