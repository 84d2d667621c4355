"""HTTP to the vLLM engines: one pooled client per process, errors turned into the platform's own.

Requests go through as they come, concurrently: vLLM batches requests of many users and
adapters itself (continuous batching), so nothing here queues or serializes them.

The client is aiohttp's: a streamed answer is one SSE event per token, and reading one cost
about 30 us of CPU with httpx (h11 parses each chunk of the chunked body in Python) against
about 6 us with aiohttp's C parser (16 concurrent 64-event streams from a local uvicorn,
docs/evidence.md, "Serving overhead"). Every token a user receives passes through here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from app.core.errors import BadRequest, NotFound, PlatformError, ServiceUnavailable

logger = logging.getLogger(__name__)

# Everything that means "no answer from the engine": it is down, restarting, cut off mid-way or too slow.
ENGINE_DOWN_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)
CONNECT_TIMEOUT_SECONDS = 5.0


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
        error = orjson.loads(body).get("error") or {}
        message, param = str(error.get("message") or body[:500]), error.get("param")
    except (ValueError, AttributeError):
        message, param = body[:500].decode(errors="replace"), None
    if status == 404 and engine_model in message:
        return AdapterMissing(message)
    if status >= 500 or status in (408, 429):
        logger.warning("engine answered %s: %s", status, message)
        return EngineUnavailable(f"The serving engine could not answer ({status}); retry shortly.")
    return EngineRefused(message, param=param if isinstance(param, str) else None)


@dataclass(frozen=True)
class EngineResponse:
    """A control call's answer (models, adapters, health, metrics), read whole."""

    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")

    def json(self) -> Any:
        return orjson.loads(self.content)

    def raise_for_status(self) -> None:
        if self.status_code != 200:
            raise EngineUnavailable(f"The serving engine answered {self.status_code}.")


class EngineClient:
    """The one HTTP client to every engine; made in the lifespan (or a worker's init), closed at shutdown.

    The session is opened on first use, inside the event loop that uses it (aiohttp binds a
    session to its loop; an evaluation task runs its own).
    """

    def __init__(self, timeout_seconds: float, max_connections: int) -> None:
        # No total limit (a long answer streams for minutes); the connect and each read are bounded.
        self.timeout = aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT_SECONDS, sock_read=timeout_seconds)
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=self.max_connections)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout, auto_decompress=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def chat(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.post(url, CHAT_PATH, body)
        if response.status_code != 200:
            raise engine_error(response.status_code, response.content, body["model"])
        return response.json()  # type: ignore[no-any-return]

    @asynccontextmanager
    async def chat_stream(self, url: str, body: dict[str, Any]) -> AsyncIterator[AsyncIterator[list[dict[str, Any]]]]:
        """The engine's SSE stream as batches of parsed chunks; errors before the first byte raise here."""
        async with _engine_call():
            response = await self.http.post(f"{url}{CHAT_PATH}", data=orjson.dumps(body), headers=JSON)
        try:
            if response.status != 200:
                async with _engine_call():
                    content = await response.read()
                raise engine_error(response.status, content, body["model"])
            yield _chunk_batches(response)
        finally:
            # Read to its end, the connection goes back to the pool; cut off (the client left), aiohttp closes
            # it, and the engine, seeing the connection go, stops generating.
            response.release()

    async def post(self, url: str, path: str, body: dict[str, Any]) -> EngineResponse:
        async with _engine_call(), self.http.post(f"{url}{path}", data=orjson.dumps(body), headers=JSON) as response:
            return EngineResponse(response.status, await response.read())

    async def get(self, url: str, path: str, wait_seconds: float | None = None) -> EngineResponse:
        timeout = self.timeout if wait_seconds is None else aiohttp.ClientTimeout(total=wait_seconds)
        async with _engine_call(), self.http.get(f"{url}{path}", timeout=timeout) as response:
            return EngineResponse(response.status, await response.read())


CHAT_PATH = "/v1/chat/completions"
JSON = {"Content-Type": "application/json"}


async def _chunk_batches(response: aiohttp.ClientResponse) -> AsyncIterator[list[dict[str, Any]]]:
    """Every complete SSE event of each network read, as one batch.

    With many streams the reads carry several events each; handling them together (one
    iteration, one write to the client) keeps the per-token cost of the user API small. After
    `[DONE]` the body is read to its end, so that its connection can serve the next request.
    """
    pending = b""
    async with _engine_call():
        async for data in response.content.iter_any():
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
                        await response.read()  # the body's end, so that the connection goes back to the pool
                        return
                    batch.append(orjson.loads(payload))
            if batch:
                yield batch


@asynccontextmanager
async def _engine_call() -> AsyncIterator[None]:
    try:
        yield
    except ENGINE_DOWN_ERRORS as error:
        logger.warning("serving engine unreachable: %s: %s", type(error).__name__, error)
        raise EngineUnavailable("The serving engine is not answering (restarting?); retry shortly.") from error
