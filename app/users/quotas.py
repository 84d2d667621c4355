"""Quotas per organization and per user, enforced by the user API with 429 naming the quota."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import anyio
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import Principal
from app.core.database import utcnow
from app.core.errors import QuotaExceeded
from app.files.tables import File
from app.finetuned.tables import FineTunedModel
from app.jobs.tables import Job
from app.users.tables import Quota

ACTIVE_JOB_STATUSES = ("validating_files", "queued", "running")


@dataclass(frozen=True)
class Scope:
    """One quota row applied to one set of objects (a user's or an organization's)."""

    name: str  # "user" | "organization"
    quota: Quota
    column_value: str


async def _scopes(session: AsyncSession, principal: Principal) -> list[Scope]:
    rows = (
        await session.scalars(
            select(Quota).where(or_(Quota.user_id == principal.id, Quota.organization_id == principal.organization_id))
        )
    ).all()
    scopes = []
    for row in rows:
        if row.user_id is not None:
            scopes.append(Scope("user", row, principal.id))
        elif principal.organization_id is not None:
            scopes.append(Scope("organization", row, principal.organization_id))
    return scopes


def _owner_filter(model: type[File] | type[Job], scope: Scope):  # type: ignore[no-untyped-def]
    return model.owner_id == scope.column_value if scope.name == "user" else model.organization_id == scope.column_value


async def active_jobs(session: AsyncSession, scope: Scope) -> int:
    query = select(func.count()).select_from(Job).where(Job.status.in_(ACTIVE_JOB_STATUSES), _owner_filter(Job, scope))
    return int(await session.scalar(query) or 0)


async def storage_used(session: AsyncSession, scope: Scope) -> int:
    query = select(func.coalesce(func.sum(File.bytes), 0)).where(File.deleted_at.is_(None), _owner_filter(File, scope))
    return int(await session.scalar(query) or 0)


def month_start(now: datetime | None = None) -> datetime:
    now = now or utcnow()
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def gpu_hours_used(session: AsyncSession, scope: Scope) -> float:
    query = select(func.coalesce(func.sum(Job.gpu_seconds), 0.0)).where(
        Job.created_at >= month_start(), _owner_filter(Job, scope)
    )
    return float(await session.scalar(query) or 0.0) / 3600


async def check_concurrent_jobs(session: AsyncSession, principal: Principal) -> None:
    for scope in await _scopes(session, principal):
        limit = scope.quota.max_concurrent_jobs
        if limit is not None and await active_jobs(session, scope) >= limit:
            raise QuotaExceeded(
                f"Quota max_concurrent_jobs exceeded: the {scope.name} may run {limit} job(s) at once; "
                "wait for a job to finish or cancel one.",
                code="max_concurrent_jobs",
            )
        hours = scope.quota.gpu_hours_per_month
        if hours is not None and await gpu_hours_used(session, scope) >= hours:
            raise QuotaExceeded(
                f"Quota gpu_hours_per_month exceeded: the {scope.name} has used its {hours} GPU-hours this month.",
                code="gpu_hours_per_month",
            )


async def check_storage(session: AsyncSession, principal: Principal, extra_bytes: int) -> None:
    for scope in await _scopes(session, principal):
        limit = scope.quota.storage_bytes
        if limit is None:
            continue
        used = await storage_used(session, scope) + await model_storage_used(session, scope)
        if used + extra_bytes > limit:
            raise QuotaExceeded(
                f"Quota storage_bytes exceeded: the {scope.name} may store {limit} bytes of files and models; "
                "delete files or models you no longer need.",
                code="storage_bytes",
            )


def _tree_bytes(paths: list[str]) -> int:
    return sum(item.stat().st_size for root in paths for item in Path(root).rglob("*") if item.is_file())


async def model_storage_used(session: AsyncSession, scope: Scope) -> int:
    """Bytes on disk of the scope's fine-tuned models (adapters and merged weights)."""
    column = FineTunedModel.owner_id if scope.name == "user" else FineTunedModel.organization_id
    query = select(FineTunedModel.adapter_path, FineTunedModel.merged_path).where(
        column == scope.column_value, FineTunedModel.deleted_at.is_(None)
    )
    paths = [path for row in (await session.execute(query)).all() for path in row if path]
    return await anyio.to_thread.run_sync(_tree_bytes, paths) if paths else 0


@dataclass(frozen=True)
class Usage:
    active_jobs: int
    gpu_hours_this_month: float
    file_bytes: int
    model_bytes: int


async def usage(session: AsyncSession, subject: str, subject_id: str) -> Usage:
    """What a user or an organization uses now, measured as the quota checks measure it."""
    scope = Scope(subject, Quota(), subject_id)  # a transient row: only name and value are read
    return Usage(
        active_jobs=await active_jobs(session, scope),
        gpu_hours_this_month=await gpu_hours_used(session, scope),
        file_bytes=await storage_used(session, scope),
        model_bytes=await model_storage_used(session, scope),
    )
