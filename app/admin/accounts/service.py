"""Organizations, users and API keys, managed by an admin."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.accounts.schemas import KeyCreate, KeyUpdate, UserCreate, UserUpdate
from app.authz import Principal
from app.authz.resources import Resources
from app.core.database import utcnow
from app.core.errors import Conflict, not_found
from app.jobs import repository as job_repository
from app.jobs import service as jobs
from app.users import repository
from app.users import service as users
from app.users.repository import UserFilters
from app.users.tables import ApiKey, Organization, User

# Jobs that still hold (or wait for) a GPU: what "cancel the user's jobs" stops.
CANCELLABLE_STATUSES = ("validating_files", "queued", "running", "paused")
T = TypeVar("T")


async def create_organization(session: AsyncSession, name: str) -> Organization:
    if await repository.organization_by_name(session, name) is not None:
        raise Conflict(f"An organization named '{name}' exists already.", param="name", code="organization_exists")
    return await users.create_organization(session, name)


def _found(row: T | None, kind: str, object_id: str, param: str) -> T:
    if row is None:
        raise not_found(kind, object_id, param=param)
    return row


async def get_organization(session: AsyncSession, organization_id: str) -> Organization:
    row = await repository.get_organization(session, organization_id)
    return _found(row, "organization", organization_id, "organization_id")


async def list_organizations(
    session: AsyncSession, name: str | None, after: str | None, limit: int
) -> tuple[list[tuple[Organization, int]], bool]:
    rows, has_more = await repository.organizations_page(session, name, after, limit)
    counts = await repository.user_counts(session, [row.id for row in rows])
    return [(row, counts.get(row.id, 0)) for row in rows], has_more


async def user_count(session: AsyncSession, organization_id: str) -> int:
    return (await repository.user_counts(session, [organization_id])).get(organization_id, 0)


async def list_users(
    session: AsyncSession, filters: UserFilters, after: str | None, limit: int
) -> tuple[Sequence[User], bool]:
    return await repository.users_page(session, filters, after, limit)


async def get_user(session: AsyncSession, user_id: str) -> User:
    return _found(await repository.get_user(session, user_id), "user", user_id, "user_id")


async def create_user(session: AsyncSession, body: UserCreate) -> User:
    await get_organization(session, body.organization_id)
    taken = Conflict(f"A user with email '{body.email}' exists already.", param="email", code="user_exists")
    if await repository.user_by_email(session, body.email) is not None:
        raise taken
    try:
        async with session.begin_nested():
            return await users.create_user(session, body.organization_id, body.email, body.name, _unique(body.roles))
    except IntegrityError:  # the same email created between the check and the insert
        raise taken from None


def _unique(roles: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(roles))


def _refuse_self_lockout(principal: Principal, user: User, roles: list[str] | None, disabling: bool) -> None:
    """An admin cannot disable or demote themselves: the platform could be left with no admin."""
    if user.id != principal.id:
        return
    if disabling or (roles is not None and "admin" not in roles and "admin" in user.roles):
        raise Conflict("You cannot disable your own account or remove your own admin role.", param="user_id",
                       code="self_lockout")  # fmt: skip


async def update_user(session: AsyncSession, principal: Principal, user_id: str, body: UserUpdate) -> User:
    user = await get_user(session, user_id)
    roles = _unique(body.roles) if body.roles is not None else None
    _refuse_self_lockout(principal, user, roles, disabling=False)
    if roles is not None:
        user.roles = roles
    if body.name is not None:
        user.name = body.name
    await session.flush()
    return user


async def disable_user(
    resources: Resources, session: AsyncSession, principal: Principal, user_id: str, cancel_jobs: bool
) -> tuple[User, list[str]]:
    """Keys stop working at the next request (authentication reads `disabled`); jobs only if asked."""
    user = await get_user(session, user_id)
    _refuse_self_lockout(principal, user, None, disabling=True)
    user.disabled = True
    await session.flush()
    cancelled = []
    if cancel_jobs:
        for job_id in await job_repository.ids_of_owner(session, user_id, CANCELLABLE_STATUSES):
            job = await job_repository.get(session, job_id)
            if job is None:
                continue
            try:
                await jobs.cancel_job(resources, session, job)
            except Conflict:  # it ended on its own meanwhile
                continue
            cancelled.append(job_id)
    return user, cancelled


async def enable_user(session: AsyncSession, user_id: str) -> User:
    user = await get_user(session, user_id)
    user.disabled = False
    await session.flush()
    return user


async def issue_key(resources: Resources, session: AsyncSession, user_id: str, body: KeyCreate) -> users.IssuedKey:
    user = await get_user(session, user_id)
    if user.disabled:
        raise Conflict(f"User '{user_id}' is disabled; enable the account before issuing keys.", param="user_id",
                       code="user_disabled")  # fmt: skip
    expires_at = body.expires_at
    if body.expires_in_days is not None:
        expires_at = utcnow() + timedelta(days=body.expires_in_days)
    return await users.issue_key(session, resources.settings, user_id, body.name, expires_at)


async def list_keys(
    session: AsyncSession, user_id: str, after: str | None, limit: int
) -> tuple[Sequence[ApiKey], bool]:
    await get_user(session, user_id)
    return await repository.keys_page(session, user_id, after, limit)


async def get_key(session: AsyncSession, key_id: str) -> ApiKey:
    return _found(await repository.get_key(session, key_id), "API key", key_id, "key_id")


async def update_key(session: AsyncSession, key_id: str, body: KeyUpdate) -> ApiKey:
    row = await get_key(session, key_id)
    if row.revoked_at is not None:
        raise Conflict(f"API key '{key_id}' is revoked; issue a new one.", param="key_id", code="key_revoked")
    if body.name is not None:
        row.name = body.name
    if "expires_at" in body.model_fields_set:
        row.expires_at = body.expires_at
    await session.flush()
    return row


async def revoke_key(session: AsyncSession, key_id: str) -> ApiKey:
    """Revoked at once: authentication checks `revoked_at` on every request. Idempotent."""
    row = await get_key(session, key_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()
    return row
