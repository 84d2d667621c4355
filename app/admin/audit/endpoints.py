"""`/admin/v1/audit-log`: every mutating call of both APIs, and system actions (read-only here)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from app.admin.access import allow
from app.admin.audit.schemas import AuditObject
from app.admin.errors import ERRORS
from app.admin.timestamps import TimeFilter
from app.api.deps import SessionDep
from app.audit import repository
from app.audit.repository import AuditFilters
from app.authz import Kind
from app.core.pagination import page

router = APIRouter(prefix="/admin/v1/audit-log", tags=["admin: audit"], responses=ERRORS)


@router.get("", dependencies=[allow(Kind.AUDIT_LOG, "list")])
async def list_audit_log(
    session: SessionDep,
    actor_id: str | None = None,
    api: Literal["user", "admin", "system"] | None = None,
    action: Annotated[
        str | None, Query(description="part of 'METHOD /route', e.g. 'DELETE /admin/v1/api-keys'")
    ] = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    status_code: int | None = None,
    since: Annotated[TimeFilter | None, Query(description="ISO 8601 or Unix seconds, inclusive")] = None,
    until: Annotated[TimeFilter | None, Query(description="ISO 8601 or Unix seconds, exclusive")] = None,
    after: Annotated[int | None, Query(description="id of the last entry of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Audit entries, newest first, filtered by actor, action, resource and time range."""
    filters = AuditFilters(actor_id=actor_id, api=api, action=action, resource_type=resource_type,
                           resource_id=resource_id, status_code=status_code, since=since, until=until)  # fmt: skip
    rows, has_more = await repository.entries_page(session, filters, after, limit)
    return page([AuditObject.of(row).model_dump() for row in rows], has_more)
