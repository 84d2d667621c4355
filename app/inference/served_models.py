"""What serving needs of a model's row, kept per process and forgotten at the commit of any change to it.

A chat completion names its model on every request; reading that row each time cost the user API
a transaction (BEGIN, the SELECT, COMMIT) per request. Triggers on `base_models` and
`fine_tuned_models` send `NOTIFY served_models_changed` at commit (alembic revision
`d9a3f6b1c027`), so a deleted model, a base model taken off the catalog or a changed chat template
applies from the next request on, in every process (`app/core/notified_cache.py` says why).
Authorization is not cached: Cerbos still decides every request from these attributes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import repository as catalog
from app.core.notified_cache import NotifiedCache
from app.finetuned import repository as fine_tuned


@dataclass(frozen=True)
class BaseModelRow:
    allowed: bool
    chat_template: str | None


@dataclass(frozen=True)
class FineTunedRow:
    owner_id: str
    organization_id: str
    base_model: str
    adapter_path: str | None
    deleted_at: datetime | None


Row = TypeVar("Row", BaseModelRow, FineTunedRow)


class ServedModels(NotifiedCache[BaseModelRow | FineTunedRow]):
    """Keyed by the model's name; a name that matches no row is not kept (it is asked again)."""

    channel = "served_models_changed"

    async def base_model(self, session: AsyncSession, model: str) -> BaseModelRow | None:
        """The catalog entry's serving attributes; `session` must be the request's own."""

        async def read() -> BaseModelRow | None:
            entry = await catalog.get(session, model)
            return None if entry is None else BaseModelRow(allowed=entry.allowed, chat_template=entry.chat_template)

        return await self._cached(session, model, BaseModelRow, read)

    async def fine_tuned(self, session: AsyncSession, model: str) -> FineTunedRow | None:
        """The fine-tuned model's serving attributes, deleted or not; `session` must be the request's own."""

        async def read() -> FineTunedRow | None:
            stored = await fine_tuned.get(session, model)
            if stored is None:
                return None
            return FineTunedRow(owner_id=stored.owner_id, organization_id=stored.organization_id,
                                base_model=stored.base_model, adapter_path=stored.adapter_path,
                                deleted_at=stored.deleted_at)  # fmt: skip

        return await self._cached(session, model, FineTunedRow, read)

    async def _cached(
        self, session: AsyncSession, model: str, kind: type[Row], read: Callable[[], Awaitable[Row | None]]
    ) -> Row | None:
        if self.enabled:
            # The checkout's ping first (a no-op when authentication checked the connection out): it has
            # delivered every notice committed before the request began.
            await session.connection()
        generation = self.generation
        found = self.get(model)
        if isinstance(found, kind):
            return found
        row = await read()
        if row is not None:
            self.put(model, row, generation)
        return row


UNCACHED = ServedModels(0)  # for callers without a listening pool (workers): every read asks PostgreSQL
