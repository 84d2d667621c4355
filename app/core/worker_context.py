"""What a Celery task needs to talk to the platform: built per task run, closed after it.

Each task runs its coroutine with `run_in_context`; the engine uses no pool so
nothing outlives the task's event loop (prefork children and the solo pool alike).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy.pool import NullPool

from app.core.clients import Clients
from app.core.config import get_settings
from app.core.database import retry_while_unavailable

T = TypeVar("T")


@dataclass
class WorkerContext(Clients):
    @classmethod
    def create(cls) -> WorkerContext:
        redis_options = {"socket_timeout": 10, "socket_connect_timeout": 5}
        engine_options = {"poolclass": NullPool, "pool_size": None, "max_overflow": None}
        return cls(**Clients.connect(get_settings(), engine_options=engine_options, redis_options=redis_options))

    async def write(self, work: Callable[[], Awaitable[T]], what: str) -> T:
        """One transaction of this worker, tried again while PostgreSQL restarts (see `retry_while_unavailable`).

        `work` opens its own session, so each try is a fresh transaction.
        """
        return await retry_while_unavailable(work, what, self.settings.worker_database_retry_seconds)


def run_in_context(work: Callable[[WorkerContext], Awaitable[T]]) -> T:
    async def main() -> T:
        context = WorkerContext.create()
        try:
            return await work(context)
        finally:
            await context.close()

    return asyncio.run(main())
