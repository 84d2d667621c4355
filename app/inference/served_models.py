"""What serving needs of a model's row, kept per process and forgotten at the commit of any change to it.

A chat completion names its model on every request; reading that row each time cost the user API
a transaction (BEGIN, the SELECT, COMMIT) per request. Triggers on `base_models` and
`fine_tuned_models` send `NOTIFY served_models_changed` at commit (alembic revision
`d9a3f6b1c027`), so a deleted model, a base model taken off the catalog or a changed chat template
applies from the next request on, in every process (`app/core/notified_cache.py` says why).
Authorization is not cached: Cerbos still decides every request from these attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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


class ServedModels(NotifiedCache[BaseModelRow | FineTunedRow]):
    """Keyed by the model's name; a name that matches no row is not kept (it is asked again)."""

    channel = "served_models_changed"

    async def base_model(self, session: AsyncSession, model: str) -> BaseModelRow | None:
        """The catalog entry's serving attributes; `session` must be the request's own."""
        generation = await self._checked_out(session)
        found = self.get(model)
        if isinstance(found, BaseModelRow):
            return found
        entry = await catalog.get(session, model)
        if entry is None:
            return None
        row = BaseModelRow(allowed=entry.allowed, chat_template=entry.chat_template)
        self.put(model, row, generation)
        return row

    async def fine_tuned(self, session: AsyncSession, model: str) -> FineTunedRow | None:
        """The fine-tuned model's serving attributes, deleted or not; `session` must be the request's own."""
        generation = await self._checked_out(session)
        found = self.get(model)
        if isinstance(found, FineTunedRow):
            return found
        stored = await fine_tuned.get(session, model)
        if stored is None:
            return None
        row = FineTunedRow(owner_id=stored.owner_id, organization_id=stored.organization_id,
                           base_model=stored.base_model, adapter_path=stored.adapter_path,
                           deleted_at=stored.deleted_at)  # fmt: skip
        self.put(model, row, generation)
        return row

    async def _checked_out(self, session: AsyncSession) -> int:
        """The cache's generation once the request holds its connection: its checkout ping has delivered
        every notice committed before the request began (a no-op when authentication checked it out)."""
        if self.enabled:
            await session.connection()
        return self.generation


UNCACHED = ServedModels(0)  # for callers without a listening pool (workers): every read asks PostgreSQL
