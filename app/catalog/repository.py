"""Every statement on the base-model catalog."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.tables import CatalogEntry
from app.core.pagination import fetch_page


async def get(session: AsyncSession, model_id: str, *, for_update: bool = False) -> CatalogEntry | None:
    return await session.get(CatalogEntry, model_id, with_for_update=for_update)


async def list_allowed(session: AsyncSession) -> Sequence[CatalogEntry]:
    return (await session.scalars(select(CatalogEntry).where(CatalogEntry.allowed).order_by(CatalogEntry.id))).all()


async def entries_page(
    session: AsyncSession, allowed: bool | None, download_status: str | None, after: str | None, limit: int
) -> tuple[Sequence[CatalogEntry], bool]:
    query = select(CatalogEntry)
    if allowed is not None:
        query = query.where(CatalogEntry.allowed.is_(allowed))
    if download_status is not None:
        query = query.where(CatalogEntry.download_status == download_status)
    return await fetch_page(session, query, CatalogEntry.id, after=after, limit=limit, descending=False)
