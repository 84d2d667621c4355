"""The clients every platform process holds: built at start-up (lifespan, worker init), closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass

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
    def connect(settings: Settings, **engine_options: object) -> Clients:
        engine = create_engine(settings, **engine_options)
        return Clients(settings, engine, create_sessionmaker(engine), async_client(settings.redis_url))

    async def close(self) -> None:
        await self.redis.aclose()
        await self.engine.dispose()
