"""`/v1/fine_tuning/jobs`: OpenAI's fine-tuning API, plus estimate, live events and downloads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.datastructures import QueryParams
from fastapi.responses import StreamingResponse
from sse_starlette.sse import EventSourceResponse

from app.api.deps import AuthzDep, PrincipalDep, ResourcesDep, SessionDep
from app.artifacts.archive import tar_stream
from app.audit.service import mark_resource
from app.core import idempotency
from app.core.errors import BadRequest, NotFound
from app.core.pagination import page
from app.jobs import estimates, events, service
from app.jobs.schemas import (
    NULL_METADATA,
    TERMINAL_STATUSES,
    CheckpointObject,
    EstimateObject,
    EventObject,
    JobCreate,
    JobObject,
    MetadataFilter,
    event_view,
    job_view,
)

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["fine-tuning"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": "OpenAI error object"} for code in (400, 401, 404, 409, 429)
}
SSE_KEEPALIVE_SECONDS = 15


@router.post("", response_model=JobObject, responses=ERRORS)
async def create_job(
    request: Request,
    body: JobCreate,
    session: SessionDep,
    resources: ResourcesDep,
    principal: PrincipalDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> Any:
    """Create a job; it is enqueued only once the row is committed."""
    remembered = idempotency.once(resources.redis, session, principal.id, "jobs", idempotency_key, body.model_dump())
    async with remembered as replay:
        if replay.response is None:
            job = await service.create(resources, session, principal, body)
            mark_resource(request, "fine_tuning_job", job.id)
            replay.response = JobObject.of(job).model_dump()
    return replay.response


@router.post("/estimate", response_model=EstimateObject, responses=ERRORS)
async def estimate_job(
    body: JobCreate, session: SessionDep, resources: ResourcesDep, principal: PrincipalDep
) -> EstimateObject:
    """Tokens, steps, resolved hyperparameters and GPU time of a job, without creating it."""
    return await estimates.estimate_request(resources, session, principal, body)


@router.get("", responses=ERRORS)
async def list_jobs(
    request: Request,
    session: SessionDep,
    authorizer: AuthzDep,
    principal: PrincipalDep,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    metadata: Annotated[
        str | None, Query(description="`null`, or a JSON object of key/values to match (or send `metadata[key]=value`)")
    ] = None,
) -> dict[str, Any]:
    """The caller's jobs (and those the policy lets them read), newest first."""
    wanted = _metadata_filter(metadata, request.query_params)
    rows, has_more = await service.list_visible(session, authorizer, principal, after, limit, wanted)
    return page([job_view(row) for row in rows], has_more)


def _metadata_filter(raw: str | None, params: QueryParams) -> MetadataFilter:
    """OpenAI's filter: the SDK sends `metadata[key]=value` pairs, or the literal `metadata=null`."""
    wanted = {
        key[len("metadata[") : -1]: value
        for key, value in params.multi_items()
        if key.startswith("metadata[") and key.endswith("]")
    }
    if raw is None:
        return wanted or None
    if raw == "null":
        if wanted:
            raise BadRequest("metadata=null cannot be combined with metadata[key] filters.", param="metadata")
        return NULL_METADATA
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise BadRequest("metadata must be null or a JSON object of string values.", param="metadata")
    return {**value, **wanted} or None


@router.get("/{fine_tuning_job_id}", response_model=JobObject, responses=ERRORS)
async def retrieve_job(
    session: SessionDep, authorizer: AuthzDep, principal: PrincipalDep, fine_tuning_job_id: str
) -> JobObject:
    """One job."""
    return JobObject.of(await service.read(session, authorizer, principal, fine_tuning_job_id))


async def _control(request: Request, session: SessionDep, resources: ResourcesDep, principal: PrincipalDep,
                   job_id: str, action: str) -> JobObject:  # fmt: skip
    operation = {"cancel": service.cancel, "pause": service.pause, "resume": service.resume}[action]
    job = await operation(resources, session, principal, job_id)
    mark_resource(request, "fine_tuning_job", job.id)
    return JobObject.of(job)


@router.post("/{fine_tuning_job_id}/cancel", response_model=JobObject, responses=ERRORS)
async def cancel_job(request: Request, session: SessionDep, resources: ResourcesDep, principal: PrincipalDep,
                     fine_tuning_job_id: str) -> JobObject:  # fmt: skip
    """Cancel a job; a running one saves a checkpoint first."""
    return await _control(request, session, resources, principal, fine_tuning_job_id, "cancel")


@router.post("/{fine_tuning_job_id}/pause", response_model=JobObject, responses=ERRORS)
async def pause_job(request: Request, session: SessionDep, resources: ResourcesDep, principal: PrincipalDep,
                    fine_tuning_job_id: str) -> JobObject:  # fmt: skip
    """Pause a job at a checkpoint."""
    return await _control(request, session, resources, principal, fine_tuning_job_id, "pause")


@router.post("/{fine_tuning_job_id}/resume", response_model=JobObject, responses=ERRORS)
async def resume_job(request: Request, session: SessionDep, resources: ResourcesDep, principal: PrincipalDep,
                     fine_tuning_job_id: str) -> JobObject:  # fmt: skip
    """Resume a paused job from its latest checkpoint."""
    return await _control(request, session, resources, principal, fine_tuning_job_id, "resume")


@router.get(
    "/{fine_tuning_job_id}/events",
    responses={200: {"content": {"text/event-stream": {}}}, **ERRORS},
)
async def list_events(
    request: Request,
    session: SessionDep,
    resources: ResourcesDep,
    principal: PrincipalDep,
    fine_tuning_job_id: str,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
    stream: bool = False,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Any:
    """Events newest first; with `stream=true`, a live server-sent event stream."""
    if stream:
        await service.read(session, resources.authorizer, principal, fine_tuning_job_id)
        return EventSourceResponse(
            _event_stream(request, resources, fine_tuning_job_id, last_event_id or after),
            ping=SSE_KEEPALIVE_SECONDS,
        )
    rows, has_more = await service.list_events(
        session, resources.authorizer, principal, fine_tuning_job_id, after, limit
    )
    return page([event_view(row) for row in rows], has_more)


async def _event_stream(
    request: Request, resources: ResourcesDep, job_id: str, after: str | None
) -> AsyncIterator[dict[str, str]]:
    """Backlog from PostgreSQL, then live events from Redis; subscribed first so nothing falls in between.

    Events are de-duplicated by id rather than compared with the last one sent: events written by
    two processes in the same millisecond need not arrive in id order. A last pass over the
    database before `done` sends anything the live channel missed.
    """
    pubsub = resources.redis.pubsub()
    await pubsub.subscribe(events.channel(job_id))
    sent: set[str] = set()

    async def backlog() -> list[dict[str, str]]:
        async with resources.sessionmaker() as session:
            rows = await service.events_since(session, job_id, after)
        fresh = [row for row in rows if row.id not in sent]
        sent.update(row.id for row in fresh)
        return [{"id": row.id, "event": "event", "data": EventObject.of(row).model_dump_json()} for row in fresh]

    try:
        for item in await backlog():
            yield item
        async with resources.sessionmaker() as session:
            status = await service.status_of(session, job_id)
        while status not in TERMINAL_STATUSES:
            if await request.is_disconnected():
                return
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is None:
                async with resources.sessionmaker() as session:
                    status = await service.status_of(session, job_id)
                continue
            payload = json.loads(message["data"])
            if payload.get("object") == "status":
                status = payload["status"]
                continue
            if payload["id"] in sent or (after is not None and payload["id"] <= after):
                continue
            sent.add(payload["id"])
            yield {"id": payload["id"], "event": "event", "data": json.dumps(payload)}
        for item in await backlog():
            yield item
        yield {"event": "done", "data": json.dumps({"status": status})}
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()
        await asyncio.sleep(0)


@router.get("/{fine_tuning_job_id}/checkpoints", responses=ERRORS)
async def list_checkpoints(
    session: SessionDep,
    authorizer: AuthzDep,
    principal: PrincipalDep,
    fine_tuning_job_id: str,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
) -> dict[str, Any]:
    """Checkpoints still on disk, newest first."""
    name, rows, has_more = await service.list_checkpoints(
        session, authorizer, principal, fine_tuning_job_id, after, limit
    )
    return page([CheckpointObject.of(row, name).model_dump() for row in rows], has_more)


@router.get(
    "/{fine_tuning_job_id}/checkpoints/{checkpoint_id}/download",
    responses={200: {"content": {"application/x-tar": {}}}, **ERRORS},
)
async def download_checkpoint(
    session: SessionDep, authorizer: AuthzDep, principal: PrincipalDep, fine_tuning_job_id: str, checkpoint_id: str
) -> StreamingResponse:
    """A tar stream of one checkpoint (adapter or model weights, optimizer and trainer state)."""
    _, checkpoint = await service.get_checkpoint(session, authorizer, principal, fine_tuning_job_id, checkpoint_id)
    root = Path(checkpoint.path)
    if not await anyio.Path(root).is_dir():
        raise NotFound(f"Checkpoint '{checkpoint_id}' is no longer on disk.", param="checkpoint_id")
    name = f"{fine_tuning_job_id}-step-{checkpoint.step_number}"
    return StreamingResponse(
        tar_stream(root, name),
        media_type="application/x-tar",
        headers={"Content-Disposition": f'attachment; filename="{name}.tar"'},
    )
