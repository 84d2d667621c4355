"""Quotas: set, read (with current usage) and remove, for an organization or a user."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.admin.accounts import service as accounts
from app.admin.quotas.schemas import QuotaObject, QuotaSet, Subject
from app.users import quotas
from app.users import repository as users
from app.users.tables import Quota


async def _ensure_subject(session: AsyncSession, subject: Subject, subject_id: str) -> None:
    if subject == "user":
        await accounts.get_user(session, subject_id)
    else:
        await accounts.get_organization(session, subject_id)


async def read(session: AsyncSession, subject: Subject, subject_id: str) -> QuotaObject:
    await _ensure_subject(session, subject, subject_id)
    row = await users.quota_of(session, subject, subject_id)
    return QuotaObject.of(subject, subject_id, row, await quotas.usage(session, subject, subject_id))


async def put(session: AsyncSession, subject: Subject, subject_id: str, body: QuotaSet) -> QuotaObject:
    """Replace the subject's limits (a field left out becomes unlimited)."""
    await _ensure_subject(session, subject, subject_id)
    row = await users.quota_of(session, subject, subject_id)
    if row is None:
        row = Quota(user_id=subject_id) if subject == "user" else Quota(organization_id=subject_id)
        session.add(row)
    row.max_concurrent_jobs = body.max_concurrent_jobs
    row.gpu_hours_per_month = body.gpu_hours_per_month
    row.storage_bytes = body.storage_bytes
    row.note = body.note
    await session.flush()
    return QuotaObject.of(subject, subject_id, row, await quotas.usage(session, subject, subject_id))


async def remove(session: AsyncSession, subject: Subject, subject_id: str) -> QuotaObject:
    """Remove every limit of the subject (unlimited again)."""
    await _ensure_subject(session, subject, subject_id)
    row = await users.quota_of(session, subject, subject_id)
    if row is not None:
        await session.delete(row)
        await session.flush()
    return QuotaObject.of(subject, subject_id, None, await quotas.usage(session, subject, subject_id))


async def list_quotas(
    session: AsyncSession, subject: Subject | None, after: int | None, limit: int
) -> tuple[list[QuotaObject], bool]:
    rows, has_more = await users.quotas_page(session, subject, after, limit)
    listed = []
    for row in rows:
        kind: Subject = "user" if row.user_id is not None else "organization"
        subject_id = row.user_id or row.organization_id or ""
        listed.append(QuotaObject.of(kind, subject_id, row, await quotas.usage(session, kind, subject_id)))
    return listed, has_more
