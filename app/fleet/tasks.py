"""Worker-side fleet reporting: the `gpu_status` control command and a GPU sampler thread.

Celery autodiscovers this module in every worker. The control command answers a
broadcast at once from an idle worker. A `--pool=solo` GPU worker handles control
commands only between tasks, so while it trains it cannot answer; the sampler
thread keeps its last reading in Redis (with a short expiry) for exactly that case.

Imports stay minimal: this module is imported while `app.core.celery_app` is
still being built (autodiscovery with force=True).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from celery.worker.control import inspect_command

from app.core.config import get_settings
from app.core.database import utcnow
from app.core.redis_clients import sync_client
from app.fleet.gpus import GPU_SAMPLE_SECONDS, GPU_SAMPLE_TTL_SECONDS, GPU_STATUS_COMMAND, read_gpu_status, sample_key

logger = logging.getLogger(__name__)

_stop_sampling = threading.Event()


def stamped_gpu_status(hostname: str) -> dict[str, Any]:
    """The reading with who took it: a job row names its worker as `host:pid` (app/jobs/runner.py)."""
    return {"worker": hostname, "pid": os.getpid(), "read_at": utcnow().isoformat(), **read_gpu_status()}


@inspect_command(name=GPU_STATUS_COMMAND)  # type: ignore[untyped-decorator]
def gpu_status(state: Any, **_: Any) -> dict[str, Any]:
    """GPU name, memory, utilisation and processes of this worker's machine (NVML)."""
    return stamped_gpu_status(state.consumer.hostname)


def _sample_forever(hostname: str, redis_url: str) -> None:
    client = sync_client(redis_url)
    try:
        while not _stop_sampling.is_set():
            try:
                sample = stamped_gpu_status(hostname)
                client.set(sample_key(hostname), json.dumps(sample), ex=GPU_SAMPLE_TTL_SECONDS)
            except Exception:  # a missed sample only ages the last one; the worker must not care
                logger.warning("could not store the GPU sample of %s", hostname, exc_info=True)
            _stop_sampling.wait(GPU_SAMPLE_SECONDS)
    finally:
        client.close()


@worker_ready.connect
def start_gpu_sampler(sender: Any, **_: Any) -> None:
    _stop_sampling.clear()
    thread = threading.Thread(
        target=_sample_forever, args=(sender.hostname, get_settings().redis_url), name="gpu-sampler", daemon=True
    )
    thread.start()


@worker_shutdown.connect
def stop_gpu_sampler(**_: Any) -> None:
    _stop_sampling.set()
