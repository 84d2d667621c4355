"""The clients every process of the platform holds: settings, the database engine and its sessions, Redis.

Built at start-up (an API's lifespan: `Resources`; a Celery task run: `WorkerContext`), never at
import time, and closed at shutdown. Each holder adds what only it needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.database import create_engine, create_sessionmaker
from app.core.redis_clients import async_client


@dataclass
class Clients:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: aioredis.Redis

    @staticmethod
    def connect(
        settings: Settings, *, engine_options: dict[str, Any] | None = None, redis_options: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The fields of the shared clients, made for `settings` (pass them on to the holder's constructor)."""
        engine = create_engine(settings, **(engine_options or {}))
        return {
            "settings": settings,
            "engine": engine,
            "sessionmaker": create_sessionmaker(engine),
            "redis": async_client(settings.redis_url, **(redis_options or {})),
        }

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()
