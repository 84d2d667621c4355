"""A job that always runs out of memory fails once, with out_of_memory, and is never retried.

No GPU here, so the memory that runs out is the host's: the base model's config asks for an
MLP no host could hold, and the allocation is refused when the trainer builds the model
(the same path a too-large model takes on a real worker, before CUDA is ever involved).
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from app.jobs.tables import JobEvent
from tests.chaos.conftest import start_short_job
from tests.chaos.evidence import record
from tests.chaos.faults import job_row, training_jobs_now
from tests.jobs.helpers import TERMINAL, wait_status

pytestmark = pytest.mark.slow


async def _attempts_started(sessionmaker, job_id: str) -> int:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        query = select(func.count()).where(JobEvent.job_id == job_id, JobEvent.message.like("Training started%"))
        return int(await session.scalar(query.select_from(JobEvent)) or 0)


async def test_out_of_memory_job_fails_once_and_is_not_retried(  # type: ignore[no-untyped-def]
    client, gpu_worker, cpu_worker, unloadable_model, sessionmaker, settings
) -> None:
    created = time.monotonic()
    job_id = start_short_job(client, unloadable_model)
    failed = wait_status(client, job_id, TERMINAL, timeout=300)
    seconds_to_fail = time.monotonic() - created
    assert failed.status == "failed"
    assert failed.error is not None and failed.error.code == "out_of_memory", failed.error
    # Several reconciler rounds later it is still failed, on its first attempt, and nothing trains it.
    time.sleep(4 * settings.reconcile_interval_seconds)
    row = await job_row(sessionmaker, job_id)
    started = await _attempts_started(sessionmaker, job_id)
    figures = {
        "final_status": row.status,
        "error_code": (row.error or {}).get("code"),
        "attempts": row.attempt,
        "training_attempts_started": started,
        "seconds_from_create_to_failed": round(seconds_to_fail, 1),
        "trainers_running_after": training_jobs_now()[job_id],
        "error_message": (row.error or {}).get("message"),
    }
    record("poison_out_of_memory", figures)
    assert (row.status, row.attempt, started, figures["trainers_running_after"]) == ("failed", 1, 1, 0), figures
