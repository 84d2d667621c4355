"""The LoRA adapters an engine holds: loaded by the platform on first use, least recently used out.

vLLM's runtime LoRA API (`/v1/load_lora_adapter`, `/v1/unload_lora_adapter`, with
VLLM_ALLOW_RUNTIME_LORA_UPDATING=True) does the work; this keeps the loaded set within
`max_loras`, never unloads an adapter a request is using, and takes the engine's own model list
as the truth before each load, so an engine that restarted (and lost its adapters) or an adapter
another user-API replica loaded is seen as it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.inference.engine import EngineClient, EngineRefused, EngineUnavailable

logger = logging.getLogger(__name__)


class AdapterSlotsBusy(EngineUnavailable):
    """Every adapter slot of the engine serves a request right now; one frees up within seconds."""

    code = "adapter_slots_busy"


class EngineAdapters:
    """The adapters of one engine, least recently used first."""

    def __init__(self, client: EngineClient, url: str, max_loras: int) -> None:
        self.client, self.url, self.max_loras = client, url, max_loras
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._in_use: Counter[str] = Counter()
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> list[str]:
        """What this process believes is loaded, least recently used first."""
        return list(self._recent)

    @asynccontextmanager
    async def using(self, name: str, path: str) -> AsyncIterator[None]:
        """Hold the adapter `name` (loaded from `path` when missing) for the length of one request."""
        await self._ensure(name, path)
        self._in_use[name] += 1
        try:
            yield
        finally:
            self._in_use[name] -= 1

    def forget(self, name: str | None = None) -> None:
        """The engine lost `name` (or all of them, after a restart): load again on next use."""
        if name is None:
            self._recent.clear()
        else:
            self._recent.pop(name, None)

    async def unload(self, name: str) -> None:
        async with self._lock:
            await self._unload(name)

    async def _ensure(self, name: str, path: str) -> None:
        if name in self._recent:
            self._recent.move_to_end(name)
            return
        async with self._lock:
            if name in self._recent:
                self._recent.move_to_end(name)
                return
            await self._sync_with_engine()
            if name not in self._recent:
                await self._make_room()
                await self._load(name, path)
            self._recent[name] = None
            self._recent.move_to_end(name)

    async def _sync_with_engine(self) -> None:
        response = await self.client.get(self.url, "/v1/models")
        if response.status_code != 200:
            raise EngineUnavailable(f"The serving engine did not list its models ({response.status_code}).")
        on_engine = [model["id"] for model in response.json()["data"] if model.get("parent")]
        for gone in set(self._recent) - set(on_engine):
            del self._recent[gone]
        for foreign in on_engine:  # loaded by another replica or before a restart of ours: oldest first
            if foreign not in self._recent:
                self._recent[foreign] = None
                self._recent.move_to_end(foreign, last=False)

    async def _make_room(self) -> None:
        while len(self._recent) >= self.max_loras:
            victim = next((name for name in self._recent if not self._in_use[name]), None)
            if victim is None:
                raise AdapterSlotsBusy(
                    f"All {self.max_loras} adapter slots of the engine are serving requests; retry shortly.",
                    retry_after=1,
                )
            await self._unload(victim)

    async def _load(self, name: str, path: str) -> None:
        response = await self.client.post(self.url, "/v1/load_lora_adapter", {"lora_name": name, "lora_path": path})
        if response.status_code != 200 and "already been loaded" not in response.text:
            logger.warning("engine %s refused adapter %s (%s): %s", self.url, name, path, response.text[:500])
            raise EngineRefused(
                f"The serving engine could not load the adapter of '{name}': {response.text[:300]}",
                param="model",
                code="model_not_servable",
            )
        logger.info("loaded adapter %s into %s", name, self.url)

    async def _unload(self, name: str) -> None:
        response = await self.client.post(self.url, "/v1/unload_lora_adapter", {"lora_name": name})
        if response.status_code not in (200, 404):  # 404: the engine no longer had it
            raise EngineUnavailable(f"The serving engine could not unload '{name}' ({response.status_code}).")
        self._recent.pop(name, None)
        logger.info("unloaded adapter %s from %s", name, self.url)
