"""The inference gateway's place in an API process: made at start-up, closed at shutdown, checked by /ready."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from app.authz.resources import Resources
from app.core.errors import ServiceUnavailable
from app.inference.gateway import InferenceGateway
from app.inference.served_models import ServedModels

logger = logging.getLogger(__name__)
GATEWAY_KEY = "inference"
READY_CHECKS_KEY = "ready_checks"
ENGINE_CHECK_TIMEOUT_SECONDS = 2.0


@asynccontextmanager
async def inference_gateway(resources: Resources) -> AsyncIterator[None]:
    """Lifespan extension: one gateway (one pooled HTTP client) for every request of the process."""
    # Attached before the first query (the APIs make none before their extensions), so every pooled
    # connection listens for model changes.
    models = ServedModels.attach(resources.engine, resources.settings.served_model_cache_seconds)
    gateway = InferenceGateway(resources.settings, sessionmaker=resources.sessionmaker, models=models)
    resources.extras[GATEWAY_KEY] = gateway
    checks = resources.extras.setdefault(READY_CHECKS_KEY, {})
    assert isinstance(checks, dict)
    for base_model, url in resources.settings.inference_engines.items():
        checks[f"inference:{base_model}"] = _engine_health(gateway, url)
    try:
        yield
    finally:
        await gateway.close()


def _engine_health(gateway: InferenceGateway, url: str) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        response = await gateway.client.get(url, "/health", wait_seconds=ENGINE_CHECK_TIMEOUT_SECONDS)
        response.raise_for_status()

    return check


def gateway_of(resources: Resources) -> InferenceGateway:
    gateway = resources.extras.get(GATEWAY_KEY)
    if not isinstance(gateway, InferenceGateway):
        raise ServiceUnavailable("Serving is not set up in this process.")
    return gateway


async def unload_deleted(resources: Resources, model: str) -> None:
    """A deleted model leaves the engines at once; an engine that is down has lost its adapters anyway."""
    gateway = resources.extras.get(GATEWAY_KEY)
    if not isinstance(gateway, InferenceGateway):
        return
    try:
        await gateway.unload(model)
    except ServiceUnavailable:
        logger.warning("could not unload the deleted model %s; the engine is unreachable", model)
