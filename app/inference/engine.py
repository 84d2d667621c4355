"""HTTP to the vLLM engines: one pooled client per process, errors turned into the platform's own.

Requests go through as they come, concurrently: vLLM batches requests of many users and
adapters itself (continuous batching), so nothing here queues or serializes them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from app.core.errors import BadRequest, NotFound, PlatformError, ServiceUnavailable

logger = logging.getLogger(__name__)

# Everything that means "no answer from the engine": it is down, restarting or cut off mid-way.
ENGINE_DOWN_ERRORS = (httpx.TransportError,)


class EngineUnavailable(ServiceUnavailable):
    """The engine is down or restarting: retry after a few seconds (the supervisor brings it back)."""

    code = "engine_unavailable"


class EngineRefused(BadRequest):
    """The engine refused the request as given (a prompt longer than the context, a bad schema, ...)."""

    code = "invalid_request"


class AdapterMissing(NotFound):
    """The engine does not hold the adapter (it restarted, or another replica unloaded it)."""

    code = "adapter_not_loaded"


def engine_error(status: int, body: bytes, engine_model: str) -> PlatformError:
    """The engine's error answer as the platform's: its message, never its internals' status."""
    try:
        error = json.loads(body).get("error") or {}
        message, param = str(error.get("message") or body[:500]), error.get("param")
    except (ValueError, AttributeError):
        message, param = body[:500].decode(errors="replace"), None
    if status == 404 and engine_model in message:
        return AdapterMissing(message)
    if status >= 500 or status in (408, 429):
        logger.warning("engine answered %s: %s", status, message)
        return EngineUnavailable(f"The serving engine could not answer ({status}); retry shortly.")
    return EngineRefused(message, param=param if isinstance(param, str) else None)


class EngineClient:
    """The one HTTP client to every engine; made in the lifespan (or a worker's init), closed at shutdown."""

    def __init__(self, timeout_seconds: float, max_connections: int, transport: httpx.AsyncBaseTransport | None = None):
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds, connect=5.0),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            transport=transport,
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def chat(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        async with _engine_call():
            response = await self.http.post(f"{url}/v1/chat/completions", json=body)
        if response.status_code != 200:
            raise engine_error(response.status_code, response.content, body["model"])
        return response.json()  # type: ignore[no-any-return]

    @asynccontextmanager
    async def chat_stream(self, url: str, body: dict[str, Any]) -> AsyncIterator[AsyncIterator[list[dict[str, Any]]]]:
        """The engine's SSE stream as batches of parsed chunks; errors before the first byte raise here."""
        request = self.http.build_request("POST", f"{url}/v1/chat/completions", json=body)
        async with _engine_call():
            response = await self.http.send(request, stream=True)
        try:
            if response.status_code != 200:
                raise engine_error(response.status_code, await response.aread(), body["model"])
            yield _chunk_batches(response)
        finally:
            await response.aclose()

    async def post(self, url: str, path: str, body: dict[str, Any]) -> httpx.Response:
        async with _engine_call():
            return await self.http.post(f"{url}{path}", json=body)

    async def get(self, url: str, path: str, wait_seconds: float | None = None) -> httpx.Response:
        async with _engine_call():
            if wait_seconds is None:
                return await self.http.get(f"{url}{path}")
            return await self.http.get(f"{url}{path}", timeout=wait_seconds)


async def _chunk_batches(response: httpx.Response) -> AsyncIterator[list[dict[str, Any]]]:
    """Every complete SSE event of each network read, as one batch.

    With many streams the reads carry several events each; handling them together (one
    iteration, one write to the client) keeps the per-token cost of the user API small.
    """
    pending = b""
    async with _engine_call():
        async for data in response.aiter_bytes():
            *events, pending = (pending + data).split(b"\n\n")
            batch: list[dict[str, Any]] = []
            for event in events:
                for line in event.split(b"\n"):
                    if not line.startswith(b"data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        if batch:
                            yield batch
                        return
                    batch.append(json.loads(payload))
            if batch:
                yield batch


@asynccontextmanager
async def _engine_call() -> AsyncIterator[None]:
    try:
        yield
    except ENGINE_DOWN_ERRORS as error:
        logger.warning("serving engine unreachable: %s: %s", type(error).__name__, error)
        raise EngineUnavailable("The serving engine is not answering (restarting?); retry shortly.") from error
