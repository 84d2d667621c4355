"""GPU status read through NVML (nvidia-ml-py), as a plain JSON-ready dict.

NVML is the driver's management library, not CUDA: reading it never creates a
CUDA context, so a worker may call this between (or beside) training processes.
A machine without an NVIDIA driver answers a clear "no GPU" report instead of
raising, so the fleet view works the same on a laptop and on a GPU node.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pynvml

# How workers report: a control command for a live reading, a Redis key for the last sample.
GPU_STATUS_COMMAND = "gpu_status"
GPU_SAMPLE_SECONDS = 10.0
# A sample older than this is not shown: the worker is gone or stuck.
GPU_SAMPLE_TTL_SECONDS = 60


def sample_key(hostname: str) -> str:
    return f"fleet:gpu-sample:{hostname}"


SAMPLE_KEY_PATTERN = sample_key("*")


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


@contextmanager
def _nvml() -> Iterator[None]:
    pynvml.nvmlInit()
    try:
        yield
    finally:
        pynvml.nvmlShutdown()


def _optional(read: Any, *args: Any) -> Any:
    """Some readings are not supported on every board (e.g. utilisation on MIG slices)."""
    try:
        return read(*args)
    except pynvml.NVMLError:
        return None


def _processes(handle: Any) -> list[dict[str, Any]]:
    running = _optional(pynvml.nvmlDeviceGetComputeRunningProcesses, handle) or []
    return [{"pid": process.pid, "memory_used_bytes": process.usedGpuMemory} for process in running]


def _device(index: int) -> dict[str, Any]:
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
    utilization = _optional(pynvml.nvmlDeviceGetUtilizationRates, handle)
    temperature = _optional(pynvml.nvmlDeviceGetTemperature, handle, pynvml.NVML_TEMPERATURE_GPU)
    return {
        "index": index,
        "uuid": _text(pynvml.nvmlDeviceGetUUID(handle)),
        "name": _text(pynvml.nvmlDeviceGetName(handle)),
        "memory_used_bytes": int(memory.used),
        "memory_total_bytes": int(memory.total),
        "utilization_percent": None if utilization is None else int(utilization.gpu),
        "memory_utilization_percent": None if utilization is None else int(utilization.memory),
        "temperature_c": temperature,
        "processes": _processes(handle),
    }


def read_gpu_status() -> dict[str, Any]:
    """This machine's GPUs; `available` false with the reason when there is no usable driver."""
    host = socket.gethostname()
    try:
        with _nvml():
            count = pynvml.nvmlDeviceGetCount()
            driver = _text(pynvml.nvmlSystemGetDriverVersion())
            devices = [_device(index) for index in range(count)]
    except pynvml.NVMLError as error:
        return {"available": False, "host": host, "reason": f"no GPU: NVML is not usable here ({error})", "gpus": []}
    if not devices:
        return {"available": False, "host": host, "reason": "no GPU: the NVIDIA driver reports no devices",
                "driver_version": driver, "gpus": []}  # fmt: skip
    return {"available": True, "host": host, "reason": None, "driver_version": driver, "gpus": devices}
