"""`/admin/v1/health`: every dependency with its latency, Celery workers per queue included."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from app.admin.access import allowed
from app.admin.errors import ERRORS
from app.api.deps import ResourcesDep
from app.authz import Kind, Principal
from app.core.health import check_dependencies
from app.fleet.service import worker_checks

router = APIRouter(prefix="/admin/v1", tags=["admin: health"], responses=ERRORS)

ReadFleet = Annotated[Principal, Depends(allowed(Kind.FLEET, "read"))]


@router.get("/health", responses={503: {"description": "A dependency is down"}})
async def health(resources: ResourcesDep, _: ReadFleet) -> JSONResponse:
    """Database, Redis, Cerbos, MLflow, Qdrant and the gpu/cpu workers, each with status and latency."""
    checks = await check_dependencies(resources, extra=worker_checks(resources))
    down = [check["name"] for check in checks if check["status"] != "ok"]
    body = {"status": "ok" if not down else "degraded", "down": down, "checks": checks}
    return JSONResponse(body, status_code=503 if down else 200)
