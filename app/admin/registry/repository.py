from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import fetch_page
from app.finetuned.tables import FineTunedModel


async def models_page(
    session: AsyncSession,
    *,
    owner_id: str | None,
    organization_id: str | None,
    base_model: str | None,
    include_deleted: bool,
    after: str | None,
    limit: int,
) -> tuple[Sequence[FineTunedModel], bool]:
    query = select(FineTunedModel)
    if not include_deleted:
        query = query.where(FineTunedModel.deleted_at.is_(None))
    if owner_id:
        query = query.where(FineTunedModel.owner_id == owner_id)
    if organization_id:
        query = query.where(FineTunedModel.organization_id == organization_id)
    if base_model:
        query = query.where(FineTunedModel.base_model == base_model)
    return await fetch_page(session, query, FineTunedModel.id, after=after, limit=limit)
