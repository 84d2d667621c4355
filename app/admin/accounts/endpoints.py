"""`/admin/v1/organizations`, `/admin/v1/users`, `/admin/v1/api-keys`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from app.admin.access import allow
from app.admin.accounts import service
from app.admin.accounts.schemas import (
    IssuedKeyObject,
    KeyCreate,
    KeyObject,
    KeyUpdate,
    OrganizationCreate,
    OrganizationObject,
    Role,
    UserCreate,
    UserDisable,
    UserDisabled,
    UserObject,
    UserUpdate,
)
from app.admin.errors import ERRORS
from app.api.deps import PrincipalDep, ResourcesDep, SessionDep
from app.audit.service import mark_resource
from app.authz import Kind
from app.core.pagination import page
from app.users.repository import UserFilters

router = APIRouter(prefix="/admin/v1", tags=["admin: accounts"], responses=ERRORS)
Limit = Annotated[int, Query(ge=1, le=100)]


@router.post("/organizations", response_model=OrganizationObject, dependencies=[allow(Kind.ORGANIZATION, "create")])
async def create_organization(request: Request, body: OrganizationCreate, session: SessionDep) -> OrganizationObject:
    """Create an organization (a tenant)."""
    row = await service.create_organization(session, body.name)
    mark_resource(request, "organization", row.id)
    return OrganizationObject.of(row, 0)


@router.get("/organizations", dependencies=[allow(Kind.ORGANIZATION, "list")])
async def list_organizations(session: SessionDep, name: str | None = None,
                             after: str | None = None, limit: Limit = 20) -> dict[str, Any]:  # fmt: skip
    """Organizations, newest first; `name` matches part of the name."""
    rows, has_more = await service.list_organizations(session, name, after, limit)
    return page([OrganizationObject.of(row, count).model_dump() for row, count in rows], has_more)


@router.get(
    "/organizations/{organization_id}",
    response_model=OrganizationObject,
    dependencies=[allow(Kind.ORGANIZATION, "read")],
)
async def retrieve_organization(session: SessionDep, organization_id: str) -> OrganizationObject:
    """One organization with its number of users."""
    row = await service.get_organization(session, organization_id)
    return OrganizationObject.of(row, await service.user_count(session, organization_id))


@router.post("/users", response_model=UserObject, dependencies=[allow(Kind.USER, "create")])
async def create_user(request: Request, body: UserCreate, session: SessionDep) -> UserObject:
    """Create a user in an organization, with roles (user, operator, admin)."""
    row = await service.create_user(session, body)
    mark_resource(request, "user", row.id)
    return UserObject.of(row)


@router.get("/users", dependencies=[allow(Kind.USER, "list")])
async def list_users(
    session: SessionDep,
    organization_id: str | None = None,
    role: Role | None = None,
    disabled: bool | None = None,
    email: Annotated[str | None, Query(description="part of the email address")] = None,
    after: str | None = None,
    limit: Limit = 20,
) -> dict[str, Any]:
    """Users, newest first, filtered by organization, role, disabled state or email."""
    filters = UserFilters(organization_id=organization_id, role=role, disabled=disabled, email=email)
    rows, has_more = await service.list_users(session, filters, after, limit)
    return page([UserObject.of(row).model_dump() for row in rows], has_more)


@router.get("/users/{user_id}", response_model=UserObject, dependencies=[allow(Kind.USER, "read")])
async def retrieve_user(session: SessionDep, user_id: str) -> UserObject:
    """One user."""
    return UserObject.of(await service.get_user(session, user_id))


@router.patch("/users/{user_id}", response_model=UserObject, dependencies=[allow(Kind.USER, "update")])
async def update_user(request: Request, body: UserUpdate, session: SessionDep, principal: PrincipalDep,
                      user_id: str) -> UserObject:  # fmt: skip
    """Change a user's roles or name; takes effect on their next request."""
    row = await service.update_user(session, principal, user_id, body)
    mark_resource(request, "user", row.id, roles=row.roles)
    return UserObject.of(row)


@router.post("/users/{user_id}/disable", response_model=UserDisabled, dependencies=[allow(Kind.USER, "disable")])
async def disable_user(request: Request, session: SessionDep, resources: ResourcesDep, principal: PrincipalDep,
                       user_id: str, body: UserDisable | None = None) -> UserDisabled:  # fmt: skip
    """Disable a user: their keys stop working at once; their jobs are cancelled only with `cancel_jobs`."""
    cancel_jobs = body.cancel_jobs if body else False
    row, cancelled = await service.disable_user(resources, session, principal, user_id, cancel_jobs)
    mark_resource(request, "user", row.id, cancelled_jobs=cancelled)
    return UserDisabled(user=UserObject.of(row), cancelled_jobs=cancelled)


@router.post("/users/{user_id}/enable", response_model=UserObject, dependencies=[allow(Kind.USER, "disable")])
async def enable_user(request: Request, session: SessionDep, user_id: str) -> UserObject:
    """Enable a disabled user; their keys that are not revoked or expired work again."""
    row = await service.enable_user(session, user_id)
    mark_resource(request, "user", row.id)
    return UserObject.of(row)


@router.post("/users/{user_id}/api-keys", response_model=IssuedKeyObject, dependencies=[allow(Kind.API_KEY, "create")])
async def issue_key(request: Request, body: KeyCreate, session: SessionDep, resources: ResourcesDep,
                    user_id: str) -> IssuedKeyObject:  # fmt: skip
    """Issue an API key for a user. The secret is in this response only; store it now."""
    issued = await service.issue_key(resources, session, user_id, body)
    mark_resource(request, "api_key", issued.row.id, user_id=user_id)
    return IssuedKeyObject(**KeyObject.of(issued.row).model_dump(), secret=issued.secret)


@router.get("/users/{user_id}/api-keys", dependencies=[allow(Kind.API_KEY, "list")])
async def list_keys(session: SessionDep, user_id: str, after: str | None = None,
                    limit: Limit = 20) -> dict[str, Any]:  # fmt: skip
    """A user's keys, newest first: prefix, name, dates and status, never the secret."""
    rows, has_more = await service.list_keys(session, user_id, after, limit)
    return page([KeyObject.of(row).model_dump() for row in rows], has_more)


@router.get("/api-keys/{key_id}", response_model=KeyObject, dependencies=[allow(Kind.API_KEY, "read")])
async def retrieve_key(session: SessionDep, key_id: str) -> KeyObject:
    """One key (without its secret)."""
    return KeyObject.of(await service.get_key(session, key_id))


@router.patch("/api-keys/{key_id}", response_model=KeyObject, dependencies=[allow(Kind.API_KEY, "update")])
async def update_key(request: Request, body: KeyUpdate, session: SessionDep, key_id: str) -> KeyObject:
    """Rename a key or change its expiry (`expires_at: null` removes it)."""
    row = await service.update_key(session, key_id, body)
    mark_resource(request, "api_key", row.id)
    return KeyObject.of(row)


@router.delete("/api-keys/{key_id}", response_model=KeyObject, dependencies=[allow(Kind.API_KEY, "revoke")])
async def revoke_key(request: Request, session: SessionDep, key_id: str) -> KeyObject:
    """Revoke a key: the next request made with it answers 401. The row stays, for the audit trail."""
    row = await service.revoke_key(session, key_id)
    mark_resource(request, "api_key", row.id)
    return KeyObject.of(row)
