"""One vLLM engine (CPU build) for the serving tests and the console's playground, with APIs pointed at it.

The engine serves the tiny model as `tiny-llama` with room for two LoRA adapters, so a third
model's first request unloads the least recently used one. A supervisor thread restarts the
engine when it exits, as `make run` and compose's `restart:` do.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

SERVED_NAME = "tiny-llama"  # the catalog id the `tiny_model` fixture registers
MAX_LORAS = 2
ENGINE_START_SECONDS = 300  # about 40 s on 2 idle cores; far more while the suite trains next to it


@dataclass
class Serving:
    user_api: str
    admin_api: str
    engine_url: str
    engine: object  # app.devstack.processes.ManagedProcess

    def wait_engine(self, timeout: float = ENGINE_START_SECONDS) -> None:
        from app.devstack.processes import wait_until

        wait_until(lambda: httpx.get(f"{self.engine_url}/health", timeout=2).status_code == 200, timeout, "vLLM engine")

    def loaded_adapters(self) -> list[str]:
        models = httpx.get(f"{self.engine_url}/v1/models", timeout=5).json()["data"]
        return [model["id"] for model in models if model.get("parent")]


def _supervise(engine: object, stop: threading.Event) -> None:
    from app.devstack.processes import RestartPolicy

    policy = RestartPolicy()
    while not stop.wait(0.5):
        policy.check([engine])  # type: ignore[list-item]


@pytest.fixture(scope="session")
def serving(stack, tiny_model_path: Path) -> Iterator[Serving]:  # type: ignore[no-untyped-def]
    import sys

    from app.devstack.processes import free_port, wait_until

    engine_port = free_port()
    engine = stack.start_inference(SERVED_NAME, tiny_model_path, engine_port, MAX_LORAS)
    engine_url = f"http://127.0.0.1:{engine_port}"
    env = {**stack.env, "INFERENCE_ENGINES": json.dumps({SERVED_NAME: engine_url}),
           "INFERENCE_MAX_LORAS": str(MAX_LORAS)}  # fmt: skip
    urls = {}
    for which in ("user", "admin"):
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", f"app.api.{which}_app:app", "--host", "127.0.0.1", "--port",
                str(port), "--no-access-log"]  # fmt: skip
        process = stack.spawn(f"serving-{which}-api", argv, env)
        urls[which] = f"http://127.0.0.1:{port}"
        wait_until(lambda url=urls[which]: httpx.get(f"{url}/health", timeout=2).status_code == 200, 60,
                   f"{which} API", process)  # fmt: skip
    stop = threading.Event()
    supervisor = threading.Thread(target=_supervise, args=(engine, stop), daemon=True)
    supervisor.start()
    # Not waited for here: the engine loads (tens of seconds) while a test trains its models.
    handle = Serving(urls["user"], urls["admin"], engine_url, engine)
    try:
        yield handle
    finally:
        stop.set()
        supervisor.join(5)
        engine.stop()
