"""Redis clients that survive a restart of the Redis-protocol server.

After Valkey restarts, every pooled connection holds a closed socket: the first command on each
fails with "Connection closed by server" although the server is back. These clients send such a
command again on a fresh connection (a few times, with a short backoff). Only connection errors
are retried: a command that timed out may have run, and INCR-like commands must not run twice.
"""

from __future__ import annotations

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

RETRIES = 3
BACKOFF = ExponentialBackoff(cap=1.0, base=0.05)


def async_client(url: str, socket_timeout: float = 5, socket_connect_timeout: float = 3) -> aioredis.Redis:
    retry = AsyncRetry(BACKOFF, RETRIES, supported_errors=(redis.ConnectionError,))
    return aioredis.Redis.from_url(
        url, socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout, retry=retry
    )


def sync_client(url: str, socket_timeout: float = 5, socket_connect_timeout: float = 5) -> redis.Redis:
    retry = Retry(BACKOFF, RETRIES, supported_errors=(redis.ConnectionError,))
    return redis.Redis.from_url(
        url, socket_timeout=socket_timeout, socket_connect_timeout=socket_connect_timeout, retry=retry
    )
