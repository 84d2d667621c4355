from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.users.tables import Quota


async def for_subject(session: AsyncSession, subject: str, subject_id: str) -> Quota | None:
    column = Quota.user_id if subject == "user" else Quota.organization_id
    return await session.scalar(select(Quota).where(column == subject_id))


async def quotas_page(
    session: AsyncSession, subject: str | None, after: int | None, limit: int
) -> tuple[Sequence[Quota], bool]:
    query = select(Quota)
    if subject == "user":
        query = query.where(Quota.user_id.is_not(None))
    elif subject == "organization":
        query = query.where(Quota.organization_id.is_not(None))
    if after is not None:
        query = query.where(Quota.id > after)
    rows = (await session.scalars(query.order_by(Quota.id).limit(limit + 1))).all()
    return rows[:limit], len(rows) > limit
