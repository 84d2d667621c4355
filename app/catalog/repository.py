from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.tables import CatalogEntry


async def get(session: AsyncSession, model_id: str) -> CatalogEntry | None:
    return await session.get(CatalogEntry, model_id)


async def list_allowed(session: AsyncSession) -> Sequence[CatalogEntry]:
    return (await session.scalars(select(CatalogEntry).where(CatalogEntry.allowed).order_by(CatalogEntry.id))).all()
