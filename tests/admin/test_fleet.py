"""Workers, queues and GPUs from real Celery workers, checked against what nvidia-smi says of this machine.

On a machine without a GPU every worker must say 'no GPU'; on a GPU host it must list exactly the
boards nvidia-smi lists (the fleet reads NVML itself, so nvidia-smi is an independent witness).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.admin.conftest import Cast, Seeder


def machine_gpus() -> list[tuple[str, str]]:
    """(uuid, name) of this machine's GPUs as nvidia-smi lists them; none where there is no driver."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    listed = subprocess.run([smi, "--query-gpu=uuid,name", "--format=csv,noheader"], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    if listed.returncode != 0:
        return []
    pairs = (line.split(",", 1) for line in listed.stdout.splitlines() if line.strip())
    return [(uuid.strip(), name.strip()) for uuid, name in pairs]


def assert_reports_this_machine(gpu: dict[str, Any]) -> None:
    expected = machine_gpus()
    assert gpu["available"] is bool(expected), (gpu, expected)
    assert [(board["uuid"], board["name"]) for board in gpu["gpus"]] == expected
    if not expected:
        assert gpu["reason"].startswith("no GPU"), gpu


def _by_queue(workers: list[dict[str, Any]], queue: str) -> dict[str, Any]:
    return next(worker for worker in workers if queue in worker["queues"])


async def test_workers_and_gpus_of_the_fleet(
    as_admin: httpx.Client, cpu_worker, gpu_worker, cast: Cast, seed: Seeder
) -> None:  # type: ignore[no-untyped-def]
    from app.core.celery_app import CPU_QUEUE, GPU_QUEUE, TASK_RUN_FINETUNE

    report = as_admin.get("/admin/v1/fleet/workers")
    assert report.status_code == 200, report.text
    workers = report.json()["workers"]
    gpu, cpu = _by_queue(workers, GPU_QUEUE), _by_queue(workers, CPU_QUEUE)
    assert gpu["hostname"].startswith("gpu-") and cpu["hostname"].startswith("cpu-")
    for worker in (gpu, cpu):
        assert worker["state"] == "online" and worker["pid"]
        assert worker["gpu"]["source"] == "live"
        assert_reports_this_machine(worker["gpu"])
    assert TASK_RUN_FINETUNE in gpu["registered"]

    # A job row naming the GPU worker's process shows up on that worker.
    model = (await seed.base_model()).id
    training = (await seed.training_file(cast.user)).id
    job = await seed.job(cast.user, model, training, "running", worker=f"{socket.gethostname()}:{gpu['pid']}")
    orphan = await seed.job(cast.user, model, training, "running", worker="gone-host:4242")
    report = as_admin.get("/admin/v1/fleet/workers").json()
    assert [j["id"] for j in _by_queue(report["workers"], GPU_QUEUE)["jobs"]] == [job.id]
    assert [j["id"] for j in report["unassigned_jobs"]] == [orphan.id]

    gpus = as_admin.get("/admin/v1/fleet/gpus").json()["workers"]
    by_host = {worker["hostname"]: worker for worker in gpus}
    assert by_host[gpu["hostname"]]["jobs"] == [job.id]
    for worker in gpus:
        assert_reports_this_machine(worker["gpu"])


async def test_a_busy_worker_is_shown_from_its_last_gpu_sample(
    as_admin: httpx.Client, gpu_worker, cast: Cast, seed: Seeder, settings
) -> None:  # type: ignore[no-untyped-def]
    """A solo-pool worker answers no control command while it trains: its sampler's reading stands in."""
    import redis

    from app.fleet.gpus import sample_key

    client = redis.Redis.from_url(settings.redis_url)
    live = [key.decode() for key in client.scan_iter(match=sample_key("gpu-*"))]
    assert live, "the GPU worker's sampler thread stores its readings"
    sample = {"worker": "gpu-busy@trainer-7", "pid": 77, "host": "trainer-7", "read_at": "2030-01-01T00:00:00+00:00",
              "available": True, "reason": None, "driver_version": "575.57",
              "gpus": [{"index": 0, "uuid": "GPU-9", "name": "NVIDIA L40S", "memory_used_bytes": 40 * 2**30,
                        "memory_total_bytes": 48 * 2**30, "utilization_percent": 99, "memory_utilization_percent": 60,
                        "temperature_c": 70, "processes": []}]}  # fmt: skip
    client.set(sample_key("gpu-busy@trainer-7"), json.dumps(sample), ex=30)
    try:
        model = (await seed.base_model()).id
        training = (await seed.training_file(cast.user)).id
        job = await seed.job(cast.user, model, training, "running", worker="trainer-7:77")
        workers = {w["hostname"]: w for w in as_admin.get("/admin/v1/fleet/workers").json()["workers"]}
        busy = workers["gpu-busy@trainer-7"]
        assert busy["state"] == "busy" and [j["id"] for j in busy["jobs"]] == [job.id]
        assert busy["gpu"]["source"] == "sample" and busy["gpu"]["gpus"][0]["name"] == "NVIDIA L40S"
    finally:
        client.delete(sample_key("gpu-busy@trainer-7"))
        client.close()


async def test_health_reports_every_dependency_with_latency(as_admin: httpx.Client, cpu_worker, gpu_worker) -> None:  # type: ignore[no-untyped-def]
    response = as_admin.get("/admin/v1/health")
    body = response.json()
    assert response.status_code == 200, body
    names = {check["name"] for check in body["checks"]}
    assert names == {"database", "redis", "cerbos", "mlflow", "qdrant", "workers_gpu", "workers_cpu"}
    assert all(check["status"] == "ok" and check["latency_ms"] >= 0 for check in body["checks"])


async def test_queue_lengths_per_priority(as_admin: httpx.Client, gpu_queue_held) -> None:  # type: ignore[no-untyped-def]
    from app.core.celery_app import GPU_QUEUE, TASK_RUN_FINETUNE, celery_app

    for priority in (7, 0, 7):
        celery_app.send_task(TASK_RUN_FINETUNE, args=["ftjob-not-a-real-one"], queue=GPU_QUEUE, routing_key=GPU_QUEUE,
                             priority=priority)  # fmt: skip
    gpu = next(q for q in as_admin.get("/admin/v1/fleet/queues").json()["queues"] if q["name"] == GPU_QUEUE)
    assert gpu["length"] == 3 and gpu["by_priority"]["7"] == 2 and gpu["by_priority"]["0"] == 1
    assert [message["priority"] for message in gpu["next"]] == [0, 7, 7]


def _fake_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    """The only stand-in of the suite: a known board, whatever this machine has, so NVML itself is faked."""
    import pynvml

    device = object()
    calls = {
        "nvmlInit": lambda: None,
        "nvmlShutdown": lambda: None,
        "nvmlDeviceGetCount": lambda: 1,
        "nvmlSystemGetDriverVersion": lambda: "575.57",
        "nvmlDeviceGetHandleByIndex": lambda index: device,
        "nvmlDeviceGetName": lambda handle: b"NVIDIA H100 80GB HBM3",
        "nvmlDeviceGetUUID": lambda handle: "GPU-1234",
        "nvmlDeviceGetMemoryInfo": lambda handle: SimpleNamespace(used=30 * 2**30, total=80 * 2**30),
        "nvmlDeviceGetUtilizationRates": lambda handle: SimpleNamespace(gpu=97, memory=40),
        "nvmlDeviceGetTemperature": lambda handle, sensor: 71,
        "nvmlDeviceGetComputeRunningProcesses": lambda handle: [SimpleNamespace(pid=os.getpid(), usedGpuMemory=2**30)],
    }
    for name, fake in calls.items():
        monkeypatch.setattr(pynvml, name, fake)


def test_gpu_reading_through_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    from app.fleet.gpus import read_gpu_status

    assert_reports_this_machine(read_gpu_status())  # the real answer on this machine
    _fake_nvml(monkeypatch)
    status = read_gpu_status()
    assert status["available"] is True and status["driver_version"] == "575.57"
    [gpu] = status["gpus"]
    assert gpu["name"] == "NVIDIA H100 80GB HBM3" and gpu["utilization_percent"] == 97
    assert (gpu["memory_used_bytes"], gpu["memory_total_bytes"]) == (30 * 2**30, 80 * 2**30)
    assert gpu["processes"] == [{"pid": os.getpid(), "memory_used_bytes": 2**30}]
