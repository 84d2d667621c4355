"""Every statement reading the audit log (rows are written by `app.audit.service`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.tables import AuditEntry
from app.core.pagination import contains_pattern


@dataclass(frozen=True)
class AuditFilters:
    actor_id: str | None = None
    api: str | None = None
    action: str | None = None  # part of "METHOD /route/template"
    resource_type: str | None = None
    resource_id: str | None = None
    status_code: int | None = None
    since: datetime | None = None
    until: datetime | None = None


async def entries_page(
    session: AsyncSession, filters: AuditFilters, after: int | None, limit: int
) -> tuple[Sequence[AuditEntry], bool]:
    """Newest first; `after` is the id of the last entry of the previous page."""
    query = select(AuditEntry)
    exact = {
        AuditEntry.actor_id: filters.actor_id,
        AuditEntry.api: filters.api,
        AuditEntry.resource_type: filters.resource_type,
        AuditEntry.resource_id: filters.resource_id,
        AuditEntry.status_code: filters.status_code,
    }
    for column, value in exact.items():
        if value is not None:
            query = query.where(column == value)
    if filters.action:
        query = query.where(AuditEntry.action.ilike(contains_pattern(filters.action), escape="\\"))
    if filters.since:
        query = query.where(AuditEntry.created_at >= filters.since)
    if filters.until:
        query = query.where(AuditEntry.created_at < filters.until)
    if after is not None:
        query = query.where(AuditEntry.id < after)
    rows = (await session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit + 1))).all()
    return rows[:limit], len(rows) > limit
