"""`Idempotency-Key` on create calls: a repeated key returns the first response."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import redis.asyncio as aioredis

from app.core.errors import Conflict

TTL_SECONDS = 24 * 3600
MAX_KEY_CHARS = 255


def _redis_key(principal_id: str, route: str, key: str) -> str:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"idempotency:{principal_id}:{route}:{digest}"


def fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


async def recall(redis: aioredis.Redis, principal_id: str, route: str, key: str, body_fingerprint: str) -> Any | None:
    if len(key) > MAX_KEY_CHARS:
        raise Conflict("Idempotency-Key is longer than 255 characters.", param="Idempotency-Key", code="invalid_idempotency_key")
    stored = await redis.get(_redis_key(principal_id, route, key))
    if stored is None:
        return None
    record = json.loads(stored)
    if record["fingerprint"] != body_fingerprint:
        raise Conflict(
            "This Idempotency-Key was already used with a different request body.",
            param="Idempotency-Key",
            code="idempotency_key_reused",
        )
    return record["response"]


async def remember(
    redis: aioredis.Redis, principal_id: str, route: str, key: str, body_fingerprint: str, response: Any
) -> None:
    record = json.dumps({"fingerprint": body_fingerprint, "response": response}, default=str)
    await redis.set(_redis_key(principal_id, route, key), record, ex=TTL_SECONDS)
