"""A warm shutdown of the GPU worker hands its running job back to the queue, checkpointed.

`docker compose stop celery-worker` (and `up -d` recreating it for an upgrade) sends SIGTERM to
the container's init, which passes it to Celery alone: the trainer, a child of the task, would
train on until the grace period ends and then die with the container, losing every step since
its last checkpoint, and the job would wait for its lease to expire. Celery announces its warm
shutdown with `worker_shutting_down` (sent from its SIGTERM handler, in the main process, which
is where a `--pool=solo` worker runs the task). This module notes it; the control loop of the
running attempt then stops the trainer as a pause would (SIGTERM: checkpoint at the current
step, exit), and the attempt's outcome is `hand_back`: queued again at once, the attempt not
counted against MAX_JOB_ATTEMPTS.
"""

from __future__ import annotations

import threading
from typing import Any

from celery.signals import worker_shutting_down

from app.core.worker_context import WorkerContext
from app.jobs.events import NewEvent
from app.jobs.worker import record
from app.jobs.worker.state import RunState

_requested = threading.Event()


@worker_shutting_down.connect
def _note_shutdown(**_: Any) -> None:
    # Runs inside Celery's signal handler: set a flag, nothing that takes a lock (no logging).
    _requested.set()


def requested() -> bool:
    """Whether this worker process is shutting down (warm or cold)."""
    return _requested.is_set()


async def hand_back(context: WorkerContext, state: RunState) -> str:
    """The trainer stopped because the worker is going away: the job waits for the next GPU worker."""
    job = state.job
    # A shutdown is not a failure of the job: the attempt it ended gets a successor for free.
    allowed = job.last_allowed_attempt(context.settings.max_job_attempts) + 1
    said = NewEvent(
        f"Worker shutting down: stopped at step {state.last_step} with a checkpoint; "
        "re-queued to continue on the next free GPU worker",
        level="warn",
        data={"step": state.last_step, "reason": "worker_shutdown"},
    )
    return "handed_back" if await record.requeue(context, state, said, attempts_allowed=allowed) else "fenced_out"
