"""Token usage per organization and model, counted after the answer has left (never in its way)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.inference import repository

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


class UsageRecorder:
    """Adds each answered request to PostgreSQL in a task of its own; `close()` waits for the last ones."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession] | None) -> None:
        self.sessionmaker = sessionmaker
        self._pending: set[asyncio.Task[None]] = set()

    async def record(self, organization_id: str | None, model: str, usage: Usage) -> None:
        if organization_id is None or self.sessionmaker is None:
            return
        task = asyncio.create_task(self._write(organization_id, model, usage))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def close(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def _write(self, organization_id: str, model: str, usage: Usage) -> None:
        assert self.sessionmaker is not None
        try:
            async with self.sessionmaker() as session:
                await repository.add_usage(session, organization_id, model, usage.prompt_tokens,
                                           usage.completion_tokens)  # fmt: skip
                await session.commit()
        except Exception:  # a failure to count is logged, never turned into a failed answer
            logger.exception("could not record token usage of %s for %s", model, organization_id)
