"""Every tenant's jobs as the admin API shows them: OpenAI's job object plus the lifecycle fields."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.admin.timestamps import unix
from app.jobs.schemas import EventObject, JobObject
from app.jobs.tables import Job

JobStatus = Literal["validating_files", "queued", "running", "succeeded", "failed", "cancelled", "paused"]


class AdminJobObject(JobObject):
    owner_id: str
    attempt: int
    worker: str | None
    lease_until: int | None
    heartbeat_at: int | None
    cancel_requested: bool
    pause_requested: bool
    enqueued_at: int | None
    started_at: int | None
    gpu_seconds: float
    mlflow_run_id: str | None

    @classmethod
    def of_admin(cls, job: Job) -> AdminJobObject:
        return cls(
            **JobObject.of(job).model_dump(),
            owner_id=job.owner_id, attempt=job.attempt, worker=job.worker, lease_until=unix(job.lease_until),
            heartbeat_at=unix(job.heartbeat_at), cancel_requested=job.cancel_requested,
            pause_requested=job.pause_requested, enqueued_at=unix(job.enqueued_at), started_at=unix(job.started_at),
            gpu_seconds=job.gpu_seconds, mlflow_run_id=job.mlflow_run_id,
        )  # fmt: skip


class AdminJobDetail(AdminJobObject):
    # The latest events, newest first; the rest through the user API's paginated events.
    events: list[EventObject]


class PriorityChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    priority: int = Field(ge=0, le=9, description="0 is served first, 9 last")
