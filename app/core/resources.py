"""The clients one process holds: built at start-up (lifespan, worker init), closed at shutdown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.database import create_engine, create_sessionmaker
from app.core.redis_clients import async_client

if TYPE_CHECKING:
    from app.authz import Authorizer


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    redis: aioredis.Redis
    authorizer: Authorizer
    extras: dict[str, object] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, **engine_options: object) -> Resources:
        from app.authz import Authorizer

        engine = create_engine(settings, **engine_options)
        return cls(
            settings=settings,
            engine=engine,
            sessionmaker=create_sessionmaker(engine),
            redis=async_client(settings.redis_url),
            authorizer=Authorizer(settings.cerbos_url),
        )

    async def close(self) -> None:
        await self.authorizer.close()
        await self.redis.aclose()
        await self.engine.dispose()
