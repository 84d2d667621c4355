"""`/health` (the process is up) and `/ready` (every dependency answers) on both APIs."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app.core.health import check_dependencies


def health_routes(app: FastAPI) -> None:
    @app.get("/health", tags=["health"], summary="Liveness")
    async def health() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/ready", tags=["health"], summary="Readiness", responses={503: {"description": "A dependency is down"}})
    async def ready(request: Request) -> JSONResponse:
        """Every dependency answers; 503 names those that do not."""
        resources = request.app.state.resources
        checks = await check_dependencies(resources, resources.extras.get("ready_checks"))
        down = [check["name"] for check in checks if check["status"] != "ok"]
        body = {"status": "ok" if not down else "unavailable", "down": down, "checks": checks}
        return JSONResponse(body, status_code=503 if down else 200, headers={"Retry-After": "5"} if down else None)
