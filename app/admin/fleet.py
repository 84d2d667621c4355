"""`/admin/v1/fleet`: Celery workers, the broker's queues and the GPUs of each worker."""

from __future__ import annotations

from fastapi import APIRouter

from app.admin.access import allow
from app.admin.errors import ERRORS
from app.api.deps import ResourcesDep, SessionDep
from app.authz import Kind
from app.fleet import service
from app.fleet.schemas import GpuReport, QueuesReport, WorkersReport

router = APIRouter(prefix="/admin/v1/fleet", tags=["admin: fleet"], responses=ERRORS)


@router.get("/workers", response_model=WorkersReport, dependencies=[allow(Kind.FLEET, "read")])
async def list_workers(session: SessionDep, resources: ResourcesDep) -> WorkersReport:
    """Each worker: queues, active and reserved tasks, registered tasks, the job it runs and its GPUs."""
    return await service.workers(resources, session)


@router.get("/queues", response_model=QueuesReport, dependencies=[allow(Kind.FLEET, "read")])
async def list_queues(resources: ResourcesDep) -> QueuesReport:
    """Length of the gpu and cpu queues per priority step, and the next messages in serving order."""
    return await service.queues(resources)


@router.get("/gpus", response_model=GpuReport, dependencies=[allow(Kind.FLEET, "read")])
async def list_gpus(session: SessionDep, resources: ResourcesDep) -> GpuReport:
    """GPU name, memory, utilisation and job per worker (NVML); a worker without GPUs says 'no GPU'."""
    return await service.gpus(resources, session)
