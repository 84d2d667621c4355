"""The fleet view: Celery's control replies, the GPU samples in Redis and the running jobs, merged."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from app.authz.resources import Resources
from app.core.celery_app import GPU_QUEUE, celery_app
from app.fleet import queues as broker
from app.fleet.gpus import SAMPLE_KEY_PATTERN
from app.fleet.inspect import ControlReplies, ask_workers, worker_queues
from app.fleet.schemas import (
    GpuReport,
    GpuStatus,
    QueuesReport,
    QueueStatus,
    RunningJob,
    TaskInfo,
    WaitingTask,
    Worker,
    WorkerGpus,
    WorkersReport,
)
from app.jobs import repository as job_repository
from app.jobs.queue_state import UNACKED_HASH
from app.jobs.tables import Job

# Seconds each control broadcast waits for replies from workers that do not answer.
CONTROL_TIMEOUT_SECONDS = 1.0
NEXT_MESSAGES_SHOWN = 20


async def _gpu_samples(resources: Resources) -> dict[str, dict[str, Any]]:
    samples: dict[str, dict[str, Any]] = {}
    async for key in resources.redis.scan_iter(match=SAMPLE_KEY_PATTERN, count=100):
        raw = await resources.redis.get(key)
        if raw is not None:
            sample = json.loads(raw)
            samples[sample["worker"]] = sample
    return samples


def _gpu_status(live: dict[str, Any] | None, sample: dict[str, Any] | None) -> GpuStatus:
    if live is not None and "error" not in live:
        return GpuStatus(source="live", **_gpu_fields(live))
    if sample is not None:
        return GpuStatus(source="sample", **_gpu_fields(sample))
    reason = "no GPU reading: the worker did not answer and left no recent sample"
    if live is not None:  # it answered with an error: the command is not registered there
        reason = f"no GPU reading: the worker cannot run the gpu_status command ({live['error']})"
    return GpuStatus(source="none", available=None, reason=reason)


def _gpu_fields(reading: dict[str, Any]) -> dict[str, Any]:
    names = ("available", "reason", "driver_version", "read_at", "gpus")
    return {name: reading.get(name) for name in names if reading.get(name) is not None or name == "reason"}


def _task(info: dict[str, Any]) -> TaskInfo:
    return TaskInfo(id=info.get("id"), name=info.get("name"), args=list(info.get("args") or []),
                    time_start=info.get("time_start"))  # fmt: skip


def _running(job: Job) -> RunningJob:
    return RunningJob(
        id=job.id, owner_id=job.owner_id, model=job.model, attempt=job.attempt, current_step=job.current_step,
        total_steps=job.total_steps, heartbeat_at=job.heartbeat_at.isoformat() if job.heartbeat_at else None,
    )  # fmt: skip


def _process_names(hostname: str, replies: ControlReplies, sample: dict[str, Any] | None) -> set[str]:
    """The `host:pid` names a job row may give for this worker (the main process and pool children)."""
    machine = hostname.split("@", 1)[-1]
    stats = replies.stats.get(hostname, {})
    pids = {stats.get("pid"), *(stats.get("pool", {}).get("processes") or [])}
    if sample is not None:
        pids.add(sample.get("pid"))
        machine = sample.get("host", machine)
    return {f"{machine}:{pid}" for pid in pids if pid is not None}


def _worker(hostname: str, replies: ControlReplies, sample: dict[str, Any] | None, jobs: list[Job]) -> Worker:
    answered = hostname in replies.ping
    state = "online" if answered else ("busy" if jobs else "unreachable")
    stats = replies.stats.get(hostname, {})
    return Worker(
        hostname=hostname,
        state=state,
        queues=[queue["name"] for queue in replies.active_queues.get(hostname, [])],
        pid=stats.get("pid") or (sample or {}).get("pid"),
        active=[_task(info) for info in replies.active.get(hostname, [])],
        reserved=[_task(info) for info in replies.reserved.get(hostname, [])],
        registered=sorted(replies.registered.get(hostname, [])),
        jobs=[_running(job) for job in jobs],
        gpu=_gpu_status(replies.gpu_status.get(hostname), sample),
    )


async def workers(resources: Resources, session: AsyncSession) -> WorkersReport:
    replies = await anyio.to_thread.run_sync(ask_workers, celery_app, CONTROL_TIMEOUT_SECONDS)
    samples = await _gpu_samples(resources)
    running = list(await job_repository.running(session))
    listed: list[Worker] = []
    claimed: set[str] = set()
    for hostname in sorted(set(replies.ping) | set(samples)):
        names = _process_names(hostname, replies, samples.get(hostname))
        jobs = [job for job in running if job.worker in names]
        claimed.update(job.id for job in jobs)
        listed.append(_worker(hostname, replies, samples.get(hostname), jobs))
    unassigned = [_running(job) for job in running if job.id not in claimed]
    return WorkersReport(workers=listed, unassigned_jobs=unassigned)


async def gpus(resources: Resources, session: AsyncSession) -> GpuReport:
    report = await workers(resources, session)
    return GpuReport(
        workers=[
            WorkerGpus(
                hostname=worker.hostname, state=worker.state, jobs=[job.id for job in worker.jobs], gpu=worker.gpu
            )
            for worker in report.workers
        ]
    )


async def _queue_status(resources: Resources, name: str) -> QueueStatus:
    by_priority = await broker.lengths(resources.redis, name)
    upcoming = await broker.waiting(resources.redis, name, limit=NEXT_MESSAGES_SHOWN)
    return QueueStatus(
        name=name,
        length=sum(by_priority.values()),
        by_priority=by_priority,
        next=[WaitingTask(task=message.task, args=message.args, priority=message.priority) for message in upcoming],
    )


async def queues(resources: Resources) -> QueuesReport:
    statuses = [await _queue_status(resources, name) for name in broker.QUEUES]
    return QueuesReport(queues=statuses, unacknowledged=int(await resources.redis.hlen(UNACKED_HASH)))


def worker_checks(resources: Resources) -> dict[str, Callable[[], Awaitable[None]]]:
    """Health checks `workers_gpu` and `workers_cpu`, sharing one control broadcast."""
    consumers: asyncio.Future[dict[str, list[str]]] | None = None

    async def consumers_by_worker() -> dict[str, list[str]]:
        nonlocal consumers
        if consumers is None:
            consumers = asyncio.ensure_future(
                anyio.to_thread.run_sync(worker_queues, celery_app, CONTROL_TIMEOUT_SECONDS)
            )
        return await asyncio.shield(consumers)

    def check_for(queue: str) -> Callable[[], Awaitable[None]]:
        async def check() -> None:
            serving = [host for host, names in (await consumers_by_worker()).items() if queue in names]
            if serving:
                return
            if queue == GPU_QUEUE and await _gpu_worker_busy(resources):
                return
            raise RuntimeError(f"no Celery worker answers for the '{queue}' queue")

        return check

    return {f"workers_{queue}": check_for(queue) for queue in broker.QUEUES}


async def _gpu_worker_busy(resources: Resources) -> bool:
    within = timedelta(seconds=resources.settings.job_lease_seconds)
    async with resources.sessionmaker() as session:
        return await job_repository.has_live_running(session, within)
