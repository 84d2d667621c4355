"""`/admin/v1/serving`: the engines and what they hold, token usage, engine metrics, rate limits."""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from app.admin.access import allow
from app.admin.errors import ERRORS
from app.api.deps import ResourcesDep, SessionDep
from app.audit.service import mark_resource
from app.authz import Kind
from app.core.errors import BadRequest, NotFound, ServiceUnavailable
from app.core.pagination import page
from app.inference import repository
from app.inference.catalog import serving_of
from app.inference.gateway import InferenceGateway
from app.inference.lifespan import gateway_of
from app.users.tables import Organization

router = APIRouter(prefix="/admin/v1/serving", tags=["admin: serving"], responses=ERRORS)


class RateLimitSet(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requests_per_minute: StrictInt | None = Field(ge=1, description="null: the platform default")


async def _gateway(request: Request) -> InferenceGateway:
    return gateway_of(request.app.state.resources)


GatewayDep = Annotated[InferenceGateway, Depends(_gateway)]
EngineModel = Annotated[str | None, Query(description="the base model whose engine to ask (optional with one engine)")]


@router.get("/engines", dependencies=[allow(Kind.SERVED_MODEL, "read")])
async def list_engines(resources: ResourcesDep, gateway: GatewayDep) -> dict[str, Any]:
    """Each engine: the base model it serves, whether it answers, and the adapters it holds now."""
    engines = resources.settings.inference_engines
    rows = await asyncio.gather(*(_engine_row(gateway, model, url) for model, url in sorted(engines.items())))
    return page(list(rows), False)


async def _engine_row(gateway: InferenceGateway, model: str, url: str) -> dict[str, Any]:
    row: dict[str, Any] = {"object": "serving.engine", "model": model, **serving_of(gateway.settings, model)}
    try:
        response = await gateway.client.get(url, "/v1/models", wait_seconds=3.0)
        served = response.json()["data"]
        row |= {"status": "up", "adapters": [item["id"] for item in served if item.get("parent")]}
    except (ServiceUnavailable, ValueError, KeyError):
        row |= {"status": "down", "adapters": []}
    return row


@router.get("/metrics", response_class=PlainTextResponse, dependencies=[allow(Kind.SERVED_MODEL, "read_metrics")])
async def engine_metrics(resources: ResourcesDep, gateway: GatewayDep, model: EngineModel = None) -> str:
    """The engine's Prometheus metrics (vLLM's /metrics: queue, batch, KV cache, tokens, LoRA)."""
    engines = resources.settings.inference_engines
    if model is None and len(engines) > 1:
        raise BadRequest(f"Name the engine's model: one of {', '.join(sorted(engines))}.", param="model")
    url = engines.get(model) if model is not None else next(iter(engines.values()), None)
    if url is None:
        raise NotFound(f"No engine serves '{model}'." if model else "No engine is configured.", param="model",
                       code="model_not_served")  # fmt: skip
    response = await gateway.client.get(url, "/metrics")
    return response.text


@router.get("/usage", dependencies=[allow(Kind.SERVED_MODEL, "read_usage")])
async def token_usage(
    session: SessionDep,
    organization_id: str | None = None,
    model: str | None = None,
    since: date | None = None,
    until: date | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Requests and tokens per organization, model and UTC day, newest day first."""
    rows = await repository.usage(session, organization_id, model, since, until, limit + 1)
    data = [
        {
            "object": "serving.usage",
            "organization_id": row.organization_id,
            "model": row.model,
            "day": row.day.isoformat(),
            "requests": row.requests,
            "prompt_tokens": row.prompt_tokens,
            "completion_tokens": row.completion_tokens,
            "total_tokens": row.prompt_tokens + row.completion_tokens,
        }
        for row in rows[:limit]
    ]
    return page(data, len(rows) > limit)


@router.get("/rate-limits/{organization_id}", dependencies=[allow(Kind.SERVED_MODEL, "read")])
async def read_rate_limit(resources: ResourcesDep, session: SessionDep, organization_id: str) -> dict[str, Any]:
    """The organization's chat completion requests per minute (its own, else the platform default)."""
    await _require_organization(session, organization_id)
    own = await repository.rate_limit(session, organization_id)
    return _rate_limit_object(organization_id, own, resources.settings.inference_requests_per_minute)


@router.put("/rate-limits/{organization_id}", dependencies=[allow(Kind.SERVED_MODEL, "update")])
async def put_rate_limit(request: Request, resources: ResourcesDep, session: SessionDep, organization_id: str,
                         body: RateLimitSet) -> dict[str, Any]:  # fmt: skip
    """Set (or, with null, remove) the organization's own limit."""
    await _require_organization(session, organization_id)
    await repository.set_rate_limit(session, organization_id, body.requests_per_minute)
    mark_resource(request, "serving_rate_limit", organization_id, requests_per_minute=body.requests_per_minute)
    default = resources.settings.inference_requests_per_minute
    return _rate_limit_object(organization_id, body.requests_per_minute, default)


async def _require_organization(session: SessionDep, organization_id: str) -> None:
    if await session.get(Organization, organization_id) is None:
        raise NotFound(f"No such organization: '{organization_id}'", param="organization_id")


def _rate_limit_object(organization_id: str, own: int | None, default: int | None) -> dict[str, Any]:
    return {
        "object": "serving.rate_limit",
        "organization_id": organization_id,
        "requests_per_minute": own if own is not None else default,
        "source": "organization" if own is not None else "platform default",
    }
