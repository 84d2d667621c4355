"""Every statement on organizations, users, API keys and quotas."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Row, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.pagination import contains_pattern, fetch_page
from app.users.tables import ApiKey, Organization, Quota, User


@dataclass(frozen=True)
class UserFilters:
    """The admin list's filters over every user."""

    organization_id: str | None = None
    role: str | None = None
    disabled: bool | None = None
    email: str | None = None  # part of the address


# ---- organizations ---------------------------------------------------------------------------


async def get_organization(session: AsyncSession, organization_id: str) -> Organization | None:
    return await session.get(Organization, organization_id)


async def organization_name(session: AsyncSession, organization_id: str) -> str | None:
    return await session.scalar(select(Organization.name).where(Organization.id == organization_id))


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


# ---- users -----------------------------------------------------------------------------------


async def get_user(session: AsyncSession, user_id: str) -> User | None:
    return await session.get(User, user_id)


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(func.lower(User.email) == email.lower()))


async def users_page(
    session: AsyncSession, filters: UserFilters, after: str | None, limit: int
) -> tuple[Sequence[User], bool]:
    query = select(User)
    if filters.organization_id:
        query = query.where(User.organization_id == filters.organization_id)
    if filters.role:
        query = query.where(User.roles.contains([filters.role]))
    if filters.disabled is not None:
        query = query.where(User.disabled.is_(filters.disabled))
    if filters.email:
        query = query.where(User.email.ilike(contains_pattern(filters.email), escape="\\"))
    return await fetch_page(session, query, User.id, after=after, limit=limit)


# ---- API keys --------------------------------------------------------------------------------


async def get_key(session: AsyncSession, key_id: str) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


# What authentication reads of a key and its user: one lookup by the unique lookup prefix, joined on
# the user's primary key. Built once, so SQLAlchemy reuses its compiled form on every request.
CREDENTIAL_BY_PREFIX = (
    select(
        ApiKey.secret_hash,
        ApiKey.id,
        User.id,
        User.organization_id,
        User.roles,
        User.disabled,
        ApiKey.revoked_at,
        ApiKey.expires_at,
        ApiKey.last_used_at,
    )
    .join(User, User.id == ApiKey.user_id)
    .where(ApiKey.lookup_prefix == bindparam("lookup_prefix"))
)


async def credential_by_prefix(
    session: AsyncSession, lookup_prefix: str
) -> Row[str, str, str, str, list[str], bool, datetime | None, datetime | None, datetime | None] | None:
    """(secret_hash, key id, user id, organization id, roles, disabled, revoked_at, expires_at, last_used_at)."""
    return (await session.execute(CREDENTIAL_BY_PREFIX, {"lookup_prefix": lookup_prefix})).one_or_none()


async def record_key_use(session: AsyncSession, key_id: str, when: datetime) -> None:
    await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=when))


async def keys_page(
    session: AsyncSession, user_id: str, after: str | None, limit: int
) -> tuple[Sequence[ApiKey], bool]:
    query = select(ApiKey).where(ApiKey.user_id == user_id)
    return await fetch_page(session, query, ApiKey.id, after=after, limit=limit)


# ---- quotas ----------------------------------------------------------------------------------


async def quotas_applying(session: AsyncSession, user_id: str, organization_id: str | None) -> Sequence[Quota]:
    """The user's own quota and their organization's, whichever are set."""
    query = select(Quota).where(or_(Quota.user_id == user_id, Quota.organization_id == organization_id))
    return (await session.scalars(query)).all()


async def quota_of(session: AsyncSession, subject: str, subject_id: str) -> Quota | None:
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
