"""Token usage per organization and model, counted after the answer has left (never in its way).

Counts are summed in memory and written at most once a second per (organization, model), one
upsert each: at hundreds of requests a second, one database write per request cost the API more
than anything else it does per request. A process killed between two writes loses at most the
last second's counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.inference import repository

logger = logging.getLogger(__name__)
FLUSH_AFTER_SECONDS = 1.0


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


class UsageRecorder:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession] | None) -> None:
        self.sessionmaker = sessionmaker
        self._totals: dict[tuple[str, str], list[int]] = {}  # (organization, model) -> requests, prompt, completion
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, organization_id: str | None, model: str, usage: Usage) -> None:
        if organization_id is None or self.sessionmaker is None:
            return
        totals = self._totals.setdefault((organization_id, model), [0, 0, 0])
        totals[0] += 1
        totals[1] += usage.prompt_tokens
        totals[2] += usage.completion_tokens
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_soon())

    async def close(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()

    async def flush(self) -> None:
        totals, self._totals = self._totals, {}
        if not totals or self.sessionmaker is None:
            return
        try:
            async with self.sessionmaker() as session:
                for (organization_id, model), (requests, prompt, completion) in totals.items():
                    await repository.add_usage(session, organization_id, model, requests, prompt, completion)
                await session.commit()
        except Exception:  # a failure to count is logged, never turned into a failed answer
            logger.exception("could not record token usage of %d organization/model pairs", len(totals))

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_AFTER_SECONDS)
        await self.flush()
