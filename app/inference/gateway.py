"""Generation through the engines, for the chat endpoint and for in-process callers (evaluation workers).

`InferenceGateway` authorizes nothing: callers resolve a `ServingTarget` (the endpoint through
Cerbos, an evaluation run for the model it was created on) and hand it checked requests
(`wire.checked_request`). One gateway per process, made at start-up and closed at shutdown.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import Settings
from app.core.errors import PlatformError
from app.inference import wire
from app.inference.adapters import EngineAdapters
from app.inference.engine import AdapterMissing, EngineClient, EngineUnavailable
from app.inference.served_models import UNCACHED, ServedModels
from app.inference.usage import Usage, UsageRecorder


@dataclass(frozen=True)
class ServingTarget:
    """Where one model is served and under which name the engine knows it."""

    model: str  # what the caller names: a base id, `ft:...`, or `ft:...:ckpt-step-N`
    base_model: str
    engine_url: str
    engine_model: str  # the engine's served name for a base model, the adapter's name for a LoRA
    adapter_path: str | None = None  # a LoRA adapter the platform loads on first use
    chat_template: str | None = None  # the template saved with the model (the one it was trained with)

    @functools.cached_property
    def fingerprint(self) -> str:
        """OpenAI's `system_fingerprint`: changes when what answers (engine, weights) changes."""
        identity = f"{self.engine_url}|{self.engine_model}|{self.adapter_path}|{self.chat_template}"
        return "fp_" + hashlib.sha256(identity.encode()).hexdigest()[:12]


UsageCallback = Callable[[Usage], Awaitable[None]]


class ChunkStream:
    """An opened stream of `chat.completion.chunk` objects, in batches (the chunks that arrived
    together); iterate it once, it closes itself."""

    def __init__(self, batches: AsyncIterator[list[dict[str, Any]]], resources: AsyncExitStack) -> None:
        self._batches, self._resources = batches, resources

    async def __aiter__(self) -> AsyncIterator[list[dict[str, Any]]]:
        try:
            async for batch in self._batches:
                yield batch
        finally:
            await self._resources.aclose()


class InferenceGateway:
    def __init__(
        self,
        settings: Settings,
        client: EngineClient | None = None,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        models: ServedModels = UNCACHED,
    ) -> None:
        self.settings = settings
        self.models = models  # the model rows requests name, kept while no change is announced
        self.client = client or EngineClient(settings.inference_timeout_seconds, settings.inference_max_connections)
        # Where the endpoint counts token usage (None: not counted, e.g. an evaluation run counts its own).
        self.usage = UsageRecorder(sessionmaker)
        self.adapters = {
            url: EngineAdapters(self.client, url, settings.inference_max_loras)
            for url in set(settings.inference_engines.values())
        }

    async def close(self) -> None:
        await self.usage.close()
        await self.client.close()

    async def complete(self, target: ServingTarget, request: dict[str, Any]) -> tuple[dict[str, Any], Usage]:
        """One `chat.completion` for a checked request (`stream` must be off)."""
        body = self._engine_body(target, request)
        for attempt in (1, 2):
            try:
                async with self._holding(target):
                    answer = await self.client.chat(target.engine_url, body)
                break
            except AdapterMissing:
                self._forget(target)
                if attempt == 2:
                    raise
        completion = wire.completion_object(answer, target.model, target.fingerprint)
        usage = completion.get("usage") or {}
        return completion, Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))

    async def open_stream(
        self, target: ServingTarget, request: dict[str, Any], on_usage: UsageCallback | None = None
    ) -> ChunkStream:
        """Start a streamed answer; errors before the first token raise here, as an HTTP status can."""
        with_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        # The engine always reports usage at the end: the platform records it either way.
        body = self._engine_body(target, request) | {"stream": True, "stream_options": {"include_usage": True}}
        for attempt in (1, 2):
            resources = AsyncExitStack()
            try:
                await resources.enter_async_context(self._holding(target))
                batches = await resources.enter_async_context(self.client.chat_stream(target.engine_url, body))
                break
            except AdapterMissing:
                await resources.aclose()
                self._forget(target)
                if attempt == 2:
                    raise
            except BaseException:
                await resources.aclose()
                raise
        return ChunkStream(self._shaped(target, batches, with_usage, on_usage), resources)

    async def complete_many(
        self, target: ServingTarget, requests: Sequence[dict[str, Any]], concurrency: int = 16
    ) -> list[dict[str, Any] | PlatformError]:
        """Answers to many checked requests, sent `concurrency` at a time so the engine batches them.

        An answer that failed is its error (a bad prompt of one request does not lose the others).
        """
        limit = asyncio.Semaphore(concurrency)

        async def one(request: dict[str, Any]) -> dict[str, Any] | PlatformError:
            async with limit:
                try:
                    return (await self.complete(target, request))[0]
                except PlatformError as error:
                    return error

        return list(await asyncio.gather(*(one(request) for request in requests)))

    async def unload(self, model: str) -> None:
        """Unload `model`'s adapter from every engine that holds it (the model was deleted)."""
        for adapters in self.adapters.values():
            if model in adapters.loaded:
                await adapters.unload(model)

    def engine_for(self, base_model: str) -> str | None:
        return self.settings.inference_engines.get(base_model)

    # ---- helpers ----------------------------------------------------------------------------

    def _engine_body(self, target: ServingTarget, request: dict[str, Any]) -> dict[str, Any]:
        body = dict(request) | {"model": target.engine_model, "messages": wire.engine_messages(request["messages"])}
        if target.chat_template is not None:
            body["chat_template"] = target.chat_template
        return body

    @asynccontextmanager
    async def _holding(self, target: ServingTarget) -> AsyncIterator[None]:
        if target.adapter_path is None:
            yield
            return
        adapters = self.adapters.get(target.engine_url)
        if adapters is None:  # an engine named after a base model alone, never given adapters
            adapters = self.adapters.setdefault(
                target.engine_url, EngineAdapters(self.client, target.engine_url, self.settings.inference_max_loras)
            )
        try:
            async with adapters.using(target.engine_model, target.adapter_path):
                yield
        except EngineUnavailable:
            adapters.forget()  # a restarted engine holds no adapter
            raise

    def _forget(self, target: ServingTarget) -> None:
        if target.engine_url in self.adapters:
            self.adapters[target.engine_url].forget(target.engine_model)

    async def _shaped(
        self,
        target: ServingTarget,
        batches: AsyncIterator[list[dict[str, Any]]],
        with_usage: bool,
        on_usage: UsageCallback | None,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        usage: dict[str, Any] | None = None
        async for batch in batches:
            shaped = []
            for chunk in batch:
                if chunk.get("usage"):
                    usage = chunk["usage"]
                if "error" in chunk:
                    raise PlatformError(str(chunk["error"].get("message", "generation failed")), code="engine_error")
                if chunk.get("choices") or with_usage:
                    shaped.append(wire.chunk_object(chunk, target.model, target.fingerprint, with_usage))
            if shaped:
                yield shaped
        if usage is not None and on_usage is not None:
            await on_usage(Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)))
