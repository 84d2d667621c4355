"""Quotas per organization and per user, enforced by the user API with 429 naming the quota."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import Principal
from app.core.database import utcnow
from app.core.errors import QuotaExceeded
from app.files import repository as files
from app.finetuned import repository as finetuned
from app.jobs import repository as jobs
from app.users import repository as users
from app.users.tables import Quota

ACTIVE_JOB_STATUSES = ("validating_files", "queued", "running")


@dataclass(frozen=True)
class Scope:
    """One quota row applied to one set of objects (a user's or an organization's)."""

    name: str  # "user" | "organization"
    quota: Quota
    column_value: str


async def _scopes(session: AsyncSession, principal: Principal) -> list[Scope]:
    scopes = []
    for row in await users.quotas_applying(session, principal.id, principal.organization_id):
        if row.user_id is not None:
            scopes.append(Scope("user", row, principal.id))
        elif principal.organization_id is not None:
            scopes.append(Scope("organization", row, principal.organization_id))
    return scopes


def _subject(scope: Scope) -> dict[str, str]:
    """The keyword naming the scope's objects in the repositories (`owner_id=` or `organization_id=`)."""
    return {"owner_id" if scope.name == "user" else "organization_id": scope.column_value}


async def active_jobs(session: AsyncSession, scope: Scope) -> int:
    return await jobs.count_in_status(session, ACTIVE_JOB_STATUSES, **_subject(scope))


async def storage_used(session: AsyncSession, scope: Scope) -> int:
    return await files.stored_bytes(session, **_subject(scope))


def month_start(now: datetime | None = None) -> datetime:
    now = now or utcnow()
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def gpu_hours_used(session: AsyncSession, scope: Scope) -> float:
    return await jobs.gpu_seconds_since(session, month_start(), **_subject(scope)) / 3600


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
    paths = await finetuned.weight_paths(session, **_subject(scope))
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
