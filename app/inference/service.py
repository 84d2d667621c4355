"""Chat completions: which engine and weights answer a model name (Cerbos decides who may ask), limits, usage."""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession

from app.authz import Authorizer, Kind, Principal, hidden
from app.authz.resources import Resources
from app.core.config import Settings
from app.core.errors import NotFound, PlatformError
from app.finetuned import repository as fine_tuned
from app.inference import repository, wire
from app.inference.catalog import ADAPTER_CONFIG
from app.inference.gateway import ChunkStream, InferenceGateway, ServingTarget
from app.inference.served_models import UNCACHED, FineTunedRow, ServedModels
from app.jobs import repository as jobs
from app.jobs.tables import Job

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = re.compile(r"^(?P<model>ft:.+):ckpt-step-(?P<step>\d+)$")


class ModelNotServed(NotFound):
    """The model exists but no engine serves it (OpenAI also answers 404 for a model an endpoint cannot run)."""

    code = "model_not_served"


class ModelNotReady(NotFound):
    code = "model_not_ready"


class RateLimited(PlatformError):
    status_code = 429
    type = "requests"
    code = "rate_limit_exceeded"
    retry = True  # the SDKs wait for Retry-After and send it again


async def chat(
    resources: Resources, session: AsyncSession, principal: Principal, gateway: InferenceGateway, body: Any
) -> dict[str, Any] | ChunkStream:
    """A `chat.completion`, or an opened stream of chunks, for the caller's request body."""
    settings = resources.settings
    request = wire.checked_request(body, settings.inference_max_choices)
    target = await resolve(session, resources.authorizer, principal, settings, body["model"], gateway.models)
    if principal.organization_id is not None:
        await check_rate(session, resources.redis, settings, principal.organization_id)
    record = functools.partial(gateway.usage.record, principal.organization_id, target.model)
    if request.get("stream"):
        return await gateway.open_stream(target, request, on_usage=record)
    completion, usage = await gateway.complete(target, request)
    await record(usage)
    return completion


# ---- which weights answer a name --------------------------------------------------------------


class Decided:
    """An authorizer for a decision already taken: an eval run's models were authorized when it was created."""

    async def require(self, *_: Any) -> None:
        return None


DECIDED = Decided()
NOBODY = Principal(id="platform", roles=(), organization_id=None)


async def target_for(session: AsyncSession, settings: Settings, model: str) -> ServingTarget:
    """Where `model` is served, for a worker whose request was authorized when it was made (an eval run)."""
    return await resolve(session, DECIDED, NOBODY, settings, model)  # type: ignore[arg-type]


async def resolve(
    session: AsyncSession,
    authorizer: Authorizer,
    principal: Principal,
    settings: Settings,
    model: str,
    models: ServedModels = UNCACHED,
) -> ServingTarget:
    """Where `model` is served, if the caller may generate with it; the one 404 otherwise.

    `models` is the process's cache of model rows (a request's `session` only); Cerbos decides every call.
    """
    if not isinstance(model, str):
        raise wire.invalid("'model' must be a string.", "model", "invalid_type")
    if not model.startswith("ft:"):
        return await _base_target(session, authorizer, principal, settings, model, models)
    checkpoint = CHECKPOINT_NAME.match(model)
    if checkpoint:
        return await _checkpoint_target(session, authorizer, principal, settings, checkpoint)
    return await _fine_tuned_target(session, authorizer, principal, settings, model, models)


async def _base_target(
    session: AsyncSession,
    authorizer: Authorizer,
    principal: Principal,
    settings: Settings,
    model: str,
    models: ServedModels,
) -> ServingTarget:
    entry = await models.base_model(session, model)
    attrs = None if entry is None else {"model_kind": "base", "allowed": entry.allowed}
    await authorizer.require(principal, Kind.SERVED_MODEL, model, attrs, "generate")
    if entry is None:
        raise hidden(Kind.SERVED_MODEL, model)
    url = settings.inference_engines.get(model)
    if url is None:
        raise ModelNotServed(
            f"The model '{model}' can be fine-tuned but is not served on this platform; "
            "an administrator serves it by giving it an engine (INFERENCE_ENGINES).",
            param="model",
        )
    return ServingTarget(model, model, url, model, chat_template=entry.chat_template)


def _fine_tuned_attrs(row: FineTunedRow | Job) -> dict[str, Any]:
    return {"model_kind": "fine_tuned", "owner_id": row.owner_id, "organization_id": row.organization_id}


async def _fine_tuned_target(
    session: AsyncSession,
    authorizer: Authorizer,
    principal: Principal,
    settings: Settings,
    model: str,
    models: ServedModels,
) -> ServingTarget:
    row = await models.fine_tuned(session, model)
    if row is None:
        await _explain_missing(session, authorizer, principal, model)
    assert row is not None
    await authorizer.require(principal, Kind.SERVED_MODEL, model, _fine_tuned_attrs(row), "generate")
    if row.deleted_at is not None:
        raise NotFound(f"The model '{model}' was deleted on {row.deleted_at:%Y-%m-%d %H:%M} UTC.", param="model",
                       code="model_not_found")  # fmt: skip
    own_engine = settings.inference_engines.get(model)
    if own_engine is not None:  # merged or full weights served as an engine of their own
        return ServingTarget(model, row.base_model, own_engine, model)
    return _adapter_target(settings, model, row.base_model, row.adapter_path)


async def _explain_missing(session: AsyncSession, authorizer: Authorizer, principal: Principal, model: str) -> None:
    """No model row: say so plainly when the caller's own job will make it, else the usual 404."""
    parts = model.split(":")
    job = await jobs.named_by(session, parts[1], parts[4]) if len(parts) == 5 else None
    if job is not None and job.status != "succeeded":
        await authorizer.require(principal, Kind.SERVED_MODEL, model, _fine_tuned_attrs(job), "generate")
        if job.status in ("failed", "cancelled"):
            detail = f"its fine-tuning job {job.id} {job.status}, so the model was never made"
        else:
            detail = f"its fine-tuning job {job.id} is {job.status}; the model can be called once the job succeeds"
        raise ModelNotReady(f"The model '{model}' does not exist yet: {detail}.", param="model")
    raise hidden(Kind.SERVED_MODEL, model)


async def _checkpoint_target(
    session: AsyncSession, authorizer: Authorizer, principal: Principal, settings: Settings, name: re.Match[str]
) -> ServingTarget:
    model, step = name.group(0), int(name.group("step"))
    parts = name.group("model").split(":")
    row = await fine_tuned.get(session, name.group("model"))
    job = await jobs.get(session, row.job_id) if row else None
    if job is None and len(parts) == 5:
        job = await jobs.named_by(session, parts[1], parts[4])
    await authorizer.require(principal, Kind.SERVED_MODEL, model, _fine_tuned_attrs(job) if job else None, "generate")
    if job is None:
        raise hidden(Kind.SERVED_MODEL, model)
    saved = await jobs.checkpoint_at_step(session, job.id, step)
    if saved is None:
        raise NotFound(f"The job {job.id} has no checkpoint at step {step} (kept checkpoints are listed by "
                       "fine_tuning.jobs.checkpoints.list).", param="model", code="model_not_found")  # fmt: skip
    return _adapter_target(settings, model, job.model, saved.path)


def _adapter_target(settings: Settings, model: str, base_model: str, adapter_path: str | None) -> ServingTarget:
    if not adapter_path or not (Path(adapter_path) / ADAPTER_CONFIG).is_file():
        raise ModelNotServed(
            f"The model '{model}' is a full fine-tune: it is served only by an engine of its own "
            "(INFERENCE_ENGINES names one for it), and none is configured. Its weights can be downloaded.",
            param="model",
        )
    url = settings.inference_engines.get(base_model)
    if url is None:
        raise ModelNotServed(
            f"The model '{model}' cannot be served: its base model '{base_model}' has no engine (INFERENCE_ENGINES).",
            param="model",
        )
    return ServingTarget(model, base_model, url, model, adapter_path, saved_chat_template(adapter_path))


@functools.lru_cache(maxsize=1024)
def saved_chat_template(directory: str) -> str | None:
    """The chat template saved with a model's tokenizer: the one it was trained with."""
    folder = Path(directory)
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text(encoding="utf-8")
    config = folder / "tokenizer_config.json"
    if config.is_file():
        template = json.loads(config.read_text(encoding="utf-8")).get("chat_template")
        return template if isinstance(template, str) else None
    return None


# ---- limits and usage -------------------------------------------------------------------------


# An organization's own limit, read from PostgreSQL at most this often per process: a changed
# limit applies within seconds, and a request does not pay a database round trip for it.
RATE_LIMIT_CACHE_SECONDS = 5.0
_limits: dict[str, tuple[float, int | None]] = {}


async def _own_limit(session: AsyncSession, organization_id: str) -> int | None:
    now = time.monotonic()
    cached = _limits.get(organization_id)
    if cached is not None and now - cached[0] < RATE_LIMIT_CACHE_SECONDS:
        return cached[1]
    limit = await repository.rate_limit(session, organization_id)
    _limits[organization_id] = (now, limit)
    return limit


async def check_rate(session: AsyncSession, redis: aioredis.Redis, settings: Settings, organization_id: str) -> None:
    """A fixed one-minute window per organization, counted in Redis (shared by every API replica)."""
    limit = await _own_limit(session, organization_id) or settings.inference_requests_per_minute
    if limit is None:
        return
    now = time.time()
    key = f"inference:rate:{organization_id}:{int(now // 60)}"
    async with redis.pipeline(transaction=True) as pipeline:
        pipeline.incr(key)
        pipeline.expire(key, 120)
        count, _ = await pipeline.execute()
    if count > limit:
        retry_after = max(1, 60 - int(now % 60))
        raise RateLimited(
            f"Rate limit reached: your organization may send {limit} chat completion requests per minute. "
            f"Retry in {retry_after}s.",
            headers={"Retry-After": str(retry_after)},
        )
