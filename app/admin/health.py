"""`/admin/v1/health`: every dependency with its latency, Celery workers per queue included."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.admin.access import allow
from app.admin.errors import ERRORS
from app.api.deps import ResourcesDep
from app.authz import Kind
from app.core.health import check_dependencies
from app.fleet.service import worker_checks

router = APIRouter(prefix="/admin/v1", tags=["admin: health"], responses=ERRORS)


@router.get(
    "/health", responses={503: {"description": "A dependency is down"}}, dependencies=[allow(Kind.FLEET, "read")]
)
async def health(resources: ResourcesDep) -> JSONResponse:
    """Database, Redis, Cerbos, MLflow, Qdrant and the gpu/cpu workers, each with status and latency."""
    checks = await check_dependencies(resources, extra=worker_checks(resources))
    down = [check["name"] for check in checks if check["status"] != "ok"]
    body = {"status": "ok" if not down else "degraded", "down": down, "checks": checks}
    return JSONResponse(body, status_code=503 if down else 200)
