"""Cancel, pause/resume, duplicate deliveries and a lost claim of a running job (real worker processes).

The kills of the trainer and of the worker are tests/chaos/test_process_kills.py (one of each
kind in `make test`, five in the full form).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from openai import OpenAI
from sqlalchemy import func, select, update

from app.core.celery_app import TASK_RUN_FINETUNE, celery_app, queue_for
from app.core.database import utcnow
from app.jobs import repository
from app.jobs.tables import Checkpoint, Job, JobEvent
from tests.chaos.faults import TrainerWatch, job_row
from tests.jobs.helpers import (
    TERMINAL,
    assert_resumed_from_a_checkpoint,
    checkpoints,
    start_long_job,
    steps_by_attempt,
    trainer_processes,
    wait_for_checkpoint,
    wait_status,
)

pytestmark = pytest.mark.slow
DUPLICATES = 2


@pytest.fixture
async def client(user_api, make_user) -> OpenAI:  # type: ignore[no-untyped-def]
    user = await make_user("control@example.com")
    return OpenAI(base_url=f"{user_api}/v1", api_key=user.key, max_retries=0)


async def test_cancel_running_job_saves_checkpoint_within_10s(
    client, gpu_worker, cpu_worker, tiny_model, sessionmaker
) -> None:  # type: ignore[no-untyped-def]
    job_id = start_long_job(client, tiny_model, epochs=6)
    await wait_for_checkpoint(sessionmaker, job_id)
    before = len(await checkpoints(sessionmaker, job_id))
    asked = time.monotonic()
    # The answer is the state the request produced (OpenAI's), though the worker is still saving a checkpoint.
    assert client.fine_tuning.jobs.cancel(job_id).status == "cancelled"
    job = wait_status(client, job_id, TERMINAL, timeout=30)
    assert job.status == "cancelled"
    assert time.monotonic() - asked < 10
    assert len(await checkpoints(sessionmaker, job_id)) > before, "a checkpoint is saved on cancel"
    assert not trainer_processes(gpu_worker.pid)


async def test_pause_checkpoints_the_last_trained_step_and_resume_continues_after_it(
    client, gpu_worker, cpu_worker, tiny_model, sessionmaker, settings
) -> None:  # type: ignore[no-untyped-def]
    job_id = start_long_job(client, tiny_model, examples=24, epochs=3)
    await wait_for_checkpoint(sessionmaker, job_id)
    assert client.fine_tuning.jobs.pause(job_id).status == "paused"  # at once, while the trainer checkpoints
    paused = wait_status(client, job_id, {"paused"} | TERMINAL, timeout=30)
    assert paused.status == "paused"
    saved = [c.step_number for c in await checkpoints(sessionmaker, job_id)]
    trained = (await steps_by_attempt(sessionmaker, job_id))[1]
    # A pause stops at a step boundary and checkpoints that step: nothing trained is lost.
    assert max(saved) == max(trained), (saved, trained)
    said = [event.message for event in client.fine_tuning.jobs.list_events(job_id, limit=100)]
    assert f"Job paused at step {max(trained)}; resume continues from its checkpoint" in said
    client.fine_tuning.jobs.resume(job_id)
    done = wait_status(client, job_id, TERMINAL)
    assert done.status == "succeeded", done.error
    steps = await steps_by_attempt(sessionmaker, job_id)
    assert min(steps[max(steps)]) - 1 == max(saved), "resume starts after the checkpoint saved on pause"
    assert_resumed_from_a_checkpoint(steps, saved, settings.checkpoint_every_steps)
    assert max(steps[1]) - (min(steps[2]) - 1) == 0, "a paused job trains no step twice"


async def test_duplicate_deliveries_to_two_workers_run_the_job_once(
    client, gpu_worker, second_gpu_worker, cpu_worker, tiny_model, sessionmaker
) -> None:  # type: ignore[no-untyped-def]
    """While one worker trains the job, the other takes the job's extra messages: its claim must lose."""
    with TrainerWatch() as watch:
        job_id = start_long_job(client, tiny_model, examples=16, epochs=2)
        wait_status(client, job_id, {"running"} | TERMINAL, timeout=120)
        # A second and third delivery of the same message, as a broker redelivery would make.
        duplicates = [
            celery_app.send_task(TASK_RUN_FINETUNE, args=[job_id], queue=queue_for(TASK_RUN_FINETUNE))
            for _ in range(DUPLICATES)
        ]
        # The job trains long after both are consumed: the other worker was idle and took them at once.
        outcomes = [duplicate.get(timeout=120) for duplicate in duplicates]
        status_when_consumed = client.fine_tuning.jobs.retrieve(job_id).status
        done = wait_status(client, job_id, TERMINAL)
    assert outcomes == ["not_claimed"] * DUPLICATES, outcomes
    assert status_when_consumed == "running", "the duplicates were consumed while the job ran"
    assert done.status == "succeeded", done.error
    assert watch.most[job_id] == 1 and watch.concurrent_runs() == 0, watch.most
    assert list(await steps_by_attempt(sessionmaker, job_id)) == [1], "one attempt only"
    assert (await job_row(sessionmaker, job_id)).attempt == 1


async def _count_since(sessionmaker: Any, table: Any, job_id: str, attempt: int, since: Any) -> int:
    async with sessionmaker() as session:
        query = select(func.count()).select_from(table)
        query = query.where(table.job_id == job_id, table.attempt == attempt, table.created_at >= since)
        return int(await session.scalar(query) or 0)


async def test_a_worker_whose_claim_was_taken_stops_and_writes_nothing_more(
    client, gpu_worker, cpu_worker, tiny_model, sessionmaker
) -> None:  # type: ignore[no-untyped-def]
    """Its lease lapsed (a long pause, a partition) and another worker claimed the job: the fence stops it."""
    job_id = start_long_job(client, tiny_model, examples=24, epochs=3)
    await wait_for_checkpoint(sessionmaker, job_id)
    async with sessionmaker() as session:
        # What the reconciler and another worker's claim do, in one transaction: the row now names attempt 2.
        await session.execute(update(Job).where(Job.id == job_id).values(status="queued"))
        taken = await repository.claim(session, job_id, "another-host:1", lease_seconds=3600)
        stolen_at, step_at_claim = utcnow(), (await session.get(Job, job_id)).current_step  # type: ignore[union-attr]
        await session.commit()
    assert taken == 2
    deadline = time.monotonic() + 30
    while trainer_processes(gpu_worker.pid):
        assert time.monotonic() < deadline, "the fenced-out worker kept training"
        time.sleep(0.2)
    time.sleep(2.0)  # anything the old attempt still had to write has been tried by now
    row = await job_row(sessionmaker, job_id)
    assert (row.status, row.attempt, row.worker) == ("running", 2, "another-host:1")
    assert row.current_step == step_at_claim, "the old attempt's step did not reach the row"
    assert await _count_since(sessionmaker, JobEvent, job_id, 1, stolen_at) == 0
    assert await _count_since(sessionmaker, Checkpoint, job_id, 1, stolen_at) == 0


async def test_cancel_right_after_the_claim_ends_cancelled(client, gpu_worker, cpu_worker, tiny_model) -> None:  # type: ignore[no-untyped-def]
    """A stop request that reaches the trainer before its signal handler must still end the job cancelled."""
    job_id = start_long_job(client, tiny_model, examples=16, epochs=2)
    wait_status(client, job_id, {"running"} | TERMINAL, timeout=120)
    client.fine_tuning.jobs.cancel(job_id)
    assert wait_status(client, job_id, TERMINAL, timeout=60).status == "cancelled"
