"""Cancel, pause/resume, crashes and duplicate deliveries of a running job (real worker processes)."""

from __future__ import annotations

import itertools
import time

import pytest
from openai import OpenAI

from app.core.celery_app import TASK_RUN_FINETUNE, celery_app, queue_for
from tests.jobs.helpers import (
    TERMINAL,
    checkpoints,
    kill_trainer,
    start_long_job,
    steps_by_attempt,
    trainer_processes,
    wait_for_checkpoint,
    wait_status,
)

pytestmark = pytest.mark.slow


@pytest.fixture
async def client(user_api, make_user) -> OpenAI:  # type: ignore[no-untyped-def]
    user = await make_user("control@example.com")
    return OpenAI(base_url=f"{user_api}/v1", api_key=user.key, max_retries=0)


def assert_resumed_without_repeats(steps: dict[int, list[int]], checkpoint_steps: list[int], interval: int) -> None:
    """Later attempts start right after a checkpoint of the earlier one: nothing before it is trained twice."""
    attempts = sorted(steps)
    assert len(attempts) >= 2, steps
    for earlier, later in itertools.pairwise(attempts):
        resumed_at = min(steps[later]) - 1
        assert resumed_at in checkpoint_steps, (resumed_at, checkpoint_steps)
        redone = max(steps[earlier]) - resumed_at
        assert 0 <= redone <= interval, (redone, steps)
    final = sorted(set(step for attempt in attempts for step in steps[attempt]))
    assert final == list(range(1, max(final) + 1)), "every step trained at least once"


async def test_cancel_running_job_saves_checkpoint_within_10s(
    client, gpu_worker, cpu_worker, tiny_model, sessionmaker
) -> None:  # type: ignore[no-untyped-def]
    job_id = start_long_job(client, tiny_model, epochs=6)
    await wait_for_checkpoint(sessionmaker, job_id)
    before = len(await checkpoints(sessionmaker, job_id))
    asked = time.monotonic()
    client.fine_tuning.jobs.cancel(job_id)
    job = wait_status(client, job_id, TERMINAL, timeout=30)
    assert job.status == "cancelled"
    assert time.monotonic() - asked < 10
    assert len(await checkpoints(sessionmaker, job_id)) > before, "a checkpoint is saved on cancel"
    assert not trainer_processes(gpu_worker.pid)


async def test_pause_then_resume_continues_from_checkpoint(
    client, gpu_worker, cpu_worker, tiny_model, sessionmaker, settings
) -> None:  # type: ignore[no-untyped-def]
    job_id = start_long_job(client, tiny_model, examples=24, epochs=3)
    await wait_for_checkpoint(sessionmaker, job_id)
    client.fine_tuning.jobs.pause(job_id)
    paused = wait_status(client, job_id, {"paused"} | TERMINAL, timeout=30)
    assert paused.status == "paused"
    saved = [c.step_number for c in await checkpoints(sessionmaker, job_id)]
    client.fine_tuning.jobs.resume(job_id)
    done = wait_status(client, job_id, TERMINAL)
    assert done.status == "succeeded", done.error
    steps = await steps_by_attempt(sessionmaker, job_id)
    assert min(steps[max(steps)]) - 1 == max(saved), "resume starts after the checkpoint saved on pause"
    assert_resumed_without_repeats(steps, saved, settings.checkpoint_every_steps)


async def test_killed_trainer_resumes_from_last_checkpoint(
    client, gpu_worker, cpu_worker, tiny_model, sessionmaker, settings
) -> None:  # type: ignore[no-untyped-def]
    job_id = start_long_job(client, tiny_model, examples=24, epochs=3)
    await wait_for_checkpoint(sessionmaker, job_id)
    time.sleep(1.0)  # a step or two past the checkpoint, so some work is really lost
    kill_trainer(gpu_worker.pid)
    done = wait_status(client, job_id, TERMINAL)
    assert done.status == "succeeded", done.error
    saved = [c.step_number for c in await checkpoints(sessionmaker, job_id)]
    assert_resumed_without_repeats(await steps_by_attempt(sessionmaker, job_id), saved, settings.checkpoint_every_steps)


async def test_killed_worker_job_is_recovered_by_the_reconciler(
    client, gpu_worker, cpu_worker, tiny_model, sessionmaker, settings
) -> None:  # type: ignore[no-untyped-def]
    job_id = start_long_job(client, tiny_model, examples=24, epochs=3)
    await wait_for_checkpoint(sessionmaker, job_id)
    gpu_worker.kill()
    killed_at = time.monotonic()
    gpu_worker.ensure_running()
    done = wait_status(client, job_id, TERMINAL)
    assert done.status == "succeeded", done.error
    assert time.monotonic() - killed_at < 120
    saved = [c.step_number for c in await checkpoints(sessionmaker, job_id)]
    assert_resumed_without_repeats(await steps_by_attempt(sessionmaker, job_id), saved, settings.checkpoint_every_steps)


async def test_duplicate_delivery_never_runs_a_job_twice(
    client, gpu_worker, cpu_worker, tiny_model, sessionmaker
) -> None:  # type: ignore[no-untyped-def]
    job_id = start_long_job(client, tiny_model, examples=16, epochs=2)
    wait_status(client, job_id, {"running"} | TERMINAL, timeout=120)
    # A second and third delivery of the same message, as a broker redelivery would make.
    for _ in range(2):
        celery_app.send_task(TASK_RUN_FINETUNE, args=[job_id], queue=queue_for(TASK_RUN_FINETUNE))
    running = 0
    while client.fine_tuning.jobs.retrieve(job_id).status == "running":
        running = max(running, len(trainer_processes(gpu_worker.pid)))
        time.sleep(0.3)
    done = wait_status(client, job_id, TERMINAL)
    assert done.status == "succeeded", done.error
    assert running <= 1
    assert list(await steps_by_attempt(sessionmaker, job_id)) == [1], "one attempt only"


async def test_cancel_right_after_the_claim_ends_cancelled(client, gpu_worker, cpu_worker, tiny_model) -> None:  # type: ignore[no-untyped-def]
    """A stop request that reaches the trainer before its signal handler must still end the job cancelled."""
    job_id = start_long_job(client, tiny_model, examples=16, epochs=2)
    wait_status(client, job_id, {"running"} | TERMINAL, timeout=120)
    client.fine_tuning.jobs.cancel(job_id)
    assert wait_status(client, job_id, TERMINAL, timeout=60).status == "cancelled"
