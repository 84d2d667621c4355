"""The fleet as the admin API shows it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class GpuProcess(BaseModel):
    pid: int
    memory_used_bytes: int | None


class GpuDevice(BaseModel):
    index: int
    uuid: str
    name: str
    memory_used_bytes: int
    memory_total_bytes: int
    utilization_percent: int | None
    memory_utilization_percent: int | None
    temperature_c: int | None
    processes: list[GpuProcess]


class GpuStatus(BaseModel):
    # live: answered the gpu_status command now; sample: the worker's last reading (it is busy);
    # none: no reading at all (the worker is gone, or runs without app.fleet.tasks).
    source: Literal["live", "sample", "none"]
    available: bool | None
    reason: str | None
    driver_version: str | None = None
    read_at: str | None = None
    gpus: list[GpuDevice] = []


class RunningJob(BaseModel):
    id: str
    owner_id: str
    model: str
    attempt: int
    current_step: int
    total_steps: int | None
    heartbeat_at: str | None


class TaskInfo(BaseModel):
    id: str | None
    name: str | None
    args: list[Any]
    time_start: float | None = None


class Worker(BaseModel):
    hostname: str
    # online: answered the control commands; busy: silent, but running a job (a solo pool answers
    # between tasks only); unreachable: silent, with only a recent GPU sample to show.
    state: Literal["online", "busy", "unreachable"]
    queues: list[str]
    pid: int | None
    active: list[TaskInfo]
    reserved: list[TaskInfo]
    registered: list[str]
    jobs: list[RunningJob]
    gpu: GpuStatus


class WaitingTask(BaseModel):
    task: str | None
    args: list[Any]
    priority: int


class QueueStatus(BaseModel):
    name: str
    length: int
    by_priority: dict[int, int]
    # The next messages a worker will take, in order (priority 0 first, oldest first).
    next: list[WaitingTask]


class QueuesReport(BaseModel):
    queues: list[QueueStatus]
    # Delivered to a worker and not yet acknowledged (acks_late: the tasks now running).
    unacknowledged: int


class WorkersReport(BaseModel):
    workers: list[Worker]
    # Running jobs no listed worker claims: their worker died or is not reachable.
    unassigned_jobs: list[RunningJob]


class WorkerGpus(BaseModel):
    hostname: str
    state: Literal["online", "busy", "unreachable"]
    jobs: list[str]
    gpu: GpuStatus


class GpuReport(BaseModel):
    workers: list[WorkerGpus]
