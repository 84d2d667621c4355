"""`/admin/v1/jobs`: every tenant's fine-tuning jobs; cancel, retry and priority."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from app.admin.access import allow
from app.admin.errors import ERRORS
from app.admin.jobs import service
from app.admin.jobs.schemas import AdminJobDetail, AdminJobObject, JobStatus, PriorityChange
from app.admin.timestamps import TimeFilter
from app.api.deps import ResourcesDep, SessionDep
from app.audit.service import mark_resource
from app.authz import Kind
from app.core.pagination import page
from app.jobs.schemas import EventObject, JobFilters

router = APIRouter(prefix="/admin/v1/jobs", tags=["admin: jobs"], responses=ERRORS)


@router.get("", dependencies=[allow(Kind.ADMIN_JOB, "list")])
async def list_jobs(
    session: SessionDep,
    status: Annotated[list[JobStatus] | None, Query(description="repeat to match any of several")] = None,
    user_id: str | None = None,
    organization_id: str | None = None,
    model: str | None = None,
    created_after: Annotated[TimeFilter | None, Query(description="ISO 8601 or Unix seconds, inclusive")] = None,
    created_before: Annotated[TimeFilter | None, Query(description="ISO 8601 or Unix seconds, exclusive")] = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """Jobs of every user, newest first, filtered by status, user, organization, base model and creation time."""
    filters = JobFilters(statuses=list(status) if status else None, owner_id=user_id, organization_id=organization_id,
                         model=model, created_after=created_after, created_before=created_before)  # fmt: skip
    rows, has_more = await service.list_jobs(session, filters, after, limit)
    return page([AdminJobObject.of_admin(row).model_dump() for row in rows], has_more)


@router.get("/{job_id}", response_model=AdminJobDetail, dependencies=[allow(Kind.ADMIN_JOB, "read")])
async def retrieve_job(session: SessionDep, job_id: str,
                       events: Annotated[int, Query(ge=0, le=1000)] = 100) -> AdminJobDetail:  # fmt: skip
    """One job with its lifecycle fields and its latest events."""
    job, rows = await service.get_with_events(session, job_id, events)
    return AdminJobDetail(**AdminJobObject.of_admin(job).model_dump(), events=[EventObject.of(row) for row in rows])


@router.post("/{job_id}/cancel", response_model=AdminJobObject, dependencies=[allow(Kind.ADMIN_JOB, "cancel")])
async def cancel_job(request: Request, session: SessionDep, resources: ResourcesDep,
                     job_id: str) -> AdminJobObject:  # fmt: skip
    """Cancel any job (`cancelled` at once): a running one still saves a checkpoint before its worker lets go."""
    job = await service.cancel(resources, session, job_id)
    mark_resource(request, "fine_tuning_job", job.id)
    return AdminJobObject.of_admin(job)


@router.post("/{job_id}/retry", response_model=AdminJobObject, dependencies=[allow(Kind.ADMIN_JOB, "retry")])
async def retry_job(request: Request, session: SessionDep, resources: ResourcesDep,
                    job_id: str) -> AdminJobObject:  # fmt: skip
    """Run a failed job again: a new attempt from its latest checkpoint, queued with its priority."""
    job = await service.retry(resources, session, job_id)
    mark_resource(request, "fine_tuning_job", job.id, attempt=job.attempt + 1)
    return AdminJobObject.of_admin(job)


@router.post("/{job_id}/priority", response_model=AdminJobObject, dependencies=[allow(Kind.ADMIN_JOB, "prioritize")])
async def change_priority(request: Request, body: PriorityChange, session: SessionDep, resources: ResourcesDep,
                          job_id: str) -> AdminJobObject:  # fmt: skip
    """Set a waiting job's priority (0 first .. 9 last); a queued job's message is re-published with it."""
    job = await service.set_priority(resources, session, job_id, body.priority)
    mark_resource(request, "fine_tuning_job", job.id, priority=body.priority)
    return AdminJobObject.of_admin(job)
