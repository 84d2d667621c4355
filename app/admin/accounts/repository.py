from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.sql import contains_pattern
from app.core.pagination import fetch_page
from app.jobs.tables import Job
from app.users.tables import ApiKey, Organization, User

# Jobs that still hold (or wait for) a GPU: what "cancel the user's jobs" stops.
CANCELLABLE_STATUSES = ("validating_files", "queued", "running", "paused")


async def organization_by_name(session: AsyncSession, name: str) -> Organization | None:
    return await session.scalar(select(Organization).where(Organization.name == name))


async def organizations_page(
    session: AsyncSession, name: str | None, after: str | None, limit: int
) -> tuple[Sequence[Organization], bool]:
    query = select(Organization)
    if name:
        query = query.where(Organization.name.ilike(contains_pattern(name), escape="\\"))
    return await fetch_page(session, query, Organization.id, after=after, limit=limit)


async def user_counts(session: AsyncSession, organization_ids: list[str]) -> dict[str, int]:
    query = (
        select(User.organization_id, func.count())
        .where(User.organization_id.in_(organization_ids))
        .group_by(User.organization_id)
    )
    return {organization_id: int(count) for organization_id, count in (await session.execute(query)).all()}


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(func.lower(User.email) == email.lower()))


async def users_page(
    session: AsyncSession,
    *,
    organization_id: str | None,
    role: str | None,
    disabled: bool | None,
    email: str | None,
    after: str | None,
    limit: int,
) -> tuple[Sequence[User], bool]:
    query = select(User)
    if organization_id:
        query = query.where(User.organization_id == organization_id)
    if role:
        query = query.where(User.roles.contains([role]))
    if disabled is not None:
        query = query.where(User.disabled.is_(disabled))
    if email:
        query = query.where(User.email.ilike(contains_pattern(email), escape="\\"))
    return await fetch_page(session, query, User.id, after=after, limit=limit)


async def cancellable_job_ids(session: AsyncSession, user_id: str) -> list[str]:
    query = select(Job.id).where(Job.owner_id == user_id, Job.status.in_(CANCELLABLE_STATUSES)).order_by(Job.id)
    return list((await session.scalars(query)).all())


async def keys_page(
    session: AsyncSession, user_id: str, after: str | None, limit: int
) -> tuple[Sequence[ApiKey], bool]:
    return await fetch_page(
        session, select(ApiKey).where(ApiKey.user_id == user_id), ApiKey.id, after=after, limit=limit
    )
