"""What a Celery task needs to talk to the platform: built per task run, closed after it.

Each task runs its coroutine with `run_in_context`; the engine uses no pool so
nothing outlives the task's event loop (prefork children and the solo pool alike).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.pool import NullPool

from app.core.config import Settings, get_settings
from app.core.database import create_engine, create_sessionmaker, retry_while_unavailable
from app.core.redis_clients import async_client

T = TypeVar("T")


@dataclass
class WorkerContext:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: aioredis.Redis

    @classmethod
    def create(cls) -> WorkerContext:
        settings = get_settings()
        engine = create_engine(settings, poolclass=NullPool, pool_size=None, max_overflow=None)
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            redis=async_client(settings.redis_url, socket_timeout=10, socket_connect_timeout=5),
        )

    async def write(self, work: Callable[[], Awaitable[T]], what: str) -> T:
        """One transaction of this worker, tried again while PostgreSQL restarts (see `retry_while_unavailable`).

        `work` opens its own session, so each try is a fresh transaction.
        """
        return await retry_while_unavailable(work, what, self.settings.worker_database_retry_seconds)

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()


def run_in_context(work: Callable[[WorkerContext], Awaitable[T]]) -> T:
    async def main() -> T:
        context = WorkerContext.create()
        try:
            return await work(context)
        finally:
            await context.close()

    return asyncio.run(main())
