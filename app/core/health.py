"""Dependency checks for /ready and the admin health endpoint, each with its latency."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from sqlalchemy import text

from app.core.clients import Clients

CHECK_TIMEOUT_SECONDS = 3.0


async def _timed(name: str, check: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
        status, error = "ok", None
    except Exception as exc:
        status, error = "down", f"{type(exc).__name__}: {exc}"[:300]
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    return {"name": name, "status": status, "latency_ms": latency_ms, "error": error}


async def _http_ok(url: str) -> None:
    async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_SECONDS) as client:
        response = await client.get(url)
        response.raise_for_status()


def dependency_checks(resources: Clients) -> dict[str, Callable[[], Awaitable[None]]]:
    settings = resources.settings

    async def database() -> None:
        async with resources.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def redis() -> None:
        await resources.redis.ping()

    async def qdrant() -> None:
        if settings.qdrant_url:
            await _http_ok(f"{settings.qdrant_url}/healthz")
        else:
            await _http_ok(f"{settings.vector_service_url}/health")

    return {
        "database": database,
        "redis": redis,
        "cerbos": lambda: _http_ok(f"{settings.cerbos_url}/_cerbos/health"),
        "mlflow": lambda: _http_ok(f"{settings.mlflow_tracking_uri}/health"),
        "qdrant": qdrant,
    }


async def check_dependencies(
    resources: Clients, extra: dict[str, Callable[[], Awaitable[None]]] | None = None
) -> list[dict[str, Any]]:
    checks = dependency_checks(resources) | (extra or {})
    return list(await asyncio.gather(*(_timed(name, check) for name, check in checks.items())))
