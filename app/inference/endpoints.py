"""`POST /v1/chat/completions`: OpenAI's chat completions for base and fine-tuned models, streamed or not."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from app.api.deps import PrincipalDep, ResourcesDep, SessionDep
from app.audit.service import skip_audit
from app.core.errors import PlatformError
from app.inference import service
from app.inference.gateway import ChunkStream, InferenceGateway
from app.inference.lifespan import gateway_of

router = APIRouter(prefix="/v1/chat", tags=["chat"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"description": "OpenAI error object"} for code in (400, 401, 404, 429, 503)
}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def get_gateway(request: Request) -> InferenceGateway:
    return gateway_of(request.app.state.resources)


GatewayDep = Annotated[InferenceGateway, Depends(get_gateway)]


@router.post(
    "/completions",
    responses={200: {"content": {"application/json": {}, "text/event-stream": {}}}, **ERRORS},
    response_model=None,
)
async def create_chat_completion(
    request: Request,
    resources: ResourcesDep,
    session: SessionDep,
    principal: PrincipalDep,
    gateway: GatewayDep,
    body: Annotated[dict[str, Any], Body(description="OpenAI's chat completion request")],
) -> JSONResponse | StreamingResponse:
    """A chat completion from a base model or one of the caller's fine-tuned models (`stream` for SSE)."""
    skip_audit(request)  # token usage is recorded per organization and model instead (admin: /serving/usage)
    answer = await service.chat(resources, session, principal, gateway, body)
    if isinstance(answer, ChunkStream):
        return StreamingResponse(server_sent_events(answer), media_type="text/event-stream", headers=SSE_HEADERS)
    return JSONResponse(answer)


async def server_sent_events(stream: ChunkStream) -> AsyncIterator[bytes]:
    """`data:` lines of chunks, then `data: [DONE]`; an error after the first byte is sent as an error event."""
    try:
        async for batch in stream:  # the chunks that arrived together go out in one write
            yield b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in batch)
    except PlatformError as error:
        yield b"data: " + orjson.dumps(error.body()) + b"\n\n"
        return
    yield b"data: [DONE]\n\n"
