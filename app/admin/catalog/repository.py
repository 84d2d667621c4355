from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.tables import CatalogEntry
from app.core.pagination import fetch_page
from app.jobs.tables import Job


async def entries_page(
    session: AsyncSession, allowed: bool | None, download_status: str | None, after: str | None, limit: int
) -> tuple[Sequence[CatalogEntry], bool]:
    query = select(CatalogEntry)
    if allowed is not None:
        query = query.where(CatalogEntry.allowed.is_(allowed))
    if download_status is not None:
        query = query.where(CatalogEntry.download_status == download_status)
    return await fetch_page(session, query, CatalogEntry.id, after=after, limit=limit, descending=False)


async def jobs_using(session: AsyncSession, model_id: str) -> int:
    return int(await session.scalar(select(func.count()).select_from(Job).where(Job.model == model_id)) or 0)
